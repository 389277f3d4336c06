import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'

import { corpusPath } from '../support/corpus.js'
import { startServerProcess, type ServerProcess } from '../support/process-server.js'
import {
  startScaleoutStack,
  timedFetch,
  type Backend,
  type ScaleoutStack,
  type TimedResponse,
} from '../support/scaleout-stack.js'
import { listBlobKeys, listStagedUploads } from '../support/state.js'
import { waitUntil } from '../support/wait.js'

/**
 * S47 and issue #4: a node on PostgreSQL + S3 answers 503 problem+json with Retry-After while
 * either is down or hanging, keeps /healthz up and /readyz down, and recovers by itself.
 */

const MP4 = 'mp4ff_prog_8s.mp4'
const OUTAGE_ANSWER_MS = 10_000 // S47: a 503 within 10 s, never a hang
const RECOVERY_MS = 45_000

describe('scale-out outages', () => {
  let stack: ScaleoutStack
  let backend: Backend
  let node: ServerProcess
  let admin: string
  let recorder: string
  let media: Buffer
  let mediaSha256: string
  let existing: { id: string; url: string; sha256: string }
  let meetingCounter = 0

  const nextMeeting = () => `m-outage-${process.pid}-${++meetingCounter}`
  const api = (path: string) => `${node.baseUrl}${path}`
  const list = () => timedFetch(api('/recordings'), { token: admin })
  const getOne = () => timedFetch(api(`/recordings/${existing.id}`), { token: admin })
  const download = () => timedFetch(api(new URL(existing.url).pathname), { token: admin })
  const upload = (meetingId = nextMeeting(), timeoutMs?: number) =>
    timedFetch(
      api(`/recordings?meeting_id=${meetingId}`),
      { method: 'POST', token: recorder, body: media },
      timeoutMs,
    )
  const meetingIdsListed = async () => {
    const response = await list()
    assert.equal(response.status, 200, String(response.body))
    const recordings = JSON.parse(String(response.body)).recordings as { meeting_id: string }[]
    return recordings.map((r) => r.meeting_id)
  }

  const assertOutage = (name: string, response: TimedResponse) => {
    assert.equal(response.status, 503, `${name}: ${response.status} ${String(response.body)}`)
    assert.match(String(response.headers.get('content-type')), /^application\/problem\+json/)
    assert.match(String(response.headers.get('retry-after')), /^\d+$/, `${name}: Retry-After`)
    const problem = JSON.parse(String(response.body))
    assert.equal(problem.status, 503)
    assert.equal(problem.code, 'service_unavailable')
    assert.ok(
      response.elapsedMs <= OUTAGE_ANSWER_MS,
      `${name} took ${response.elapsedMs} ms, over ${OUTAGE_ANSWER_MS} ms`,
    )
  }

  /** After an outage: the same requests succeed again, with no restart of the node. */
  const assertRecovered = async () => {
    const pid = node.child.pid
    const ready = await waitUntil(
      async () => (await timedFetch(api('/readyz'), {}).catch(() => undefined))?.status === 200,
      { timeoutMs: RECOVERY_MS, intervalMs: 500 },
    )
    assert.ok(ready, '/readyz did not return to 200')
    assert.equal((await list()).status, 200)
    assert.equal((await getOne()).status, 200)
    const bytes = await download()
    assert.equal(bytes.status, 200)
    assert.equal(createHash('sha256').update(bytes.body).digest('hex'), existing.sha256)
    const meetingId = nextMeeting()
    const created = await upload(meetingId)
    assert.equal(created.status, 201, String(created.body))
    assert.ok((await meetingIdsListed()).includes(meetingId))
    assert.equal(node.child.pid, pid)
    assert.equal(node.child.exitCode, null, 'the node must not have exited')
  }

  before(async () => {
    stack = await startScaleoutStack()
    backend = await stack.createBackend()
    node = await startServerProcess({ ...backend.env, SWEEP_INTERVAL_SECONDS: '2' })
    admin = await stack.token('org-outage', ['org_admin'])
    recorder = await stack.token('org-outage', ['recorder'])
    media = await fs.readFile(corpusPath(MP4))
    mediaSha256 = createHash('sha256').update(media).digest('hex')
    const created = await upload()
    assert.equal(created.status, 201, String(created.body))
    existing = JSON.parse(String(created.body))
    assert.equal(existing.sha256, mediaSha256)
  })

  after(async () => {
    await node?.stop()
    await stack?.stop()
  })

  test('answers 503 with Retry-After while PostgreSQL is down, then recovers', async () => {
    const keysBefore = await listBlobKeys(backend.config)
    await stack.postgres.pause()
    try {
      assertOutage('list', await list())
      assertOutage('get', await getOne())
      assertOutage('download', await download())
      assertOutage('upload', await upload())
      const ready = await timedFetch(api('/readyz'), {})
      assert.equal(ready.status, 503)
      assert.ok(ready.elapsedMs <= OUTAGE_ANSWER_MS, `readyz took ${ready.elapsedMs} ms`)
      assert.equal(JSON.parse(String(ready.body)).database, 'unavailable')
      assert.equal((await timedFetch(api('/healthz'), {})).status, 200)
    } finally {
      await stack.postgres.resume()
    }

    await assertRecovered()
    // The upload refused during the outage left no object and no multipart upload behind.
    const keysAfter = await listBlobKeys(backend.config)
    assert.equal(keysAfter.length, keysBefore.length + 1)
    assert.deepEqual(await listStagedUploads(backend.config), [])
  })

  test('answers downloads and uploads with 503 while S3 is down, lists, then recovers', async () => {
    const doomed = await upload()
    assert.equal(doomed.status, 201)
    const doomedRecording = JSON.parse(String(doomed.body)) as { id: string }
    const refusedMeeting = nextMeeting()

    await stack.pauseS3()
    try {
      assertOutage('download', await download())
      const listed = await list()
      assert.equal(listed.status, 200, 'the list needs metadata only')
      assert.ok(listed.elapsedMs <= OUTAGE_ANSWER_MS)
      assertOutage('upload', await upload(refusedMeeting))
      assert.ok(!(await meetingIdsListed()).includes(refusedMeeting), 'no row for a failed upload')
      assert.equal((await getOne()).status, 200)

      // A deletion is certain once hidden and audited; the sweeper removes the blob later.
      const deleted = await timedFetch(api(`/recordings/${doomedRecording.id}`), {
        method: 'DELETE',
        token: admin,
      })
      assert.equal(deleted.status, 204)
      const gone = await timedFetch(api(`/recordings/${doomedRecording.id}`), { token: admin })
      assert.equal(gone.status, 404)

      const ready = await timedFetch(api('/readyz'), {})
      assert.equal(ready.status, 503)
      assert.equal(JSON.parse(String(ready.body)).storage, 'unavailable')
      assert.equal((await timedFetch(api('/healthz'), {})).status, 200)
    } finally {
      await stack.resumeS3()
    }

    await assertRecovered()
    assert.ok(!(await meetingIdsListed()).includes(refusedMeeting))
    // The sweeper (every 2 s here) finishes the deletion once the store is back.
    const swept = await waitUntil(
      async () => !(await listBlobKeys(backend.config)).some((k) => k.includes(doomedRecording.id)),
      { timeoutMs: 30_000, intervalMs: 500 },
    )
    assert.ok(swept, 'the blob of the recording deleted during the outage is still there')
  })

  test('answers 503 within 10 s while the S3 server hangs (SIGSTOP), then recovers', async () => {
    const pid = await stack.swiftProxyPid()
    const refusedMeeting = nextMeeting()
    process.kill(pid, 'SIGSTOP')
    try {
      assertOutage('download', await download())
      const listed = await list()
      assert.equal(listed.status, 200, 'the list needs metadata only')
      const ready = await timedFetch(api('/readyz'), {})
      assert.equal(ready.status, 503)
      assert.ok(ready.elapsedMs <= OUTAGE_ANSWER_MS, `readyz took ${ready.elapsedMs} ms`)
      // An upload has no deadline per answer (a part may take long on a slow link), only one
      // on silence, so its 503 takes longer; it must come, and leave nothing behind.
      const refused = await upload(refusedMeeting, 150_000)
      assert.equal(refused.status, 503, String(refused.body))
      assert.match(String(refused.headers.get('retry-after')), /^\d+$/)
      assert.ok(!(await meetingIdsListed()).includes(refusedMeeting), 'no row for a failed upload')
    } finally {
      process.kill(pid, 'SIGCONT')
    }

    await assertRecovered()
    assert.ok(!(await meetingIdsListed()).includes(refusedMeeting))
    const clean = await waitUntil(
      async () => (await listStagedUploads(backend.config)).length === 0,
      { timeoutMs: 60_000, intervalMs: 1000 },
    )
    assert.ok(clean, 'a multipart upload of the refused upload is left in the bucket')
  })
})
