import fs from 'node:fs'
import path from 'node:path'

import SqliteDatabase from 'better-sqlite3'
import { CamelCasePlugin, Kysely, Migrator, SqliteDialect } from 'kysely'

import type { DatabaseConfig } from '../config.js'
import { migrationProvider, type SqlDialect } from './migrations.js'
import { createPostgresDialect, SERVING_STATEMENT_TIMEOUT_MS } from './postgres.js'
import type { Database } from './schema.js'

// better-sqlite3 blocks the event loop while it waits for a lock, so each wait is short;
// longer contention is retried with timers (busy-retry.ts), and only past that budget does
// it surface as 503 + Retry-After. Event-loop lag stays below this value.
export const SQLITE_BUSY_TIMEOUT_MS = 200

/**
 * Opens the metadata database named by the configuration. `onIdleError` hears about
 * PostgreSQL connections that die while idle (they are replaced; the process must not crash).
 */
export function createDatabase(
  config: DatabaseConfig,
  onIdleError: (error: Error) => void = () => undefined,
  options: { purpose?: 'serve' | 'migrate' } = {},
): Kysely<Database> {
  const dialect =
    config.kind === 'postgres'
      ? createPostgresDialect(
          config.url,
          onIdleError,
          options.purpose === 'migrate' ? 0 : SERVING_STATEMENT_TIMEOUT_MS,
        ).dialect
      : new SqliteDialect({ database: withStatementCache(openSqlite(config.path)) })
  return new Kysely<Database>({ dialect, plugins: [new CamelCasePlugin()] })
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

const STATEMENT_CACHE_ENTRIES = 256

/**
 * Kysely prepares every query anew; the same few statements run thousands of times a
 * second, so prepared statements are kept by SQL text (a statement still iterating is
 * `busy` and cannot be shared: a fresh one is prepared for that caller).
 */
function withStatementCache(sqlite: SqliteDatabase.Database) {
  const cache = new Map<string, SqliteDatabase.Statement>()
  return {
    close: () => sqlite.close(),
    prepare(query: string) {
      const cached = cache.get(query)
      if (cached && !cached.busy) return cached
      const statement = sqlite.prepare(query)
      if (!cached) {
        if (cache.size >= STATEMENT_CACHE_ENTRIES) {
          const oldest = cache.keys().next()
          if (!oldest.done) cache.delete(oldest.value)
        }
        cache.set(query, statement)
      }
      return statement
    },
  }
}

/** Applies every pending migration; throws with the failing migration's error. */
export async function migrateToLatest(
  db: Kysely<Database>,
  dialect: SqlDialect,
): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider(dialect) })
  const { error, results } = await migrator.migrateToLatest()
  if (error) throw error
  return (results ?? []).map((r) => `${r.migrationName}: ${r.status}`)
}
