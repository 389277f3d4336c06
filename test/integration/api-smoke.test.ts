import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'

import { corpusPath } from '../support/corpus.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

const MP4 = 'mp4ff_prog_8s.mp4'

describe('core API', () => {
  let t: TestServer
  let admin: string
  let recorder: string

  before(async () => {
    t = await startTestServer()
    admin = await t.token('org-a', ['org_admin'])
    recorder = await t.token('org-a', ['recorder'])
  })
  after(() => t.close())

  const upload = async (meetingId: string, file = MP4, headers: Record<string, string> = {}) =>
    t.server.app.inject({
      method: 'POST',
      url: `/recordings?meeting_id=${meetingId}`,
      headers: { authorization: `Bearer ${recorder}`, ...headers },
      payload: await fs.readFile(corpusPath(file)),
    })

  test('upload → list → get → download → delete → 404', async () => {
    const created = await upload('m-smoke')
    assert.equal(created.statusCode, 201, created.body)
    const recording = created.json()
    assert.match(recording.id, /^rec_[0-9a-z]{26}$/)
    assert.equal(created.headers.location, `http://localhost:80/recordings/${recording.id}`)
    assert.match(recording.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    assert.equal(recording.duration_seconds, 8)
    assert.equal(recording.content_type, 'video/mp4')

    const list = await t.server.app.inject({
      url: '/recordings',
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(list.statusCode, 200)
    assert.deepEqual(list.json().recordings, [recording])

    const one = await t.server.app.inject({
      url: `/recordings/${recording.id}`,
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.deepEqual(one.json(), recording)

    const path = new URL(recording.url).pathname
    const head = await t.server.app.inject({
      method: 'HEAD',
      url: path,
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(head.statusCode, 200)
    assert.equal(head.headers['content-length'], String(recording.size_bytes))

    const deleted = await t.server.app.inject({
      method: 'DELETE',
      url: `/recordings/${recording.id}`,
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(deleted.statusCode, 204)
    for (const url of [path, `/recordings/${recording.id}`]) {
      const gone = await t.server.app.inject({ url, headers: { authorization: `Bearer ${admin}` } })
      assert.equal(gone.statusCode, 404)
      assert.match(String(gone.headers['content-type']), /^application\/problem\+json/)
    }
  })

  test('recorders may upload but not read back', async () => {
    const list = await t.server.app.inject({
      url: '/recordings',
      headers: { authorization: `Bearer ${recorder}` },
    })
    assert.equal(list.statusCode, 403)
    assert.equal(
      list.headers['www-authenticate'],
      'Bearer realm="recordings", error="insufficient_scope"',
    )
  })

  test('missing meeting_id is 400; text is 415; empty is 400', async () => {
    const noMeeting = await t.server.app.inject({
      method: 'POST',
      url: '/recordings',
      headers: { authorization: `Bearer ${recorder}` },
      payload: await fs.readFile(corpusPath(MP4)),
    })
    assert.equal(noMeeting.statusCode, 400)
    assert.equal(noMeeting.json().code, 'missing_meeting_id')

    const text = await t.server.app.inject({
      method: 'POST',
      url: '/recordings?meeting_id=m',
      headers: { authorization: `Bearer ${recorder}`, 'content-type': 'text/plain' },
      payload: 'hello, this is not a video',
    })
    assert.equal(text.statusCode, 415)

    const empty = await t.server.app.inject({
      method: 'POST',
      url: '/recordings?meeting_id=m',
      headers: { authorization: `Bearer ${recorder}` },
      payload: '',
    })
    assert.equal(empty.statusCode, 400)
  })

  test('paging with a keyset cursor and a Link header', async () => {
    const files = ['go-mp4_sample.mp4', 'peertube_low-bitrate.mp4', 'mediabunny_edts.mp4']
    for (const file of files) assert.equal((await upload('m-page', file)).statusCode, 201)
    const seen: string[] = []
    let url = '/recordings?meeting_id=m-page&limit=2'
    for (let i = 0; i < 5 && url; i++) {
      const page = await t.server.app.inject({ url, headers: { authorization: `Bearer ${admin}` } })
      assert.equal(page.statusCode, 200)
      const body = page.json()
      seen.push(...body.recordings.map((r: { id: string }) => r.id))
      if (body.next_cursor) {
        assert.match(String(page.headers.link), /rel="next"/)
        url = `/recordings?meeting_id=m-page&limit=2&cursor=${body.next_cursor}`
      } else {
        url = ''
      }
    }
    assert.equal(seen.length, 3)
    assert.equal(new Set(seen).size, 3)
  })
})
