import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'

import { createNoisyMp4, type NoisyMp4 } from '../support/noisy-mp4.js'
import { startServerProcess, type ServerProcess } from '../support/process-server.js'
import { startS3FaultProxy, type S3FaultProxy } from '../support/s3-fault-proxy.js'
import {
  startScaleoutStack,
  timedFetch,
  type Backend,
  type ScaleoutStack,
} from '../support/scaleout-stack.js'
import { listBlobKeys, listStagedUploads } from '../support/state.js'

/**
 * Issue #4: stateless nodes sharing one PostgreSQL database and one bucket, and B05
 * (PRESIGN): with DOWNLOAD_MODE=redirect the recording's `url` stays ours, and each GET of
 * it gets a fresh short-lived link that works without our Authorization header.
 */

const run = promisify(execFile)
const MIB = 1024 * 1024
const PRESIGN_TTL_SECONDS = 10 // the minimum PRESIGN_TTL_SECONDS allows
const AMZ_PARAMS = /X-Amz-(Signature|Expires|Credential|Date|Algorithm|SignedHeaders)/i

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

interface RecordingJson {
  id: string
  url: string
  sha256: string
  size_bytes: number
  meeting_id: string
  content_type: string
}

describe('scale-out nodes', () => {
  let stack: ScaleoutStack
  let backend: Backend
  let nodeA: ServerProcess
  let nodeB: ServerProcess
  let redirectNode: ServerProcess
  /** Between the redirect node and the store: records what the store is sent. */
  let storageTap: S3FaultProxy
  const storageRequests: { url: string; authorization: string | undefined }[] = []
  let media: NoisyMp4
  let mediaBytes: Buffer
  let workDir: string
  let admin: string
  let recorder: string
  let meetingCounter = 0

  const nextMeeting = () => `m-nodes-${process.pid}-${++meetingCounter}`
  const upload = (node: ServerProcess, meetingId: string) =>
    timedFetch(`${node.baseUrl}/recordings?meeting_id=${meetingId}`, {
      method: 'POST',
      token: recorder,
      body: mediaBytes,
    })
  const uploadOk = async (node: ServerProcess, meetingId = nextMeeting()) => {
    const created = await upload(node, meetingId)
    assert.equal(created.status, 201, String(created.body))
    return JSON.parse(String(created.body)) as RecordingJson
  }
  /** The recording's own url, on `node` (each node builds it from its own address). */
  const contentUrl = (node: ServerProcess, recording: RecordingJson) =>
    `${node.baseUrl}${new URL(recording.url).pathname}`

  before(async () => {
    workDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wcr-nodes-'))
    ;[stack, media] = await Promise.all([
      startScaleoutStack(),
      createNoisyMp4({ dir: workDir, sizeBytes: 3 * MIB }),
    ])
    mediaBytes = await fsp.readFile(media.path)
    backend = await stack.createBackend()
    storageTap = await startS3FaultProxy({
      target: stack.s3Endpoint,
      shouldFail: (request) => {
        storageRequests.push({
          url: request.url ?? '',
          authorization: request.headers.authorization,
        })
        return false
      },
    })
    ;[nodeA, nodeB, redirectNode] = await Promise.all([
      startServerProcess(backend.env),
      startServerProcess(backend.env),
      startServerProcess({
        ...backend.env,
        S3_ENDPOINT: storageTap.endpoint,
        DOWNLOAD_MODE: 'redirect',
        PRESIGN_TTL_SECONDS: String(PRESIGN_TTL_SECONDS),
      }),
    ])
    admin = await stack.token('org-nodes', ['org_admin'])
    recorder = await stack.token('org-nodes', ['recorder'])
  })

  after(async () => {
    await Promise.allSettled([nodeA, nodeB, redirectNode].map((node) => node?.stop()))
    await storageTap?.close()
    await stack?.stop()
    await fsp.rm(workDir, { recursive: true, force: true })
  })

  test('a recording uploaded through one node is read and deleted through the other', async () => {
    const keysBefore = await listBlobKeys(backend.config)
    const recording = await uploadOk(nodeA)
    assert.equal(recording.sha256, media.sha256)

    const listed = await timedFetch(`${nodeB.baseUrl}/recordings`, { token: admin })
    assert.equal(listed.status, 200)
    const fromB = (JSON.parse(String(listed.body)).recordings as RecordingJson[]).find(
      (r) => r.id === recording.id,
    )
    assert.ok(fromB, 'node B does not list the recording')
    assert.equal(fromB.sha256, recording.sha256)
    const one = await timedFetch(`${nodeB.baseUrl}/recordings/${recording.id}`, { token: admin })
    assert.equal(one.status, 200)
    assert.equal(JSON.parse(String(one.body)).size_bytes, media.sizeBytes)

    const bytes = await timedFetch(contentUrl(nodeB, recording), { token: admin })
    assert.equal(bytes.status, 200)
    assert.equal(sha256(bytes.body), media.sha256)
    const head = await timedFetch(contentUrl(nodeB, recording), { method: 'HEAD', token: admin })
    assert.equal(head.status, 200)
    assert.equal(head.headers.get('content-length'), String(media.sizeBytes))
    assert.equal(head.body.length, 0)
    const start = 2 * MIB + 17
    const part = await timedFetch(contentUrl(nodeB, recording), {
      token: admin,
      headers: { range: `bytes=${start}-${start + 999}` },
    })
    assert.equal(part.status, 206)
    assert.equal(
      part.headers.get('content-range'),
      `bytes ${start}-${start + 999}/${media.sizeBytes}`,
    )
    assert.deepEqual(part.body, mediaBytes.subarray(start, start + 1000))

    const deleted = await timedFetch(`${nodeB.baseUrl}/recordings/${recording.id}`, {
      method: 'DELETE',
      token: admin,
    })
    assert.equal(deleted.status, 204)
    for (const url of [
      `${nodeA.baseUrl}/recordings/${recording.id}`,
      contentUrl(nodeA, recording),
    ]) {
      assert.equal((await timedFetch(url, { token: admin })).status, 404, url)
    }
    // Deleted for real: the object is gone from the bucket, not merely hidden.
    assert.deepEqual(await listBlobKeys(backend.config), keysBefore)
  })

  test('the same bytes for the same meeting through both nodes at once are one recording', async () => {
    const keysBefore = await listBlobKeys(backend.config)
    const meetingId = nextMeeting()
    const answers = await Promise.all([upload(nodeA, meetingId), upload(nodeB, meetingId)])

    const statuses = answers.map((a) => a.status).sort()
    assert.ok(statuses.includes(201), `statuses ${statuses}`)
    assert.ok(
      statuses.every((s) => s === 200 || s === 201),
      `statuses ${statuses}`,
    )
    const ids = new Set(answers.map((a) => (JSON.parse(String(a.body)) as RecordingJson).id))
    assert.equal(ids.size, 1, 'both answers must name the same recording')
    const listed = await timedFetch(`${nodeA.baseUrl}/recordings?meeting_id=${meetingId}`, {
      token: admin,
    })
    assert.equal(JSON.parse(String(listed.body)).recordings.length, 1)
    // The loser's bytes are not left behind as an orphan object or multipart upload.
    assert.equal((await listBlobKeys(backend.config)).length, keysBefore.length + 1)
    assert.deepEqual(await listStagedUploads(backend.config), [])
  })

  test('redirect mode answers 302 to a presigned storage URL that needs no Bearer token', async () => {
    const recording = await uploadOk(redirectNode)
    assert.doesNotMatch(recording.url, AMZ_PARAMS)
    assert.equal(new URL(recording.url).search, '')
    assert.equal(recording.url, `${redirectNode.baseUrl}/recordings/${recording.id}/content.mp4`)

    const redirect = await timedFetch(contentUrl(redirectNode, recording), { token: admin })
    assert.equal(redirect.status, 302)
    assert.equal(redirect.headers.get('cache-control'), 'no-store')
    const location = new URL(String(redirect.headers.get('location')))
    assert.equal(location.origin, storageTap.endpoint, 'Location must point at the S3 endpoint')
    assert.match(location.search, /X-Amz-Signature=/)
    assert.equal(location.searchParams.get('X-Amz-Expires'), String(PRESIGN_TTL_SECONDS))
    assert.ok(!location.href.includes(admin), 'the token must not be in the link')

    // A plain GET, with no Authorization header, gets the bytes and our headers.
    const followed = await timedFetch(location.href, {})
    assert.equal(followed.status, 200)
    assert.equal(sha256(followed.body), media.sha256)
    assert.equal(followed.headers.get('content-type'), 'video/mp4')
    // The same attachment name as a streamed download of it (through node B) carries.
    const streamedHead = await timedFetch(contentUrl(nodeB, recording), {
      method: 'HEAD',
      token: admin,
    })
    const disposition = followed.headers.get('content-disposition')
    assert.match(String(disposition), /^attachment; filename="/)
    assert.equal(disposition, streamedHead.headers.get('content-disposition'))

    // A HEAD is answered from the metadata, like in stream mode.
    const head = await timedFetch(contentUrl(redirectNode, recording), {
      method: 'HEAD',
      token: admin,
    })
    assert.equal(head.status, 200)
    assert.equal(head.headers.get('content-length'), String(media.sizeBytes))

    // Clients that follow redirects themselves drop our Authorization header cross-origin.
    storageRequests.length = 0
    const viaFetch = await fetch(contentUrl(redirectNode, recording), {
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(viaFetch.status, 200)
    assert.equal(sha256(Buffer.from(await viaFetch.arrayBuffer())), media.sha256)
    const httpx = await run('/usr/bin/python3', [
      '-c',
      'import hashlib, httpx, sys\n' +
        'r = httpx.get(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]},' +
        ' follow_redirects=True, timeout=30)\n' +
        'print(r.status_code, hashlib.sha256(r.content).hexdigest())',
      contentUrl(redirectNode, recording),
      admin,
    ])
    assert.equal(httpx.stdout.trim(), `200 ${media.sha256}`)
    const signedGets = storageRequests.filter((r) => r.url.includes('X-Amz-Signature='))
    assert.equal(signedGets.length, 2)
    for (const request of signedGets) assert.equal(request.authorization, undefined)

    // The download is audited as in stream mode, and no signed URL reaches the log.
    const audit = await timedFetch(
      `${redirectNode.baseUrl}/audit-events?recording_id=${recording.id}&action=download`,
      { token: admin },
    )
    assert.equal(audit.status, 200, String(audit.body))
    assert.ok(JSON.parse(String(audit.body)).events.length >= 3)
    assert.doesNotMatch(redirectNode.output(), AMZ_PARAMS)
    assert.ok(!redirectNode.output().includes(admin))
  })

  test('an old url still works after the link lifetime; resumed downloads get 206', async () => {
    const recording = await uploadOk(redirectNode)
    const first = await timedFetch(contentUrl(redirectNode, recording), { token: admin })
    assert.equal(first.status, 302)
    const firstLink = String(first.headers.get('location'))
    const streamed = await timedFetch(contentUrl(nodeB, recording), { token: admin })
    assert.equal(streamed.status, 200)

    // Past the lifetime (plus margin), the old link is refused by the storage...
    await new Promise((resolve) => setTimeout(resolve, (PRESIGN_TTL_SECONDS + 5) * 1000))
    const stale = await timedFetch(firstLink, {})
    assert.equal(stale.status, 403, 'an expired link must no longer work')

    // ...but the recording's url gives a fresh link, so a page kept open keeps working.
    const again = await timedFetch(contentUrl(redirectNode, recording), { token: admin })
    assert.equal(again.status, 302)
    const freshLink = String(again.headers.get('location'))
    assert.notEqual(freshLink, firstLink)
    const fresh = await timedFetch(freshLink, {})
    assert.equal(fresh.status, 200)
    assert.equal(sha256(fresh.body), media.sha256)

    // A resumed download (curl -C -): Range on our url, 302, then 206 from the storage.
    const resumeAt = media.sizeBytes - 777_777
    const resumed = await timedFetch(contentUrl(redirectNode, recording), {
      token: admin,
      headers: { range: `bytes=${resumeAt}-` },
    })
    assert.equal(resumed.status, 302)
    const tail = await timedFetch(String(resumed.headers.get('location')), {
      headers: { range: `bytes=${resumeAt}-` },
    })
    assert.equal(tail.status, 206)
    assert.equal(
      tail.headers.get('content-range'),
      `bytes ${resumeAt}-${media.sizeBytes - 1}/${media.sizeBytes}`,
    )
    assert.equal(sha256(Buffer.concat([mediaBytes.subarray(0, resumeAt), tail.body])), media.sha256)

    // Stream mode: the same url at any time, Range answered by us.
    const later = await timedFetch(contentUrl(nodeB, recording), { token: admin })
    assert.equal(later.status, 200)
    assert.equal(sha256(later.body), media.sha256)
    const streamedTail = await timedFetch(contentUrl(nodeB, recording), {
      token: admin,
      headers: { range: `bytes=${resumeAt}-` },
    })
    assert.equal(streamedTail.status, 206)
    assert.deepEqual(streamedTail.body, mediaBytes.subarray(resumeAt))
  })
})
