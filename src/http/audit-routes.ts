import type { FastifyPluginAsync } from 'fastify'

import { PERMISSIONS } from '../auth/principal.js'
import { errors } from '../errors.js'
import type { AuditRecord } from '../recordings/audit-log.js'
import type { AuditFilter } from '../recordings/audit-cursor.js'
import { canonicalRecordingId } from '../recordings/recording-id.js'
import type { AppDeps } from './app-deps.js'
import { requirePermission } from './authenticate.js'
import { parseInstant } from './recordings-routes.js'
import { baseUrlOf, contextOf } from './request-context.js'
import {
  AuditPageSchema,
  AuditQuerySchema,
  problemResponses,
  type AuditQueryString,
} from './schemas.js'

/** GET /audit-events: the org's audit trail, newest first, in keyset pages. */
export const auditRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get(
    '/audit-events',
    {
      onRequest: requirePermission(deps, PERMISSIONS.orgAdmin),
      schema: {
        summary: 'The audit trail of the caller’s organisation, newest first',
        description:
          'Every list, download, upload, delete, hold, release and expiry, with actor, ' +
          'recording, time, client address and outcome. Entries outlive the recordings. ' +
          'Filters: `recording_id`, `action`, `after` (inclusive), `before` (exclusive). ' +
          'Pages of `limit` (default 100, at most 1000) with `next_cursor`.',
        tags: ['audit'],
        security: [{ bearer: [] }],
        querystring: AuditQuerySchema,
        response: { 200: AuditPageSchema, ...problemResponses(400, 401, 403, 503) },
      },
    },
    async (request, reply) => {
      const query = request.query as AuditQueryString
      const filter = toFilter(query)
      const page = await deps.recordings.listAuditEvents({
        context: contextOf(request),
        filter,
        limit: query.limit ?? 100,
        cursor: query.cursor,
      })
      reply.header('cache-control', 'no-store')
      if (page.nextCursor) {
        const url = new URL(request.url, baseUrlOf(request, deps.config.publicUrl))
        url.searchParams.set('cursor', page.nextCursor)
        reply.header('link', `<${url.href}>; rel="next"`)
      }
      return { events: page.events.map(toAuditEventJson), next_cursor: page.nextCursor }
    },
  )
}

function toFilter(query: AuditQueryString): AuditFilter {
  const filter: AuditFilter = {}
  if (query.recording_id !== undefined) {
    // Ids are case-insensitive; a malformed one simply matches nothing.
    filter.recordingId = canonicalRecordingId(query.recording_id) ?? query.recording_id
  }
  if (query.action !== undefined) filter.action = query.action
  if (query.after !== undefined) filter.atOrAfterMs = parseInstant(query.after)
  if (query.before !== undefined) filter.beforeMs = parseInstant(query.before)
  if (
    filter.atOrAfterMs !== undefined &&
    filter.beforeMs !== undefined &&
    filter.atOrAfterMs > filter.beforeMs
  ) {
    throw errors.invalidRequest('after must not be later than before.')
  }
  return filter
}

/** The public JSON form of an audit entry: instants as RFC 3339 UTC with milliseconds. */
export function toAuditEventJson(event: AuditRecord) {
  return {
    id: String(event.id),
    at: new Date(event.at).toISOString(),
    org_id: event.orgId,
    actor: event.actor,
    action: event.action,
    recording_id: event.recordingId,
    outcome: event.outcome,
    client_ip: event.clientIp,
    request_id: event.requestId,
    detail: event.detail,
  }
}
