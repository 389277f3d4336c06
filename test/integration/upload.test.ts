import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'

import { corpusPath } from '../support/corpus.js'
import { createPaddedMp4, type PaddedMedia } from '../support/media-fixtures.js'
import { connect, readResponse, requestHead, waitForClose, writeAll } from '../support/raw-http.js'
import { listBlobKeys, listStagedUploads } from '../support/state.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitUntil } from '../support/wait.js'

const MP4 = 'mp4ff_prog_8s.mp4'
const MIB = 1024 * 1024

const suffix = () => Math.random().toString(36).slice(2, 10)
/**
 * Bigger than one S3 part (8 MiB), so that on S3 a multipart upload is under way (and listed)
 * once this much of a body has arrived; on disk the `.part` file exists from the first byte.
 */
const STAGED_AFTER_BYTES = 9 * MIB
/** Uploads in progress or left behind: `.part` files, or unfinished multipart uploads. */
const staged = (t: TestServer) => listStagedUploads(t.config)
/** Published blobs: files under the blob root, or objects in the bucket. */
const published = (t: TestServer) => listBlobKeys(t.config)
const sha256Hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

async function rowsFor(t: TestServer, meetingId: string) {
  return t.server.db
    .selectFrom('recordings')
    .selectAll()
    .where('meetingId', '=', meetingId)
    .execute()
}

async function listIds(t: TestServer, admin: string, meetingId: string): Promise<string[]> {
  const response = await t.server.app.inject({
    url: `/recordings?meeting_id=${encodeURIComponent(meetingId)}`,
    headers: { authorization: `Bearer ${admin}` },
  })
  assert.equal(response.statusCode, 200, response.body)
  return (response.json().recordings as { id: string }[]).map((r) => r.id)
}

/** Downloads a recording's url over the socket and hashes what arrives. */
async function downloadSha256(t: TestServer, admin: string, url: string): Promise<string> {
  const response = await fetch(`${t.baseUrl}${new URL(url).pathname}`, {
    headers: { authorization: `Bearer ${admin}` },
  })
  assert.equal(response.status, 200)
  return sha256Hex(Buffer.from(await response.arrayBuffer()))
}

describe('upload size caps (S33)', () => {
  const maxBytes = MIB
  let t: TestServer
  let recorder: string
  let admin: string

  before(async () => {
    t = await startTestServer({ listen: true, env: { MAX_UPLOAD_BYTES: String(maxBytes) } })
    recorder = await t.token('org-s33', ['recorder'])
    admin = await t.token('org-s33', ['org_admin'])
  })
  after(() => t.close())

  test('answers 413 to Content-Length MAX+1 with Expect: 100-continue, never 100 Continue', async () => {
    const meetingId = `m-${suffix()}`
    const socket = await connect(t.baseUrl)
    try {
      const responding = readResponse(socket)
      socket.write(
        requestHead('POST', `/recordings?meeting_id=${meetingId}`, {
          authorization: `Bearer ${recorder}`,
          'content-type': 'video/mp4',
          'content-length': maxBytes + 1,
          expect: '100-continue',
        }),
      )
      const response = await responding

      assert.equal(response.statusCode, 413)
      assert.deepEqual(
        response.statusLines.filter((line) => / 100 /.test(line)),
        [],
        'no 100 Continue may be sent for a body that will be refused',
      )
      assert.equal(response.headers.connection, 'close')
      assert.match(response.headers['content-type'] ?? '', /^application\/problem\+json/)
      assert.equal(JSON.parse(String(response.body)).code, 'payload_too_large')
      await waitForClose(socket, 2000)
    } finally {
      socket.destroy()
    }
    assert.deepEqual(await staged(t), [])
    assert.deepEqual(await rowsFor(t, meetingId), [])
  })

  test('sends 100 Continue and stores the upload when the declared size is allowed', async () => {
    const meetingId = `m-${suffix()}`
    const body = await fs.readFile(corpusPath(MP4))
    const socket = await connect(t.baseUrl)
    try {
      const responding = readResponse(socket)
      socket.write(
        requestHead('POST', `/recordings?meeting_id=${meetingId}`, {
          authorization: `Bearer ${recorder}`,
          'content-length': body.length,
          expect: '100-continue',
        }),
      )
      // A careful client waits for the 100 before it sends a byte of the body.
      await new Promise<void>((resolve) => socket.once('data', () => resolve()))
      socket.write(body)
      const response = await responding
      assert.match(response.statusLines[0] ?? '', /^HTTP\/1\.1 100 /)
      assert.equal(response.statusCode, 201, String(response.body))
    } finally {
      socket.destroy()
    }
  })

  test('refuses a chunked body once it passes MAX, leaving no temp file and no row', async () => {
    const meetingId = `m-${suffix()}`
    const head = await fs.readFile(corpusPath(MP4))
    const socket = await connect(t.baseUrl)
    let response: Awaited<ReturnType<typeof readResponse>> | undefined
    try {
      const responding = readResponse(socket).then(
        (r) => (response = r),
        () => undefined, // a reset instead of a 413 is allowed too
      )
      socket.write(
        requestHead('POST', `/recordings?meeting_id=${meetingId}`, {
          authorization: `Bearer ${recorder}`,
          'transfer-encoding': 'chunked',
        }),
      )
      const chunk = Buffer.alloc(256 * 1024)
      head.copy(chunk)
      // Up to 4 × MAX, stopping as soon as the server has answered or hung up.
      for (let sent = 0; sent < 4 * maxBytes && !response && !socket.destroyed;) {
        const ok = socket.write(`${chunk.length.toString(16)}\r\n`)
        socket.write(chunk)
        socket.write('\r\n')
        sent += chunk.length
        if (!ok) await Promise.race([sleep(50), responding])
      }
      await Promise.race([responding, sleep(2000)])
    } finally {
      socket.destroy()
    }
    if (response) {
      assert.equal(response.statusCode, 413)
      assert.equal(JSON.parse(String(response.body)).code, 'payload_too_large')
    }
    assert.ok(
      await waitUntil(async () => (await staged(t)).length === 0, { timeoutMs: 1000 }),
      'the staged upload (.part file or multipart upload) must be gone within 1 s',
    )
    assert.deepEqual(await rowsFor(t, meetingId), [])
    assert.deepEqual(await listIds(t, admin, meetingId), [])
  })

  test('answers 400 empty_upload to a 0-byte body', async () => {
    const meetingId = `m-${suffix()}`
    const response = await fetch(`${t.baseUrl}/recordings?meeting_id=${meetingId}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${recorder}`, 'content-type': 'video/mp4' },
      body: Buffer.alloc(0),
    })
    assert.equal(response.status, 400)
    assert.equal(((await response.json()) as { code: string }).code, 'empty_upload')
    assert.deepEqual(await rowsFor(t, meetingId), [])
    assert.deepEqual(await staged(t), [])
  })

  test('answers 413 to a 2 MiB JSON body on a JSON route', async () => {
    const created = await t.server.app.inject({
      method: 'POST',
      url: `/recordings?meeting_id=m-${suffix()}`,
      headers: { authorization: `Bearer ${recorder}` },
      payload: await fs.readFile(corpusPath(MP4)),
    })
    assert.equal(created.statusCode, 201)
    const id = created.json().id as string

    const response = await fetch(`${t.baseUrl}/recordings/${id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ padding: 'x'.repeat(2 * MIB) }),
    })
    assert.equal(response.status, 413)
    assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/)
    // The refused request did nothing.
    assert.deepEqual(await listIds(t, admin, created.json().meeting_id), [id])
  })
})

describe('upload integrity (S34)', () => {
  let t: TestServer
  let recorder: string
  let admin: string
  let workDir: string
  let media: PaddedMedia
  let large: PaddedMedia

  before(async () => {
    t = await startTestServer({ listen: true })
    recorder = await t.token('org-s34', ['recorder'])
    admin = await t.token('org-s34', ['org_admin'])
    workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-s34-'))
    media = await createPaddedMp4({ dir: workDir, sizeBytes: 5_000_000, marker: 's34' })
    large = await createPaddedMp4({ dir: workDir, sizeBytes: 20 * MIB, marker: 's34-large' })
  })
  after(async () => {
    await t.close()
    await fs.rm(workDir, { recursive: true, force: true })
  })

  const post = (meetingId: string, body: Buffer, headers: Record<string, string> = {}) =>
    fetch(`${t.baseUrl}/recordings?meeting_id=${meetingId}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${recorder}`, 'content-type': 'video/mp4', ...headers },
      body,
    })

  test('refuses a body whose Content-Digest is another digest: 400, no row, no blob', async () => {
    const meetingId = `m-${suffix()}`
    const other = createHash('sha256').update('other bytes').digest('base64')
    const response = await post(meetingId, await fs.readFile(media.path), {
      'content-digest': `sha-256=:${other}:`,
    })

    assert.equal(response.status, 400)
    assert.equal(((await response.json()) as { code: string }).code, 'digest_mismatch')
    assert.deepEqual(await rowsFor(t, meetingId), [])
    assert.deepEqual(await published(t), [])
    assert.deepEqual(await staged(t), [])
  })

  test('accepts a body matching its Content-Digest and stores that sha256', async () => {
    const meetingId = `m-${suffix()}`
    const digest = Buffer.from(media.sha256, 'hex').toString('base64')
    const response = await post(meetingId, await fs.readFile(media.path), {
      'content-digest': `sha-256=:${digest}:`,
    })

    assert.equal(response.status, 201)
    const recording = (await response.json()) as { id: string; sha256: string; url: string }
    assert.equal(recording.sha256, media.sha256)
    const [row] = await rowsFor(t, meetingId)
    assert.equal(row?.sha256, media.sha256)
    assert.equal(await downloadSha256(t, admin, recording.url), media.sha256)
  })

  test('keeps nothing from a body cut short: no row, temp file gone within 1 s', async () => {
    const meetingId = `m-${suffix()}`
    const bytes = await fs.readFile(large.path)
    const socket = await connect(t.baseUrl)
    await writeAll(
      socket,
      requestHead('POST', `/recordings?meeting_id=${meetingId}`, {
        authorization: `Bearer ${recorder}`,
        'content-length': bytes.length,
      }),
    )
    await writeAll(socket, bytes.subarray(0, STAGED_AFTER_BYTES + MIB))
    assert.ok(
      await waitUntil(async () => (await staged(t)).length === 1, { timeoutMs: 5000 }),
      'the upload should be under way',
    )
    socket.destroy()

    assert.ok(
      await waitUntil(async () => (await staged(t)).length === 0, { timeoutMs: 1000 }),
      'the staged upload (.part file or multipart upload) must be removed within 1 s',
    )
    assert.deepEqual(await rowsFor(t, meetingId), [])
    const health = await fetch(`${t.baseUrl}/healthz`)
    assert.equal(health.status, 200)
    const next = await post(`m-${suffix()}`, await fs.readFile(corpusPath(MP4)))
    assert.equal(next.status, 201)
  })
})

describe('interrupted upload (B07)', () => {
  let t: TestServer
  let recorder: string
  let admin: string
  let workDir: string
  let media: PaddedMedia

  before(async () => {
    t = await startTestServer({ listen: true })
    recorder = await t.token('org-b07', ['recorder'])
    admin = await t.token('org-b07', ['org_admin'])
    workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-b07-'))
    media = await createPaddedMp4({ dir: workDir, sizeBytes: 50 * MIB, marker: 'b07' })
  })
  after(async () => {
    await t.close()
    await fs.rm(workDir, { recursive: true, force: true })
  })

  test('an upload killed half-way is never listed and leaves no file; the retry is whole', async () => {
    const meetingId = `m-${suffix()}`
    const bytes = await fs.readFile(media.path)
    const socket = await connect(t.baseUrl)
    await writeAll(
      socket,
      requestHead('POST', `/recordings?meeting_id=${meetingId}`, {
        authorization: `Bearer ${recorder}`,
        'content-type': 'video/mp4',
        'content-length': bytes.length,
      }),
    )
    const chunkBytes = MIB
    let polls = 0
    for (let sent = 0; sent < bytes.length / 2; sent += chunkBytes) {
      await writeAll(socket, bytes.subarray(sent, sent + chunkBytes))
      if ((sent / chunkBytes) % 5 === 0) {
        assert.deepEqual(await listIds(t, admin, meetingId), [], 'listed while uploading')
        polls += 1
      }
      await sleep(5) // a slow link: the server sees the body arrive in pieces
    }
    assert.ok(polls >= 4)
    assert.ok(
      await waitUntil(async () => (await staged(t)).length === 1, { timeoutMs: 5000 }),
      'a staged upload (.part file or multipart upload) should exist while the upload runs',
    )
    socket.destroy()

    assert.ok(
      await waitUntil(async () => (await staged(t)).length === 0, { timeoutMs: 1000 }),
      'the staged upload must be removed promptly',
    )
    assert.deepEqual(await listIds(t, admin, meetingId), [])
    assert.deepEqual(await published(t), [])
    assert.deepEqual(await rowsFor(t, meetingId), [])

    const response = await fetch(`${t.baseUrl}/recordings?meeting_id=${meetingId}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${recorder}`, 'content-type': 'video/mp4' },
      body: bytes,
    })
    assert.equal(response.status, 201)
    const recording = (await response.json()) as { id: string; sha256: string; url: string }
    assert.equal(recording.sha256, media.sha256)
    assert.deepEqual(await listIds(t, admin, meetingId), [recording.id])
    assert.equal(await downloadSha256(t, admin, recording.url), media.sha256)
  })
})

describe('recorder output and retries (B19, B20)', () => {
  let t: TestServer
  let recorder: string
  let admin: string

  before(async () => {
    t = await startTestServer({ listen: true })
    recorder = await t.token('org-b20', ['recorder'])
    admin = await t.token('org-b20', ['org_admin'])
  })
  after(() => t.close())

  const upload = async (meetingId: string, file: string, headers: Record<string, string> = {}) =>
    t.server.app.inject({
      method: 'POST',
      url: `/recordings?meeting_id=${meetingId}`,
      headers: { authorization: `Bearer ${recorder}`, ...headers },
      payload: await fs.readFile(corpusPath(file)),
    })

  test('keeps an MP4 with no moov box, listed with duration_seconds null (B19)', async () => {
    const meetingId = `m-${suffix()}`
    const file = 'file-type_fixture-isom.mp4'
    const created = await upload(meetingId, file)
    assert.equal(created.statusCode, 201, created.body)
    const recording = created.json()
    assert.equal(recording.duration_seconds, null)

    const list = await t.server.app.inject({
      url: `/recordings?meeting_id=${meetingId}`,
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.deepEqual(list.json().recordings, [recording])
    const bytes = await fs.readFile(corpusPath(file))
    assert.equal(await downloadSha256(t, admin, recording.url), sha256Hex(bytes))
  })

  test('returns the first recording to retries with the same Idempotency-Key', async () => {
    const meetingId = `m-${suffix()}`
    const key = `key-${suffix()}`
    const statuses: number[] = []
    const ids = new Set<string>()
    for (let attempt = 0; attempt < 3; attempt++) {
      const response = await upload(meetingId, MP4, { 'idempotency-key': key })
      statuses.push(response.statusCode)
      ids.add(response.json().id)
    }
    assert.deepEqual(statuses, [201, 200, 200])
    assert.equal(ids.size, 1)
    assert.deepEqual(await listIds(t, admin, meetingId), [...ids])
  })

  test('keeps one recording when the same bytes arrive again for the meeting without a key', async () => {
    const meetingId = `m-${suffix()}`
    const first = await upload(meetingId, MP4)
    const second = await upload(meetingId, MP4)
    assert.equal(first.statusCode, 201)
    assert.equal(second.statusCode, 200)
    assert.equal(second.json().id, first.json().id)
    assert.deepEqual(await listIds(t, admin, meetingId), [first.json().id])
    assert.equal((await rowsFor(t, meetingId)).length, 1)
  })

  test('answers 409 to an Idempotency-Key reused for another meeting', async () => {
    const key = `key-${suffix()}`
    const first = await upload(`m-${suffix()}`, MP4, { 'idempotency-key': key })
    assert.equal(first.statusCode, 201)
    const otherMeeting = `m-${suffix()}`
    const reused = await upload(otherMeeting, 'mp4ff_bbb_prog_10s.mp4', { 'idempotency-key': key })
    assert.equal(reused.statusCode, 409)
    assert.equal(reused.json().code, 'idempotency_key_reused')
    assert.deepEqual(await rowsFor(t, otherMeeting), [])
  })

  test('two concurrent uploads with one Idempotency-Key make one recording', async () => {
    const meetingId = `m-${suffix()}`
    const key = `key-${suffix()}`
    const responses = await Promise.all([
      upload(meetingId, 'mp4ff_bbb_prog_10s.mp4', { 'idempotency-key': key }),
      upload(meetingId, 'mp4ff_bbb_prog_10s.mp4', { 'idempotency-key': key }),
    ])
    for (const response of responses) {
      assert.ok(response.statusCode === 200 || response.statusCode === 201, response.body)
    }
    assert.deepEqual(responses.map((r) => r.statusCode).sort(), [200, 201])
    assert.equal(responses[0]?.json().id, responses[1]?.json().id)
    assert.equal((await rowsFor(t, meetingId)).length, 1)
    assert.equal((await published(t)).filter((f) => f.endsWith(responses[0]?.json().id)).length, 1)
  })

  test('two concurrent uploads of the same bytes for one meeting without a key make one recording', async () => {
    const meetingId = `m-${suffix()}`
    const responses = await Promise.all(
      [1, 2, 3].map(() => upload(meetingId, 'peertube_video_short.mkv')),
    )
    for (const response of responses) {
      assert.ok(response.statusCode === 200 || response.statusCode === 201, response.body)
    }
    assert.equal(new Set(responses.map((r) => r.json().id)).size, 1)
    assert.equal(responses.filter((r) => r.statusCode === 201).length, 1)
    assert.equal((await rowsFor(t, meetingId)).length, 1)
  })
})

describe('idle uploads (S39)', () => {
  let t: TestServer
  let recorder: string

  before(async () => {
    t = await startTestServer({ listen: true, env: { IDLE_TIMEOUT_SECONDS: '2' } })
    recorder = await t.token('org-s39', ['recorder'])
  })
  after(() => t.close())

  test('closes a stalled upload after the idle timeout and removes its temp file', async () => {
    const meetingId = `m-${suffix()}`
    const head = await fs.readFile(corpusPath(MP4))
    const socket = await connect(t.baseUrl)
    try {
      await writeAll(
        socket,
        requestHead('POST', `/recordings?meeting_id=${meetingId}`, {
          authorization: `Bearer ${recorder}`,
          'content-length': 20 * MIB,
        }),
      )
      // The real start of a file, then zeros: enough for a multipart upload to begin on S3.
      await writeAll(socket, Buffer.concat([head, Buffer.alloc(STAGED_AFTER_BYTES)]))
      assert.ok(
        await waitUntil(async () => (await staged(t)).length === 1, {
          timeoutMs: 1500,
        }),
        'the upload should have started',
      )
      const closedAfterMs = await waitForClose(socket, 5500)
      assert.ok(closedAfterMs >= 1000, `closed too early: ${closedAfterMs} ms`)
    } finally {
      socket.destroy()
    }
    assert.ok(
      await waitUntil(async () => (await staged(t)).length === 0, { timeoutMs: 1000 }),
      'the stalled upload’s staged bytes must be removed',
    )
    assert.deepEqual(await rowsFor(t, meetingId), [])
  })
})
