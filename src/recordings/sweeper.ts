import type { ClaimedRecording, RecordingRepository } from '../db/recording-repository.js'
import { isAppError } from '../errors.js'
import type { BlobStore } from '../storage/blob-store.js'
import { recordingBlobKey } from '../storage/keys.js'
import { SYSTEM_ACTOR, type AuditEvent, type AuditLog } from './audit-log.js'
import type { Clock } from './clock.js'
import { isRecordingId } from './recording-id.js'

/**
 * The retention sweeper (DESIGN.md §6). One pass:
 *   1. claims a batch: interrupted deletions whose lease lapsed, then expired unheld rows
 *      (state → deleting, so they are hidden before anything else happens);
 *   2. writes one audit entry per row (one multi-row insert); no entry, no deletion;
 *   3. deletes the blobs, a bounded number at a time;
 *   4. removes the rows whose blob is gone, in one statement.
 * A crash after any step leaves hidden rows that the next pass claims again (every step is
 * idempotent). Then, at most once per `reconcileIntervalMs`, it removes blobs that no row
 * names and staged uploads idle for longer than the grace period.
 */

export interface SweepReport {
  /** Rows deleted because they expired. */
  expired: number
  /** Interrupted deletions (by hand, or by an earlier pass) finished. */
  completed: number
  /** Blobs that could not be removed; their rows stay hidden and are retried. */
  failed: number
  orphanBlobs: number
  staleUploads: number
  batches: number
  reconciled: boolean
  durationMs: number
  /** Error codes or messages of what went wrong; empty when the pass was clean. */
  errors: string[]
}

/** The part of a pino logger the sweeper uses. */
export interface SweepLogger {
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
  debug(fields: object, message: string): void
}

const DEFAULT_BATCH_ROWS = 500
const DEFAULT_LEASE_MS = 10 * 60 * 1000 // far longer than one batch takes, even on slow S3
const DEFAULT_GRACE_MS = 60 * 60 * 1000 // far longer than any idle timeout of an upload
// S3 dates a multipart object by when its upload began, so a recording whose upload took
// hours looks old the moment it completes, before its row is committed: orphans wait longer.
const DEFAULT_ORPHAN_GRACE_MS = 48 * 60 * 60 * 1000
const DEFAULT_RECONCILE_INTERVAL_MS = 60 * 60 * 1000 // listing every blob is not free
const DEFAULT_MAX_BATCHES = 1000 // bounds one pass; the next pass continues

export interface SweeperOptions {
  recordings: RecordingRepository
  blobs: BlobStore
  audit: AuditLog
  /** Decides what has expired; injected so tests can move time. */
  clock: Clock
  /**
   * Compares against file and object modification times, which are wall-clock time
   * whatever `clock` says; defaults to Date.now.
   */
  wallClock?: Clock
  batchRows?: number
  leaseMs?: number
  /** Staged uploads (and, unless `orphanGraceMs` is set, orphan blobs) younger than this stay. */
  graceMs?: number
  /** Blobs without a row younger than this stay; default 48 h, or `graceMs` when given. */
  orphanGraceMs?: number
  reconcileIntervalMs?: number
  maxBatchesPerPass?: number
}

export class Sweeper {
  readonly leaseMs: number
  #lastReconciledMs = -Infinity
  #timer: NodeJS.Timeout | undefined
  #running: Promise<unknown> | undefined
  #stopped = false

  constructor(private readonly options: SweeperOptions) {
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS
  }

  /**
   * One pass. `reconcile` forces (true) or skips (false) the orphan and staged-upload scan;
   * by default it runs when the last one is older than the reconcile interval. Never throws:
   * failures are in the report, and whatever they left is finished by a later pass.
   */
  async sweep(options: { reconcile?: boolean } = {}): Promise<SweepReport> {
    const startedMs = Date.now()
    const report: SweepReport = {
      expired: 0,
      completed: 0,
      failed: 0,
      orphanBlobs: 0,
      staleUploads: 0,
      batches: 0,
      reconciled: false,
      durationMs: 0,
      errors: [],
    }
    try {
      await this.deleteExpired(report)
    } catch (error) {
      report.errors.push(describe(error))
    }

    const wallNowMs = this.wallClock()
    const reconcile =
      options.reconcile ??
      wallNowMs - this.#lastReconciledMs >=
        (this.options.reconcileIntervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS)
    if (reconcile) {
      this.#lastReconciledMs = wallNowMs
      report.reconciled = true
      const cutoffMs = wallNowMs - (this.options.graceMs ?? DEFAULT_GRACE_MS)
      const orphanGraceMs =
        this.options.orphanGraceMs ?? this.options.graceMs ?? DEFAULT_ORPHAN_GRACE_MS
      try {
        report.orphanBlobs = await this.removeOrphanBlobs(wallNowMs - orphanGraceMs)
      } catch (error) {
        report.errors.push(describe(error))
      }
      try {
        report.staleUploads = await this.options.blobs.removeStaleUploads(cutoffMs)
      } catch (error) {
        report.errors.push(describe(error))
      }
    }
    report.durationMs = Date.now() - startedMs
    return report
  }

  /** Runs a pass every `intervalMs` until `stop()`; a pass never overlaps the previous one. */
  start(intervalMs: number, logger: SweepLogger): void {
    const schedule = () => {
      if (this.#stopped) return
      this.#timer = setTimeout(() => {
        this.#running = this.sweep().then((report) => {
          logReport(logger, report)
          this.#running = undefined
          schedule()
        })
      }, intervalMs)
      // A pending sweep must not keep a finished process alive.
      this.#timer.unref()
    }
    schedule()
  }

  /** Stops the timer and waits for a pass in progress to end. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running
  }

  private async deleteExpired(report: SweepReport): Promise<void> {
    const { recordings, clock } = this.options
    const batchRows = this.options.batchRows ?? DEFAULT_BATCH_ROWS
    const maxBatches = this.options.maxBatchesPerPass ?? DEFAULT_MAX_BATCHES
    for (let batch = 0; batch < maxBatches; batch++) {
      const nowMs = clock()
      const claimed = await recordings.claimForDeletion({
        nowMs,
        leaseUntilMs: nowMs + this.leaseMs,
        limit: batchRows,
      })
      if (claimed.length === 0) return
      report.batches++
      const clean = await this.finish(claimed, report)
      // A batch with failures ends the pass: its released rows would be claimed right back.
      if (!clean || claimed.length < batchRows) return
    }
  }

  /** Steps 2–4 for one claimed batch; false when some blob could not be removed. */
  private async finish(claimed: ClaimedRecording[], report: SweepReport): Promise<boolean> {
    const { recordings, blobs, audit } = this.options
    const ids = claimed.map((row) => row.id)
    try {
      await audit.appendMany(claimed.map(auditEntryFor))
    } catch (error) {
      // Fail closed: no tombstone, no deletion. The rows stay hidden for the next pass.
      await recordings.releaseClaims(ids).catch(() => undefined)
      throw error
    }

    const result = await blobs.deleteMany(claimed.map((row) => row.blobKey))
    const gone = new Set(result.deleted)
    const done = claimed.filter((row) => gone.has(row.blobKey))
    await recordings.removeMany(done.map((row) => row.id))
    for (const row of done) {
      if (row.wasDeleting) report.completed++
      else report.expired++
    }
    if (result.failed.length === 0) return true

    report.failed += result.failed.length
    report.errors.push(describe(result.failed[0]?.error))
    const failedKeys = new Set(result.failed.map((f) => f.key))
    const retry = claimed.filter((row) => failedKeys.has(row.blobKey)).map((row) => row.id)
    await recordings.releaseClaims(retry).catch(() => undefined)
    return false
  }

  /** Deletes blobs older than `cutoffMs` that no row names; returns how many. */
  private async removeOrphanBlobs(cutoffMs: number): Promise<number> {
    let removed = 0
    let candidates: string[] = []
    const flush = async () => {
      const referenced = await this.options.recordings.findReferencedBlobKeys(candidates)
      const orphans = candidates.filter((key) => !referenced.has(key))
      candidates = []
      if (orphans.length === 0) return
      await this.options.audit.appendMany(
        orphans.map((key) => ({
          action: 'expire',
          outcome: 'success',
          actor: SYSTEM_ACTOR,
          recordingId: key.split('/').at(-1),
          detail: { reason: 'orphan_blob' },
        })),
      )
      const result = await this.options.blobs.deleteMany(orphans)
      removed += result.deleted.length
      if (result.failed.length > 0) throw result.failed[0]?.error
    }
    for await (const blob of this.options.blobs.listKeys()) {
      if (blob.modifiedAt >= cutoffMs || !isOurKey(blob.key)) continue
      candidates.push(blob.key)
      if (candidates.length >= (this.options.batchRows ?? DEFAULT_BATCH_ROWS)) await flush()
    }
    await flush()
    return removed
  }

  private wallClock(): number {
    return (this.options.wallClock ?? Date.now)()
  }
}

/** Only keys exactly as `keys.ts` builds them are ours to delete; anything else is left. */
function isOurKey(key: string): boolean {
  const id = key.split('/').at(-1) ?? ''
  return isRecordingId(id) && recordingBlobKey(id) === key
}

function auditEntryFor(row: ClaimedRecording): AuditEvent {
  return {
    action: row.wasDeleting ? 'delete' : 'expire',
    outcome: 'success',
    orgId: row.orgId,
    actor: SYSTEM_ACTOR,
    recordingId: row.id,
    detail: row.wasDeleting
      ? { reason: 'finish_interrupted_delete' }
      : { expires_at_ms: row.expiresAt, size_bytes: row.sizeBytes },
  }
}

function describe(error: unknown): string {
  if (isAppError(error)) return error.code
  return error instanceof Error ? error.message : String(error)
}

function logReport(logger: SweepLogger, report: SweepReport) {
  if (report.errors.length > 0) logger.warn({ module: 'sweeper', ...report }, 'sweep incomplete')
  else if (report.expired + report.completed + report.orphanBlobs + report.staleUploads > 0) {
    logger.info({ module: 'sweeper', ...report }, 'sweep done')
  } else logger.debug({ module: 'sweeper', ...report }, 'sweep found nothing')
}
