import type { Readable } from 'node:stream'

import type { Principal } from '../auth/principal.js'
import type {
  RecordingFilter,
  RecordingRecord,
  RecordingRepository,
} from '../db/recording-repository.js'
import { errors } from '../errors.js'
import type { BlobStore, ByteRange } from '../storage/blob-store.js'
import type { AuditLog } from './audit-log.js'
import type { Clock } from './clock.js'
import { decodeCursor, encodeCursor } from './list-cursor.js'

export interface RequestContext {
  principal: Principal
  clientIp?: string
  requestId?: string
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

  /** Every recording of the org, newest first, as a lazy sequence (memory stays flat). */
  listAll(options: { context: RequestContext; filter: RecordingFilter }) {
    return this.deps.recordings.listAll({
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
   * Deletes a recording now: hidden first (404 at once), then its bytes, then its row. If the
   * blob cannot be removed the row stays hidden and the deletion is finished later.
   */
  async delete(context: RequestContext, id: string): Promise<void> {
    const record = await this.deps.recordings.hide(context.principal.orgId, id, this.deps.clock())
    if (!record) {
      await this.audit(context, 'access_denied', id, 'failure')
      throw errors.notFound()
    }
    await this.audit(context, 'delete', id, 'success')
    // TODO(#3): a failure between hide and remove is finished by the sweeper, which #3 builds.
    await this.deps.blobs.delete(record.blobKey)
    await this.deps.recordings.remove(id)
  }

  private audit(
    context: RequestContext,
    action: 'download' | 'delete' | 'access_denied',
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
