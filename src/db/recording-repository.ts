import type { RecordingsTable } from './schema.js'

/**
 * A recording's metadata as the services see it: the row without its deletion bookkeeping
 * (`state`, `claimedUntil`), with `legalHold` as a boolean. Instants are epoch milliseconds.
 */
export type RecordingRecord = Omit<RecordingsTable, 'state' | 'legalHold' | 'claimedUntil'> & {
  legalHold: boolean
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

/** A row claimed by the sweeper; `wasDeleting` when a deletion by hand was interrupted. */
export interface ClaimedRecording extends RecordingRecord {
  wasDeleting: boolean
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
  /** The visible row holding this Idempotency-Key in the org. */
  findByIdempotencyKey(
    orgId: string,
    key: string,
    nowMs: number,
  ): Promise<RecordingRecord | undefined>
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
  /**
   * Hides a visible, unheld row (first step of a deletion by hand) and claims it until
   * `leaseUntilMs`; undefined when it was not visible, held, or another delete won the race.
   */
  hide(
    orgId: string,
    id: string,
    nowMs: number,
    leaseUntilMs: number,
  ): Promise<RecordingRecord | undefined>
  /** Undoes `hide` when the deletion must not go ahead (its audit entry failed). */
  unhide(id: string): Promise<void>
  /**
   * Claims up to `limit` rows to delete, until `leaseUntilMs`: rows being deleted whose claim
   * lapsed (an interrupted deletion) first, then active, unheld rows past their expiry, oldest
   * expiry first. Claimed rows are hidden; on PostgreSQL concurrent claimers skip each other.
   */
  claimForDeletion(options: {
    nowMs: number
    leaseUntilMs: number
    limit: number
  }): Promise<ClaimedRecording[]>
  /** Lets claimed rows be claimed again at once (their blob could not be removed yet). */
  releaseClaims(ids: readonly string[]): Promise<void>
  /** Removes a row for good (last step of a deletion). Missing rows are ignored. */
  remove(id: string): Promise<void>
  /** Removes rows being deleted, in one statement. Missing rows are ignored. */
  removeMany(ids: readonly string[]): Promise<void>
  /** Of `blobKeys`, those a row (in any state) still refers to. */
  findReferencedBlobKeys(blobKeys: readonly string[]): Promise<Set<string>>
  /** Sets or clears the hold of a visible row; undefined when it is not visible. */
  setLegalHold(options: {
    orgId: string
    id: string
    hold: boolean
    nowMs: number
  }): Promise<RecordingRecord | undefined>
  /** Resolves when the database answers; rejects with service_unavailable. */
  ping(): Promise<void>
}
