import type { Readable } from 'node:stream'

import type { Principal } from '../auth/principal.js'
import type {
  RecordingFilter,
  RecordingRecord,
  RecordingRepository,
} from '../db/recording-repository.js'
import { errors } from '../errors.js'
import type { BlobStore, ByteRange } from '../storage/blob-store.js'
import type { AuditAction, AuditLog, AuditReader, AuditRecord } from './audit-log.js'
import { decodeAuditCursor, encodeAuditCursor, type AuditFilter } from './audit-cursor.js'
import type { Clock } from './clock.js'
import { decodeCursor, encodeCursor } from './list-cursor.js'
import type { OrgRetention, RetentionService } from './retention-service.js'

/** How long a deletion by hand may take before the sweeper may finish it instead. */
export const DELETE_LEASE_MS = 10 * 60 * 1000

export interface RequestContext {
  principal: Principal
  clientIp?: string
  requestId?: string
}

export interface AuditPage {
  events: AuditRecord[]
  nextCursor: string | null
}

/** The part of a pino logger the service uses, for failures it handles itself. */
export interface ServiceLogger {
  warn(fields: object, message: string): void
}

export interface RecordingPage {
  recordings: RecordingRecord[]
  nextCursor: string | null
}

/**
 * Reading and deleting recordings. Every lookup is scoped to the caller's org and to visible
 * rows, so another org's recording and an expired one are both simply not found.
 */
export class RecordingsService {
  constructor(
    private readonly deps: {
      recordings: RecordingRepository
      blobs: BlobStore
      audit: AuditLog
      clock: Clock
      /** For the org admin's read of its retention; optional where only recordings matter. */
      retention?: RetentionService
      auditReader?: AuditReader
      logger?: ServiceLogger
    },
  ) {}

  /** One page of at most `limit` recordings after `cursor`, newest first. */
  async listPage(options: {
    context: RequestContext
    filter: RecordingFilter
    limit: number
    cursor?: string
  }): Promise<RecordingPage> {
    const { orgId } = options.context.principal
    const after = options.cursor ? decodeCursor(options.cursor, orgId, options.filter) : undefined
    await this.auditList(options.context, options.filter, { limit: options.limit })
    // One row more than asked tells whether another page exists without a count query.
    const rows = await this.deps.recordings.listPage({
      orgId,
      filter: options.filter,
      nowMs: this.deps.clock(),
      limit: options.limit + 1,
      after,
    })
    const recordings = rows.slice(0, options.limit)
    const last = recordings.at(-1)
    const nextCursor =
      rows.length > options.limit && last
        ? encodeCursor({ createdAt: last.createdAt, id: last.id }, orgId, options.filter)
        : null
    return { recordings, nextCursor }
  }

  /**
   * Every recording of the org, newest first, as a lazy sequence (memory stays flat). The
   * list is audited when the first item is asked for, before any row is read.
   */
  async *listAll(options: { context: RequestContext; filter: RecordingFilter }) {
    await this.auditList(options.context, options.filter, {})
    yield* this.deps.recordings.listAll({
      orgId: options.context.principal.orgId,
      filter: options.filter,
      nowMs: this.deps.clock(),
    })
  }

  /** The visible recording, or not_found (also for other orgs' ids). */
  async get(context: RequestContext, id: string): Promise<RecordingRecord> {
    const record = await this.deps.recordings.findVisible(
      context.principal.orgId,
      id,
      this.deps.clock(),
    )
    if (!record) {
      await this.audit(context, 'access_denied', id, 'failure')
      throw errors.notFound()
    }
    return record
  }

  /**
   * Opens the bytes of a recording found by `get`. The download is audited before a byte is
   * sent; if the audit entry cannot be written, nothing is sent.
   */
  async openContent(
    context: RequestContext,
    record: RecordingRecord,
    range?: ByteRange,
  ): Promise<Readable> {
    await this.audit(context, 'download', record.id, 'success', range && { range })
    const stream = await this.deps.blobs.openRead(record.blobKey, range)
    if (!stream) throw errors.notFound()
    return stream
  }

  /**
   * Deletes a recording now: hidden first (404 at once), audited, then its bytes and its row.
   * If the audit entry cannot be written the recording is shown again and nothing is deleted.
   * Once hidden and audited the deletion is certain: if the blob or the row cannot be removed
   * now, the sweeper finishes it, and this still resolves.
   */
  async delete(context: RequestContext, id: string): Promise<void> {
    const { orgId } = context.principal
    const nowMs = this.deps.clock()
    const record = await this.deps.recordings.hide(orgId, id, nowMs, nowMs + DELETE_LEASE_MS)
    if (!record) {
      const visible = await this.deps.recordings.findVisible(orgId, id, nowMs)
      if (visible?.legalHold) {
        await this.audit(context, 'delete', id, 'failure', { reason: 'legal_hold' })
        throw errors.legalHold()
      }
      await this.audit(context, 'access_denied', id, 'failure')
      throw errors.notFound()
    }

    try {
      await this.audit(context, 'delete', id, 'success')
    } catch (error) {
      await this.deps.recordings.unhide(id).catch(() => undefined)
      throw error
    }

    try {
      await this.deps.blobs.delete(record.blobKey)
      await this.deps.recordings.remove(id)
    } catch (error) {
      this.deps.logger?.warn(
        { err: error, recordingId: id, module: 'recordings' },
        'deletion deferred to the sweeper',
      )
      // Let the next sweep finish it rather than waiting for the lease to lapse.
      await this.deps.recordings.releaseClaims([id]).catch(() => undefined)
    }
  }

  /**
   * Sets or clears the legal hold of a visible recording. A held recording is never swept
   * and stays visible after its expiry; released, it follows its expiry again. The entry is
   * written after the change and the change undone if it cannot be.
   */
  async setLegalHold(context: RequestContext, id: string, hold: boolean) {
    const { orgId } = context.principal
    const nowMs = this.deps.clock()
    const before = await this.deps.recordings.findVisible(orgId, id, nowMs)
    const after = before && (await this.deps.recordings.setLegalHold({ orgId, id, hold, nowMs }))
    if (!before || !after) {
      await this.audit(context, 'access_denied', id, 'failure')
      throw errors.notFound()
    }
    try {
      await this.audit(context, hold ? 'hold' : 'release', id, 'success', {
        was_held: before.legalHold,
      })
    } catch (error) {
      await this.deps.recordings
        .setLegalHold({ orgId, id, hold: before.legalHold, nowMs })
        .catch(() => undefined)
      throw error
    }
    return after
  }

  /** The caller's org retention (its own override, or the server default). */
  getRetention(context: RequestContext): Promise<OrgRetention> {
    if (!this.deps.retention) throw errors.internal()
    return this.deps.retention.getRetention(context.principal.orgId)
  }

  /** One page of the org's audit entries, newest first. */
  async listAuditEvents(options: {
    context: RequestContext
    filter: AuditFilter
    limit: number
    cursor?: string
  }): Promise<AuditPage> {
    if (!this.deps.auditReader) throw errors.internal()
    const { orgId } = options.context.principal
    const afterId = options.cursor
      ? decodeAuditCursor(options.cursor, orgId, options.filter)
      : undefined
    const rows = await this.deps.auditReader.listEvents({
      ...options.filter,
      orgId,
      afterId,
      order: 'newest_first',
      limit: options.limit + 1,
    })
    const events = rows.slice(0, options.limit)
    const last = events.at(-1)
    const nextCursor =
      rows.length > options.limit && last ? encodeAuditCursor(last.id, orgId, options.filter) : null
    return { events, nextCursor }
  }

  private auditList(
    context: RequestContext,
    filter: RecordingFilter,
    extra: { limit?: number },
  ): Promise<void> {
    return this.deps.audit.append({
      action: 'list',
      outcome: 'success',
      orgId: context.principal.orgId,
      actor: context.principal.subject,
      clientIp: context.clientIp,
      requestId: context.requestId,
      detail: {
        ...(filter.meetingId !== undefined && { meeting_id: filter.meetingId }),
        ...(filter.createdAfter !== undefined && { created_after_ms: filter.createdAfter }),
        ...(filter.createdBefore !== undefined && { created_before_ms: filter.createdBefore }),
        ...(extra.limit !== undefined && { limit: extra.limit }),
      },
    })
  }

  private audit(
    context: RequestContext,
    action: AuditAction,
    recordingId: string,
    outcome: 'success' | 'failure',
    detail?: Record<string, unknown>,
  ) {
    return this.deps.audit.append({
      action,
      outcome,
      orgId: context.principal.orgId,
      actor: context.principal.subject,
      recordingId,
      clientIp: context.clientIp,
      requestId: context.requestId,
      detail,
    })
  }
}
