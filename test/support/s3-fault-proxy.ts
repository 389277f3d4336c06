import http from 'node:http'
import type net from 'node:net'

export interface S3FaultProxy {
  /** Give this to the server as S3_ENDPOINT. */
  endpoint: string
  /** Requests answered with the injected error so far. */
  failures: () => number
  close(): Promise<void>
}

/**
 * A loopback HTTP proxy in front of an S3 endpoint that answers the requests `shouldFail`
 * picks with `500 InternalError` (as S3 does when it has a bad moment) and forwards every
 * other request unchanged. The Host header is passed through as sent, so SigV4 signatures made
 * for the proxy's address still verify at the store behind it.
 */
export async function startS3FaultProxy(options: {
  target: string
  shouldFail: (request: http.IncomingMessage) => boolean
}): Promise<S3FaultProxy> {
  const target = new URL(options.target)
  let failures = 0
  const sockets = new Set<net.Socket>()
  const server = http.createServer((request, response) => {
    if (options.shouldFail(request)) {
      failures++
      // Read the part's body first: the client sees an answer, not a broken pipe.
      request.resume()
      request.on('end', () => {
        response.writeHead(500, { 'content-type': 'application/xml', connection: 'close' })
        response.end(
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>' +
            '<Message>injected by the test proxy</Message></Error>',
        )
      })
      return
    }
    const upstream = http.request(
      {
        host: target.hostname,
        port: Number(target.port),
        method: request.method,
        path: request.url,
        headers: request.headers,
        agent: false,
      },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.rawHeaders)
        answer.pipe(response)
      },
    )
    upstream.on('error', () => response.destroy())
    request.pipe(upstream)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    failures: () => failures,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

/** True for an S3 UploadPart request of part `partNumber`. */
export function isUploadPart(request: http.IncomingMessage, partNumber: number): boolean {
  if (request.method !== 'PUT') return false
  const query = new URL(request.url ?? '/', 'http://proxy').searchParams
  return query.get('partNumber') === String(partNumber) && query.has('uploadId')
}
