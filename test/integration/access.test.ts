import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import { createRecordingId } from '../../src/recordings/recording-id.js'
import { corpusPath } from '../support/corpus.js'
import {
  linesLeaking,
  readAuditRows,
  readRecordingRows,
  withoutRequestId,
} from '../support/inspect.js'
import { pathOf, uploadRecording, type RecordingJson } from '../support/requests.js'
import { readBlobSha256s } from '../support/state.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

const TINY_MP4 = 'mp4ff_init.mp4' // 715 bytes: quick to upload 250 times
const RECORDING_FIELDS = [
  'content_type',
  'created_at',
  'duration_seconds',
  'expires_at',
  'id',
  'legal_hold',
  'meeting_id',
  'sha256',
  'size_bytes',
  'url',
]
const INSUFFICIENT_SCOPE = 'Bearer realm="recordings", error="insufficient_scope"'

interface Reply {
  status: number
  headers: Headers
  body: Buffer
}

describe('authorisation and object exposure', () => {
  let t: TestServer
  const tokens = { aAdmin: '', aMember: '', bAdmin: '', recA: '', recB: '' }
  let ra1: RecordingJson
  let rb1: RecordingJson
  const bRecordings: RecordingJson[] = []

  /** A real HTTP exchange (headers as a client sees them; HEAD without inject's quirks). */
  async function send(
    url: string,
    token: string,
    init: { method?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const response = await fetch(new URL(url, t.baseUrl), {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${token}`, ...init.headers },
    })
    return {
      status: response.status,
      headers: response.headers,
      body: Buffer.from(await response.arrayBuffer()),
    }
  }

  const headerNames = (reply: Reply) =>
    [...reply.headers.keys()].filter((name) => name !== 'date').sort()

  /** Every published blob with its SHA-256 (disk or bucket), to prove nothing changed. */
  const blobSnapshot = () => readBlobSha256s(t.config)

  before(async () => {
    t = await startTestServer({ listen: true })
    tokens.aAdmin = await t.token('org-a', ['org_admin'], { sub: 'a-admin' })
    tokens.aMember = await t.token('org-a', [], { sub: 'a-member' })
    tokens.bAdmin = await t.token('org-b', ['org_admin'], { sub: 'b-admin' })
    tokens.recA = await t.token('org-a', ['recorder'], { sub: 'rec-a' })
    tokens.recB = await t.token('org-b', ['recorder'], { sub: 'rec-b' })
    ra1 = await uploadRecording(t, tokens.recA, 'm-ra1')
    for (let i = 0; i < 3; i++) {
      bRecordings.push(await uploadRecording(t, tokens.recB, `m-b-${i}`, TINY_MP4))
    }
    rb1 = bRecordings[0] as RecordingJson
  })
  after(() => t.close())

  test('S18/B13: another org’s recording is 404, indistinguishable from a made-up id', async () => {
    const madeUp = createRecordingId()
    for (const method of ['GET', 'HEAD']) {
      const foreign = await send(pathOf(ra1.url), tokens.bAdmin, { method })
      const unknown = await send(`/recordings/${madeUp}/content.mp4`, tokens.bAdmin, { method })
      const junk = await send(`/recordings/${crypto.randomUUID()}/content.mp4`, tokens.bAdmin, {
        method,
      })
      for (const reply of [foreign, unknown, junk]) {
        assert.equal(reply.status, 404, method)
        for (const name of ['etag', 'last-modified', 'accept-ranges', 'content-disposition']) {
          assert.equal(reply.headers.get(name), null, `${method} leaks ${name}`)
        }
        assert.notEqual(reply.headers.get('content-length'), String(ra1.size_bytes))
      }
      assert.deepEqual(headerNames(foreign), headerNames(unknown), method)
      assert.deepEqual(headerNames(foreign), headerNames(junk), method)
      assert.equal(
        withoutRequestId(foreign.body.toString()),
        withoutRequestId(unknown.body.toString()),
      )
      assert.equal(
        withoutRequestId(foreign.body.toString()),
        withoutRequestId(junk.body.toString()),
      )
    }
    const metadata = await send(`/recordings/${ra1.id}`, tokens.bAdmin)
    const metadataUnknown = await send(`/recordings/${madeUp}`, tokens.bAdmin)
    assert.equal(metadata.status, 404)
    assert.equal(
      withoutRequestId(metadata.body.toString()),
      withoutRequestId(metadataUnknown.body.toString()),
    )

    const denied = (await readAuditRows(t.server.db)).filter(
      (row) => row.action === 'access_denied' && row.recordingId === ra1.id,
    )
    assert.ok(denied.length >= 1)
    assert.ok(denied.every((row) => row.actor === 'b-admin' && row.orgId === 'org-b'))
  })

  test('B13: an admin of org A gets none of org B’s bytes however the request is dressed', async () => {
    const madeUp = `/recordings/${createRecordingId()}/content.mp4`
    const reference = await send(madeUp, tokens.aAdmin)
    const ext = path.extname(pathOf(ra1.url))
    const attempts: [string, Record<string, string>, string][] = [
      [pathOf(rb1.url), {}, 'GET'],
      [pathOf(rb1.url), {}, 'HEAD'],
      [pathOf(rb1.url), { range: 'bytes=0-0' }, 'GET'],
      [`/recordings/${rb1.id}/content${ext}`, {}, 'GET'],
      [`${pathOf(rb1.url)}?org_id=org-b`, {}, 'GET'],
      [pathOf(rb1.url), { 'x-org-id': 'org-b' }, 'GET'],
      [`/recordings/${rb1.id}?org_id=org-b`, { 'x-org-id': 'org-b' }, 'GET'],
    ]
    for (const [url, headers, method] of attempts) {
      const reply = await send(url, tokens.aAdmin, { method, headers })
      assert.equal(reply.status, 404, `${method} ${url} ${JSON.stringify(headers)}`)
      if (method === 'GET') {
        assert.equal(
          withoutRequestId(reply.body.toString()),
          withoutRequestId(reference.body.toString()),
        )
      }
    }
    // The org always comes from the token: injected org parameters change nothing for A's own.
    const own = await send(`${pathOf(ra1.url)}?org_id=org-b`, tokens.aAdmin, {
      headers: { 'x-org-id': 'org-b' },
    })
    assert.equal(own.status, 200)
    assert.equal(createHash('sha256').update(own.body).digest('hex'), ra1.sha256)

    const list = await send('/recordings', tokens.aAdmin, { headers: { 'x-org-id': 'org-b' } })
    const ids = JSON.parse(list.body.toString()).recordings.map((r: RecordingJson) => r.id)
    assert.ok(ids.includes(ra1.id))
    for (const b of bRecordings) assert.ok(!ids.includes(b.id), 'B recording in A’s list')
  })

  test('S20: a cross-org DELETE is 404 and changes nothing', async () => {
    const rowsBefore = await readRecordingRows(t.server.db)
    const blobsBefore = await blobSnapshot()
    const reply = await send(`/recordings/${ra1.id}`, tokens.bAdmin, { method: 'DELETE' })
    assert.equal(reply.status, 404)
    assert.deepEqual(await readRecordingRows(t.server.db), rowsBefore)
    assert.deepEqual(await blobSnapshot(), blobsBefore)

    const download = await send(pathOf(ra1.url), tokens.aAdmin)
    assert.equal(download.status, 200)
    assert.equal(createHash('sha256').update(download.body).digest('hex'), ra1.sha256)
    const requestId = reply.headers.get('x-request-id')
    const rows = (await readAuditRows(t.server.db)).filter((row) => row.requestId === requestId)
    assert.deepEqual(
      rows.map((row) => [row.action, row.actor, row.recordingId]),
      [['access_denied', 'b-admin', ra1.id]],
    )
  })

  test('S21: a missing permission is 403 whatever the target, and changes nothing', async () => {
    const rowsBefore = await readRecordingRows(t.server.db)
    const blobsBefore = await blobSnapshot()
    const memberDeletes = await Promise.all(
      [ra1.id, createRecordingId(), rb1.id].map((id) =>
        send(`/recordings/${id}`, tokens.aMember, { method: 'DELETE' }),
      ),
    )
    const others = [
      await send('/recordings', tokens.recA),
      await send(pathOf(ra1.url), tokens.recA),
      await send(pathOf(ra1.url), tokens.recA, { method: 'HEAD' }),
      await send(`/recordings/${ra1.id}`, tokens.recA),
      await send(`/recordings/${ra1.id}`, tokens.recA, { method: 'DELETE' }),
      await send('/recordings?meeting_id=m-member', tokens.aMember, { method: 'POST' }),
    ]
    for (const reply of [...memberDeletes, ...others]) {
      assert.equal(reply.status, 403)
      assert.equal(reply.headers.get('www-authenticate'), INSUFFICIENT_SCOPE)
    }
    const [first, ...rest] = memberDeletes.map((r) => withoutRequestId(r.body.toString()))
    for (const body of rest) assert.equal(body, first, 'the 403 depends on the target')
    assert.deepEqual(memberDeletes.map(headerNames), Array(3).fill(headerNames(memberDeletes[0]!)))
    assert.deepEqual(await readRecordingRows(t.server.db), rowsBefore)
    assert.deepEqual(await blobSnapshot(), blobsBefore)
  })

  test('S22: the list is scoped to the caller’s org; limits, cursors and filters cannot widen it', async () => {
    const aIds = new Set([ra1.id])
    for (let i = 0; i < 249; i++) {
      aIds.add((await uploadRecording(t, tokens.recA, `m-a-${i}`, TINY_MP4)).id)
    }
    const bIds = new Set(bRecordings.map((r) => r.id))
    const idsOf = (reply: Reply) =>
      (JSON.parse(reply.body.toString()).recordings as RecordingJson[]).map((r) => r.id)

    const all = await send('/recordings', tokens.bAdmin)
    assert.equal(all.status, 200)
    assert.deepEqual(new Set(idsOf(all)), bIds)

    const huge = await send('/recordings?limit=100000', tokens.bAdmin)
    assert.equal(huge.status, 400)
    assert.equal(JSON.parse(huge.body.toString()).error, 'invalid_request')

    const aPage = await send('/recordings?limit=100', tokens.aAdmin)
    assert.equal(idsOf(aPage).length, 100)
    const cursor = JSON.parse(aPage.body.toString()).next_cursor as string
    assert.ok(cursor)
    const stolen = await send(`/recordings?limit=100&cursor=${cursor}`, tokens.bAdmin)
    if (stolen.status === 400) {
      assert.equal(JSON.parse(stolen.body.toString()).error, 'invalid_cursor')
    } else {
      assert.equal(stolen.status, 200)
      for (const id of idsOf(stolen)) assert.ok(bIds.has(id), 'A item through B’s cursor')
    }

    const orgParam = await send('/recordings?org_id=org-a', tokens.bAdmin)
    if (orgParam.status === 200) {
      assert.deepEqual(new Set(idsOf(orgParam)), bIds)
    } else {
      assert.equal(orgParam.status, 400)
    }
    const injected = await send(
      '/recordings?sort=created_at;DROP%20TABLE%20recordings--',
      tokens.bAdmin,
    )
    assert.equal(injected.status, 400)

    const rows = await readRecordingRows(t.server.db)
    assert.equal(rows.length, aIds.size + bIds.size)
    const aList = await send('/recordings', tokens.aAdmin)
    assert.deepEqual(new Set(idsOf(aList)), aIds)
  })

  test('S23: malformed ids are 404 and an upper-case id names the same recording', async () => {
    const malformed = [
      '/recordings/not-a-uuid/content.mp4',
      '/recordings/%2e%2e%2f%2e%2e%2fetc%2fpasswd/content.mp4',
      '/recordings/..%2F..%2F..%2Fetc%2Fpasswd',
      `/recordings/rec_${'0'.repeat(40)}/content.mp4`,
    ]
    for (const url of malformed) {
      const reply = await send(url, tokens.aAdmin)
      assert.equal(reply.status, 404, url)
      assert.match(String(reply.headers.get('content-type')), /^application\/problem\+json/)
      assert.doesNotMatch(reply.body.toString(), /passwd|\.\.|FST_/, url)
    }
    const upper = await send(`/recordings/${ra1.id.toUpperCase()}/content.mp4`, tokens.aAdmin)
    assert.equal(upper.status, 200)
    assert.equal(createHash('sha256').update(upper.body).digest('hex'), ra1.sha256)
    const upperMeta = await send(`/recordings/${ra1.id.toUpperCase()}`, tokens.aAdmin)
    assert.equal(JSON.parse(upperMeta.body.toString()).id, ra1.id)
  })

  test('S23: over-long ids (70 and 10,000 characters) are the same 404 problem', async () => {
    for (const id of [`rec_${'a'.repeat(66)}`, 'a'.repeat(10_000)]) {
      for (const url of [`/recordings/${id}`, `/recordings/${id}/content.mp4`]) {
        const reply = await send(url, tokens.aAdmin)
        assert.equal(reply.status, 404, `${url.length} chars`)
        assert.match(String(reply.headers.get('content-type')), /^application\/problem\+json/)
        assert.doesNotMatch(reply.body.toString(), /aaaaaaaaaa|FST_/)
      }
    }
  })

  test('S24: recordings expose only documented fields; ingest cannot choose org, id or key', async () => {
    const list = await send('/recordings?limit=5', tokens.aAdmin)
    for (const item of JSON.parse(list.body.toString()).recordings) {
      assert.deepEqual(Object.keys(item).sort(), RECORDING_FIELDS)
    }
    const download = await send(pathOf(ra1.url), tokens.aAdmin, { method: 'HEAD' })
    for (const name of download.headers.keys()) {
      assert.doesNotMatch(name, /storage|bucket|path|blob|uploader|org|state/i, name)
    }
    const bBefore = JSON.parse((await send('/recordings', tokens.bAdmin)).body.toString())
    const chosenId = createRecordingId()
    const attempts: [string, Record<string, string>][] = [
      ['meeting_id=m-s24-header', { 'x-org-id': 'org-b' }],
      ['meeting_id=m-s24&org=org-b', {}],
      ['meeting_id=m-s24&org_id=org-b', {}],
      [`meeting_id=m-s24&id=${chosenId}`, {}],
      ['meeting_id=m-s24&storage_key=../../x', {}],
      ['meeting_id=m-s24&created_at=2000-01-01', {}],
      ['meeting_id=m-s24&retention=3650d', {}],
    ]
    const payload = await fs.readFile(corpusPath(TINY_MP4))
    let created = 0
    for (const [query, headers] of attempts) {
      const response = await t.server.app.inject({
        method: 'POST',
        url: `/recordings?${query}`,
        headers: { authorization: `Bearer ${tokens.recA}`, ...headers },
        payload,
      })
      if (response.statusCode === 400) continue
      assert.equal(response.statusCode, 201, `${query}: ${response.body}`)
      const recording = response.json() as RecordingJson
      created++
      assert.notEqual(recording.id, chosenId)
      const row = (await readRecordingRows(t.server.db)).find((r) => r.id === recording.id)
      assert.equal(row?.orgId, 'org-a', query)
      assert.doesNotMatch(String(row?.blobKey), /\.\./)
    }
    assert.ok(created >= 1, 'every upload was refused: the org assignment went untested')
    const chosen = await send(`/recordings/${chosenId}`, tokens.aAdmin)
    assert.equal(chosen.status, 404)
    const bAfter = JSON.parse((await send('/recordings', tokens.bAdmin)).body.toString())
    assert.deepEqual(bAfter, bBefore)
  })

  test('S52: no token reached the log during the authorisation cases', () => {
    assert.ok(t.logs.length > 0)
    assert.deepEqual(linesLeaking(t.logs, Object.values(tokens)), [])
  })
})
