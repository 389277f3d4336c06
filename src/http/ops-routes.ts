import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client'

import { isAppError } from '../errors.js'
import type { AppDeps } from './app-deps.js'

/**
 * Request metrics for every route. Registered on the root instance (hooks added inside a
 * plugin would only see that plugin's routes).
 */
export function registerMetrics(app: FastifyInstance): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const requests = new Counter({
    name: 'wcr_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  })
  const durations = new Histogram({
    name: 'wcr_http_request_duration_seconds',
    help: 'Time to answer, by route',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    registers: [registry],
  })
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    requests.inc({ method: request.method, route, status: String(reply.statusCode) })
    durations.observe({ method: request.method, route }, reply.elapsedTime / 1000)
  })
  return registry
}

/** /healthz (the process runs), /readyz (its database and blob store answer), /metrics. */
export const opsRoutes: FastifyPluginAsync<AppDeps & { metrics: Registry }> = async (app, deps) => {
  const registry = deps.metrics
  const hidden = { hide: true, tags: ['operations'] }

  app.get('/healthz', { schema: { ...hidden, summary: 'Liveness' } }, async () => ({
    status: 'ok',
  }))

  app.get('/readyz', { schema: { ...hidden, summary: 'Readiness' } }, async (request, reply) => {
    const checks = await Promise.allSettled([
      withDeadline(deps.repository.ping(), READY_CHECK_TIMEOUT_MS),
      withDeadline(deps.blobs.ping(), READY_CHECK_TIMEOUT_MS),
    ])
    const [database, storage] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : 'unavailable'))
    const ready = database === 'ok' && storage === 'ok'
    if (!ready) {
      const reasons = checks.flatMap((c) => (c.status === 'rejected' ? [c.reason] : []))
      request.log.warn({ causes: reasons.map((r) => (isAppError(r) ? r.cause : r)) }, 'not ready')
      reply.header('retry-after', '5')
    }
    return reply
      .code(ready ? 200 : 503)
      .send({ status: ready ? 'ok' : 'unavailable', database, storage })
  })

  app.get(
    '/metrics',
    { schema: { ...hidden, summary: 'Prometheus metrics' } },
    async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  )
}

const READY_CHECK_TIMEOUT_MS = 2000 // a hung dependency is "not ready", not a hung probe

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}
