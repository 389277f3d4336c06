import { sql, type Kysely, type SelectQueryBuilder } from 'kysely'

import { errors } from '../errors.js'
import { retryWhileBusy } from './busy-retry.js'
import { translateDatabaseError } from './database-errors.js'
import type { SqlDialect } from './migrations.js'
import type {
  InsertOutcome,
  Keyset,
  RecordingFilter,
  RecordingRecord,
  RecordingRepository,
} from './recording-repository.js'
import type { Database, RecordingsTable } from './schema.js'

const STREAM_BATCH_ROWS = 500 // rows per query when streaming a whole list

/**
 * The repository over Kysely; the SQL is the same on every dialect except the sweeper's
 * claim, which on PostgreSQL locks the rows it takes and skips those other nodes hold.
 */
export class KyselyRecordingRepository implements RecordingRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: SqlDialect = 'sqlite',
  ) {}

  async insert(record: RecordingRecord, nowMs: number): Promise<InsertOutcome> {
    for (let attempt = 0; ; attempt++) {
      try {
        await retryWhileBusy(() =>
          this.db
            .insertInto('recordings')
            .values({
              ...record,
              legalHold: record.legalHold ? 1 : 0,
              state: 'active',
              claimedUntil: null,
            })
            .execute(),
        )
        return { inserted: true }
      } catch (error) {
        if (!isUniqueViolation(error)) throw translate(error)
      }

      if (attempt > 2) throw errors.serviceUnavailable() // rows keep changing under us
      if (record.idempotencyKey !== null) {
        const byKey = await this.findByIdempotencyKey(record.orgId, record.idempotencyKey, nowMs)
        if (byKey) return { inserted: false, existing: byKey }
        await this.releaseIdempotencyKey(record.orgId, record.idempotencyKey)
      }
      const sameContent = await this.findActiveContent(record)
      if (!sameContent) continue // the conflict was the key, now released, or the row just went
      if (isVisible(sameContent, nowMs)) return { inserted: false, existing: sameContent }
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

  findByIdempotencyKey(orgId: string, key: string, nowMs: number) {
    return guard(async () => {
      const row = await this.visible(orgId, nowMs)
        .where('idempotencyKey', '=', key)
        .executeTakeFirst()
      return row && toRecord(row)
    })
  }

  /**
   * Takes an Idempotency-Key away from a row that is no longer visible (expired or being
   * deleted): a retry must not bring it back, and a new upload may use the key.
   */
  private releaseIdempotencyKey(orgId: string, key: string) {
    return guard(() =>
      this.db
        .updateTable('recordings')
        .set({ idempotencyKey: null })
        .where('orgId', '=', orgId)
        .where('idempotencyKey', '=', key)
        .execute(),
    )
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

  hide(orgId: string, id: string, nowMs: number, leaseUntilMs: number) {
    return guard(async () => {
      // One conditional update: of two deletes racing, only the one that changed the row
      // owns the deletion.
      const row = await this.db
        .updateTable('recordings')
        .set({ state: 'deleting', claimedUntil: leaseUntilMs })
        .where('orgId', '=', orgId)
        .where('id', '=', id)
        .where('state', '=', 'active')
        .where('legalHold', '=', 0)
        .where('expiresAt', '>', nowMs)
        .returningAll()
        .executeTakeFirst()
      return row && toRecord(row)
    })
  }

  unhide(id: string) {
    return guard(async () => {
      await this.db
        .updateTable('recordings')
        .set({ state: 'active', claimedUntil: null })
        .where('id', '=', id)
        .where('state', '=', 'deleting')
        .execute()
    })
  }

  claimForDeletion(options: { nowMs: number; leaseUntilMs: number; limit: number }) {
    // Each claim retries on its own; retrying the whole would re-run a committed first claim
    // and leave its rows waiting for their lease.
    return translated(async () => {
      const { nowMs, leaseUntilMs, limit } = options
      const lapsed = await this.claim(leaseUntilMs, () =>
        this.db
          .selectFrom('recordings')
          .select('id')
          .where('state', '=', sql.lit('deleting'))
          .where((eb) => eb.or([eb('claimedUntil', 'is', null), eb('claimedUntil', '<=', nowMs)]))
          .orderBy('claimedUntil')
          .limit(limit),
      )
      const claimed = lapsed.map((row) => ({ ...toRecord(row), wasDeleting: true }))
      if (claimed.length >= limit) return claimed

      // Literals, not parameters, so that SQLite can use the partial index recordings_sweep.
      const expired = await this.claim(leaseUntilMs, () =>
        this.db
          .selectFrom('recordings')
          .select('id')
          .where('state', '=', sql.lit('active'))
          .where('legalHold', '=', sql.lit(0))
          .where('expiresAt', '<=', nowMs)
          .orderBy('expiresAt')
          .limit(limit - claimed.length),
      )
      return claimed.concat(expired.map((row) => ({ ...toRecord(row), wasDeleting: false })))
    })
  }

  /** UPDATE … WHERE id IN (candidates [FOR UPDATE SKIP LOCKED]) RETURNING *. */
  private async claim(
    leaseUntilMs: number,
    candidates: () => SelectQueryBuilder<Database, 'recordings', { id: string }>,
  ): Promise<RecordingsTable[]> {
    let subquery = candidates()
    if (this.dialect === 'postgres') subquery = subquery.forUpdate().skipLocked()
    return retryWhileBusy(() =>
      this.db
        .updateTable('recordings')
        .set({ state: 'deleting', claimedUntil: leaseUntilMs })
        .where('id', 'in', subquery)
        .returningAll()
        .execute(),
    )
  }

  releaseClaims(ids: readonly string[]) {
    return guard(async () => {
      if (ids.length === 0) return
      await this.db
        .updateTable('recordings')
        .set({ claimedUntil: null })
        .where('id', 'in', ids)
        .where('state', '=', 'deleting')
        .execute()
    })
  }

  remove(id: string) {
    return guard(async () => {
      await this.db.deleteFrom('recordings').where('id', '=', id).execute()
    })
  }

  removeMany(ids: readonly string[]) {
    return guard(async () => {
      if (ids.length === 0) return
      await this.db
        .deleteFrom('recordings')
        .where('id', 'in', ids)
        .where('state', '=', 'deleting')
        .execute()
    })
  }

  findReferencedBlobKeys(blobKeys: readonly string[]) {
    return guard(async () => {
      if (blobKeys.length === 0) return new Set<string>()
      const rows = await this.db
        .selectFrom('recordings')
        .select('blobKey')
        .where('blobKey', 'in', blobKeys)
        .execute()
      return new Set(rows.map((row) => row.blobKey))
    })
  }

  setLegalHold(options: { orgId: string; id: string; hold: boolean; nowMs: number }) {
    return guard(async () => {
      const row = await this.db
        .updateTable('recordings')
        .set({ legalHold: options.hold ? 1 : 0 })
        .where('orgId', '=', options.orgId)
        .where('id', '=', options.id)
        .where('state', '=', 'active')
        .where((eb) => eb.or([eb('expiresAt', '>', options.nowMs), eb('legalHold', '=', 1)]))
        .returningAll()
        .executeTakeFirst()
      return row && toRecord(row)
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

/** Runs `work` once, translating driver errors. */
async function translated<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    throw translate(error)
  }
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
const translate = translateDatabaseError
