import fs from 'node:fs'
import path from 'node:path'

import Database from 'better-sqlite3'

import { createDatabase, migrateToLatest } from '../src/db/database.js'
import { createRecordingId } from '../src/recordings/recording-id.js'
import { recordingBlobKey } from '../src/storage/keys.js'

const DAY_MS = 86_400_000
const INSERT_BATCH_ROWS = 100_000

/** Where the embedded default keeps its files under DATA_DIR (config.ts). */
export function sweepPaths(dataDir: string) {
  return { db: path.join(dataDir, 'recordings.db'), blobs: path.join(dataDir, 'blobs') }
}

/**
 * A DATA_DIR as the embedded default leaves it: the product's migrations, then `expired`
 * active unheld rows whose retention ran out about a day ago (in creation order), each with a
 * real small blob file at its key, spread evenly among `unexpired` rows (say, of orgs with a
 * longer retention; they need no files: the sweep never reads them).
 * Built with raw SQL in big transactions, with synchronous=OFF: only the end state matters.
 */
export async function prepareSweepState(
  dataDir: string,
  expired: number,
  unexpired: number,
): Promise<void> {
  const { db: dbPath, blobs } = sweepPaths(dataDir)
  fs.mkdirSync(dataDir, { recursive: true })
  const kysely = createDatabase({ kind: 'sqlite', path: dbPath })
  try {
    await migrateToLatest(kysely, 'sqlite')
  } finally {
    await kysely.destroy()
  }

  const db = new Database(dbPath)
  try {
    db.pragma('synchronous = OFF')
    const insert = db.prepare(
      'insert into recordings (id, org_id, meeting_id, created_at, uploaded_at, expires_at, ' +
        'duration_ms, size_bytes, content_type, extension, sha256, blob_key, file_name, state, ' +
        "legal_hold, idempotency_key, uploaded_by) values (?, 'sweep', ?, ?, ?, ?, 8000, 4, " +
        "'video/mp4', 'mp4', ?, ?, ?, 'active', 0, null, 'bench')",
    )
    const nowMs = Date.now()
    const total = expired + unexpired
    // Expired rows spread evenly among the others, as retention leaves them in real life.
    const every = total / expired
    const madeDirs = new Set<string>()
    let nextExpired = 0
    let expiredSoFar = 0
    const insertRange = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const createdAt = nowMs - 400 * DAY_MS + i * 1000
        const id = createRecordingId(createdAt)
        const key = recordingBlobKey(id)
        const isExpired = expiredSoFar < expired && i >= nextExpired
        let expiresAt = nowMs + 30 * DAY_MS
        if (isExpired) {
          expiredSoFar++
          nextExpired += every
          // Expiry follows creation, as it does for rows of one retention period.
          expiresAt = nowMs - DAY_MS + i
          const file = path.join(blobs, key)
          const dir = path.dirname(file)
          if (!madeDirs.has(dir)) {
            fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
            madeDirs.add(dir)
          }
          fs.writeFileSync(file, 'blob', { mode: 0o600 })
        }
        const meeting = `sweep-meeting-${i}`
        const sha256 = i.toString(16).padStart(64, '0')
        insert.run(id, meeting, createdAt, createdAt, expiresAt, sha256, key, `${meeting}.mp4`)
      }
    })
    for (let from = 0; from < total; from += INSERT_BATCH_ROWS) {
      insertRange(from, Math.min(total, from + INSERT_BATCH_ROWS))
    }
    if (expiredSoFar !== expired) throw new Error(`made ${expiredSoFar} expired rows`)
    db.exec('analyze')
    db.pragma('wal_checkpoint(TRUNCATE)')
  } finally {
    db.close()
  }
  fs.mkdirSync(path.join(blobs, 'tmp'), { recursive: true, mode: 0o700 })
}

/** Rows left and blob files left, to check that a pass did all of its work. */
export function countSweepState(dataDir: string): { rows: number; files: number } {
  const { db: dbPath, blobs } = sweepPaths(dataDir)
  const db = new Database(dbPath, { readonly: true })
  let rows: number
  try {
    rows = (db.prepare('select count(*) as n from recordings').get() as { n: number }).n
  } finally {
    db.close()
  }
  let files = 0
  const top = path.join(blobs, 'recordings')
  for (const shard of fs.readdirSync(top)) files += fs.readdirSync(path.join(top, shard)).length
  return { rows, files }
}
