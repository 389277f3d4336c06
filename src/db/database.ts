import fs from 'node:fs'
import path from 'node:path'

import SqliteDatabase from 'better-sqlite3'
import { CamelCasePlugin, Kysely, Migrator, SqliteDialect } from 'kysely'

import type { DatabaseConfig } from '../config.js'
import { migrationProvider } from './migrations.js'
import type { Database } from './schema.js'

// better-sqlite3 blocks the event loop while it waits for a lock, so each wait is short;
// longer contention is retried with timers (busy-retry.ts), and only past that budget does
// it surface as 503 + Retry-After. Event-loop lag stays below this value.
export const SQLITE_BUSY_TIMEOUT_MS = 200

/** Opens the metadata database named by the configuration. */
export function createDatabase(config: DatabaseConfig): Kysely<Database> {
  if (config.kind === 'postgres') {
    // TODO(#4): PostgreSQL dialect behind the same repository; until then only SQLite runs.
    throw new Error('DATABASE_URL=postgres:// is not supported yet; use the default SQLite')
  }
  return new Kysely<Database>({
    dialect: new SqliteDialect({ database: openSqlite(config.path) }),
    plugins: [new CamelCasePlugin()],
  })
}

/** A SQLite file with the settings durability and concurrency need (DESIGN.md, S49). */
export function openSqlite(file: string): SqliteDatabase.Database {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  const sqlite = new SqliteDatabase(file)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = FULL')
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`)
  // Checkpoint often enough that the -wal file stays small under steady writes.
  sqlite.pragma('wal_autocheckpoint = 1000')
  sqlite.pragma('journal_size_limit = 67108864')
  return sqlite
}

/** Applies every pending migration; throws with the failing migration's error. */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider })
  const { error, results } = await migrator.migrateToLatest()
  if (error) throw error
  return (results ?? []).map((r) => `${r.migrationName}: ${r.status}`)
}
