import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'

import { corpusPath } from '../support/corpus.js'
import { connect, requestHead } from '../support/raw-http.js'
import { embeddedOnly, listStagedUploads } from '../support/state.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

const FILE = 'mp4ff_prog_8s.mp4'
const OTHER = 'peertube_low-bitrate.mp4'

describe('found by a fresh user', () => {
  let t: TestServer
  let recorder: string
  let admin: string
  before(async () => {
    t = await startTestServer()
    recorder = await t.token('org-r', ['recorder'])
    admin = await t.token('org-r', ['org_admin'])
  })
  after(() => t.close())

  const upload = async (
    query: string,
    payload: Buffer | string,
    headers: Record<string, string> = {},
  ) =>
    t.server.app.inject({
      method: 'POST',
      url: `/recordings?${query}`,
      headers: { authorization: `Bearer ${recorder}`, ...headers },
      payload,
    })

  test('a malformed multipart body is 400, not 500', async () => {
    const bytes = await fs.readFile(corpusPath(FILE))
    for (const contentType of ['multipart/form-data; boundary=zzz', 'multipart/form-data']) {
      const response = await upload('meeting_id=mp', bytes, { 'content-type': contentType })
      assert.equal(response.statusCode, 400, `${contentType}: ${response.body}`)
      assert.equal(response.json().code, 'invalid_request')
    }
  })

  test('an Idempotency-Key reused for other bytes of the same meeting is 409', async () => {
    const key = `key-${Date.now()}`
    const first = await upload('meeting_id=idem', await fs.readFile(corpusPath(FILE)), {
      'idempotency-key': key,
    })
    assert.equal(first.statusCode, 201)
    const retry = await upload('meeting_id=idem', await fs.readFile(corpusPath(FILE)), {
      'idempotency-key': key,
    })
    assert.equal(retry.statusCode, 200)
    assert.equal(retry.json().id, first.json().id)
    const other = await upload('meeting_id=idem', await fs.readFile(corpusPath(OTHER)), {
      'idempotency-key': key,
    })
    assert.equal(other.statusCode, 409)
    assert.equal(other.json().code, 'idempotency_key_reused')
  })

  test('a recording answers at content and content.<its extension> only', async () => {
    const created = await upload('meeting_id=ext', await fs.readFile(corpusPath(FILE)))
    const { id } = created.json()
    const get = (file: string) =>
      t.server.app.inject({
        url: `/recordings/${id}/${file}`,
        headers: { authorization: `Bearer ${admin}` },
      })
    assert.equal((await get('content.mp4')).statusCode, 200)
    assert.equal((await get('content')).statusCode, 200)
    assert.equal((await get('content.webm')).statusCode, 404)
    assert.equal((await get('contents.mp4')).statusCode, 404)
    const ranged = await t.server.app.inject({
      url: `/recordings/${id}/content.mp4`,
      headers: { authorization: `Bearer ${admin}`, range: 'BYTES=0-9' },
    })
    assert.equal(ranged.statusCode, 206)
  })

  test(
    'a storage volume that disappears is 503 for uploads and downloads',
    embeddedOnly('moves the blob root'),
    async () => {
      const created = await upload('meeting_id=vol', await fs.readFile(corpusPath(FILE)))
      const { url } = created.json()
      const root = `${t.dataDir}/blobs`
      await fs.rename(root, `${root}.away`)
      try {
        const download = await t.server.app.inject({
          url: new URL(url).pathname,
          headers: { authorization: `Bearer ${admin}` },
        })
        assert.equal(download.statusCode, 503)
        assert.ok(download.headers['retry-after'])
        const again = await upload('meeting_id=vol2', await fs.readFile(corpusPath(OTHER)))
        assert.equal(again.statusCode, 503)
        assert.doesNotMatch(again.body, /\/tmp|blobs/)
      } finally {
        await fs.rename(`${root}.away`, root)
      }
      const back = await t.server.app.inject({
        url: new URL(url).pathname,
        headers: { authorization: `Bearer ${admin}` },
      })
      assert.equal(back.statusCode, 200)
    },
  )
})

describe('uploads dropped at any moment (found in review)', () => {
  let t: TestServer
  before(async () => (t = await startTestServer({ listen: true })))
  after(() => t.close())

  test('resets right after the first bytes never crash the server or leak a slot', async () => {
    const recorder = await t.token('org-drop', ['recorder'], { sub: 'dropper' })
    for (let i = 0; i < 30; i++) {
      const socket = await connect(t.baseUrl)
      socket.write(
        requestHead('POST', `/recordings?meeting_id=drop-${i}`, {
          authorization: `Bearer ${recorder}`,
          'content-length': 1_000_000,
        }) + 'x'.repeat(10),
      )
      // Vary the moment: immediately, or after the handler has started.
      if (i % 2 === 1) await new Promise((resolve) => setTimeout(resolve, 5))
      socket.resetAndDestroy()
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
    const health = await fetch(`${t.baseUrl}/healthz`)
    assert.equal(health.status, 200)
    // Every slot of this caller was released: more than MAX_CONCURRENT_UPLOADS uploads later.
    const bytes = await fs.readFile(corpusPath(FILE))
    for (let i = 0; i < 12; i++) {
      const response = await fetch(`${t.baseUrl}/recordings?meeting_id=after-${i}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${recorder}` },
        body: bytes,
      })
      assert.ok([200, 201].includes(response.status), `upload ${i}: ${response.status}`)
    }
    const deadline = Date.now() + 5000
    while ((await listStagedUploads(t.config)).length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.deepEqual(await listStagedUploads(t.config), [])
  })
})

describe('an Idempotency-Key never brings back an expired recording (found in review)', () => {
  let t: TestServer
  let now = Date.parse('2026-06-01T00:00:00Z')
  before(async () => (t = await startTestServer({ clock: () => now, env: { RETENTION: '1h' } })))
  after(() => t.close())

  test('a retry after expiry makes a new recording instead of answering with the old one', async () => {
    const recorder = await t.token('org-idem', ['recorder'])
    const bytes = await fs.readFile(corpusPath(FILE))
    const send = () =>
      t.server.app.inject({
        method: 'POST',
        url: `/recordings?meeting_id=m-idem&created_at=${new Date(now).toISOString()}`,
        headers: { authorization: `Bearer ${recorder}`, 'idempotency-key': 'k-expire' },
        payload: bytes,
      })
    const first = await send()
    assert.equal(first.statusCode, 201)
    now += 2 * 3600 * 1000 // past its expiry, before any sweep
    const retry = await send()
    assert.equal(retry.statusCode, 201, retry.body)
    assert.notEqual(retry.json().id, first.json().id)
    assert.ok(Date.parse(retry.json().expires_at) > now)
  })
})
