import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'

import { sql } from 'kysely'

import { corpusPath } from '../support/corpus.js'
import { CLI } from '../support/process-server.js'
import { SMALL_MP4 } from '../support/requests.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

const run = promisify(execFile)
const suffix = () => Math.random().toString(36).slice(2, 8)

interface AuditJson {
  id: string
  at: string
  org_id: string | null
  actor: string | null
  action: string
  recording_id: string | null
  outcome: string
  client_ip: string | null
  request_id: string | null
  detail: Record<string, unknown> | null
}

describe('the audit trail', () => {
  let t: TestServer
  before(async () => {
    t = await startTestServer()
  })
  after(() => t.close())

  const call = async (
    orgId: string,
    url: string,
    options: { method?: string; sub?: string; headers?: Record<string, string> } = {},
  ) =>
    t.server.app.inject({
      method: (options.method ?? 'GET') as 'GET',
      url,
      headers: {
        authorization: `Bearer ${await t.token(orgId, ['org_admin'], { sub: options.sub })}`,
        ...options.headers,
      },
    })

  const upload = async (orgId: string, sub = 'recorder-1') => {
    const response = await t.server.app.inject({
      method: 'POST',
      url: `/recordings?meeting_id=m-${suffix()}`,
      headers: { authorization: `Bearer ${await t.token(orgId, ['recorder'], { sub })}` },
      payload: await fs.readFile(corpusPath(SMALL_MP4)),
    })
    assert.equal(response.statusCode, 201, response.body)
    return response.json() as { id: string; url: string }
  }

  const events = async (orgId: string, query = '') => {
    const response = await call(orgId, `/audit-events${query}`)
    assert.equal(response.statusCode, 200, response.body)
    return response.json() as { events: AuditJson[]; next_cursor: string | null }
  }

  test('every list, download (full and range), upload, hold, release and delete is recorded', async () => {
    const org = `org-${suffix()}`
    const recording = await upload(org, 'rec-sub')
    const content = new URL(recording.url).pathname
    const byRequest: Record<string, string> = {}
    const note = (action: string, response: { headers: Record<string, unknown> }) =>
      (byRequest[action] = String(response.headers['x-request-id']))

    note('list', await call(org, '/recordings', { sub: 'alice' }))
    note('list-page', await call(org, '/recordings?limit=5', { sub: 'alice' }))
    note('download', await call(org, content, { sub: 'alice' }))
    const ranged = await call(org, content, { sub: 'alice', headers: { range: 'bytes=0-9' } })
    assert.equal(ranged.statusCode, 206)
    note('range', ranged)
    note('hold', await call(org, `/recordings/${recording.id}/legal-hold`, { method: 'PUT' }))
    note('release', await call(org, `/recordings/${recording.id}/legal-hold`, { method: 'DELETE' }))
    const deleted = await call(org, `/recordings/${recording.id}`, { method: 'DELETE' })
    assert.equal(deleted.statusCode, 204)
    note('delete', deleted)

    const all = (await events(org, '?limit=1000')).events
    const find = (key: string) => all.filter((e) => e.request_id === byRequest[key])
    assert.deepEqual(
      find('list').map((e) => [e.action, e.actor, e.outcome, e.recording_id]),
      [['list', 'alice', 'success', null]],
    )
    assert.equal(find('list-page')[0]?.detail?.limit, 5)
    assert.equal(find('download')[0]?.action, 'download')
    assert.equal(find('download')[0]?.recording_id, recording.id)
    assert.deepEqual(find('range')[0]?.detail, { range: { start: 0, end: 9 } })
    assert.equal(find('hold')[0]?.action, 'hold')
    assert.equal(find('release')[0]?.action, 'release')
    assert.equal(find('delete')[0]?.action, 'delete')
    const uploadEntry = all.find((e) => e.action === 'upload' && e.recording_id === recording.id)
    assert.equal(uploadEntry?.actor, 'rec-sub')
    for (const entry of all) {
      assert.equal(entry.org_id, org)
      assert.ok(entry.client_ip, 'client address recorded')
      assert.match(entry.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    }

    // Entries outlive the recording they describe.
    const forRecording = await events(org, `?recording_id=${recording.id}`)
    assert.deepEqual(forRecording.events.map((e) => e.action).reverse(), [
      'upload',
      'download',
      'download',
      'hold',
      'release',
      'delete',
    ])
  })

  test('pages with an opaque cursor, filters by action and time, and stays inside the org', async () => {
    const org = `org-${suffix()}`
    const other = `org-${suffix()}`
    for (let i = 0; i < 5; i++) await call(org, '/recordings')
    await call(other, '/recordings')

    const seen: string[] = []
    let cursor: string | null = null
    for (let page = 0; page < 10; page++) {
      const query: string = `?action=list&limit=2${cursor ? `&cursor=${cursor}` : ''}`
      const response = await call(org, `/audit-events${query}`)
      const body = response.json() as { events: AuditJson[]; next_cursor: string | null }
      assert.ok(body.events.length <= 2)
      seen.push(...body.events.map((e) => e.id))
      if (body.next_cursor) assert.match(String(response.headers.link), /rel="next"/)
      cursor = body.next_cursor
      if (!cursor) break
    }
    assert.equal(seen.length, 5)
    assert.equal(new Set(seen).size, 5)
    const numeric = seen.map(Number)
    assert.deepEqual(
      numeric,
      [...numeric].sort((a, b) => b - a),
      'newest first',
    )

    // The other org sees only its own entry.
    const theirs = await events(other)
    assert.equal(theirs.events.length, 1)

    // Time window: nothing before the first entry, everything from it on.
    const first = (await events(org, '?action=list&limit=1000')).events.at(-1)
    assert.ok(first)
    const before = await events(org, `?before=${encodeURIComponent(first.at)}`)
    assert.equal(before.events.length, 0)
    const from = await events(org, `?action=list&after=${encodeURIComponent(first.at)}`)
    assert.equal(from.events.length, 5)

    // A cursor is only valid for the list it came from.
    const page = await events(org, '?action=list&limit=2')
    assert.ok(page.next_cursor)
    const reused = await call(org, `/audit-events?limit=2&cursor=${page.next_cursor}`)
    assert.equal(reused.statusCode, 400)
    assert.equal(reused.json().code, 'invalid_cursor')
    const foreign = await call(other, `/audit-events?action=list&cursor=${page.next_cursor}`)
    assert.equal(foreign.statusCode, 400)
    for (const bad of ['?limit=0', '?limit=1001', '?action=nope', '?after=yesterday']) {
      assert.equal((await call(org, `/audit-events${bad}`)).statusCode, 400, bad)
    }
    const recorder = await t.server.app.inject({
      url: '/audit-events',
      headers: { authorization: `Bearer ${await t.token(org, ['recorder'])}` },
    })
    assert.equal(recorder.statusCode, 403)
  })

  test('when the audit log cannot be written, downloads, lists and deletes do not happen', async () => {
    const org = `org-${suffix()}`
    const recording = await upload(org)
    const content = new URL(recording.url).pathname
    await sql`alter table audit_events rename to audit_events_away`.execute(t.server.db)
    try {
      const download = await call(org, content)
      assert.equal(download.statusCode, 503)
      assert.equal(download.headers['content-range'], undefined)
      assert.match(String(download.headers['content-type']), /problem\+json/)
      assert.equal((await call(org, '/recordings')).statusCode, 503)
      assert.equal((await call(org, '/recordings?limit=10')).statusCode, 503)
      const deleted = await call(org, `/recordings/${recording.id}`, { method: 'DELETE' })
      assert.equal(deleted.statusCode, 503)
      const hold = await call(org, `/recordings/${recording.id}/legal-hold`, { method: 'PUT' })
      assert.equal(hold.statusCode, 503)
    } finally {
      await sql`alter table audit_events_away rename to audit_events`.execute(t.server.db)
    }
    // Nothing happened: the recording is still there, whole and unheld.
    const again = await call(org, `/recordings/${recording.id}`)
    assert.equal(again.statusCode, 200)
    assert.equal(again.json().legal_hold, false)
    assert.ok(await t.server.blobs.stat(`recordings/${recording.id.slice(-2)}/${recording.id}`))
    assert.equal((await call(org, content)).statusCode, 200)
  })

  test('wcr-recordings audit export prints JSON lines, by org and since an instant', async () => {
    const org = `org-${suffix()}`
    await call(org, '/recordings')
    const midway = new Date().toISOString()
    await new Promise((resolve) => setTimeout(resolve, 5)) // distinct milliseconds
    await call(org, '/recordings?limit=3')
    // The server's own settings: the same database (and data directory) on either backend.
    const env = { ...process.env, ...t.env }
    const all = await run(process.execPath, [CLI, 'audit', 'export', '--org', org], { env })
    const lines = all.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as AuditJson)
    assert.deepEqual(
      lines.map((l) => [l.action, l.org_id]),
      [
        ['list', org],
        ['list', org],
      ],
    )
    assert.ok(Number(lines[0]?.id) < Number(lines[1]?.id), 'oldest first')
    const since = await run(
      process.execPath,
      [CLI, 'audit', 'export', '--org', org, '--since', midway],
      { env },
    )
    assert.equal(since.stdout.trim().split('\n').length, 1)
    const everything = await run(process.execPath, [CLI, 'audit', 'export'], { env })
    assert.ok(everything.stdout.trim().split('\n').length > lines.length)
  })

  test('wcr-recordings org set-retention changes what the org’s admins read', async () => {
    const org = `org-${suffix()}`
    // The server's own settings: the same database (and data directory) on either backend.
    const env = { ...process.env, ...t.env }
    const set = await run(process.execPath, [CLI, 'org', 'set-retention', org, '90d'], { env })
    assert.equal(JSON.parse(set.stdout).retention_seconds, 90 * 86_400)
    const read = await call(org, '/retention')
    assert.deepEqual(read.json(), {
      org_id: org,
      retention: '90d',
      retention_seconds: 90 * 86_400,
      source: 'org',
    })
    const entry = (await events(org, '?action=retention_set')).events[0]
    assert.equal(entry?.actor, 'operator')
    await assert.rejects(run(process.execPath, [CLI, 'org', 'set-retention', org, 'soon'], { env }))
    await run(process.execPath, [CLI, 'org', 'set-retention', org, 'default'], { env })
    assert.equal((await call(org, '/retention')).json().source, 'default')
  })
})
