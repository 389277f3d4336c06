import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { Readable, Transform } from 'node:stream'
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

  for (let attempt = 0; ; attempt++) {
    const bar = options.progress
      ? new SingleBar({ hideCursor: true }, Presets.shades_classic)
      : undefined
    try {
      const response = await send(url, options, idempotencyKey, stats.size, bar)
      const body = await response.text()
      if (response.ok) return JSON.parse(body)
      const retryable = response.status >= 500 || response.status === 429
      if (!retryable || attempt >= options.retries) {
        throw new Error(`upload failed with ${response.status}: ${body}`)
      }
    } catch (error) {
      if (!isNetworkError(error) || attempt >= options.retries) throw error
    } finally {
      bar?.stop()
    }
    const delayMs = Math.min(30_000, 500 * 2 ** attempt)
    process.stderr.write(`upload interrupted; retrying in ${delayMs} ms\n`)
    await sleep(delayMs)
  }
}

async function send(
  url: URL,
  options: UploadOptions,
  idempotencyKey: string,
  size: number,
  bar: SingleBar | undefined,
) {
  bar?.start(size, 0)
  let sent = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sent += chunk.length
      bar?.update(sent)
      done(null, chunk)
    },
  })
  const body = createReadStream(options.file, { highWaterMark: 1024 * 1024 }).pipe(counter)
  return fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${options.token}`,
      'content-type': 'application/octet-stream',
      'content-length': String(size),
      'idempotency-key': idempotencyKey,
    },
    body: Readable.toWeb(body) as ReadableStream,
    duplex: 'half',
  } as RequestInit)
}

function isNetworkError(error: unknown): boolean {
  return error instanceof TypeError || (error as { code?: string })?.code === 'ECONNRESET'
}
