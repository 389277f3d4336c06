import type { Kysely, Selectable } from 'kysely'

import type { Config } from '../../src/config.js'
import type { AuditEventsTable, Database, RecordingsTable } from '../../src/db/schema.js'
import { openDatabase } from './state.js'

/**
 * Read-only views of a test server's state, taken from outside the HTTP API and the same way
 * on SQLite and PostgreSQL: the audit table and the recordings table as stored (camelCase,
 * through Kysely), and the log lines the server wrote.
 */

export type AuditRow = Omit<Selectable<AuditEventsTable>, 'detail'> & {
  detail: Record<string, unknown> | null
}

export type RecordingRow = Selectable<RecordingsTable>

/**
 * Where to read: a server's configuration (the database is opened anew and closed after the
 * read, for child-process servers) or an open Kysely instance (`t.server.db`, left open).
 */
export type StateSource = Readonly<Config> | Kysely<Database>

async function withDb<T>(source: StateSource, work: (db: Kysely<Database>) => Promise<T>) {
  if (!('storage' in source)) return work(source)
  const db = openDatabase(source)
  try {
    return await work(db)
  } finally {
    await db.destroy()
  }
}

/** Every audit row, oldest first. */
export async function readAuditRows(source: StateSource): Promise<AuditRow[]> {
  const rows = await withDb(source, (db) =>
    db.selectFrom('auditEvents').selectAll().orderBy('id').execute(),
  )
  return rows.map((row) => ({
    ...row,
    detail: row.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : null,
  }))
}

/** Audit rows written for one request id, oldest first. */
export async function auditRowsFor(source: StateSource, requestId: string): Promise<AuditRow[]> {
  return (await readAuditRows(source)).filter((row) => row.requestId === requestId)
}

/** Every recordings row exactly as stored, ordered by id. */
export async function readRecordingRows(source: StateSource): Promise<RecordingRow[]> {
  return withDb(source, (db) => db.selectFrom('recordings').selectAll().orderBy('id').execute())
}

/** One recordings row as stored, or undefined when there is none. */
export async function readRecordingRow(
  source: StateSource,
  id: string,
): Promise<RecordingRow | undefined> {
  return withDb(source, (db) =>
    db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst(),
  )
}

/**
 * The log lines that contain any of `secrets` or any `windowChars`-long piece of them
 * (a token cut in half is still a leak).
 */
export function linesLeaking(logs: string[], secrets: Iterable<string>, windowChars = 20) {
  const pieces = new Set<string>()
  for (const secret of secrets) {
    for (let i = 0; i + windowChars <= secret.length; i++) {
      pieces.add(secret.slice(i, i + windowChars))
    }
  }
  return logs.filter((line) => {
    for (let i = 0; i + windowChars <= line.length; i++) {
      if (pieces.has(line.slice(i, i + windowChars))) return true
    }
    return false
  })
}

/** The body of a problem response with its request id blanked, for byte comparisons. */
export function withoutRequestId(body: string): string {
  return body.replace(/"request_id":"[^"]*"/, '"request_id":""')
}
