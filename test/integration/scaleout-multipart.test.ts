import assert from 'node:assert/strict'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import { createDatabase } from '../../src/db/database.js'
import { KyselyAuditLog } from '../../src/db/kysely-audit-log.js'
import { KyselyRecordingRepository } from '../../src/db/kysely-recording-repository.js'
import { createBlobStore } from '../../src/main.js'
import { Sweeper } from '../../src/recordings/sweeper.js'
import type { S3BlobStore } from '../../src/storage/s3-blob-store.js'
import { createNoisyMp4, type NoisyMp4 } from '../support/noisy-mp4.js'
import { startServerProcess, type ServerProcess } from '../support/process-server.js'
import { connect, readResponse, requestHead, writeAll } from '../support/raw-http.js'
import { isUploadPart, startS3FaultProxy } from '../support/s3-fault-proxy.js'
import {
  startScaleoutStack,
  timedFetch,
  type Backend,
  type ScaleoutStack,
} from '../support/scaleout-stack.js'
import { listBlobKeys, listStagedUploads } from '../support/state.js'
import { waitUntil } from '../support/wait.js'

/**
 * B06 (MPU): a 64 MiB upload is a multipart upload at 8 MiB parts. However it fails, the
 * client never sees a 2xx, nothing is listed, no object exists, and within 60 s no unfinished
 * multipart upload (invisible, billed parts) is left in the bucket.
 */

const MIB = 1024 * 1024
const RECORDING_BYTES = 64 * MIB
const CUT_AT_BYTES = 40 * MIB
const CLEANUP_MS = 60_000

describe('scale-out multipart uploads (B06)', () => {
  let stack: ScaleoutStack
  let media: NoisyMp4
  let workDir: string
  let recorder: string
  let admin: string
  const nodes: ServerProcess[] = []

  before(async () => {
    workDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wcr-mpu-'))
    ;[stack, media] = await Promise.all([
      startScaleoutStack(),
      createNoisyMp4({ dir: workDir, sizeBytes: RECORDING_BYTES }),
    ])
    recorder = await stack.token('org-mpu', ['recorder'])
    admin = await stack.token('org-mpu', ['org_admin'])
  })

  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()))
    await stack?.stop()
    await fsp.rm(workDir, { recursive: true, force: true })
  })

  const startNode = async (env: Record<string, string>) => {
    const node = await startServerProcess(env)
    nodes.push(node)
    return node
  }

  /** Opens an upload of the 64 MiB file and sends its first `bytes` bytes. */
  const sendPartially = async (node: ServerProcess, meetingId: string, bytes: number) => {
    const socket = await connect(node.baseUrl)
    const head = requestHead('POST', `/recordings?meeting_id=${meetingId}`, {
      authorization: `Bearer ${recorder}`,
      'content-type': 'video/mp4',
      'content-length': RECORDING_BYTES,
    })
    await writeAll(socket, head)
    const answered = readResponse(socket, 120_000).then(
      (response) => response.statusCode,
      () => undefined,
    )
    const file = fs.createReadStream(media.path, { end: bytes - 1, highWaterMark: MIB })
    for await (const chunk of file) await writeAll(socket, chunk as Buffer)
    return { socket, answered }
  }

  /** Nothing of the failed upload is visible, stored or staged (within the cleanup time). */
  const assertNothingLeft = async (backend: Backend, node: ServerProcess, meetingId: string) => {
    const listed = await timedFetch(`${node.baseUrl}/recordings?meeting_id=${meetingId}`, {
      token: admin,
    })
    assert.equal(listed.status, 200)
    assert.deepEqual(JSON.parse(String(listed.body)).recordings, [])
    assert.deepEqual(await listBlobKeys(backend.config), [])
    const clean = await waitUntil(
      async () => (await listStagedUploads(backend.config)).length === 0,
      { timeoutMs: CLEANUP_MS, intervalMs: 500 },
    )
    assert.ok(clean, `unfinished multipart uploads: ${await listStagedUploads(backend.config)}`)
  }

  /** Resolves once the server has started a multipart upload for the request. */
  const waitForMultipartUpload = async (backend: Backend) => {
    const started = await waitUntil(
      async () => (await listStagedUploads(backend.config)).length > 0,
      { timeoutMs: 30_000, intervalMs: 200 },
    )
    assert.ok(started, 'the upload never became a multipart upload')
  }

  test('aborts the multipart upload when the connection is cut at 40 MiB', async () => {
    const backend = await stack.createBackend()
    const node = await startNode(backend.env)
    const meetingId = 'm-mpu-cut'
    const { socket, answered } = await sendPartially(node, meetingId, CUT_AT_BYTES)
    await waitForMultipartUpload(backend)
    ;(socket as net.Socket).resetAndDestroy()

    const status = await answered
    assert.ok(status === undefined || status >= 400, `answered ${status}`)
    await assertNothingLeft(backend, node, meetingId)
  })

  test('aborts the multipart upload when the client half-closes after 40 of 64 MiB', async () => {
    const backend = await stack.createBackend()
    const node = await startNode(backend.env)
    const meetingId = 'm-mpu-halfclose'
    const { socket, answered } = await sendPartially(node, meetingId, CUT_AT_BYTES)
    await waitForMultipartUpload(backend)
    socket.end()

    const status = await answered
    assert.ok(status === undefined || status >= 400, `answered ${status}`)
    socket.destroy()
    await assertNothingLeft(backend, node, meetingId)
  })

  test('answers 503 and aborts the upload when S3 fails the third UploadPart', async () => {
    const backend = await stack.createBackend()
    const proxy = await startS3FaultProxy({
      target: stack.s3Endpoint,
      shouldFail: (request) => isUploadPart(request, 3),
    })
    try {
      const node = await startNode({ ...backend.env, S3_ENDPOINT: proxy.endpoint })
      const meetingId = 'm-mpu-part3'
      const response = await timedFetch(
        `${node.baseUrl}/recordings?meeting_id=${meetingId}`,
        { method: 'POST', token: recorder, body: await fsp.readFile(media.path) },
        120_000,
      )
      assert.equal(response.status, 503, String(response.body))
      assert.match(String(response.headers.get('content-type')), /^application\/problem\+json/)
      assert.ok(proxy.failures() >= 1, 'the proxy never saw part 3')
      await assertNothingLeft(backend, node, meetingId)
    } finally {
      await proxy.close()
    }
  })

  test('leaves the upload of a SIGKILLed node to the sweeper, which aborts it when stale', async () => {
    const backend = await stack.createBackend()
    const node = await startNode(backend.env)
    const meetingId = 'm-mpu-sigkill'
    const { socket } = await sendPartially(node, meetingId, 32 * MIB)
    await waitForMultipartUpload(backend)
    node.child.kill('SIGKILL')
    await new Promise((resolve) => node.child.once('exit', resolve))
    socket.destroy()

    // A killed process aborts nothing: the parts stay until something cleans them up.
    const left = await listStagedUploads(backend.config)
    assert.equal(left.length, 1)
    assert.deepEqual(await listBlobKeys(backend.config), [])

    const db = createDatabase(backend.config.database)
    const blobs = (await createBlobStore(backend.config)) as S3BlobStore
    const sweeperWith = (graceMs: number) =>
      new Sweeper({
        recordings: new KyselyRecordingRepository(db, 'postgres'),
        blobs,
        audit: new KyselyAuditLog(db, Date.now),
        clock: Date.now,
        graceMs,
      })
    try {
      // With the default grace period (1 h), an upload that was just sending parts is kept.
      const early = await sweeperWith(60 * 60 * 1000).sweep({ reconcile: true })
      assert.equal(early.staleUploads, 0)
      assert.deepEqual(await listStagedUploads(backend.config), left)

      // With a 2 s threshold, the next sweeps abort it once its last part is that old.
      const sweeper = sweeperWith(2000)
      let aborted = 0
      const clean = await waitUntil(
        async () => {
          aborted += (await sweeper.sweep({ reconcile: true })).staleUploads
          return (await listStagedUploads(backend.config)).length === 0
        },
        { timeoutMs: 30_000, intervalMs: 1000 },
      )
      assert.ok(clean, 'the sweeper did not abort the stale multipart upload')
      assert.equal(aborted, 1)
    } finally {
      await db.destroy()
      blobs.client.destroy()
      blobs.uploadClient.destroy()
    }

    const restarted = await startNode(backend.env)
    await assertNothingLeft(backend, restarted, meetingId)
  })
})
