import { sql, type Kysely, type SelectQueryBuilder } from 'kysely'

import { errors, isAppError } from '../errors.js'
import { isBusyError, retryWhileBusy } from './busy-retry.js'
import type {
  InsertOutcome,
  Keyset,
  RecordingFilter,
  RecordingRecord,
  RecordingRepository,
} from './recording-repository.js'
import type { Database, RecordingsTable } from './schema.js'

const STREAM_BATCH_ROWS = 500 // rows per query when streaming a whole list

/** The repository over Kysely; the SQL is the same on every dialect. */
export class KyselyRecordingRepository implements RecordingRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(record: RecordingRecord, nowMs: number): Promise<InsertOutcome> {
    for (let attempt = 0; ; attempt++) {
      try {
        await retryWhileBusy(() =>
          this.db
            .insertInto('recordings')
            .values({ ...record, legalHold: record.legalHold ? 1 : 0, state: 'active' })
            .execute(),
        )
        return { inserted: true }
      } catch (error) {
        if (!isUniqueViolation(error)) throw translate(error)
      }

      const byKey =
        record.idempotencyKey === null
          ? undefined
          : await this.findByIdempotencyKey(record.orgId, record.idempotencyKey)
      if (byKey) return { inserted: false, existing: byKey }
      const sameContent = await this.findActiveContent(record)
      if (!sameContent) throw errors.serviceUnavailable() // the conflicting row just went away
      if (isVisible(sameContent, nowMs) || attempt > 0) {
        return { inserted: false, existing: sameContent }
      }
      // An expired copy that the sweeper has not reached yet is already 404 everywhere:
      // hand it to the sweeper (deleting) so that the new upload can take its place.
      await guard(() =>
        this.db
          .updateTable('recordings')
          .set({ state: 'deleting' })
          .where('id', '=', sameContent.id)
          .where('state', '=', 'active')
          .execute(),
      )
    }
  }

  private findActiveContent(record: RecordingRecord) {
    return guard(async () => {
      const row = await this.db
        .selectFrom('recordings')
        .selectAll()
        .where('orgId', '=', record.orgId)
        .where('meetingId', '=', record.meetingId)
        .where('sha256', '=', record.sha256)
        .where('state', '=', 'active')
        .executeTakeFirst()
      return row && toRecord(row)
    })
  }

  findVisible(orgId: string, id: string, nowMs: number) {
    return guard(async () => {
      const row = await this.visible(orgId, nowMs).where('id', '=', id).executeTakeFirst()
      return row && toRecord(row)
    })
  }

  findSameContent(orgId: string, meetingId: string, sha256: string, nowMs: number) {
    return guard(async () => {
      const row = await this.visible(orgId, nowMs)
        .where('meetingId', '=', meetingId)
        .where('sha256', '=', sha256)
        .orderBy('createdAt', 'desc')
        .executeTakeFirst()
      return row && toRecord(row)
    })
  }

  findByIdempotencyKey(orgId: string, key: string) {
    return guard(async () => {
      const row = await this.db
        .selectFrom('recordings')
        .selectAll()
        .where('orgId', '=', orgId)
        .where('idempotencyKey', '=', key)
        .executeTakeFirst()
      return row && toRecord(row)
    })
  }

  listPage(options: {
    orgId: string
    filter: RecordingFilter
    nowMs: number
    limit: number
    after?: Keyset
  }) {
    return guard(async () => {
      const rows = await this.pageQuery(options).execute()
      return rows.map(toRecord)
    })
  }

  async *listAll(options: { orgId: string; filter: RecordingFilter; nowMs: number }) {
    let after: Keyset | undefined
    for (;;) {
      // Each batch is its own short query, so a slow reader never holds the database.
      const batch = await this.listPage({ ...options, limit: STREAM_BATCH_ROWS, after })
      yield* batch
      const last = batch.at(-1)
      if (!last || batch.length < STREAM_BATCH_ROWS) return
      after = { createdAt: last.createdAt, id: last.id }
    }
  }

  hide(orgId: string, id: string, nowMs: number) {
    return guard(async () => {
      const row = await this.findVisible(orgId, id, nowMs)
      if (!row) return undefined
      const result = await this.db
        .updateTable('recordings')
        .set({ state: 'deleting' })
        .where('id', '=', id)
        .where('state', '=', 'active')
        .executeTakeFirst()
      // Two deletes racing: only the one whose update changed the row owns the deletion.
      return result.numUpdatedRows > 0n ? row : undefined
    })
  }

  remove(id: string) {
    return guard(async () => {
      await this.db.deleteFrom('recordings').where('id', '=', id).execute()
    })
  }

  ping() {
    return guard(async () => {
      await sql`select 1`.execute(this.db)
    })
  }

  private visible(orgId: string, nowMs: number) {
    return this.db
      .selectFrom('recordings')
      .selectAll()
      .where('orgId', '=', orgId)
      .where('state', '=', 'active')
      .where((eb) => eb.or([eb('expiresAt', '>', nowMs), eb('legalHold', '=', 1)]))
  }

  private pageQuery(options: {
    orgId: string
    filter: RecordingFilter
    nowMs: number
    limit: number
    after?: Keyset
  }): SelectQueryBuilder<Database, 'recordings', RecordingsTable> {
    const { filter, after } = options
    let query = this.visible(options.orgId, options.nowMs)
    if (filter.meetingId !== undefined) query = query.where('meetingId', '=', filter.meetingId)
    if (filter.createdAfter !== undefined) {
      query = query.where('createdAt', '>=', filter.createdAfter)
    }
    if (filter.createdBefore !== undefined) {
      query = query.where('createdAt', '<', filter.createdBefore)
    }
    if (after) {
      query = query.where((eb) =>
        eb.or([
          eb('createdAt', '<', after.createdAt),
          eb.and([eb('createdAt', '=', after.createdAt), eb('id', '<', after.id)]),
        ]),
      )
    }
    return query.orderBy('createdAt', 'desc').orderBy('id', 'desc').limit(options.limit)
  }
}

function toRecord(row: RecordingsTable): RecordingRecord {
  return {
    id: row.id,
    orgId: row.orgId,
    meetingId: row.meetingId,
    createdAt: Number(row.createdAt),
    uploadedAt: Number(row.uploadedAt),
    expiresAt: Number(row.expiresAt),
    durationMs: row.durationMs === null ? null : Number(row.durationMs),
    sizeBytes: Number(row.sizeBytes),
    contentType: row.contentType,
    extension: row.extension,
    sha256: row.sha256,
    blobKey: row.blobKey,
    fileName: row.fileName,
    legalHold: Number(row.legalHold) === 1,
    idempotencyKey: row.idempotencyKey,
    uploadedBy: row.uploadedBy,
  }
}

function isVisible(record: RecordingRecord, nowMs: number): boolean {
  return record.legalHold || record.expiresAt > nowMs
}

/** Runs one repository operation, retrying while the database is locked, then translates. */
async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await retryWhileBusy(work)
  } catch (error) {
    throw translate(error)
  }
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505'
}

/** Lock contention and lost connections are transient: 503 with Retry-After, not 500. */
function translate(error: unknown): unknown {
  if (isAppError(error)) return error
  if (isBusyError(error)) return errors.serviceUnavailable(error)
  const code = String((error as { code?: unknown } | undefined)?.code ?? '')
  if (code === 'SQLITE_FULL') return errors.insufficientStorage(error)
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03'].includes(code)) {
    return errors.serviceUnavailable(error)
  }
  return error
}
