import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'

import { corpusPath, loadManifest } from '../support/corpus.js'
import { listBlobKeys, listStagedUploads } from '../support/state.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

describe('every corpus file gets the outcome its manifest defines', () => {
  let t: TestServer
  let recorder: string
  let admin: string

  before(async () => {
    t = await startTestServer()
    recorder = await t.token('org-corpus', ['recorder'])
    admin = await t.token('org-corpus', ['org_admin'])
  })
  after(() => t.close())

  for (const entry of loadManifest()) {
    test(`${entry.file} → ${entry.expect_upload}`, async () => {
      const bytes = await fs.readFile(corpusPath(entry))
      const response = await t.server.app.inject({
        method: 'POST',
        url: `/recordings?meeting_id=${encodeURIComponent('corpus-' + entry.file)}`,
        headers: {
          authorization: `Bearer ${recorder}`,
          'content-type': 'application/octet-stream',
        },
        payload: bytes,
      })

      if (entry.expect_upload === 'reject') {
        assert.ok([400, 415].includes(response.statusCode), `status ${response.statusCode}`)
        assert.match(String(response.headers['content-type']), /application\/problem\+json/)
        return
      }

      assert.equal(response.statusCode, 201, response.body)
      const recording = response.json()
      assert.equal(recording.size_bytes, entry.size_bytes)
      assert.equal(recording.sha256, entry.sha256)
      const expected = entry.expect_duration_seconds
      if (Array.isArray(expected)) {
        assert.equal(typeof recording.duration_seconds, 'number', 'duration must be a number')
        assert.ok(
          expected.some((d) => Math.abs(d - recording.duration_seconds) <= 1),
          `duration ${recording.duration_seconds} not within 1 s of ${expected.join(', ')}`,
        )
      } else {
        assert.ok(
          recording.duration_seconds === null || Number.isInteger(recording.duration_seconds),
        )
      }
      if (entry.categories.includes('audio-only')) {
        assert.match(recording.content_type, /^audio\//)
      }
      assert.match(recording.content_type, /^(video|audio)\//)
      assert.ok(recording.url.endsWith(`/content.${recording.url.split('.').at(-1)}`))

      const download = await t.server.app.inject({
        method: 'GET',
        url: new URL(recording.url).pathname,
        headers: { authorization: `Bearer ${admin}` },
      })
      assert.equal(download.statusCode, 200)
      assert.equal(download.headers['content-type'], recording.content_type)
      assert.equal(createHash('sha256').update(download.rawPayload).digest('hex'), entry.sha256)
    })
  }

  test('rejected uploads leave nothing staged and no blob without a recording', async () => {
    assert.deepEqual(await listStagedUploads(t.config), [])
    const accepted = loadManifest().filter((e) => e.expect_upload === 'accept')
    assert.equal((await listBlobKeys(t.config)).length, accepted.length)
  })
})
