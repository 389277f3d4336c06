import type { Kysely, Selectable } from 'kysely'

import { errors } from '../errors.js'
import type {
  AuditEvent,
  AuditLog,
  AuditQuery,
  AuditReader,
  AuditRecord,
} from '../recordings/audit-log.js'
import type { Clock } from '../recordings/clock.js'
import { retryWhileBusy } from './busy-retry.js'
import type { AuditEventsTable, Database } from './schema.js'

// 10 columns a row: 500 rows stay far below SQLite's 32,766 and PostgreSQL's 65,535 bound
// parameters per statement.
const MAX_ROWS_PER_INSERT = 500

interface Waiter {
  row: Omit<AuditEventsTable, 'id'>
  resolve: () => void
  reject: (error: unknown) => void
}

/**
 * The audit log as rows of `audit_events`: inserted, never updated or deleted.
 *
 * Group commit: `append` queues its entry and the queue is flushed once the current turn of
 * the event loop has run (setImmediate), so the entries of every request handled in that turn
 * go into one multi-row INSERT, one transaction and one fsync. A flush starts only when the
 * previous one has ended; entries arriving meanwhile form the next batch. Each caller's
 * promise settles with its batch: resolved once durable, rejected (every caller of the
 * batch) when the insert fails, so the fail-closed rule holds per entry.
 */
export class KyselyAuditLog implements AuditLog, AuditReader {
  #queue: Waiter[] = []
  #scheduled = false
  #flushing = false

  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
  ) {}

  append(event: AuditEvent): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ row: this.toRow(event), resolve, reject })
      this.schedule()
    })
  }

  async appendMany(events: readonly AuditEvent[]): Promise<void> {
    if (events.length === 0) return
    const rows = events.map((event) => this.toRow(event))
    await this.insert(rows)
  }

  async listEvents(query: AuditQuery): Promise<AuditRecord[]> {
    const newestFirst = query.order === 'newest_first'
    let select = this.db.selectFrom('auditEvents').selectAll()
    if (query.orgId !== undefined) select = select.where('orgId', '=', query.orgId)
    if (query.recordingId !== undefined) {
      select = select.where('recordingId', '=', query.recordingId)
    }
    if (query.action !== undefined) select = select.where('action', '=', query.action)
    if (query.atOrAfterMs !== undefined) select = select.where('at', '>=', query.atOrAfterMs)
    if (query.beforeMs !== undefined) select = select.where('at', '<', query.beforeMs)
    if (query.afterId !== undefined) {
      select = select.where('id', newestFirst ? '<' : '>', query.afterId)
    }
    try {
      const rows = await retryWhileBusy(() =>
        select
          .orderBy('id', newestFirst ? 'desc' : 'asc')
          .limit(query.limit)
          .execute(),
      )
      return rows.map(toRecord)
    } catch (error) {
      throw errors.serviceUnavailable(error)
    }
  }

  private schedule() {
    if (this.#scheduled || this.#flushing) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      void this.flush()
    })
  }

  private async flush(): Promise<void> {
    this.#flushing = true
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_ROWS_PER_INSERT)
        try {
          await this.insert(batch.map((waiter) => waiter.row))
          for (const waiter of batch) waiter.resolve()
        } catch (error) {
          for (const waiter of batch) waiter.reject(error)
        }
      }
    } finally {
      this.#flushing = false
    }
  }

  /** One statement (so one transaction) per chunk; more than one chunk runs in a transaction. */
  private async insert(rows: Omit<AuditEventsTable, 'id'>[]): Promise<void> {
    try {
      await retryWhileBusy(async () => {
        if (rows.length <= MAX_ROWS_PER_INSERT) {
          await this.db.insertInto('auditEvents').values(rows).execute()
          return
        }
        await this.db.transaction().execute(async (trx) => {
          for (let i = 0; i < rows.length; i += MAX_ROWS_PER_INSERT) {
            await trx
              .insertInto('auditEvents')
              .values(rows.slice(i, i + MAX_ROWS_PER_INSERT))
              .execute()
          }
        })
      })
    } catch (error) {
      throw errors.serviceUnavailable(error)
    }
  }

  private toRow(event: AuditEvent): Omit<AuditEventsTable, 'id'> {
    return {
      at: this.clock(),
      orgId: event.orgId ?? null,
      actor: event.actor ?? null,
      action: event.action,
      recordingId: event.recordingId ?? null,
      outcome: event.outcome,
      clientIp: event.clientIp ?? null,
      requestId: event.requestId ?? null,
      detail: event.detail ? JSON.stringify(event.detail) : null,
    }
  }
}

function toRecord(row: Selectable<AuditEventsTable>): AuditRecord {
  return {
    id: Number(row.id),
    at: Number(row.at),
    orgId: row.orgId,
    actor: row.actor,
    action: row.action,
    recordingId: row.recordingId,
    outcome: row.outcome,
    clientIp: row.clientIp,
    requestId: row.requestId,
    detail: row.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : null,
  }
}
