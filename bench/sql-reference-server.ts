/**
 * The reference for the list benchmark: a bare node:http server that runs the same SQL as
 * KyselyRecordingRepository.listPage on the same database file with better-sqlite3 and
 * answers the same JSON shape with JSON.stringify. No framework, no auth, no validation:
 * the floor of what serving this page can cost in Node.
 *
 * Run as its own process: `node dist/bench/sql-reference-server.js` with DB_PATH, PORT.
 */
import http from 'node:http'

import Database from 'better-sqlite3'

import { PAGE_SQL } from './list-sql.js'
import { pageBody, type PageRow } from './page-body.js'

function main() {
  const dbPath = process.env.DB_PATH
  const port = Number(process.env.PORT)
  if (!dbPath || !port) throw new Error('DB_PATH and PORT are required')
  const db = new Database(dbPath, { readonly: true, fileMustExist: true })
  const page = db.prepare(PAGE_SQL)
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
    const rows = page.all(orgId, 'active', Date.now(), 1, limit + 1) as PageRow[]
    const body = pageBody(rows, limit, base)
    response.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    })
    response.end(body)
  })
  server.listen(port, '127.0.0.1')
  process.on('SIGTERM', () => {
    server.close()
    server.closeAllConnections()
    db.close()
  })
}

main()
