/**
 * A second, informative upload reference: a bare node:http server doing the least any
 * verifying upload must do (receive, SHA-256, write, fsync), so the report can tell the
 * product's own overhead apart from what Node and the machine cost. Run with DIR and PORT.
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'

function main() {
  const dir = process.env.DIR
  const port = Number(process.env.PORT)
  if (!dir || !port) throw new Error('DIR and PORT are required')
  let count = 0

  const server = http.createServer((request, response) => {
    if (request.url === '/healthz') {
      response.end('ok')
      return
    }
    const file = path.join(dir, `upload-${count++}`)
    receive(request, file).then(
      (sha256) => {
        response.statusCode = 201
        response.end(JSON.stringify({ sha256 }))
      },
      (error: unknown) => {
        response.statusCode = 500
        response.end(String(error))
      },
    )
  })
  server.listen(port, '127.0.0.1')
  process.on('SIGTERM', () => {
    server.close()
    server.closeAllConnections()
  })
}

async function receive(request: http.IncomingMessage, file: string): Promise<string> {
  const handle = await fs.open(file, 'w', 0o600)
  try {
    const hash = createHash('sha256')
    for await (const chunk of request) {
      hash.update(chunk as Buffer)
      await handle.write(chunk as Buffer)
    }
    await handle.sync()
    return hash.digest('hex')
  } finally {
    await handle.close()
    await fs.rm(file, { force: true })
  }
}

main()
