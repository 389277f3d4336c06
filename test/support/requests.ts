import fs from 'node:fs/promises'
import net from 'node:net'

import { corpusPath } from './corpus.js'
import type { TestServer } from './test-server.js'

export const SMALL_MP4 = 'mp4ff_prog_8s.mp4'

export interface RecordingJson {
  id: string
  url: string
  sha256: string
  size_bytes: number
  [field: string]: unknown
}

/** Uploads a corpus file through the API and returns the recording object (asserting 201). */
export async function uploadRecording(
  t: TestServer,
  token: string,
  meetingId: string,
  file = SMALL_MP4,
): Promise<RecordingJson> {
  const response = await t.server.app.inject({
    method: 'POST',
    url: `/recordings?meeting_id=${encodeURIComponent(meetingId)}`,
    headers: { authorization: `Bearer ${token}` },
    payload: await fs.readFile(corpusPath(file)),
  })
  if (response.statusCode !== 201) {
    throw new Error(`upload failed: ${response.statusCode} ${response.body}`)
  }
  return response.json() as RecordingJson
}

/** The path (and query) of a recording's absolute `url`. */
export const pathOf = (url: string) => new URL(url).pathname

export interface RawResponse {
  status: number
  head: string
  body: string
  /** True when the server closed the connection. */
  closed: boolean
}

/**
 * Sends `request` as raw bytes over a fresh socket and reads until the server closes or
 * `timeoutMs` passes: for inputs an HTTP client would refuse to send (duplicate or huge headers).
 */
export function rawRequest(baseUrl: string, request: string, timeoutMs = 5000) {
  const { hostname, port } = new URL(baseUrl)
  return new Promise<RawResponse>((resolve, reject) => {
    const socket = net.connect(Number(port), hostname)
    const chunks: Buffer[] = []
    let closed = false
    const timer = setTimeout(() => socket.destroy(), timeoutMs)
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('end', () => (closed = true))
    socket.on('error', (error) => {
      if ((error as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(error)
    })
    socket.on('close', () => {
      clearTimeout(timer)
      const text = Buffer.concat(chunks).toString('latin1')
      const [head = '', body = ''] = text.split('\r\n\r\n', 2)
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body, closed })
    })
    socket.write(request)
  })
}
