import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import { BACKEND } from '../support/backend.js'
import { httpDigest, uploadFile } from '../support/http-client.js'
import { createPaddedMp4, sha256OfFile } from '../support/media-fixtures.js'
import {
  countOpenFds,
  listFdsUnder,
  mintProcessToken,
  pollUntil,
  readRssBytes,
} from '../support/process-probe.js'
import { startServerProcess, type ServerProcess } from '../support/process-server.js'

const RECORDING_BYTES = 200 * 1024 * 1024
const READ_BEFORE_ABORT_BYTES = 1024 * 1024
const PARALLEL = 8 // concurrent aborting clients; keeps 400 downloads well under the time budget
const BUDGET_MS = 45_000 // every download loop stops here, whatever its count
const FD_SLACK = 10

interface Recording {
  id: string
  url: string
  sha256: string
  size_bytes: number
}

/**
 * GETs `url`, reads at least `readBytes` of the body, then destroys the socket the way a
 * closed browser tab or `curl | head -c` does. Resolves with the status that was seen.
 */
function downloadThenAbort(
  url: string,
  headers: Record<string, string>,
  readBytes: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers, agent: false }, (response) => {
      let received = 0
      response.on('data', (chunk: Buffer) => {
        received += chunk.length
        if (received >= readBytes) {
          request.destroy()
          resolve(response.statusCode ?? 0)
        }
      })
      response.on('end', () => resolve(response.statusCode ?? 0))
    })
    request.setTimeout(10_000, () => request.destroy(new Error('download stalled')))
    request.on('error', (error: NodeJS.ErrnoException) => {
      // Our own destroy() after resolving surfaces as a socket error; ignore only that.
      if (error.code !== 'ECONNRESET') reject(error)
    })
  })
}

/** Sends a GET and drops the connection after `delayMs`, usually before any response byte. */
function requestThenDrop(url: string, token: string, delayMs: number): Promise<void> {
  const { port, pathname } = new URL(url)
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      socket.write(
        `GET ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`,
      )
      setTimeout(() => socket.resetAndDestroy(), delayMs)
    })
    socket.on('error', () => undefined)
    socket.on('close', () => resolve())
  })
}

/** Runs `count` jobs, `parallel` at a time, stopping early at `deadline`; returns results. */
async function runBounded<T>(
  count: number,
  parallel: number,
  deadline: number,
  job: (index: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = []
  let next = 0
  const worker = async () => {
    while (next < count && Date.now() < deadline) results.push(await job(next++))
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  return results
}

describe('client aborts release file handles (B18)', () => {
  let server: ServerProcess
  let scratch: string
  let source: string
  let recording: Recording
  let admin: string
  let url: string

  before(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-stream-'))
    source = (await createPaddedMp4({ dir: scratch, sizeBytes: RECORDING_BYTES, marker: '200m' }))
      .path
    server = await startServerProcess({ LOG_LEVEL: 'info' })
    admin = await mintProcessToken(server, 'org-a', ['org_admin'])
    const recorder = await mintProcessToken(server, 'org-a', ['recorder'])
    const created = await uploadFile({
      baseUrl: server.baseUrl,
      token: recorder,
      file: source,
      query: { meeting_id: `m-${randomUUID()}` },
      timeoutMs: 60_000,
    })
    assert.equal(created.status, 201, created.body.toString())
    recording = JSON.parse(created.body.toString()) as Recording
    assert.equal(recording.size_bytes, RECORDING_BYTES)
    url = server.baseUrl + new URL(recording.url).pathname
  })
  after(async () => {
    await server?.stop()
    if (scratch) await fs.rm(scratch, { recursive: true, force: true })
  })

  test('400 aborted downloads leave no descriptor open and the server serving', async () => {
    const pid = server.child.pid ?? 0
    const headers = { authorization: `Bearer ${admin}` }
    // Warm up once so lazily opened handles (SQLite statements, log streams) count as baseline.
    const warm = await httpDigest(url, headers)
    assert.equal(warm.status, 200)
    const baselineFds = await countOpenFds(pid)
    const baselineRss = await readRssBytes(pid)
    const deadline = Date.now() + BUDGET_MS

    const plain = await runBounded(300, PARALLEL, deadline, () =>
      downloadThenAbort(url, headers, READ_BEFORE_ABORT_BYTES),
    )
    const ranged = await runBounded(100, PARALLEL, deadline, () =>
      downloadThenAbort(url, { ...headers, range: 'bytes=0-' }, READ_BEFORE_ABORT_BYTES),
    )
    await runBounded(50, PARALLEL, deadline, (i) => requestThenDrop(url, admin, i % 10))
    assert.equal(plain.length, 300, 'all 300 plain downloads ran within the budget')
    assert.equal(ranged.length, 100, 'all 100 ranged downloads ran within the budget')
    assert.ok(plain.every((status) => status === 200))
    assert.ok(ranged.every((status) => status === 206))

    if (BACKEND === 'embedded') {
      // On S3 a download holds a socket, not a file: the fd count below covers both.
      const openBlobFds = await pollUntil(
        () => listFdsUnder(pid, server.dataDir),
        (fds) => !fds.some((target) => target.includes(recording.id)),
        { timeoutMs: 10_000 },
      )
      assert.deepEqual(
        openBlobFds.filter((target) => target.includes(recording.id)),
        [],
        'no descriptor on the recording stays open',
      )
    }
    const fds = await pollUntil(
      () => countOpenFds(pid),
      (count) => count <= baselineFds + FD_SLACK,
      { timeoutMs: 10_000 },
    )
    assert.ok(fds <= baselineFds + FD_SLACK, `fds ${fds}, baseline ${baselineFds}`)
    const rss = await readRssBytes(pid)
    assert.ok(rss < baselineRss + 128 * 1024 ** 2, `rss ${rss}, baseline ${baselineRss}`)

    assert.equal(server.child.exitCode, null, 'the same process is still running')
    const final = await httpDigest(url, headers)
    assert.equal(final.status, 200)
    assert.equal(final.bytes, RECORDING_BYTES)
    assert.equal(final.sha256, recording.sha256)
    assert.equal(final.sha256, await sha256OfFile(source))

    const problems = server
      .output()
      .split('\n')
      .filter((line) => /"level":(40|50|60)/.test(line))
    assert.deepEqual(problems, [], 'aborts are not logged as warnings or errors')
  })
})
