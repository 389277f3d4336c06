/** A recording's metadata as stored. Instants are epoch milliseconds (UTC). */
export interface RecordingRecord {
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
  legalHold: boolean
  idempotencyKey: string | null
  uploadedBy: string
}

export interface RecordingFilter {
  meetingId?: string
  /** Inclusive lower bound on createdAt (ms). */
  createdAfter?: number
  /** Exclusive upper bound on createdAt (ms). */
  createdBefore?: number
}

/** Position in the newest-first order: the last item a page returned. */
export interface Keyset {
  createdAt: number
  id: string
}

export type InsertOutcome =
  { inserted: true } | { inserted: false; existing: RecordingRecord | undefined }

/**
 * Metadata port. "Visible" means not being deleted and not past `expiresAt` (unless held):
 * every read for clients goes through a visible-only method, so an expired recording is
 * 404 the moment it expires, whether or not the sweeper has run.
 */
export interface RecordingRepository {
  /**
   * Inserts a new row. When the org already holds the row's Idempotency-Key, or a live row of
   * the same meeting with the same sha256, nothing is inserted and that row is returned.
   */
  insert(record: RecordingRecord, nowMs: number): Promise<InsertOutcome>
  findVisible(orgId: string, id: string, nowMs: number): Promise<RecordingRecord | undefined>
  /** The visible recording of this org with the same meeting and content, if any. */
  findSameContent(
    orgId: string,
    meetingId: string,
    sha256: string,
    nowMs: number,
  ): Promise<RecordingRecord | undefined>
  /** The row holding this Idempotency-Key in the org, visible or not. */
  findByIdempotencyKey(orgId: string, key: string): Promise<RecordingRecord | undefined>
  /** Up to `limit` visible rows strictly after `after`, newest first. */
  listPage(options: {
    orgId: string
    filter: RecordingFilter
    nowMs: number
    limit: number
    after?: Keyset
  }): Promise<RecordingRecord[]>
  /** Every visible row, newest first, fetched in bounded batches (memory stays flat). */
  listAll(options: {
    orgId: string
    filter: RecordingFilter
    nowMs: number
  }): AsyncIterable<RecordingRecord>
  /** Hides a visible row (first step of any deletion); undefined when it was not visible. */
  hide(orgId: string, id: string, nowMs: number): Promise<RecordingRecord | undefined>
  /** Removes a row for good (last step of a deletion). Missing rows are ignored. */
  remove(id: string): Promise<void>
  /** Resolves when the database answers; rejects with service_unavailable. */
  ping(): Promise<void>
}
