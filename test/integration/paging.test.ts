import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'

import { corpusPath } from '../support/corpus.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

const MP4 = 'mp4ff_prog_8s.mp4'
const MAX_PAGES = 20 // every walk is bounded

const suffix = () => Math.random().toString(36).slice(2, 10)

describe('keyset paging under concurrent changes (B16)', () => {
  let t: TestServer
  let body: Buffer

  before(async () => {
    t = await startTestServer({ listen: true })
    body = await fs.readFile(corpusPath(MP4))
  })
  after(() => t.close())

  /** Uploads one recording per `hoursAgo` entry, oldest first; returns their ids in that order. */
  async function seed(orgId: string, hoursAgo: number[]): Promise<string[]> {
    const recorder = await t.token(orgId, ['recorder'])
    const ids: string[] = []
    for (const hours of hoursAgo) {
      const createdAt = new Date(Date.now() - hours * 3_600_000).toISOString().slice(0, 19) + 'Z'
      const response = await t.server.app.inject({
        method: 'POST',
        url: `/recordings?meeting_id=m-${suffix()}&created_at=${createdAt}`,
        headers: { authorization: `Bearer ${recorder}` },
        payload: body,
      })
      assert.equal(response.statusCode, 201, response.body)
      ids.push(response.json().id)
    }
    return ids
  }

  async function page(admin: string, query: string) {
    const response = await fetch(`${t.baseUrl}/recordings?${query}`, {
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(response.status, 200, await response.clone().text())
    const json = (await response.json()) as {
      recordings: { id: string }[]
      next_cursor: string | null
    }
    return {
      ids: json.recordings.map((r) => r.id),
      next: json.next_cursor,
      link: response.headers.get('link'),
    }
  }

  /** Follows next_cursor from `cursor` to the end; the ids in the order they came. */
  async function walk(admin: string, cursor: string | null, limit: number): Promise<string[]> {
    const seen: string[] = []
    for (let pages = 0; cursor !== null; pages++) {
      assert.ok(pages < MAX_PAGES, 'the walk does not end')
      const next = await page(admin, `limit=${limit}&cursor=${encodeURIComponent(cursor)}`)
      assert.ok(next.ids.length > 0 || next.next === null, 'an empty page that points further')
      seen.push(...next.ids)
      cursor = next.next
    }
    return seen
  }

  const remove = async (admin: string, id: string) => {
    const response = await t.server.app.inject({
      method: 'DELETE',
      url: `/recordings/${id}`,
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(response.statusCode, 204)
  }

  test('neither repeats nor skips when a newer recording arrives and one is deleted between pages', async () => {
    const orgId = `org-b16-${suffix()}`
    const admin = await t.token(orgId, ['org_admin'])
    const [r1, r2, r3, r4, r5, r6] = await seed(orgId, [6, 5, 4, 3, 2, 1])

    const first = await page(admin, 'limit=2')
    assert.deepEqual(first.ids, [r6, r5])
    assert.ok(first.next)
    assert.match(first.link ?? '', /^<http:\/\/[^>]+[?&]cursor=[^>]+>; rel="next"$/)

    const [r7] = await seed(orgId, [0.5])
    await remove(admin, r4 ?? '')

    const rest = await walk(admin, first.next, 2)
    assert.deepEqual(rest, [r3, r2, r1])
    assert.equal(new Set([...first.ids, ...rest]).size, first.ids.length + rest.length)
    assert.ok(!rest.includes(r7 ?? ''), 'R7 is newer than page 1 and belongs to a new walk')

    const again = await page(admin, 'limit=1000')
    assert.deepEqual(again.ids, [r7, r6, r5, r3, r2, r1])
  })

  test('continues after a cursor whose boundary recording has been deleted', async () => {
    const orgId = `org-b16-${suffix()}`
    const admin = await t.token(orgId, ['org_admin'])
    const [r1, r2, r3, r4] = await seed(orgId, [4, 3, 2, 1])

    const first = await page(admin, 'limit=2')
    assert.deepEqual(first.ids, [r4, r3])
    await remove(admin, r3 ?? '')

    assert.deepEqual(await walk(admin, first.next, 2), [r2, r1])
  })

  test('visits every recording once when many share one created_at', async () => {
    const orgId = `org-b16-${suffix()}`
    const admin = await t.token(orgId, ['org_admin'])
    const sameSecond = new Date(Date.now() - 3_600_000).toISOString().slice(0, 19) + 'Z'
    const recorder = await t.token(orgId, ['recorder'])
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const response = await t.server.app.inject({
        method: 'POST',
        url: `/recordings?meeting_id=m-${suffix()}&created_at=${sameSecond}`,
        headers: { authorization: `Bearer ${recorder}` },
        payload: body,
      })
      assert.equal(response.statusCode, 201)
      ids.push(response.json().id)
    }

    const first = await page(admin, 'limit=2')
    const all = [...first.ids, ...(await walk(admin, first.next, 2))]
    assert.equal(all.length, 5)
    assert.deepEqual([...all].sort(), [...ids].sort())
  })
})
