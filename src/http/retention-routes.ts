import type { FastifyPluginAsync } from 'fastify'

import { PERMISSIONS } from '../auth/principal.js'
import { toRetentionJson } from './retention-presenter.js'
import type { AppDeps } from './app-deps.js'
import { requirePermission } from './authenticate.js'
import { contextOf } from './request-context.js'
import { problemResponses, RetentionSchema } from './schemas.js'

/** GET /retention: the caller's org retention. Only the operator changes it (CLI). */
export const retentionRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get(
    '/retention',
    {
      onRequest: requirePermission(deps, PERMISSIONS.orgAdmin),
      schema: {
        summary: 'How long the caller’s organisation keeps recordings',
        description:
          '`source` is `org` when the operator set a retention for this organisation ' +
          '(`wcr-recordings org set-retention`), else `default` (the `RETENTION` setting).',
        tags: ['retention'],
        security: [{ bearer: [] }],
        response: { 200: RetentionSchema, ...problemResponses(401, 403, 503) },
      },
    },
    async (request, reply) => {
      const retention = await deps.recordings.getRetention(contextOf(request))
      reply.header('cache-control', 'no-store')
      return toRetentionJson(retention)
    },
  )
}
