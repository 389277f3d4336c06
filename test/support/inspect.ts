import path from 'node:path'

import SqliteDatabase from 'better-sqlite3'

/**
 * Read-only views of a test server's state, taken from outside the application: the audit
 * table and the recordings table as stored, and the log lines it wrote.
 */

export interface AuditRow {
  at: number
  org_id: string | null
  actor: string | null
  action: string
  recording_id: string | null
  outcome: string
  client_ip: string | null
  request_id: string | null
  detail: Record<string, unknown> | null
}

function withDb<T>(dataDir: string, work: (db: SqliteDatabase.Database) => T): T {
  const db = new SqliteDatabase(path.join(dataDir, 'recordings.db'), { readonly: true })
  try {
    return work(db)
  } finally {
    db.close()
  }
}

/** Every audit row, oldest first. */
export function readAuditRows(dataDir: string): AuditRow[] {
  return withDb(dataDir, (db) =>
    (db.prepare('SELECT * FROM audit_events ORDER BY id').all() as Record<string, unknown>[]).map(
      (row) => ({
        ...(row as unknown as AuditRow),
        detail: row.detail ? JSON.parse(String(row.detail)) : null,
      }),
    ),
  )
}

/** Audit rows written for one request id. */
export function auditRowsFor(dataDir: string, requestId: string): AuditRow[] {
  return readAuditRows(dataDir).filter((row) => row.request_id === requestId)
}

/** Every recordings row exactly as stored, ordered by id. */
export function readRecordingRows(dataDir: string): Record<string, unknown>[] {
  return withDb(
    dataDir,
    (db) => db.prepare('SELECT * FROM recordings ORDER BY id').all() as Record<string, unknown>[],
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
