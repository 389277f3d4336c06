import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'

import { corpusPath } from '../support/corpus.js'
import { connect, readResponse, requestHead } from '../support/raw-http.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

const FILE = 'mp4ff_prog_8s.mp4'

describe('concurrent uploads per caller (S40)', () => {
  let t: TestServer
  before(
    async () => (t = await startTestServer({ listen: true, env: { MAX_CONCURRENT_UPLOADS: '2' } })),
  )
  after(() => t.close())

  test('past the cap a caller gets 429 with Retry-After; other callers are not affected', async () => {
    const bytes = await fs.readFile(corpusPath(FILE))
    const busy = await t.token('org-a', ['recorder'], { sub: 'busy-recorder' })
    const other = await t.token('org-a', ['recorder'], { sub: 'other-recorder' })
    // The same subject name issued in another org is another caller.
    const sameSubOtherOrg = await t.token('org-b', ['recorder'], { sub: 'busy-recorder' })

    // Two uploads that send only their first bytes and then wait.
    const slow = await Promise.all(
      [1, 2].map(async (n) => {
        const socket = await connect(t.baseUrl)
        socket.write(
          requestHead('POST', `/recordings?meeting_id=slow-${n}`, {
            authorization: `Bearer ${busy}`,
            'content-length': bytes.length,
          }),
        )
        socket.write(bytes.subarray(0, 1000))
        return socket
      }),
    )
    await new Promise((resolve) => setTimeout(resolve, 200))

    const third = await fetch(`${t.baseUrl}/recordings?meeting_id=third`, {
      method: 'POST',
      headers: { authorization: `Bearer ${busy}` },
      body: bytes,
    })
    assert.equal(third.status, 429)
    assert.equal(third.headers.get('retry-after'), '5')
    assert.equal(((await third.json()) as { code: string }).code, 'too_many_requests')

    const fromOther = await fetch(`${t.baseUrl}/recordings?meeting_id=other`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other}` },
      body: bytes,
    })
    assert.equal(fromOther.status, 201)
    const fromOtherOrg = await fetch(`${t.baseUrl}/recordings?meeting_id=other-org`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sameSubOtherOrg}` },
      body: bytes,
    })
    assert.equal(fromOtherOrg.status, 201)

    // Finishing the slow uploads frees the slots.
    const finished = await Promise.all(
      slow.map(async (socket) => {
        socket.write(bytes.subarray(1000))
        const response = await readResponse(socket)
        socket.destroy()
        return response.statusCode
      }),
    )
    assert.deepEqual(finished, [201, 201])
    const again = await fetch(`${t.baseUrl}/recordings?meeting_id=again`, {
      method: 'POST',
      headers: { authorization: `Bearer ${busy}` },
      body: bytes,
    })
    assert.equal(again.status, 201)
  })
})
