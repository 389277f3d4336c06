import { randomUUID } from 'node:crypto'

import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'

import { auditRoutes } from './http/audit-routes.js'
import { contentRoute } from './http/content-route.js'
import type { AppDeps } from './http/app-deps.js'
import { handleFrameworkError, registerErrorHandler } from './http/error-handler.js'
import { registerOpenApi } from './http/openapi.js'
import { opsRoutes, registerMetrics } from './http/ops-routes.js'
import { recordingsRoutes } from './http/recordings-routes.js'
import { retentionRoutes } from './http/retention-routes.js'
import { RecordingSchema, ProblemSchema } from './http/schemas.js'
import { uploadRoute } from './http/upload-route.js'

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/
const UPLOAD_PATH = '/recordings'

/** Builds the HTTP application; it never listens (main.ts and the tests decide that). */
export async function buildApp(deps: AppDeps, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One line per request, written by our onResponse hook, instead of Fastify's two.
    logController: new LogController({
      disableRequestLogging: true,
      requestIdLogLabel: 'request_id',
    }),
    requestIdHeader: false,
    genReqId: (request) => {
      const offered = request.headers['x-request-id']
      return typeof offered === 'string' && REQUEST_ID.test(offered) ? offered : randomUUID()
    },
    exposeHeadRoutes: false,
    // Malformed URLs and over-long path parameters fail before routing: same problem bodies.
    frameworkErrors: handleFrameworkError,
    connectionTimeout: deps.config.idleTimeoutSeconds * 1000,
    bodyLimit: 1024 * 1024, // JSON bodies only; uploads have their own limit
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, allErrors: false } },
  })

  // Answer `Expect: 100-continue` ourselves: the upload route sends 100 only after it has
  // checked the caller and the declared size, so a refused body is never transmitted.
  app.server.on('checkContinue', (request, response) => {
    const path = request.url?.split('?')[0]
    if (!(request.method === 'POST' && path === UPLOAD_PATH)) response.writeContinue()
    app.server.emit('request', request, response)
  })

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        path: request.url.split('?')[0],
        route: request.routeOptions.url,
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime),
        sub: request.principal?.subject,
        org: request.principal?.orgId,
        ip: request.ip,
      },
      'request done',
    )
  })

  app.addSchema(RecordingSchema)
  app.addSchema(ProblemSchema)
  registerErrorHandler(app)
  await registerOpenApi(app)
  const metrics = registerMetrics(app)
  await app.register(opsRoutes, { ...deps, metrics })
  await app.register(recordingsRoutes, deps)
  await app.register(contentRoute, deps)
  await app.register(uploadRoute, deps)
  await app.register(retentionRoutes, deps)
  await app.register(auditRoutes, deps)
  return app
}
