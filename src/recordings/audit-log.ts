import type { AuditEventsTable } from '../db/schema.js'

/**
 * What an audit entry records. `expire` is a deletion by the sweeper; `hold` and `release`
 * set and clear a legal hold; `retention_set` is an operator's change of an org's retention.
 */
export const AUDIT_ACTIONS = [
  'list',
  'download',
  'upload',
  'delete',
  'hold',
  'release',
  'expire',
  'retention_set',
  'auth_failed',
  'access_denied',
] as const

export type AuditAction = (typeof AUDIT_ACTIONS)[number]

/** The actor of entries written by the server itself (the sweeper, the operator's CLI). */
export const SYSTEM_ACTOR = 'system:sweeper'

export interface AuditEvent {
  action: AuditAction
  outcome: 'success' | 'failure'
  orgId?: string
  actor?: string
  recordingId?: string
  clientIp?: string
  requestId?: string
  /** Short machine-readable facts (reason, range); never secrets or recording bytes. */
  detail?: Record<string, unknown>
}

/** An entry as stored: `at` is epoch milliseconds (UTC); `id` grows with insertion order. */
export type AuditRecord = Omit<AuditEventsTable, 'id' | 'detail'> & {
  id: number
  detail: Record<string, unknown> | null
}

export interface AuditQuery {
  orgId?: string
  recordingId?: string
  action?: string
  /** Inclusive lower bound on `at` (ms). */
  atOrAfterMs?: number
  /** Exclusive upper bound on `at` (ms). */
  beforeMs?: number
  /** Keyset position: only entries with an id beyond this one, in the direction of `order`. */
  afterId?: number
  order: 'newest_first' | 'oldest_first'
  limit: number
}

/**
 * Append-only record of who did what. `append` resolves once the entry is durable; when it
 * rejects, the caller must not carry out (or must not report) the action it describes.
 */
export interface AuditLog {
  append(event: AuditEvent): Promise<void>
  /** Appends all of `events` durably, or none of them (one transaction). */
  appendMany(events: readonly AuditEvent[]): Promise<void>
}

/** Reading the audit log back, for admins and the operator's export. */
export interface AuditReader {
  /** Up to `limit` entries matching the query, in the requested order. */
  listEvents(query: AuditQuery): Promise<AuditRecord[]>
}
