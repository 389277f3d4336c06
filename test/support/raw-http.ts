import net from 'node:net'

/** An HTTP/1.1 response as it came off the wire. */
export interface RawResponse {
  statusCode: number
  /** Every status line received, in order (a `100 Continue` shows up here). */
  statusLines: string[]
  /** Header names in lower case; the final response's headers only. */
  headers: Record<string, string>
  body: Buffer
}

/** Opens a TCP connection to the host and port of `baseUrl`. */
export async function connect(baseUrl: string): Promise<net.Socket> {
  const url = new URL(baseUrl)
  const socket = net.connect({ host: url.hostname, port: Number(url.port) })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  // Writes after the server hung up must not crash the test process.
  socket.on('error', () => undefined)
  return socket
}

/** The request line and headers of a request, ready to write. */
export function requestHead(
  method: string,
  pathAndQuery: string,
  headers: Record<string, string | number>,
): string {
  const lines = [`${method} ${pathAndQuery} HTTP/1.1`, 'Host: 127.0.0.1']
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
  return lines.join('\r\n') + '\r\n\r\n'
}

/**
 * Collects bytes from `socket` until one final (non-1xx) response is complete: its
 * Content-Length is read, or the socket ends. Rejects after `timeoutMs`.
 */
export function readResponse(socket: net.Socket, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0)
    const statusLines: string[] = []
    let done = false
    const finish = (result: RawResponse | Error) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
      if (result instanceof Error) reject(result)
      else resolve(result)
    }
    const timer = setTimeout(() => finish(new Error('no complete response in time')), timeoutMs)

    const tryParse = (ended: boolean) => {
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n')
        if (end < 0) {
          if (ended) finish(new Error(`connection closed before a response: ${String(buffer)}`))
          return
        }
        const [statusLine = '', ...headerLines] = buffer.subarray(0, end).toString().split('\r\n')
        const statusCode = Number(statusLine.split(' ')[1])
        statusLines.push(statusLine)
        if (statusCode >= 100 && statusCode < 200) {
          buffer = buffer.subarray(end + 4)
          continue
        }
        const headers: Record<string, string> = {}
        for (const line of headerLines) {
          const colon = line.indexOf(':')
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
        }
        const body = buffer.subarray(end + 4)
        const length = headers['content-length']
        if (length !== undefined && body.length >= Number(length)) {
          finish({ statusCode, statusLines, headers, body: body.subarray(0, Number(length)) })
        } else if (ended) {
          finish({ statusCode, statusLines, headers, body })
        }
        return
      }
    }
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      tryParse(false)
    }
    const onClose = () => tryParse(true)
    socket.on('data', onData)
    socket.on('close', onClose)
  })
}

/** Resolves with how long it took the peer to close `socket`, or rejects after `timeoutMs`. */
export function waitForClose(socket: net.Socket, timeoutMs: number): Promise<number> {
  const started = Date.now()
  if (socket.destroyed || socket.readableEnded) return Promise.resolve(0)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket still open')), timeoutMs)
    const closed = () => {
      clearTimeout(timer)
      resolve(Date.now() - started)
    }
    socket.once('close', closed)
    socket.once('end', closed)
    socket.resume()
  })
}

/** Writes `data`, waiting for the socket to drain when its buffer is full. */
export async function writeAll(socket: net.Socket, data: Buffer | string): Promise<void> {
  if (socket.write(data)) return
  await new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      socket.off('close', onClose)
      resolve()
    }
    const onClose = () => {
      socket.off('drain', onDrain)
      reject(new Error('socket closed while writing'))
    }
    socket.once('drain', onDrain)
    socket.once('close', onClose)
  })
}
