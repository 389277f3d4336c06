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

interface Row {
  id: string
  meeting_id: string
  created_at: number
  expires_at: number
  duration_ms: number | null
  size_bytes: number
  content_type: string
  extension: string
  sha256: string
  legal_hold: number
}

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
    const rows = page.all(orgId, 'active', Date.now(), 1, limit + 1) as Row[]
    const shown = rows.slice(0, limit)
    const last = shown.at(-1)
    const body = JSON.stringify({
      recordings: shown.map((row) => ({
        id: row.id,
        meeting_id: row.meeting_id,
        created_at: rfc3339(row.created_at),
        duration_seconds: row.duration_ms === null ? null : Math.round(row.duration_ms / 1000),
        url: `${base}/recordings/${row.id}/content.${row.extension}`,
        size_bytes: row.size_bytes,
        content_type: row.content_type,
        sha256: row.sha256,
        expires_at: rfc3339(row.expires_at),
        legal_hold: row.legal_hold === 1,
      })),
      next_cursor:
        rows.length > limit && last
          ? Buffer.from(`1|${last.created_at}|${last.id}`).toString('base64url')
          : null,
    })
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

function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}

main()
