/**
 * The reference for the PostgreSQL list benchmark: a bare node:http server that runs the
 * same SQL as KyselyRecordingRepository.listPage on the same database through a `pg` pool
 * (as large as the product's, int8 read as numbers like src/db/postgres.ts) and answers the
 * same JSON shape with JSON.stringify. No framework, no auth, no validation.
 *
 * Run as its own process: `node dist/bench/pg-reference-server.js` with DATABASE_URL, PORT.
 */
import http from 'node:http'

import pg from 'pg'

import { PG_PAGE_SQL } from './list-sql.js'
import { pageBody, type PageRow } from './page-body.js'

const INT8_OID = 20
const POOL_SIZE = 10

function main() {
  const url = process.env.DATABASE_URL
  const port = Number(process.env.PORT)
  if (!url || !port) throw new Error('DATABASE_URL and PORT are required')
  const pool = new pg.Pool({
    connectionString: url,
    max: POOL_SIZE,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  })
  const base = `http://127.0.0.1:${port}`

  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', base)
    if (url.pathname === '/healthz') {
      response.end('ok')
      return
    }
    if (url.pathname !== '/recordings') {
      response.statusCode = 404
      response.end()
      return
    }
    const orgId = request.headers['x-org-id']?.toString() ?? 'bench'
    const limit = Number(url.searchParams.get('limit') ?? 100)
    pool.query<PageRow>(PG_PAGE_SQL, [orgId, 'active', Date.now(), 1, limit + 1]).then(
      (result) => {
        const body = pageBody(result.rows, limit, base)
        response.writeHead(200, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(body),
        })
        response.end(body)
      },
      (error: unknown) => {
        console.error(error)
        response.statusCode = 500
        response.end()
      },
    )
  })
  server.listen(port, '127.0.0.1')
  process.on('SIGTERM', () => {
    server.close()
    server.closeAllConnections()
    void pool.end()
  })
}

main()
