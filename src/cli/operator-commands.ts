import type { Config } from '../config.js'
import { createDatabase, migrateToLatest } from '../db/database.js'
import { KyselyAuditLog } from '../db/kysely-audit-log.js'
import { KyselyOrgSettingsRepository } from '../db/kysely-org-settings-repository.js'
import { KyselyRecordingRepository } from '../db/kysely-recording-repository.js'
import { createBlobStore } from '../main.js'
import { systemClock } from '../recordings/clock.js'
import { toRetentionJson } from '../http/retention-presenter.js'
import { RetentionService } from '../recordings/retention-service.js'
import { Sweeper, type SweepReport } from '../recordings/sweeper.js'

const EXPORT_BATCH_ROWS = 1000

/** Opens the database (migrated), runs `work`, and always closes it. */
async function withDatabase<T>(
  config: Readonly<Config>,
  work: (db: ReturnType<typeof createDatabase>) => Promise<T>,
): Promise<T> {
  // Operator commands may touch many rows at once: no serving statement time limit.
  const db = createDatabase(config.database, undefined, { purpose: 'migrate' })
  try {
    await migrateToLatest(db, config.database.kind)
    return await work(db)
  } finally {
    await db.destroy()
  }
}

/** `sweep`: one full pass (expired rows, orphan blobs, stale uploads), as a server runs it. */
export function runSweep(config: Readonly<Config>): Promise<SweepReport> {
  return withDatabase(config, async (db) => {
    const sweeper = new Sweeper({
      recordings: new KyselyRecordingRepository(db, config.database.kind),
      blobs: await createBlobStore(config),
      audit: new KyselyAuditLog(db, systemClock),
      clock: systemClock,
    })
    return sweeper.sweep({ reconcile: true })
  })
}

function retentionService(config: Readonly<Config>, db: ReturnType<typeof createDatabase>) {
  const clock = systemClock
  return new RetentionService({
    settings: new KyselyOrgSettingsRepository(db),
    audit: new KyselyAuditLog(db, clock),
    clock,
    defaultRetentionSeconds: config.retentionSeconds,
  })
}

/** `org set-retention ORG DURATION|default`: the new value and how many recordings moved. */
export function setOrgRetention(
  config: Readonly<Config>,
  options: { orgId: string; retentionSeconds: number | null; actor: string },
) {
  return withDatabase(config, async (db) => {
    const result = await retentionService(config, db).setRetention(options)
    return { ...toRetentionJson(result), recordings_updated: result.recordingsUpdated }
  })
}

/** `org get-retention ORG`. */
export function getOrgRetention(config: Readonly<Config>, orgId: string) {
  return withDatabase(config, async (db) => {
    return toRetentionJson(await retentionService(config, db).getRetention(orgId))
  })
}

/**
 * `audit export`: every entry (of one org, since an instant) oldest first, one JSON object a
 * line, read in keyset batches so memory stays flat however long the log is.
 */
export function exportAudit(
  config: Readonly<Config>,
  options: { orgId?: string; sinceMs?: number; write: (line: string) => Promise<void> },
): Promise<number> {
  return withDatabase(config, async (db) => {
    const reader = new KyselyAuditLog(db, systemClock)
    let afterId: number | undefined
    let count = 0
    for (;;) {
      const rows = await reader.listEvents({
        orgId: options.orgId,
        atOrAfterMs: options.sinceMs,
        afterId,
        order: 'oldest_first',
        limit: EXPORT_BATCH_ROWS,
      })
      for (const row of rows) {
        await options.write(
          `${JSON.stringify({
            id: String(row.id),
            at: new Date(row.at).toISOString(),
            org_id: row.orgId,
            actor: row.actor,
            action: row.action,
            recording_id: row.recordingId,
            outcome: row.outcome,
            client_ip: row.clientIp,
            request_id: row.requestId,
            detail: row.detail,
          })}\n`,
        )
      }
      count += rows.length
      const last = rows.at(-1)
      if (!last || rows.length < EXPORT_BATCH_ROWS) return count
      afterId = last.id
    }
  })
}
