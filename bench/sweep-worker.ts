/**
 * One timed retention pass over a prepared DATA_DIR (bench/sweep-state.ts), in its own
 * process so that neither side inherits the other's heap, JIT or page-cache luck.
 *
 *   MODE=ours       the product's Sweeper, its expiry pass only (no orphan scan)
 *   MODE=reference  the same rows and files deleted directly: fs.unlink of each file
 *                   (BATCH_ROWS at a time, 16 at once like the product's deleteEach) and one
 *                   DELETE … WHERE id IN (…) per batch through better-sqlite3, with the
 *                   product's SQLite settings (WAL, synchronous=FULL)
 *
 * Prints one JSON line: { seconds, deleted, batches, errors } (+ unlinkSeconds, reference).
 * Run as `node dist/bench/sweep-worker.js` with MODE, DATA_DIR (and BATCH_ROWS).
 */
import fsp from 'node:fs/promises'
import path from 'node:path'

import { createDatabase, openSqlite } from '../src/db/database.js'
import { KyselyAuditLog } from '../src/db/kysely-audit-log.js'
import { KyselyRecordingRepository } from '../src/db/kysely-recording-repository.js'
import { systemClock } from '../src/recordings/clock.js'
import { Sweeper } from '../src/recordings/sweeper.js'
import { LocalBlobStore } from '../src/storage/local-blob-store.js'
import { sweepPaths } from './sweep-state.js'

const UNLINK_CONCURRENCY = 16

async function ours(dataDir: string) {
  const paths = sweepPaths(dataDir)
  const db = createDatabase({ kind: 'sqlite', path: paths.db })
  try {
    const blobs = new LocalBlobStore(paths.blobs)
    await blobs.init()
    const audit = new KyselyAuditLog(db, systemClock)
    const recordings = new KyselyRecordingRepository(db, 'sqlite')
    const sweeper = new Sweeper({ recordings, blobs, audit, clock: systemClock })
    const started = process.hrtime.bigint()
    const report = await sweeper.sweep({ reconcile: false })
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    return { seconds, deleted: report.expired, batches: report.batches, errors: report.errors }
  } finally {
    await db.destroy()
  }
}

async function reference(dataDir: string, batchRows: number) {
  const paths = sweepPaths(dataDir)
  const db = openSqlite(paths.db)
  try {
    // Which rows to delete is known up front (not timed): the reference only deletes.
    const rows = db
      .prepare(
        "select id, blob_key from recordings where state = 'active' and legal_hold = 0 " +
          'and expires_at <= ? order by expires_at',
      )
      .all(Date.now()) as { id: string; blob_key: string }[]
    const fullBatch = db.prepare(
      `delete from recordings where id in (${Array(batchRows).fill('?').join(', ')})`,
    )
    let batches = 0
    let unlinkNs = 0n
    const started = process.hrtime.bigint()
    for (let from = 0; from < rows.length; from += batchRows) {
      const batch = rows.slice(from, from + batchRows)
      const unlinkStarted = process.hrtime.bigint()
      let next = 0
      await Promise.all(
        Array.from({ length: UNLINK_CONCURRENCY }, async () => {
          while (next < batch.length) {
            const row = batch[next++] as { blob_key: string }
            await fsp.unlink(path.join(paths.blobs, row.blob_key))
          }
        }),
      )
      unlinkNs += process.hrtime.bigint() - unlinkStarted
      const ids = batch.map((row) => row.id)
      const statement =
        ids.length === batchRows
          ? fullBatch
          : db.prepare(`delete from recordings where id in (${ids.map(() => '?').join(', ')})`)
      statement.run(...ids)
      batches++
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const unlinkSeconds = Number(unlinkNs) / 1e9
    return { seconds, unlinkSeconds, deleted: rows.length, batches, errors: [] as string[] }
  } finally {
    db.close()
  }
}

async function main() {
  const dataDir = process.env.DATA_DIR
  const mode = process.env.MODE
  if (!dataDir) throw new Error('DATA_DIR is required')
  let result
  if (mode === 'ours') result = await ours(dataDir)
  else if (mode === 'reference') {
    const batchRows = Number(process.env.BATCH_ROWS)
    if (!Number.isInteger(batchRows) || batchRows < 1) throw new Error('BATCH_ROWS must be > 0')
    result = await reference(dataDir, batchRows)
  } else throw new Error('MODE must be ours or reference')
  console.log(JSON.stringify(result))
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
