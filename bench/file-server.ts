/**
 * Fallback download reference when nginx is not installed: a bare node:http server streaming
 * files under ROOT in 1 MiB reads. Run as its own process with ROOT and PORT.
 */
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { pipeline } from 'node:stream'

const READ_CHUNK_BYTES = 1024 * 1024

function main() {
  const root = process.env.ROOT
  const port = Number(process.env.PORT)
  if (!root || !port) throw new Error('ROOT and PORT are required')

  const server = http.createServer((request, response) => {
    const pathname = new URL(request.url ?? '/', 'http://127.0.0.1').pathname
    if (pathname === '/healthz') {
      response.end('ok')
      return
    }
    const file = path.join(root, path.normalize(pathname))
    if (!file.startsWith(root + path.sep)) {
      response.statusCode = 404
      response.end()
      return
    }
    fs.stat(file, (error, stats) => {
      if (error || !stats.isFile()) {
        response.statusCode = 404
        response.end()
        return
      }
      response.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': stats.size,
      })
      pipeline(fs.createReadStream(file, { highWaterMark: READ_CHUNK_BYTES }), response, () => {})
    })
  })
  server.listen(port, '127.0.0.1')
  process.on('SIGTERM', () => {
    server.close()
    server.closeAllConnections()
  })
}

main()
