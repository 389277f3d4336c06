import { Readable } from 'node:stream'

import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync } from 'fastify'

import { PERMISSIONS } from '../auth/principal.js'
import type { RecordingFilter, RecordingRecord } from '../db/recording-repository.js'
import { errors } from '../errors.js'
import { canonicalRecordingId } from '../recordings/recording-id.js'
import type { RecordingsService, RequestContext } from '../recordings/recordings-service.js'
import type { AppDeps } from './app-deps.js'
import { requirePermission } from './authenticate.js'
import { toRecordingJson } from './recording-presenter.js'
import { baseUrlOf, contextOf } from './request-context.js'
import {
  IdParamsSchema,
  ListQuerySchema,
  ListResponseSchema,
  problemResponses,
  RecordingSchema,
  type ListQuery,
} from './schemas.js'

/**
 * GET /recordings, GET /recordings/{id}, DELETE /recordings/{id}, and PUT / DELETE
 * /recordings/{id}/legal-hold.
 */
export const recordingsRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const adminOnly = requirePermission(deps, PERMISSIONS.orgAdmin)

  app.get(
    '/recordings',
    {
      onRequest: adminOnly,
      schema: {
        summary: 'List the recordings of the caller’s organisation, newest first',
        description:
          'Without `limit`, every available recording is returned in one streamed response. ' +
          'With `limit`, one page is returned with `next_cursor` (null on the last page) and ' +
          'a `Link: <…>; rel="next"` header.',
        tags: ['recordings'],
        security: [{ bearer: [] }],
        querystring: ListQuerySchema,
        response: { 200: ListResponseSchema, ...problemResponses(400, 401, 403, 503) },
      },
    },
    async (request, reply) => {
      const query = request.query as ListQuery
      const context = contextOf(request)
      const filter = toFilter(query)
      const baseUrl = baseUrlOf(request, deps.config.publicUrl)
      reply.header('cache-control', 'no-store')

      if (query.limit === undefined && query.cursor === undefined) {
        // The first batch is read before the status line goes out, so a database failure
        // is still a proper 503/500 rather than a 200 cut short.
        const rows = deps.recordings.listAll({ context, filter })[Symbol.asyncIterator]()
        const first = await rows.next()
        return reply
          .type('application/json; charset=utf-8')
          .send(Readable.from(streamListJson(first, rows, baseUrl)))
      }

      const page = await deps.recordings.listPage({
        context,
        filter,
        limit: query.limit ?? 100,
        cursor: query.cursor,
      })
      if (page.nextCursor) reply.header('link', nextLink(request.url, page.nextCursor, baseUrl))
      return {
        recordings: page.recordings.map((r) => toRecordingJson(r, baseUrl)),
        next_cursor: page.nextCursor,
      }
    },
  )

  app.get(
    '/recordings/:id',
    {
      onRequest: adminOnly,
      schema: {
        summary: 'One recording',
        tags: ['recordings'],
        security: [{ bearer: [] }],
        params: IdParamsSchema,
        response: { 200: Type.Ref(RecordingSchema), ...problemResponses(401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      const record = await getRecording(deps.recordings, contextOf(request), request.params)
      reply.header('cache-control', 'no-store')
      return toRecordingJson(record, baseUrlOf(request, deps.config.publicUrl))
    },
  )

  app.delete(
    '/recordings/:id',
    {
      onRequest: adminOnly,
      schema: {
        summary: 'Delete a recording now, for good',
        description:
          'Answers 204; from then on the recording is 404 everywhere. A recording under ' +
          'legal hold is refused with 409 (legal_hold) until the hold is released.',
        tags: ['recordings'],
        security: [{ bearer: [] }],
        params: IdParamsSchema,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      await deps.recordings.delete(contextOf(request), recordingIdOf(request.params))
      return reply.code(204).send()
    },
  )

  for (const [method, hold] of [
    ['PUT', true],
    ['DELETE', false],
  ] as const) {
    app.route({
      method,
      url: '/recordings/:id/legal-hold',
      onRequest: adminOnly,
      schema: {
        summary: hold ? 'Put a recording under legal hold' : 'Release a legal hold',
        description: hold
          ? 'A held recording is never deleted by expiry, stays visible after its ' +
            '`expires_at`, and cannot be deleted by hand. Idempotent; answers 200 with the ' +
            'recording.'
          : 'The recording follows its `expires_at` again: if that has passed, it is 404 at ' +
            'once and the next sweep deletes it. Idempotent; answers 200 with the recording.',
        tags: ['recordings'],
        security: [{ bearer: [] }],
        params: IdParamsSchema,
        response: { 200: Type.Ref(RecordingSchema), ...problemResponses(401, 403, 404, 503) },
      },
      handler: async (request, reply) => {
        const id = recordingIdOf(request.params)
        const record = await deps.recordings.setLegalHold(contextOf(request), id, hold)
        reply.header('cache-control', 'no-store')
        return toRecordingJson(record, baseUrlOf(request, deps.config.publicUrl))
      },
    })
  }
}

/** The canonical id of a path's `:id`; a malformed id is answered like an unknown one (404). */
export function recordingIdOf(params: unknown): string {
  const id = canonicalRecordingId((params as { id: string }).id)
  if (!id) throw errors.notFound()
  return id
}

/** The visible recording a path names, or not_found. */
export function getRecording(service: RecordingsService, context: RequestContext, params: unknown) {
  return service.get(context, recordingIdOf(params))
}

function toFilter(query: ListQuery): RecordingFilter {
  const filter: RecordingFilter = {}
  if (query.meeting_id !== undefined) filter.meetingId = query.meeting_id
  if (query.created_after !== undefined) filter.createdAfter = parseInstant(query.created_after)
  if (query.created_before !== undefined) {
    filter.createdBefore = parseInstant(query.created_before)
  }
  return filter
}

export function parseInstant(text: string): number {
  const ms = Date.parse(text)
  if (!Number.isFinite(ms) || !/(Z|[+-]\d{2}:\d{2})$/i.test(text)) {
    throw errors.invalidRequest('Instants must be RFC 3339 with a zone, e.g. 2025-01-15T10:30:00Z.')
  }
  return ms
}

function nextLink(requestUrl: string, cursor: string, baseUrl: string): string {
  const url = new URL(requestUrl, baseUrl)
  url.searchParams.set('cursor', cursor)
  return `<${url.href}>; rel="next"`
}

async function* streamListJson(
  first: IteratorResult<RecordingRecord>,
  rest: AsyncIterator<RecordingRecord>,
  baseUrl: string,
): AsyncGenerator<string> {
  yield '{"recordings":['
  let chunk = ''
  let separator = ''
  for (let next = first; !next.done; next = await rest.next()) {
    chunk += separator + JSON.stringify(toRecordingJson(next.value, baseUrl))
    separator = ','
    // Hand the socket ~64 KiB at a time: fewer writes than one per row, bounded memory.
    if (chunk.length >= 65_536) {
      yield chunk
      chunk = ''
    }
  }
  yield chunk + ']}'
}
