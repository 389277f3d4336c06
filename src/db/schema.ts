import type { Generated } from 'kysely'

/**
 * Table types, in camelCase: `CamelCasePlugin` maps them to the snake_case columns.
 * Every instant is an integer of milliseconds since the Unix epoch (UTC), on SQLite and
 * PostgreSQL alike, so comparisons are numeric and never depend on text formats or zones.
 */
export interface Database {
  recordings: RecordingsTable
  auditEvents: AuditEventsTable
  orgSettings: OrgSettingsTable
}

export type RecordingState = 'active' | 'deleting'

export interface RecordingsTable {
  id: string
  orgId: string
  meetingId: string
  createdAt: number
  uploadedAt: number
  expiresAt: number
  durationMs: number | null
  sizeBytes: number
  contentType: string
  extension: string
  sha256: string
  blobKey: string
  fileName: string
  state: RecordingState
  legalHold: number
  idempotencyKey: string | null
  uploadedBy: string
  /** While `state` is `deleting`: the claim's lease; null or past means anyone may finish it. */
  claimedUntil: number | null
}

/** Per-org overrides set by the operator; an org without a row uses the defaults. */
export interface OrgSettingsTable {
  orgId: string
  retentionSeconds: number
  updatedAt: number
}

export interface AuditEventsTable {
  id: Generated<number>
  at: number
  orgId: string | null
  actor: string | null
  action: string
  recordingId: string | null
  outcome: string
  clientIp: string | null
  requestId: string | null
  detail: string | null
}
