import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import http from 'node:http'
import https from 'node:https'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'

import { SingleBar, Presets } from 'cli-progress'

export interface UploadOptions {
  file: string
  meetingId: string
  baseUrl: string
  token: string
  createdAt?: string
  retries: number
  progress: boolean
}

/**
 * Uploads one file as the raw body. Every attempt carries the same Idempotency-Key (derived
 * from the meeting and the file's identity), so a retry after a lost response returns the
 * recording the first attempt created instead of a duplicate.
 */
export async function uploadFile(options: UploadOptions): Promise<unknown> {
  const stats = await fs.stat(options.file)
  if (!stats.isFile()) throw new Error(`${options.file} is not a file`)
  const idempotencyKey = createHash('sha256')
    .update(
      JSON.stringify([options.meetingId, path.basename(options.file), stats.size, stats.mtimeMs]),
    )
    .digest('hex')
  const url = new URL('/recordings', options.baseUrl)
  url.searchParams.set('meeting_id', options.meetingId)
  url.searchParams.set('filename', path.basename(options.file))
  if (options.createdAt) url.searchParams.set('created_at', options.createdAt)

  let lastProblem = ''
  for (let attempt = 0; ; attempt++) {
    const bar = options.progress
      ? new SingleBar({ hideCursor: true }, Presets.shades_classic)
      : undefined
    try {
      const response = await send(url, options, idempotencyKey, stats.size, bar)
      if (response.status >= 200 && response.status < 300) return JSON.parse(response.body)
      const retryable = response.status >= 500 || response.status === 429
      if (!retryable || attempt >= options.retries) {
        throw new Error(`upload to ${url.origin} failed with ${response.status}: ${response.body}`)
      }
      lastProblem = `the server answered ${response.status}`
    } catch (error) {
      if (!isNetworkError(error)) throw error
      const reason = (error as { code?: string }).code ?? 'network error'
      if (attempt >= options.retries) {
        throw new Error(`cannot reach ${url.origin} (${reason})`, { cause: error })
      }
      lastProblem = `cannot reach ${url.origin} (${reason})`
    } finally {
      bar?.stop()
    }
    const delayMs = Math.min(30_000, 500 * 2 ** attempt)
    process.stderr.write(`${lastProblem}; retrying in ${delayMs} ms\n`)
    await sleep(delayMs)
  }
}

/**
 * One attempt over node:http(s), piping the file with backpressure (a fetch body built with
 * Readable.toWeb buffered the whole file in memory on Node 20).
 */
async function send(
  url: URL,
  options: UploadOptions,
  idempotencyKey: string,
  size: number,
  bar: SingleBar | undefined,
): Promise<{ status: number; body: string }> {
  bar?.start(size, 0)
  let sent = 0
  const counter = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _encoding, done) {
      sent += chunk.length
      bar?.update(sent)
      done(null, chunk)
    },
  })
  const request = (url.protocol === 'https:' ? https : http).request(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${options.token}`,
      'content-type': 'application/octet-stream',
      'content-length': String(size),
      'idempotency-key': idempotencyKey,
    },
  })
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    request.once('error', reject)
    request.once('response', (incoming) => {
      const chunks: Buffer[] = []
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk))
      incoming.once('error', reject)
      incoming.once('end', () =>
        resolve({ status: incoming.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
      )
    })
  })
  // The server may answer (413, 401…) before it has read the body; the answer wins.
  const upload = pipeline(
    createReadStream(options.file, { highWaterMark: 1024 * 1024 }),
    counter,
    request,
  ).catch(() => undefined)
  const [result] = await Promise.all([response, upload])
  return result
}

const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
])

function isNetworkError(error: unknown): boolean {
  return NETWORK_ERRORS.has((error as { code?: string })?.code ?? '')
}
