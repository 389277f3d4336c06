import http from 'node:http'
import net from 'node:net'

import type { KeyPair } from './jwt-fixtures.js'

export type JwksMode = 'ok' | 'html' | 'redirect' | 'error'

export interface JwksStub {
  /** The JWKS URL to configure (`AUTH_JWKS_URL`). */
  url: string
  /** Requests received so far, whatever the mode. */
  requests: number
  mode: JwksMode
  /** Where `redirect` mode points. */
  redirectTo: string
  close(): Promise<void>
}

/** A JWKS endpoint on 127.0.0.1 serving the public halves of `pairs`, counting every request. */
export async function startJwksStub(pairs: KeyPair[]): Promise<JwksStub> {
  const keys = pairs.map((pair) => ({
    ...pair.publicKey.export({ format: 'jwk' }),
    kid: pair.kid,
    use: 'sig',
    alg: pair.publicKey.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256',
  }))
  const body = JSON.stringify({ keys })
  const server = http.createServer((request, response) => {
    stub.requests++
    request.resume()
    if (stub.mode === 'html') {
      response.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>')
    } else if (stub.mode === 'redirect') {
      response.writeHead(302, { location: stub.redirectTo }).end()
    } else if (stub.mode === 'error') {
      response.writeHead(500).end()
    } else {
      response.writeHead(200, { 'content-type': 'application/json' }).end(body)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  const stub: JwksStub = {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    requests: 0,
    mode: 'ok',
    redirectTo: '',
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return stub
}

export interface CountingListener {
  url: string
  /** TCP connections accepted so far. */
  connections: number
  close(): Promise<void>
}

/** A loopback TCP listener that only counts connections: the target of jku, x5u, redirects. */
export async function startCountingListener(): Promise<CountingListener> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    listener.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  const listener: CountingListener = {
    url: `http://127.0.0.1:${port}/keys.json`,
    connections: 0,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
  return listener
}
