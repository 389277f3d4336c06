import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'

import SqliteDatabase from 'better-sqlite3'
import { sql } from 'kysely'

import { BUSY_RETRY_BUDGET_MS } from '../../src/db/busy-retry.js'
import { SQLITE_BUSY_TIMEOUT_MS } from '../../src/db/database.js'
import { corpusPath } from '../support/corpus.js'
import { createPaddedMp4 } from '../support/media-fixtures.js'
import { startContender } from '../support/sqlite-contender.js'
import {
  embeddedOnly,
  listBlobKeys,
  listStagedUploads,
  openDatabase,
  scaleoutOnly,
} from '../support/state.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

const MP4 = 'mp4ff_prog_8s.mp4'

const suffix = () => Math.random().toString(36).slice(2, 10)

describe(
  'SQLite under contention from another process (B17, S49)',
  embeddedOnly('lock contention on the SQLite file from a second process'),
  () => {
    let t: TestServer
    let recorder: string
    let admin: string
    let dbFile: string

    before(async () => {
      t = await startTestServer()
      recorder = await t.token('org-sqlite', ['recorder'])
      admin = await t.token('org-sqlite', ['org_admin'])
      dbFile = path.join(t.dataDir, 'recordings.db')
      // The contender updates an existing row, so there must be one.
      assert.equal(
        (await upload(`m-${suffix()}`, await fs.readFile(corpusPath(MP4)))).statusCode,
        201,
      )
    })
    after(() => t.close())

    const upload = (meetingId: string, body: Buffer) =>
      t.server.app.inject({
        method: 'POST',
        url: `/recordings?meeting_id=${meetingId}`,
        headers: { authorization: `Bearer ${recorder}` },
        payload: body,
      })
    const list = () =>
      t.server.app.inject({ url: '/recordings', headers: { authorization: `Bearer ${admin}` } })

    test('runs with journal_mode=wal, synchronous=FULL and foreign_keys on', async () => {
      const reader = new SqliteDatabase(dbFile, { readonly: true })
      try {
        assert.equal(reader.pragma('journal_mode', { simple: true }), 'wal')
      } finally {
        reader.close()
      }
      const pragma = async (name: 'synchronous' | 'foreign_keys' | 'busy_timeout') => {
        const { rows } = await sql<Record<string, unknown>>`pragma ${sql.raw(name)}`.execute(
          t.server.db,
        )
        return Object.values(rows[0] ?? {})[0]
      }
      assert.equal(await pragma('synchronous'), 2)
      assert.equal(await pragma('foreign_keys'), 1)
      // better-sqlite3 blocks the event loop for up to this long: it must stay short.
      assert.equal(await pragma('busy_timeout'), SQLITE_BUSY_TIMEOUT_MS)
      assert.ok(SQLITE_BUSY_TIMEOUT_MS <= 1000)
    })

    test('finishes an upload within ~3 s while another process holds BEGIN IMMEDIATE for 2 s', async () => {
      const body = await fs.readFile(corpusPath('mp4ff_bbb_prog_10s.mp4'))
      const logsBefore = t.logs.length
      const holder = startContender(dbFile, 'hold', 2000)
      const lag = monitorEventLoopDelay({ resolution: 10 })
      try {
        await holder.next('locked')
        lag.enable()
        const startedMs = Date.now()
        const response = await upload(`m-${suffix()}`, body)
        const elapsedMs = Date.now() - startedMs
        lag.disable()

        assert.equal(response.statusCode, 201, response.body)
        assert.ok(elapsedMs < 3500, `the upload took ${elapsedMs} ms`)
        assert.ok(elapsedMs >= 1000, 'the upload should have waited for the lock')
        const lagMs = lag.max / 1e6
        assert.ok(
          lagMs <= SQLITE_BUSY_TIMEOUT_MS + 300,
          `the event loop was blocked for ${Math.round(lagMs)} ms`,
        )
        assert.equal(await holder.exited, 0)
      } finally {
        lag.disable()
        await holder.stop()
      }
      const newLogs = t.logs.slice(logsBefore)
      assert.ok(!newLogs.some((line) => /SQLITE_BUSY|database is locked/.test(line)))
    })

    test('answers 503 with Retry-After once the lock outlasts the retry budget, keeping nothing', async () => {
      const meetingId = `m-${suffix()}`
      const published = await listBlobKeys(t.config)
      const holder = startContender(dbFile, 'hold', BUSY_RETRY_BUDGET_MS + 3000)
      try {
        await holder.next('locked')
        const response = await upload(
          meetingId,
          await fs.readFile(corpusPath('peertube_video_short.mkv')),
        )
        assert.equal(response.statusCode, 503, response.body)
        assert.match(String(response.headers['retry-after']), /^\d+$/)
        assert.equal(response.json().code, 'service_unavailable')
        assert.doesNotMatch(response.body, /SQLITE|locked|\//)

        // A list only reads, and WAL readers never wait for a writer.
        const listed = await list()
        assert.equal(listed.statusCode, 200)
        await holder.exited
      } finally {
        await holder.stop()
      }
      const rows = await t.server.db
        .selectFrom('recordings')
        .select('id')
        .where('meetingId', '=', meetingId)
        .execute()
      assert.deepEqual(rows, [])
      assert.deepEqual(await listBlobKeys(t.config), published)
      assert.deepEqual(await listStagedUploads(t.config), [])
    })

    test('serves parallel uploads and lists without a 5xx while another process loops read-then-write transactions', async () => {
      const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-sqlite-'))
      const logsBefore = t.logs.length
      const loop = startContender(dbFile, 'loop', 8000)
      try {
        const media = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            createPaddedMp4({
              dir: workDir,
              sizeBytes: 1_000_000,
              marker: `loop-${i}-${suffix()}`,
            }),
          ),
        )
        const meetingIds = media.map(() => `m-${suffix()}`)
        const uploads = Promise.all(
          media.map(async (file, i) => upload(meetingIds[i] ?? '', await fs.readFile(file.path))),
        )
        const lists: Promise<{ statusCode: number }>[] = []
        for (let i = 0; i < 50; i++) {
          lists.push(list())
          await sleep(100) // spread over ~5 s of the loop
        }
        const statuses = [...(await uploads), ...(await Promise.all(lists))].map(
          (r) => r.statusCode,
        )
        assert.deepEqual(
          statuses.filter((status) => status >= 500),
          [],
        )
        assert.ok((await uploads).every((r) => r.statusCode === 201))

        const done = await loop.next('done')
        assert.ok(
          Number(done.commits) > 10,
          `the contender committed ${String(done.commits)} times`,
        )
        const all = (await list()).json().recordings as { meeting_id: string }[]
        for (const meetingId of meetingIds) {
          assert.equal(all.filter((r) => r.meeting_id === meetingId).length, 1)
        }
        const newLogs = t.logs.slice(logsBefore)
        assert.ok(!newLogs.some((line) => /SQLITE_BUSY|database is locked/.test(line)))
      } finally {
        await loop.stop()
        await fs.rm(workDir, { recursive: true, force: true })
      }
    })
  },
)

describe(
  'PostgreSQL under a lock held by another connection (B17, S49)',
  scaleoutOnly('the SQLite file lock above has this counterpart'),
  () => {
    let t: TestServer
    let recorder: string

    before(async () => {
      t = await startTestServer()
      recorder = await t.token('org-pg-lock', ['recorder'])
    })
    after(() => t.close())

    test('finishes an upload within ~3 s while another connection locks the table for 2 s', async () => {
      const body = await fs.readFile(corpusPath('mp4ff_bbb_prog_10s.mp4'))
      const other = openDatabase(t.config)
      let released = false
      let holder: Promise<void> | undefined
      try {
        let signalLocked!: () => void
        const locked = new Promise<void>((resolve) => (signalLocked = resolve))
        holder = other.transaction().execute(async (trx) => {
          await sql`LOCK TABLE recordings IN ACCESS EXCLUSIVE MODE`.execute(trx)
          signalLocked()
          await sleep(2000)
          released = true
        })
        await Promise.race([locked, holder])
        const startedMs = Date.now()
        const response = await t.server.app.inject({
          method: 'POST',
          url: `/recordings?meeting_id=m-${suffix()}`,
          headers: { authorization: `Bearer ${recorder}` },
          payload: body,
        })
        const elapsedMs = Date.now() - startedMs

        assert.equal(response.statusCode, 201, response.body)
        assert.ok(released, 'the upload committed while the table was locked')
        assert.ok(elapsedMs < 3500, `the upload took ${elapsedMs} ms`)
        assert.ok(elapsedMs >= 1000, 'the upload should have waited for the lock')
        assert.deepEqual(await listStagedUploads(t.config), [])
      } finally {
        await holder
        await other.destroy()
      }
    })
  },
)
