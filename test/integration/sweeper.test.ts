import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { finished } from 'node:stream/promises'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'

import { CompiledQuery, type KyselyPlugin, type RootOperationNode } from 'kysely'

import { loadConfig } from '../../src/config.js'
import { KyselyAuditLog } from '../../src/db/kysely-audit-log.js'
import { KyselyRecordingRepository } from '../../src/db/kysely-recording-repository.js'
import type { RecordingRepository } from '../../src/db/recording-repository.js'
import type { AuditLog } from '../../src/recordings/audit-log.js'
import { createRecordingId } from '../../src/recordings/recording-id.js'
import { Sweeper } from '../../src/recordings/sweeper.js'
import type { BlobStore } from '../../src/storage/blob-store.js'
import { recordingBlobKey } from '../../src/storage/keys.js'
import { corpusPath } from '../support/corpus.js'
import { createNoisyMp4 } from '../support/noisy-mp4.js'
import { CLI, startServerProcess } from '../support/process-server.js'
import { SMALL_MP4 } from '../support/requests.js'
import {
  hasRecordingBlob,
  listBlobKeys,
  listStagedUploads,
  stageUnfinishedUpload,
  writeBlob,
} from '../support/state.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitUntil } from '../support/wait.js'

const run = promisify(execFile)
const BIG = 'generated/meeting-10min-640x360-faststart.mp4'
const suffix = () => Math.random().toString(36).slice(2, 8)

function manualClock(startMs: number) {
  const clock = () => clock.nowMs
  clock.nowMs = startMs
  return clock
}

async function upload(t: TestServer, orgId: string, createdAt?: string, file = SMALL_MP4) {
  const query = new URLSearchParams({ meeting_id: `m-${suffix()}` })
  if (createdAt) query.set('created_at', createdAt)
  const response = await t.server.app.inject({
    method: 'POST',
    url: `/recordings?${query}`,
    headers: { authorization: `Bearer ${await t.token(orgId, ['recorder'])}` },
    payload: await fs.readFile(corpusPath(file)),
  })
  assert.equal(response.statusCode, 201, response.body)
  return response.json() as { id: string; url: string; sha256: string }
}

async function status(t: TestServer, orgId: string, url: string, method = 'GET') {
  const response = await t.server.app.inject({
    method: method as 'GET',
    url,
    headers: { authorization: `Bearer ${await t.token(orgId)}` },
  })
  return response.statusCode
}

const rowOf = (t: TestServer, id: string) =>
  t.server.db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst()

const auditOf = (t: TestServer, id: string) =>
  t.server.db
    .selectFrom('auditEvents')
    .selectAll()
    .where('recordingId', '=', id)
    .orderBy('id')
    .execute()

describe('the sweeper over HTTP with RETENTION=3s and SWEEP_INTERVAL_SECONDS=1', () => {
  let t: TestServer
  before(async () => {
    t = await startTestServer({ env: { RETENTION: '3s', SWEEP_INTERVAL_SECONDS: '1' } })
  })
  after(() => t.close())

  test('unheld recordings become 404 and lose their bytes; held ones stay; expiries are audited', async () => {
    const org = `org-${suffix()}`
    const gone = [await upload(t, org), await upload(t, org)]
    const held = await upload(t, org)
    const admin = await t.token(org)
    const hold = await t.server.app.inject({
      method: 'PUT',
      url: `/recordings/${held.id}/legal-hold`,
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(hold.statusCode, 200)
    assert.equal(hold.json().legal_hold, true)

    const swept = await waitUntil(
      async () => {
        for (const r of gone) if (await t.server.blobs.stat(recordingBlobKey(r.id))) return false
        return true
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    )
    assert.ok(swept, 'the expired recordings’ bytes were deleted')
    for (const r of gone) {
      assert.equal(await status(t, org, new URL(r.url).pathname), 404)
      assert.equal(await rowOf(t, r.id), undefined)
      const entries = await auditOf(t, r.id)
      const expiry = entries.find((e) => e.action === 'expire')
      assert.equal(expiry?.outcome, 'success')
      assert.equal(expiry?.actor, 'system:sweeper')
      assert.equal(expiry?.orgId, org)
    }
    // Seen from outside the server too: no file (or object) of theirs is left.
    const keys = await listBlobKeys(t.config)
    assert.ok(!keys.some((key) => gone.some((r) => key.includes(r.id))), keys.join('\n'))

    // The held one is past its expiry yet downloadable, byte for byte.
    const download = await t.server.app.inject({
      url: new URL(held.url).pathname,
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(download.statusCode, 200)
    assert.equal(createHash('sha256').update(download.rawPayload).digest('hex'), held.sha256)

    // Released, it is 404 at once and the next sweeps delete it.
    const release = await t.server.app.inject({
      method: 'DELETE',
      url: `/recordings/${held.id}/legal-hold`,
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(release.statusCode, 200)
    assert.equal(release.json().legal_hold, false)
    assert.equal(await status(t, org, `/recordings/${held.id}`), 404)
    assert.ok(
      await waitUntil(async () => !(await t.server.blobs.stat(recordingBlobKey(held.id))), {
        timeoutMs: 10_000,
        intervalMs: 100,
      }),
    )
    const actions = (await auditOf(t, held.id))
      .map((e) => e.action)
      .filter((a) => ['hold', 'release', 'expire'].includes(a))
    assert.deepEqual(actions, ['hold', 'release', 'expire'])
  })
})

describe('deletion steps, failures and crashes (injected clock)', () => {
  const clock = manualClock(Date.parse('2025-01-01T00:00:00Z'))
  let t: TestServer
  let repository: KyselyRecordingRepository
  let audit: KyselyAuditLog
  before(async () => {
    t = await startTestServer({ clock, env: { RETENTION: '1d' } })
    repository = new KyselyRecordingRepository(t.server.db, t.config.database.kind)
    audit = new KyselyAuditLog(t.server.db, clock)
  })
  after(() => t.close())

  /** An expired recording: created 1 d − 1 min before now, then time moves on 2 min. */
  async function expired(org: string) {
    const created = new Date(clock.nowMs - 86_400_000 + 60_000).toISOString()
    const recording = await upload(t, org, created.replace(/\.\d{3}Z$/, 'Z'))
    clock.nowMs += 2 * 60_000
    return recording
  }

  const failing = <T extends object>(target: T, method: keyof T, times = 1): T => {
    let left = times
    return new Proxy(target, {
      get(object, property, receiver) {
        const value = Reflect.get(object, property, receiver)
        if (typeof value !== 'function') return value
        if (property === method && left > 0) {
          return async () => {
            left--
            throw new Error(`injected failure in ${String(method)}`)
          }
        }
        return value.bind(object)
      },
    })
  }

  const steps: [string, (s: { r: RecordingRepository; b: BlobStore; a: AuditLog }) => unknown][] = [
    ['the audit entry', (s) => (s.a = failing(s.a, 'appendMany'))],
    ['the blob deletion', (s) => (s.b = failing(s.b, 'deleteMany'))],
    ['the row removal', (s) => (s.r = failing(s.r, 'removeMany'))],
  ]
  for (const [step, inject] of steps) {
    test(`a failure at ${step} leaves the recording hidden and the next sweep completes it`, async () => {
      const org = `org-${suffix()}`
      const recording = await expired(org)
      const deps = { r: repository as RecordingRepository, b: t.server.blobs, a: audit as AuditLog }
      inject(deps)
      const broken = new Sweeper({ recordings: deps.r, blobs: deps.b, audit: deps.a, clock })
      const report = await broken.sweep({ reconcile: false })
      assert.ok(report.errors.length > 0, 'the failure is reported')
      assert.equal(await status(t, org, new URL(recording.url).pathname), 404)
      assert.equal((await rowOf(t, recording.id))?.state, 'deleting')

      // A later pass (after the lease, as after a crash) finishes the job.
      clock.nowMs += t.server.sweeper.leaseMs + 1000
      const next = await t.server.sweeper.sweep({ reconcile: false })
      assert.deepEqual(next.errors, [])
      assert.equal(await rowOf(t, recording.id), undefined)
      assert.equal(await t.server.blobs.stat(recordingBlobKey(recording.id)), undefined)
      assert.ok((await auditOf(t, recording.id)).some((e) => e.outcome === 'success'))
    })
  }

  test('a crash right after the claim is finished once the lease lapses, not before', async () => {
    const org = `org-${suffix()}`
    const recording = await expired(org)
    const claimed = await repository.claimForDeletion({
      nowMs: clock.nowMs,
      leaseUntilMs: clock.nowMs + 60_000,
      limit: 1000,
    })
    assert.ok(claimed.some((row) => row.id === recording.id))
    // ... and the process dies here.
    assert.equal(await status(t, org, `/recordings/${recording.id}`), 404)
    const early = await t.server.sweeper.sweep({ reconcile: false })
    assert.equal(early.expired + early.completed, 0, 'a live claim is left to its owner')
    clock.nowMs += 61_000
    const late = await t.server.sweeper.sweep({ reconcile: false })
    assert.equal(late.completed, 1)
    assert.equal(await t.server.blobs.stat(recordingBlobKey(recording.id)), undefined)
  })

  test('a DELETE whose blob removal fails answers 204, stays hidden, and the next sweep finishes it', async () => {
    const org = `org-${suffix()}`
    clock.nowMs += 1000
    const recording = await upload(t, org)
    const blobs = t.server.blobs as unknown as Record<string, unknown>
    const original = blobs.delete
    blobs.delete = async () => {
      throw new Error('injected blob failure')
    }
    try {
      const response = await t.server.app.inject({
        method: 'DELETE',
        url: `/recordings/${recording.id}`,
        headers: { authorization: `Bearer ${await t.token(org)}` },
      })
      assert.equal(response.statusCode, 204)
    } finally {
      blobs.delete = original
    }
    assert.equal(await status(t, org, new URL(recording.url).pathname), 404)
    assert.ok(await t.server.blobs.stat(recordingBlobKey(recording.id)))
    const report = await t.server.sweeper.sweep({ reconcile: false })
    assert.equal(report.completed, 1)
    assert.equal(await rowOf(t, recording.id), undefined)
    assert.equal(await t.server.blobs.stat(recordingBlobKey(recording.id)), undefined)
  })

  test('a DELETE whose row removal fails is finished by the sweeper too', async () => {
    const org = `org-${suffix()}`
    const recording = await upload(t, org)
    // A trigger refuses the DELETE of the row, as a database failure at that step would.
    const { sql } = await import('kysely')
    if (t.config.database.kind === 'sqlite') {
      await sql`create trigger refuse_delete before delete on recordings
        begin select raise(abort, 'injected'); end`.execute(t.server.db)
    } else {
      await sql`create function refuse_delete() returns trigger language plpgsql
        as $$ begin raise exception 'injected'; end $$`.execute(t.server.db)
      await sql`create trigger refuse_delete before delete on recordings
        for each row execute function refuse_delete()`.execute(t.server.db)
    }
    try {
      const response = await t.server.app.inject({
        method: 'DELETE',
        url: `/recordings/${recording.id}`,
        headers: { authorization: `Bearer ${await t.token(org)}` },
      })
      assert.equal(response.statusCode, 204)
    } finally {
      if (t.config.database.kind === 'sqlite') {
        await sql`drop trigger refuse_delete`.execute(t.server.db)
      } else {
        await sql`drop trigger refuse_delete on recordings`.execute(t.server.db)
        await sql`drop function refuse_delete()`.execute(t.server.db)
      }
    }
    assert.equal(await status(t, org, `/recordings/${recording.id}`), 404)
    assert.equal((await rowOf(t, recording.id))?.state, 'deleting')
    const report = await t.server.sweeper.sweep({ reconcile: false })
    assert.equal(report.completed, 1)
    assert.equal(await rowOf(t, recording.id), undefined)
  })

  test('the claim reads the partial expiry index, not the table (EXPLAIN)', async () => {
    const now = clock.nowMs
    const dialect = t.config.database.kind
    // Enough unexpired rows beside the expired ones that a scan would be visible. PostgreSQL's
    // planner rightly prefers one sequential pass over a few thousand rows to 20 index
    // lookups for the outer UPDATE, so it gets a table where that choice would be costly.
    const rowCount = dialect === 'sqlite' ? 2000 : 20_000
    const rows = Array.from({ length: rowCount }, (_, i) => {
      const id = createRecordingId(now - i)
      return {
        id,
        orgId: 'org-plan',
        meetingId: `m-${i}`,
        createdAt: now,
        uploadedAt: now,
        expiresAt: i < 20 ? now - 1 : now + 86_400_000,
        durationMs: 1000,
        sizeBytes: 1,
        contentType: 'video/mp4',
        extension: 'mp4',
        sha256: createHash('sha256').update(id).digest('hex'),
        blobKey: recordingBlobKey(id),
        fileName: 'x.mp4',
        state: 'active' as const,
        legalHold: 0,
        idempotencyKey: null,
        uploadedBy: 'test',
        claimedUntil: null,
      }
    })
    const db = t.server.db
    try {
      for (let i = 0; i < rows.length; i += 200) {
        await db
          .insertInto('recordings')
          .values(rows.slice(i, i + 200))
          .execute()
      }
      await db.executeQuery(CompiledQuery.raw('analyze'))

      const captured: CompiledQuery[] = []
      const plugin: KyselyPlugin = {
        transformQuery: (args) => {
          captured.push(db.getExecutor().compileQuery(args.node as RootOperationNode, args.queryId))
          return args.node
        },
        transformResult: async (args) => args.result,
      }
      const spy = new KyselyRecordingRepository(db.withPlugin(plugin), dialect)
      await spy.claimForDeletion({ nowMs: now, leaseUntilMs: now + 1, limit: 500 })
      await spy.releaseClaims(rows.slice(0, 20).map((r) => r.id))
      assert.equal(captured.length >= 2, true)

      // The plan as text lines: SQLite's EXPLAIN QUERY PLAN details, PostgreSQL's EXPLAIN.
      const planOf = async (query: CompiledQuery): Promise<string[]> => {
        if (dialect === 'sqlite') {
          const plan = await db.executeQuery<{ detail: string }>(
            CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]),
          )
          return plan.rows.map((row) => row.detail)
        }
        const plan = await db.executeQuery<{ 'QUERY PLAN': string }>(
          CompiledQuery.raw(`explain ${query.sql}`, [...query.parameters]),
        )
        return plan.rows.map((row) => row['QUERY PLAN'])
      }
      const scansTable = (lines: string[]) =>
        lines.some((line) =>
          dialect === 'sqlite'
            ? /^SCAN recordings$/.test(line)
            : /Seq Scan on recordings\b/.test(line),
        )

      const updates = captured.filter((q) => /^update/i.test(q.sql))
      assert.ok(updates.length >= 2, 'both claims and the release ran as UPDATEs')
      for (const query of updates) {
        const plan = await planOf(query)
        assert.ok(!scansTable(plan), `${query.sql}\n${plan.join('\n')}`)
      }
      const expiredClaim = captured.find((q) => q.sql.includes("'active'"))
      assert.ok(expiredClaim, 'the expired-rows claim ran')
      const plan = await planOf(expiredClaim)
      assert.ok(
        plan.some((line) => line.includes('recordings_sweep')),
        `${expiredClaim.sql}\n${plan.join('\n')}`,
      )
    } finally {
      // Left behind, these rows would expire under the next tests' clock.
      await db.deleteFrom('recordings').where('orgId', '=', 'org-plan').execute()
    }
  })

  test('a claim batch is deleted with one DELETE statement and one audit insert', async () => {
    const org = `org-${suffix()}`
    const recordings = [await upload(t, org), await upload(t, org), await upload(t, org)]
    clock.nowMs += 2 * 86_400_000
    const statements: string[] = []
    const db = t.server.db
    const plugin: KyselyPlugin = {
      transformQuery: (args) => {
        statements.push(
          db.getExecutor().compileQuery(args.node as RootOperationNode, args.queryId).sql,
        )
        return args.node
      },
      transformResult: async (args) => args.result,
    }
    const spied = db.withPlugin(plugin)
    const sweeper = new Sweeper({
      recordings: new KyselyRecordingRepository(spied, t.config.database.kind),
      audit: new KyselyAuditLog(spied, clock),
      blobs: t.server.blobs,
      clock,
    })
    const report = await sweeper.sweep({ reconcile: false })
    assert.ok(report.expired >= 3)
    assert.equal(statements.filter((s) => /^delete from "recordings"/i.test(s)).length, 1)
    assert.equal(statements.filter((s) => /^insert into "audit_events"/i.test(s)).length, 1)
    for (const r of recordings) assert.equal(await rowOf(t, r.id), undefined)
  })
})

describe('reconciliation and work in progress', () => {
  let t: TestServer
  before(async () => {
    t = await startTestServer({ listen: true, env: { RETENTION: '30d' } })
  })
  after(() => t.close())

  test('orphan blobs and abandoned staged uploads past the grace period go; fresh ones stay', async () => {
    const graceMs = 3600_000
    const bytes = Buffer.from('orphan bytes')
    const publish = async (key: string) => {
      const staged = await t.server.blobs.beginUpload(key)
      staged.sink.end(bytes)
      await finished(staged.sink, { readable: false })
      await staged.finish()
      await staged.publish()
    }

    // Old: written before `cutoffMs`. S3 stamps objects and uploads to the second, so the
    // cutoff is a whole second at least a second after the last old write.
    const oldOrphan = recordingBlobKey(createRecordingId())
    const stranger = 'recordings/zz/not-a-recording'
    await publish(oldOrphan)
    await writeBlob(t.config, stranger, bytes)
    const abandoned = await stageUnfinishedUpload(t.config, recordingBlobKey(createRecordingId()))
    const kept = await upload(t, 'org-reconcile')
    const cutoffMs = (Math.floor(Date.now() / 1000) + 2) * 1000
    await new Promise((resolve) => setTimeout(resolve, cutoffMs - Date.now() + 10))

    // Fresh: written after it.
    const freshOrphan = recordingBlobKey(createRecordingId())
    await publish(freshOrphan)
    const recent = await stageUnfinishedUpload(t.config, recordingBlobKey(createRecordingId()))
    assert.deepEqual(await listStagedUploads(t.config), [abandoned, recent].sort())

    // The server's sweeper, seen from one grace period after the cutoff (file and object
    // times are wall-clock time; this is the option the sweeper has for moving it).
    const sweeper = new Sweeper({
      recordings: new KyselyRecordingRepository(t.server.db, t.config.database.kind),
      audit: new KyselyAuditLog(t.server.db, Date.now),
      blobs: t.server.blobs,
      clock: Date.now,
      graceMs,
      wallClock: () => cutoffMs + graceMs,
    })
    const report = await sweeper.sweep({ reconcile: true })
    assert.deepEqual(report.errors, [])
    assert.equal(report.orphanBlobs, 1)
    assert.equal(report.staleUploads, 1)
    const keys = await listBlobKeys(t.config)
    assert.equal(keys.includes(oldOrphan), false)
    assert.equal(keys.includes(freshOrphan), true)
    assert.equal(keys.includes(stranger), true, 'a blob that is not ours is left alone')
    assert.equal(await hasRecordingBlob(t.config, kept.id), true)
    assert.deepEqual(await listStagedUploads(t.config), [recent])
    assert.equal(await status(t, 'org-reconcile', new URL(kept.url).pathname), 200)
  })

  test('an upload in progress is never touched by the sweeper', async () => {
    // Big enough that S3 gets a multipart upload (8 MiB parts) before the body is complete.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-wip-'))
    const source = await createNoisyMp4({ dir, sizeBytes: 20 * 1024 * 1024 })
    const body = await fs.readFile(source.path)
    await fs.rm(dir, { recursive: true, force: true })
    const before = new Set(await listStagedUploads(t.config)) // e.g. the previous test's
    const token = await t.token('org-wip', ['recorder'])
    const { port } = new URL(t.baseUrl)
    let resolveResponse: (value: { status: number; body: string }) => void = () => undefined
    const responded = new Promise<{ status: number; body: string }>((r) => (resolveResponse = r))
    const request = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/recordings?meeting_id=wip',
      headers: { authorization: `Bearer ${token}`, 'content-length': String(body.length) },
    })
    request.on('response', (response) => {
      let text = ''
      response.on('data', (chunk) => (text += chunk))
      response.on('end', () => resolveResponse({ status: response.statusCode ?? 0, body: text }))
    })
    const half = Math.floor(body.length / 2)
    request.write(body.subarray(0, half))
    const ours = async () => (await listStagedUploads(t.config)).filter((u) => !before.has(u))
    assert.ok(
      await waitUntil(async () => (await ours()).length > 0, { timeoutMs: 10_000, intervalMs: 50 }),
      'the upload is staged',
    )
    const staged = await listStagedUploads(t.config)
    const report = await t.server.sweeper.sweep({ reconcile: true })
    assert.equal(report.staleUploads, 0)
    assert.deepEqual(await listStagedUploads(t.config), staged, 'still staged, untouched')
    request.end(body.subarray(half))
    const response = await responded
    assert.equal(response.status, 201, response.body)
    assert.equal(JSON.parse(response.body).sha256, createHash('sha256').update(body).digest('hex'))
  })

  test('a download in progress while its recording is deleted completes or ends cleanly', async () => {
    const recording = await upload(t, 'org-dl', undefined, BIG)
    const admin = await t.token('org-dl')
    const response = await fetch(`${t.baseUrl}${new URL(recording.url).pathname}`, {
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(response.status, 200)
    const reader = response.body?.getReader()
    assert.ok(reader)
    const first = await reader.read()
    assert.ok(first.value && first.value.length > 0)

    const deleted = await fetch(`${t.baseUrl}/recordings/${recording.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(deleted.status, 204)

    const hash = createHash('sha256').update(first.value)
    let outcome = 'completed'
    try {
      for (let i = 0; i < 100_000; i++) {
        const next = await reader.read()
        if (next.done) break
        hash.update(next.value)
      }
    } catch {
      outcome = 'ended'
    }
    if (outcome === 'completed') assert.equal(hash.digest('hex'), recording.sha256)

    const health = await fetch(`${t.baseUrl}/healthz`)
    assert.equal(health.status, 200)
    const again = await fetch(`${t.baseUrl}${new URL(recording.url).pathname}`, {
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(again.status, 404)
    assert.equal(await t.server.blobs.stat(recordingBlobKey(recording.id)), undefined)
  })
})

test('wcr-recordings sweep runs one pass and prints what it did as JSON', async () => {
  const server = await startServerProcess({ RETENTION: '2s', SWEEP_INTERVAL_SECONDS: '86400' })
  try {
    const cli = (...args: string[]) => run(process.execPath, [CLI, ...args], { env: server.env })
    const recorder = (await cli('token', '--org', 'acme', '--permission', 'recorder')).stdout.trim()
    const response = await fetch(`${server.baseUrl}/recordings?meeting_id=cli-sweep`, {
      method: 'POST',
      headers: { authorization: `Bearer ${recorder}` },
      body: await fs.readFile(corpusPath(SMALL_MP4)),
    })
    assert.equal(response.status, 201)
    const { id } = (await response.json()) as { id: string }
    const config = loadConfig(server.env)
    assert.ok(await hasRecordingBlob(config, id), 'the blob (file or object) was stored')
    await new Promise((resolve) => setTimeout(resolve, 2500)) // retention is wall-clock time here

    const { stdout } = await cli('sweep')
    const report = JSON.parse(stdout)
    assert.equal(report.expired, 1)
    assert.deepEqual(report.errors, [])
    assert.equal(report.reconciled, true)
    assert.equal(await hasRecordingBlob(config, id), false)
  } finally {
    await server.stop()
  }
})
