import { createHash } from 'node:crypto'
import fs from 'node:fs'
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import net from 'node:net'
import type { Readable } from 'node:stream'

/**
 * Small clients for tests that need a real socket: Fastify's `inject()` does not show what
 * goes over the wire (HEAD bodies, chunked encoding, raw header bytes, aborts).
 */

export interface HttpResult {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

const TIMEOUT_MS = 30_000

/** One request on a fresh connection; the whole body is collected. */
export function httpRequest(
  url: string,
  options: { method?: string; headers?: OutgoingHttpHeaders; body?: Buffer | string } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: options.method ?? 'GET', headers: options.headers, agent: false },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('error', reject)
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
          }),
        )
      },
    )
    request.setTimeout(TIMEOUT_MS, () => request.destroy(new Error('request timed out')))
    request.on('error', reject)
    request.end(options.body)
  })
}

export interface DigestResult {
  status: number
  headers: IncomingHttpHeaders
  bytes: number
  sha256: string
}

/** A download whose body is hashed as it arrives, so any size stays out of memory. */
export function httpDigest(
  url: string,
  headers: OutgoingHttpHeaders = {},
  timeoutMs = TIMEOUT_MS,
): Promise<DigestResult> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers, agent: false }, (response) => {
      const hash = createHash('sha256')
      let bytes = 0
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length
        hash.update(chunk)
      })
      response.on('error', reject)
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          bytes,
          sha256: hash.digest('hex'),
        }),
      )
    })
    request.setTimeout(timeoutMs, () => request.destroy(new Error('download timed out')))
    request.on('error', reject)
  })
}

/** POSTs a file as the raw body, streamed from disk with its Content-Length. */
export function uploadFile(options: {
  baseUrl: string
  token: string
  file: string
  query: Record<string, string>
  timeoutMs?: number
}): Promise<HttpResult> {
  const { baseUrl, token, file, query, timeoutMs = TIMEOUT_MS } = options
  const url = `${baseUrl}/recordings?${new URLSearchParams(query)}`
  const sizeBytes = fs.statSync(file).size
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/octet-stream',
          'content-length': String(sizeBytes),
        },
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('error', reject)
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
          }),
        )
      },
    )
    request.setTimeout(timeoutMs, () => request.destroy(new Error('upload timed out')))
    request.on('error', reject)
    const source: Readable = fs.createReadStream(file, { highWaterMark: 1024 * 1024 })
    source.on('error', (error) => request.destroy(error))
    source.pipe(request)
  })
}

export interface RawResult {
  /** The status line and header lines exactly as received, before the blank line. */
  head: Buffer
  status: number
  headerLines: [name: string, value: string][]
  body: Buffer
}

/**
 * One HTTP/1.1 request written by hand on a plain TCP socket with `Connection: close`;
 * everything the server sends is returned byte for byte, the head unparsed.
 */
export function rawHttpRequest(options: {
  baseUrl: string
  method: string
  path: string
  headers?: Record<string, string>
}): Promise<RawResult> {
  const { host, port } = new URL(options.baseUrl)
  const lines = [`${options.method} ${options.path} HTTP/1.1`, `Host: ${host}`]
  for (const [name, value] of Object.entries(options.headers ?? {})) lines.push(`${name}: ${value}`)
  lines.push('Connection: close', '', '')

  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1')
    const chunks: Buffer[] = []
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error('raw request timed out')))
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('end', () => {
      const all = Buffer.concat(chunks)
      const split = all.indexOf('\r\n\r\n')
      if (split < 0) return reject(new Error('no complete response head'))
      const head = all.subarray(0, split)
      const [statusLine = '', ...headerText] = head.toString('latin1').split('\r\n')
      resolve({
        head,
        status: Number(statusLine.split(' ')[1]),
        headerLines: headerText.map((line) => {
          const colon = line.indexOf(':')
          return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
        }),
        body: all.subarray(split + 4),
      })
    })
    socket.write(lines.join('\r\n'), 'latin1')
  })
}
