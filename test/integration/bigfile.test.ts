import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import { corpusPath } from '../support/corpus.js'
import { httpDigest, httpRequest, rawHttpRequest, uploadFile } from '../support/http-client.js'
import { createPaddedMp4, readSlice, sha256OfFile } from '../support/media-fixtures.js'
import { mintProcessToken, readRssBytes, sampleRss } from '../support/process-probe.js'
import { startServerProcess, type ServerProcess } from '../support/process-server.js'

const SOURCE = corpusPath('mp4ff_prog_8s.mp4') // faststart, exactly 8 s
const BIG_BYTES = 4_831_838_208 // F7: 4.5 GiB, past every 32-bit offset
const FOUR_GIB = 4 * 1024 ** 3
const RSS_GROWTH_LIMIT_BYTES = 256 * 1024 ** 2
const TRANSFER_TIMEOUT_MS = 180_000 // 4.5 GiB through a slow disk with fsync

interface Recording {
  id: string
  url: string
  size_bytes: number
  sha256: string
  duration_seconds: number | null
  content_type: string
}

describe('recordings larger than 4 GiB (B08)', { timeout: 400_000 }, () => {
  let server: ServerProcess | undefined
  let scratch: string
  let big: string
  let sourceBytes: number

  before(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-bigfile-'))
    big = (await createPaddedMp4({ dir: scratch, sizeBytes: BIG_BYTES, marker: 'big-4-5g' })).path
    sourceBytes = (await fs.stat(SOURCE)).size
    server = await startServerProcess({ LOG_LEVEL: 'info' })
  })
  after(async () => {
    // Both the sparse source and the server's (fully written) copy go, even after a failure.
    await server?.stop()
    if (scratch) await fs.rm(scratch, { recursive: true, force: true })
  })

  test('uploads, lists, ranges past 4 GiB and downloads with flat memory', async (t) => {
    assert.ok(server)
    const pid = server.child.pid ?? 0
    const admin = await mintProcessToken(server, 'org-a', ['org_admin'])
    const recorder = await mintProcessToken(server, 'org-a', ['recorder'])
    const auth = { authorization: `Bearer ${admin}` }

    // Warm up the upload, probe and download paths so the baseline includes them.
    const warm = await uploadFile({
      baseUrl: server.baseUrl,
      token: recorder,
      file: SOURCE,
      query: { meeting_id: `m-warm-${randomUUID()}` },
    })
    assert.equal(warm.status, 201, warm.body.toString())
    const warmRecording = JSON.parse(warm.body.toString()) as Recording
    const warmDownload = await httpDigest(
      server.baseUrl + new URL(warmRecording.url).pathname,
      auth,
    )
    assert.equal(warmDownload.sha256, warmRecording.sha256)
    const baselineRss = await readRssBytes(pid)
    const sampler = sampleRss(pid)

    const meetingId = `m-big-${randomUUID()}`
    const uploadStartMs = Date.now()
    const [created, expectedSha256] = await Promise.all([
      uploadFile({
        baseUrl: server.baseUrl,
        token: recorder,
        file: big,
        query: { meeting_id: meetingId },
        timeoutMs: TRANSFER_TIMEOUT_MS,
      }),
      sha256OfFile(big),
    ])
    assert.equal(created.status, 201, created.body.toString())
    t.diagnostic(`upload took ${Date.now() - uploadStartMs} ms`)
    const recording = JSON.parse(created.body.toString()) as Recording
    assert.equal(recording.size_bytes, BIG_BYTES)
    assert.equal(recording.sha256, expectedSha256)
    assert.equal(recording.content_type, 'video/mp4')
    assert.equal(recording.duration_seconds, 8, 'duration read through the 64-bit free box')

    const list = await httpRequest(
      `${server.baseUrl}/recordings?meeting_id=${encodeURIComponent(meetingId)}`,
      { headers: auth },
    )
    assert.equal(list.status, 200)
    const listed = (JSON.parse(list.body.toString()) as { recordings: Recording[] }).recordings
    assert.deepEqual(
      listed.map((r) => [r.id, r.size_bytes, r.duration_seconds]),
      [[recording.id, BIG_BYTES, 8]],
    )

    const contentPath = new URL(recording.url).pathname
    const head = await rawHttpRequest({
      baseUrl: server.baseUrl,
      method: 'HEAD',
      path: contentPath,
      headers: auth,
    })
    assert.equal(head.status, 200)
    assert.deepEqual(
      head.headerLines.filter(([name]) => name === 'content-length'),
      [['content-length', String(BIG_BYTES)]],
    )
    assert.equal(head.body.length, 0)

    const ranges: [start: number, end: number, header: string][] = [
      [FOUR_GIB, FOUR_GIB + 1023, `bytes=${FOUR_GIB}-${FOUR_GIB + 1023}`],
      [BIG_BYTES - 1024, BIG_BYTES - 1, 'bytes=-1024'],
      [2 ** 31 - 8, 2 ** 31 + 7, `bytes=${2 ** 31 - 8}-${2 ** 31 + 7}`],
      // The source's last bytes and the 64-bit free box header: the only non-zero bytes here.
      [sourceBytes - 16, sourceBytes + 15, `bytes=${sourceBytes - 16}-${sourceBytes + 15}`],
    ]
    for (const [start, end, range] of ranges) {
      const response = await httpRequest(server.baseUrl + contentPath, {
        headers: { ...auth, range },
      })
      assert.equal(response.status, 206, range)
      assert.equal(response.headers['content-range'], `bytes ${start}-${end}/${BIG_BYTES}`)
      assert.equal(response.headers['content-length'], String(end - start + 1))
      assert.ok(response.body.equals(await readSlice(big, start, end)), range)
    }

    const downloadStartMs = Date.now()
    const whole = await httpDigest(server.baseUrl + contentPath, auth, TRANSFER_TIMEOUT_MS)
    assert.equal(whole.status, 200)
    assert.equal(whole.headers['content-length'], String(BIG_BYTES))
    assert.equal(whole.bytes, BIG_BYTES)
    assert.equal(whole.sha256, expectedSha256)
    t.diagnostic(`full download took ${Date.now() - downloadStartMs} ms`)

    const peakRss = await sampler.stop()
    const growth = peakRss - baselineRss
    t.diagnostic(`baseline RSS ${baselineRss} B, peak ${peakRss} B`)
    assert.ok(
      growth < RSS_GROWTH_LIMIT_BYTES,
      `server RSS grew by ${Math.round(growth / 1024 ** 2)} MiB (baseline ` +
        `${Math.round(baselineRss / 1024 ** 2)} MiB)`,
    )
    assert.equal(server.child.exitCode, null)
  })
})
