import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'

import { ERROR_SPECS } from '../errors.js'
import { problemType } from './problem.js'

/** /openapi.json, generated from the route schemas, and a browsable /docs. */
export async function registerOpenApi(app: FastifyInstance) {
  const errorTable = Object.entries(ERROR_SPECS)
    .map(([code, spec]) => `| ${spec.statusCode} | \`${code}\` | \`${problemType(code)}\` |`)
    .join('\n')

  await app.register(fastifySwagger, {
    // Shared schemas appear under their own names (Recording, Problem), not def-0, def-1.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'wcr-recordings',
        version: '0.1.0',
        description:
          'Meeting recordings: upload, list, download, delete. Every route but the operations ' +
          'ones needs `Authorization: Bearer <JWT>` with the `org_id` and `permissions` claims.' +
          '\n\nErrors are RFC 9457 problem details (`application/problem+json`):\n\n' +
          '| status | code | type |\n|---|---|---|\n' +
          errorTable,
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
    },
  })
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', staticCSP: true })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}
