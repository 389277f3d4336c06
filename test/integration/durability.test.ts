import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import { loadOrCreateSigningSecret } from '../../src/auth/signing-secret.js'
import { issueToken } from '../../src/auth/token-issuer.js'
import { loadConfig } from '../../src/config.js'
import { corpusPath } from '../support/corpus.js'
import { recordingBlobKey } from '../../src/storage/keys.js'
import { readAuditRows, readRecordingRow } from '../support/inspect.js'
import { createPaddedMp4, sha256Of } from '../support/media-fixtures.js'
import { startServerProcess } from '../support/process-server.js'
import {
  embeddedOnly,
  hasRecordingBlob,
  listBlobKeys,
  listStagedUploads,
  readBlob,
  scaleoutOnly,
} from '../support/state.js'
import { parseTrace, startTracedServer, type TracedCall } from '../support/strace-server.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { listFiles } from '../support/wait.js'

const MP4 = 'mp4ff_prog_8s.mp4'
const MIB = 1024 * 1024

const suffix = () => Math.random().toString(36).slice(2, 10)
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe(
  'durability order of an upload, seen through strace (S37)',
  embeddedOnly('traces fsync and rename of files and the -wal'),
  () => {
    test('fsyncs the .part, renames, fsyncs the directory and commits the WAL before the 201', async () => {
      const server = await startTracedServer()
      const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-s37-'))
      try {
        const config = loadConfig({ DATA_DIR: server.dataDir })
        const token = await issueToken(
          config.auth,
          await loadOrCreateSigningSecret(server.dataDir),
          {
            orgId: 'org-s37',
            permissions: ['recorder'],
            subject: 'recorder-s37',
            ttlSeconds: 600,
          },
        )
        const media = await createPaddedMp4({ dir: workDir, sizeBytes: 10 * MIB, marker: 's37' })
        const response = await fetch(`${server.baseUrl}/recordings?meeting_id=m-s37`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'video/mp4' },
          body: await fs.readFile(media.path),
        })
        assert.equal(response.status, 201, await response.clone().text())
        const recording = (await response.json()) as { id: string; sha256: string }
        assert.equal(recording.sha256, media.sha256)

        const blobRoot = path.join(server.dataDir, 'blobs')
        const finalPath = path.join(blobRoot, 'recordings', recording.id.slice(-2), recording.id)
        const finalDir = path.dirname(finalPath)
        const [tmpStat, finalStat] = await Promise.all([
          fs.stat(path.join(blobRoot, 'tmp')),
          fs.stat(finalDir),
        ])
        assert.equal(tmpStat.dev, finalStat.dev, 'tmp and final must share a filesystem')
        await server.stop()

        const calls = parseTrace(await fs.readFile(server.traceFile, 'utf8'))
        assertDurableOrder(calls, { tmpDir: path.join(blobRoot, 'tmp'), finalPath })
      } finally {
        await server.remove()
        await fs.rm(workDir, { recursive: true, force: true })
      }
    })
  },
)

describe(
  'durability of an acknowledged upload on S3 and PostgreSQL (S37)',
  scaleoutOnly('the disk shape is traced above'),
  () => {
    test('sends the 201 only once the object and the row exist: a SIGKILL right after loses nothing', async () => {
      const server = await startServerProcess({ LOG_LEVEL: 'warn' })
      const config = loadConfig(server.env)
      const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-s37-'))
      const exited = new Promise((resolve) => server.child.once('exit', resolve))
      let killed = false
      try {
        const secret = await loadOrCreateSigningSecret(server.dataDir)
        const token = await issueToken(config.auth, secret, {
          orgId: 'org-s37',
          permissions: ['recorder'],
          subject: 'recorder-s37',
          ttlSeconds: 600,
        })
        // Above the 8 MiB part size: the bytes go through a multipart upload that must complete.
        const media = await createPaddedMp4({ dir: workDir, sizeBytes: 20 * MIB, marker: 's37' })
        const response = await fetch(`${server.baseUrl}/recordings?meeting_id=m-s37`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'video/mp4' },
          body: await fs.readFile(media.path),
        })
        const text = await response.text()
        // Nothing may finish after the response: the process dies before it could.
        server.child.kill('SIGKILL')
        killed = true
        await exited
        assert.equal(response.status, 201, text)
        const recording = JSON.parse(text) as { id: string; sha256: string }
        assert.equal(recording.sha256, media.sha256)

        const key = recordingBlobKey(recording.id)
        assert.deepEqual(await listBlobKeys(config), [key])
        assert.deepEqual(await listStagedUploads(config), [], 'the multipart upload completed')
        const stored = await readBlob(config, key)
        assert.equal(stored?.length, media.sizeBytes)
        assert.equal(sha256Of(stored ?? Buffer.alloc(0)), media.sha256)
        const row = await readRecordingRow(config, recording.id)
        assert.equal(row?.state, 'active')
        assert.equal(row?.sha256, media.sha256)
        assert.equal(row?.blobKey, key)
      } finally {
        // stop() waits for an exit that a SIGKILLed child has already had.
        if (killed) await fs.rm(server.dataDir, { recursive: true, force: true })
        else await server.stop()
        await fs.rm(workDir, { recursive: true, force: true })
      }
    })
  },
)

/** Finds each step of the publish in the trace and checks each ends before the next begins. */
function assertDurableOrder(calls: TracedCall[], where: { tmpDir: string; finalPath: string }) {
  const finalDir = path.dirname(where.finalPath)
  const isSync = (call: TracedCall) => call.name === 'fsync' || call.name === 'fdatasync'
  const fdPath = (call: TracedCall) => /^\d+<(.*)>$/.exec(call.args.split(',')[0] ?? '')?.[1]
  const after = (line: number, predicate: (call: TracedCall) => boolean, what: string) => {
    const found = calls.find((call) => call.startLine > line && predicate(call))
    assert.ok(found, `no ${what} in the trace after line ${line}`)
    assert.doesNotMatch(found.result, /^-1 /, `${what} failed: ${found.result}`)
    return found
  }

  const rename = after(
    -1,
    (call) =>
      call.name.startsWith('rename') &&
      call.args.includes(`"${where.finalPath}"`) &&
      new RegExp(`"${escape(where.tmpDir)}/[^"]+\\.part"`).test(call.args),
    'rename of the .part file to its final name',
  )
  const partPath = new RegExp(`"(${escape(where.tmpDir)}/[^"]+\\.part)"`).exec(rename.args)?.[1]
  const partSyncs = calls.filter((call) => isSync(call) && fdPath(call) === partPath)
  assert.ok(partSyncs.length > 0, 'the .part file was never fsynced')
  assert.ok(
    partSyncs.some((call) => call.endLine < rename.startLine && call.result === '0'),
    'the .part file must be fsynced (and the fsync return) before the rename',
  )

  const dirOpen = after(
    rename.endLine,
    (call) =>
      call.name === 'openat' &&
      call.args.includes(`"${finalDir}"`) &&
      call.args.includes('O_DIRECTORY'),
    'openat(O_DIRECTORY) of the final directory',
  )
  const dirSync = after(
    dirOpen.endLine,
    (call) => isSync(call) && fdPath(call) === finalDir,
    'fsync of the final directory',
  )
  const walWrite = after(
    dirSync.endLine,
    (call) => /write|pwrite/.test(call.name) && (fdPath(call) ?? '').endsWith('recordings.db-wal'),
    'write to the SQLite -wal',
  )
  const walSync = after(
    walWrite.endLine,
    (call) => isSync(call) && (fdPath(call) ?? '').endsWith('recordings.db-wal'),
    'fsync of the SQLite -wal',
  )
  const reply = calls.find(
    (call) =>
      ['write', 'writev', 'sendto'].includes(call.name) && call.args.includes('HTTP/1.1 201'),
  )
  assert.ok(reply, 'the 201 response is not in the trace')
  assert.ok(
    reply.startLine > walSync.endLine,
    `the 201 (line ${reply.startLine}) went out before the WAL was synced (line ${walSync.endLine})`,
  )
}

describe('disk full (S38)', embeddedOnly('fills a tmpfs mounted as the blob disk'), () => {
  let mountDir: string
  let mounted = false

  before(async () => {
    mountDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-s38-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m,mode=0700', 'tmpfs', mountDir])
    mounted = true
  })
  after(async () => {
    if (mounted) execFileSync('umount', ['-l', mountDir])
    await fs.rm(mountDir, { recursive: true, force: true })
  })

  test('answers 507 without a path when the blob disk fills, and recovers once space is freed', async () => {
    const t = await startTestServer({ env: { STORAGE_URL: `file:${mountDir}` } })
    const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-s38-media-'))
    try {
      const recorder = await t.token('org-s38', ['recorder'])
      const admin = await t.token('org-s38', ['org_admin'])
      const upload = async (meetingId: string, body: Buffer) =>
        t.server.app.inject({
          method: 'POST',
          url: `/recordings?meeting_id=${meetingId}`,
          headers: { authorization: `Bearer ${recorder}` },
          payload: body,
        })

      const kept = await upload(`m-${suffix()}`, await fs.readFile(corpusPath(MP4)))
      assert.equal(kept.statusCode, 201)
      const keptUrl = new URL(kept.json().url).pathname

      const big = await createPaddedMp4({ dir: workDir, sizeBytes: 40_000_000, marker: 's38' })
      const meetingId = `m-${suffix()}`
      const refused = await upload(meetingId, await fs.readFile(big.path))
      assert.equal(refused.statusCode, 507, refused.body)
      assert.equal(refused.json().code, 'insufficient_storage')
      assert.doesNotMatch(refused.body, /\/(tmp|var|home|root|work)\b|\.part|blobs/)
      assert.deepEqual(await listFiles(path.join(mountDir, 'tmp')), [])
      const rows = await t.server.db
        .selectFrom('recordings')
        .select('id')
        .where('meetingId', '=', meetingId)
        .execute()
      assert.deepEqual(rows, [])

      // Still full: a filler leaves less room than one more small upload needs.
      const filler = path.join(mountDir, 'filler')
      await fillDisk(filler)
      const whileFull = await upload(`m-${suffix()}`, await fs.readFile(corpusPath(MP4)))
      assert.equal(whileFull.statusCode, 507)
      const list = await t.server.app.inject({
        url: '/recordings',
        headers: { authorization: `Bearer ${admin}` },
      })
      assert.equal(list.statusCode, 200)
      assert.deepEqual(
        list.json().recordings.map((r: { id: string }) => r.id),
        [kept.json().id],
      )
      const download = await t.server.app.inject({
        url: keptUrl,
        headers: { authorization: `Bearer ${admin}` },
      })
      assert.equal(download.statusCode, 200)
      assert.equal(download.rawPayload.length, kept.json().size_bytes)

      await fs.rm(filler)
      const afterFree = await upload(`m-${suffix()}`, await fs.readFile(corpusPath(MP4)))
      assert.equal(afterFree.statusCode, 201, afterFree.body)
    } finally {
      await t.close()
      await fs.rm(workDir, { recursive: true, force: true })
    }
  })
})

/** Writes zeros to `file` until the filesystem refuses more. */
async function fillDisk(file: string): Promise<void> {
  const handle = await fs.open(file, 'w')
  const chunk = Buffer.alloc(MIB)
  try {
    for (let i = 0; i < 1024; i++) {
      const { bytesWritten } = await handle.write(chunk)
      if (bytesWritten < chunk.length) return
    }
    throw new Error('the filesystem never filled up')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
  } finally {
    await handle.close()
  }
}

describe('DELETE semantics (S41)', () => {
  let t: TestServer
  let admin: string
  let recorder: string

  before(async () => {
    t = await startTestServer()
    admin = await t.token('org-s41', ['org_admin'], { sub: 'admin-s41' })
    recorder = await t.token('org-s41', ['recorder'])
  })
  after(() => t.close())

  const create = async () => {
    const response = await t.server.app.inject({
      method: 'POST',
      url: `/recordings?meeting_id=m-${suffix()}`,
      headers: { authorization: `Bearer ${recorder}` },
      payload: await fs.readFile(corpusPath(MP4)),
    })
    assert.equal(response.statusCode, 201)
    return response.json() as { id: string; url: string }
  }
  const request = (method: 'GET' | 'HEAD' | 'DELETE', url: string) =>
    t.server.app.inject({ method, url, headers: { authorization: `Bearer ${admin}` } })

  test('deletes at once: 204, then 404 everywhere, the blob is gone, a second DELETE is 404', async () => {
    const recording = await create()
    assert.ok(await hasRecordingBlob(t.config, recording.id), 'the blob was stored')
    const contentPath = new URL(recording.url).pathname

    assert.equal((await request('DELETE', `/recordings/${recording.id}`)).statusCode, 204)
    assert.equal((await request('GET', contentPath)).statusCode, 404)
    assert.equal((await request('HEAD', contentPath)).statusCode, 404)
    assert.equal((await request('GET', `/recordings/${recording.id}`)).statusCode, 404)
    const list = await request('GET', '/recordings')
    assert.equal(list.statusCode, 200)
    assert.ok(!list.json().recordings.some((r: { id: string }) => r.id === recording.id))
    assert.ok(!(await hasRecordingBlob(t.config, recording.id)), 'the blob is gone')
    assert.equal((await request('DELETE', `/recordings/${recording.id}`)).statusCode, 404)
  })

  test('two parallel DELETEs: one 204, one 404, one audit row delete/success', async () => {
    const recording = await create()
    const statuses = await Promise.all([
      request('DELETE', `/recordings/${recording.id}`),
      request('DELETE', `/recordings/${recording.id}`),
    ])
    assert.deepEqual(statuses.map((r) => r.statusCode).sort(), [204, 404])

    const rows = (await readAuditRows(t.server.db)).filter(
      (row) =>
        row.recordingId === recording.id && row.action === 'delete' && row.outcome === 'success',
    )
    assert.deepEqual(
      rows.map((row) => row.actor),
      ['admin-s41'],
    )
    assert.ok(!(await hasRecordingBlob(t.config, recording.id)), 'the blob is gone')
  })
})
