import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'

import { loadConfig } from '../../src/config.js'
import { recordingBlobKey } from '../../src/storage/keys.js'
import { corpusPath } from '../support/corpus.js'
import { readRecordingRows } from '../support/inspect.js'
import { CLI, startServerProcess } from '../support/process-server.js'
import { SMALL_MP4 } from '../support/requests.js'
import { hasRecordingBlob } from '../support/state.js'
import { startTestServer, type TestServer } from '../support/test-server.js'
import { waitUntil } from '../support/wait.js'

const run = promisify(execFile)
const DAY_MS = 86_400_000
const suffix = () => Math.random().toString(36).slice(2, 8)

/** A clock the test moves by hand. */
function manualClock(startMs: number) {
  const clock = () => clock.nowMs
  clock.nowMs = startMs
  return clock
}

async function upload(
  t: TestServer,
  orgId: string,
  options: { createdAt?: string; meetingId?: string } = {},
) {
  const token = await t.token(orgId, ['recorder'])
  const query = new URLSearchParams({ meeting_id: options.meetingId ?? `m-${suffix()}` })
  if (options.createdAt) query.set('created_at', options.createdAt)
  const response = await t.server.app.inject({
    method: 'POST',
    url: `/recordings?${query}`,
    headers: { authorization: `Bearer ${token}` },
    payload: await fs.readFile(corpusPath(SMALL_MP4)),
  })
  assert.equal(response.statusCode, 201, response.body)
  return response.json() as { id: string; url: string; expires_at: string; created_at: string }
}

async function get(t: TestServer, orgId: string, url: string) {
  return t.server.app.inject({
    url,
    headers: { authorization: `Bearer ${await t.token(orgId)}` },
  })
}

async function listIds(t: TestServer, orgId: string): Promise<string[]> {
  const response = await get(t, orgId, '/recordings')
  assert.equal(response.statusCode, 200)
  return (response.json().recordings as { id: string }[]).map((r) => r.id)
}

describe('retention with an injected clock', () => {
  // Day D is 2025-03-10; the sweep runs at D+7 12:00 UTC with 7 days of retention.
  const clock = manualClock(Date.parse('2025-03-10T13:30:00Z'))
  let t: TestServer

  before(async () => {
    t = await startTestServer({ clock, env: { RETENTION: '7d' } })
  })
  after(() => t.close())

  test('B14: expiry is exact to the instant across a day boundary, and instants are integers', async () => {
    clock.nowMs = Date.parse('2025-03-10T13:30:00Z')
    const org = `org-b14-${suffix()}`
    const old = await upload(t, org, { createdAt: '2025-03-10T11:00:00Z' })
    const recent = await upload(t, org, { createdAt: '2025-03-10T13:00:00Z' })
    const keep = await upload(t, org, { createdAt: '2025-03-11T00:30:00Z' })
    assert.equal(old.expires_at, '2025-03-17T11:00:00Z')
    assert.equal(keep.created_at, '2025-03-11T00:30:00Z')

    clock.nowMs = Date.parse('2025-03-17T12:00:00Z')
    const report = await t.server.sweeper.sweep({ reconcile: false })
    assert.equal(report.expired, 1)
    assert.deepEqual(await listIds(t, org), [keep.id, recent.id])
    assert.equal((await get(t, org, new URL(old.url).pathname)).statusCode, 404)
    assert.equal(await t.server.blobs.stat(recordingBlobKey(old.id)), undefined)
    for (const r of [recent, keep]) {
      assert.equal((await get(t, org, new URL(r.url).pathname)).statusCode, 200)
    }

    // Stored as integer epoch milliseconds, whatever the dialect (read through Kysely).
    const rows = await t.server.db
      .selectFrom('recordings')
      .select(['id', 'createdAt', 'expiresAt', 'uploadedAt'])
      .where('orgId', '=', org)
      .execute()
    for (const row of rows) {
      for (const value of [row.createdAt, row.expiresAt, row.uploadedAt]) {
        assert.ok(Number.isSafeInteger(Number(value)), `${value} is an integer instant`)
      }
    }
    const keepRow = rows.find((row) => row.id === keep.id)
    assert.equal(Number(keepRow?.createdAt), Date.parse('2025-03-11T00:30:00Z'))
    assert.equal(Number(keepRow?.expiresAt), Date.parse('2025-03-18T00:30:00Z'))
  })

  test('S45: a recording is served until its expiry and 404 (and unlisted) right after, unswept', async () => {
    const org = `org-s45-${suffix()}`
    clock.nowMs = Date.parse('2025-04-01T10:00:00Z')
    // created 7 d − 2 s ago: expires 2 s from now.
    const recording = await upload(t, org, { createdAt: '2025-03-25T10:00:02Z' })
    assert.equal(recording.expires_at, '2025-04-01T10:00:02Z')
    const path = new URL(recording.url).pathname

    clock.nowMs += 1000 // T − 1 s
    assert.equal((await get(t, org, path)).statusCode, 200)
    assert.equal((await get(t, org, `/recordings/${recording.id}`)).statusCode, 200)
    assert.deepEqual(await listIds(t, org), [recording.id])

    clock.nowMs += 2000 // T + 1 s; the sweeper has not run
    for (const url of [path, `/recordings/${recording.id}`]) {
      assert.equal((await get(t, org, url)).statusCode, 404, url)
    }
    const admin = await t.token(org)
    for (const method of ['PUT', 'DELETE'] as const) {
      const hold = await t.server.app.inject({
        method,
        url: `/recordings/${recording.id}/legal-hold`,
        headers: { authorization: `Bearer ${admin}` },
      })
      assert.equal(hold.statusCode, 404, `${method} legal-hold`)
    }
    const deleted = await t.server.app.inject({
      method: 'DELETE',
      url: `/recordings/${recording.id}`,
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(deleted.statusCode, 404)
    assert.deepEqual(await listIds(t, org), [])
    assert.ok(await t.server.blobs.stat(recordingBlobKey(recording.id)), 'bytes still there')
  })

  test('a late upload (already past its expiry) is kept 24 h from its arrival', async () => {
    const org = `org-late-${suffix()}`
    clock.nowMs = Date.parse('2025-05-01T08:00:00Z')
    await t.server.sweeper.sweep({ reconcile: false }) // what earlier tests left to expire
    const late = await upload(t, org, { createdAt: '2025-04-01T08:00:00Z' })
    assert.equal(late.expires_at, '2025-05-02T08:00:00Z')

    clock.nowMs += DAY_MS - 1000
    assert.equal((await t.server.sweeper.sweep({ reconcile: false })).expired, 0)
    assert.deepEqual(await listIds(t, org), [late.id])
    clock.nowMs += 2000
    assert.deepEqual(await listIds(t, org), [])
    await t.server.sweeper.sweep({ reconcile: false })
    assert.equal(await t.server.blobs.stat(recordingBlobKey(late.id)), undefined)
  })

  test('a per-org retention applies to new uploads and recomputes existing ones, never below 24 h', async () => {
    const org = `org-ret-${suffix()}`
    const other = `org-other-${suffix()}`
    clock.nowMs = Date.parse('2025-06-01T00:00:00Z')
    const a = await upload(t, org, { createdAt: '2025-05-31T00:00:00Z' }) // 1 day old
    const b = await upload(t, org, { createdAt: '2025-06-01T00:00:00Z' })
    const untouched = await upload(t, other, { createdAt: '2025-06-01T00:00:00Z' })

    const admin = await t.token(org)
    const before = await get(t, org, '/retention')
    assert.equal(before.statusCode, 200)
    assert.deepEqual(before.json(), {
      org_id: org,
      retention: '7d',
      retention_seconds: 7 * 86_400,
      source: 'default',
    })

    // Longer: both move out to created_at + 90 d.
    const longer = await t.server.retention.setRetention({
      orgId: org,
      retentionSeconds: 90 * 86_400,
      actor: 'ops',
    })
    assert.equal(longer.recordingsUpdated, 2)
    const byId = async (id: string) =>
      (await get(t, org, `/recordings/${id}`)).json() as { expires_at: string }
    assert.equal((await byId(a.id)).expires_at, '2025-08-29T00:00:00Z')
    assert.equal((await byId(b.id)).expires_at, '2025-08-30T00:00:00Z')
    const readBack = await t.server.app.inject({
      url: '/retention',
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.deepEqual(readBack.json(), {
      org_id: org,
      retention: '90d',
      retention_seconds: 90 * 86_400,
      source: 'org',
    })
    const fresh = await upload(t, org, { createdAt: '2025-06-01T00:00:00Z' })
    assert.equal(fresh.expires_at, '2025-08-30T00:00:00Z')

    // Shorter than the recordings' age: they get 24 h from the change, not an instant death.
    await t.server.retention.setRetention({ orgId: org, retentionSeconds: 3600, actor: 'ops' })
    assert.equal((await byId(a.id)).expires_at, '2025-06-02T00:00:00Z')
    assert.equal((await byId(b.id)).expires_at, '2025-06-02T00:00:00Z')
    // Another org is not affected.
    const otherRecording = (await get(t, other, `/recordings/${untouched.id}`)).json()
    assert.equal(otherRecording.expires_at, '2025-06-08T00:00:00Z')

    // Back to the default.
    await t.server.retention.setRetention({ orgId: org, retentionSeconds: null, actor: 'ops' })
    assert.equal((await get(t, org, '/retention')).json().source, 'default')
    assert.equal((await byId(b.id)).expires_at, '2025-06-08T00:00:00Z')

    // Only the org's admins may read it.
    const recorder = await t.server.app.inject({
      url: '/retention',
      headers: { authorization: `Bearer ${await t.token(org, ['recorder'])}` },
    })
    assert.equal(recorder.statusCode, 403)
  })

  test('a retention change does not bring back an expired recording', async () => {
    const org = `org-dead-${suffix()}`
    clock.nowMs = Date.parse('2025-07-01T00:00:00Z')
    const r = await upload(t, org, { createdAt: '2025-06-30T00:00:00Z' })
    clock.nowMs += 7 * DAY_MS
    assert.deepEqual(await listIds(t, org), [])
    const result = await t.server.retention.setRetention({
      orgId: org,
      retentionSeconds: 365 * 86_400,
      actor: 'ops',
    })
    assert.equal(result.recordingsUpdated, 0)
    assert.equal((await get(t, org, `/recordings/${r.id}`)).statusCode, 404)
  })

  test('B15: expiry deletes exactly the expired recording’s key and no neighbour', async () => {
    const org = `org1-${suffix()}`
    const neighbour = `${org}0` // org1-xxxx and org1-xxxx0 share a prefix
    clock.nowMs = Date.parse('2025-08-01T12:00:00Z')
    const doomed = await upload(t, org, { createdAt: '2025-07-25T12:01:00Z', meetingId: 'm1' })
    const others = [
      await upload(t, org, { meetingId: 'm10' }),
      await upload(t, org, { meetingId: 'm1-b' }),
      await upload(t, neighbour, { meetingId: 'm1' }),
    ]
    await t.server.sweeper.sweep({ reconcile: false }) // what earlier tests left to expire
    const keysBefore = new Set<string>()
    for await (const blob of t.server.blobs.listKeys()) keysBefore.add(blob.key)

    clock.nowMs += 2 * 60_000
    const report = await t.server.sweeper.sweep({ reconcile: false })
    assert.equal(report.expired, 1)
    const keysAfter = new Set<string>()
    for await (const blob of t.server.blobs.listKeys()) keysAfter.add(blob.key)
    const removed = [...keysBefore].filter((key) => !keysAfter.has(key))
    assert.deepEqual(removed, [recordingBlobKey(doomed.id)])
    for (const r of others) {
      const orgOf = r === others[2] ? neighbour : org
      const download = await get(t, orgOf, new URL(r.url).pathname)
      assert.equal(download.statusCode, 200)
    }
  })
})

for (const zone of ['Pacific/Kiritimati', 'America/Los_Angeles']) {
  test(`B14 under TZ=${zone}: instants are UTC integers and expiry is exact`, async () => {
    const server = await startServerProcess({
      TZ: zone,
      RETENTION: '7d',
      SWEEP_INTERVAL_SECONDS: '1',
    })
    try {
      const cli = (...args: string[]) => run(process.execPath, [CLI, ...args], { env: server.env })
      const recorder = (
        await cli('token', '--org', 'acme', '--permission', 'recorder')
      ).stdout.trim()
      const admin = (await cli('token', '--org', 'acme', '--permission', 'org_admin')).stdout.trim()
      const body = await fs.readFile(corpusPath(SMALL_MP4))
      const nowS = Math.floor(Date.now() / 1000)
      const at = (seconds: number) => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
      // Expires 3 s from now; expires in 1 h; created now (a local day boundary lies somewhere
      // between them in one of the zones, which must not matter).
      const createdAts = [at(nowS - 7 * 86_400 + 3), at(nowS - 7 * 86_400 + 3600), at(nowS - 60)]
      const ids: string[] = []
      for (const [i, createdAt] of createdAts.entries()) {
        const response = await fetch(
          `${server.baseUrl}/recordings?meeting_id=tz-${i}&created_at=${createdAt}`,
          { method: 'POST', headers: { authorization: `Bearer ${recorder}` }, body },
        )
        assert.equal(response.status, 201)
        const json = (await response.json()) as { id: string; created_at: string }
        assert.equal(json.created_at, createdAt)
        ids.push(json.id)
      }
      const config = loadConfig(server.env)
      const rows = await readRecordingRows(config)
      for (const [i, id] of ids.entries()) {
        const row = rows.find((r) => r.id === id)
        assert.equal(row?.createdAt, Date.parse(createdAts[i] as string))
        assert.equal(row?.expiresAt, Date.parse(createdAts[i] as string) + 7 * DAY_MS)
      }

      const listed = async () => {
        const response = await fetch(`${server.baseUrl}/recordings`, {
          headers: { authorization: `Bearer ${admin}` },
        })
        const json = (await response.json()) as { recordings: { id: string; created_at: string }[] }
        for (const r of json.recordings) assert.match(r.created_at, /Z$/)
        return json.recordings.map((r) => r.id)
      }
      const gone = await waitUntil(
        async () => !(await hasRecordingBlob(config, ids[0] as string)),
        {
          timeoutMs: 15_000,
          intervalMs: 200,
        },
      )
      assert.ok(gone, 'the expired recording’s blob (file or object) was deleted')
      assert.deepEqual(await listed(), [ids[2], ids[1]])
      assert.ok(Date.now() < (nowS + 3600) * 1000, 'the kept one was not due yet')
    } finally {
      await server.stop()
    }
  })
}
