import { sql, type Kysely } from 'kysely'

import { retryWhileBusy } from './busy-retry.js'
import { translateDatabaseError } from './database-errors.js'
import type { OrgSettingsRepository } from './org-settings-repository.js'
import type { Database } from './schema.js'

/** `org_settings` over Kysely; the same SQL on SQLite and PostgreSQL. */
export class KyselyOrgSettingsRepository implements OrgSettingsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  findRetentionSeconds(orgId: string) {
    return guard(async () => {
      const row = await this.db
        .selectFrom('orgSettings')
        .select('retentionSeconds')
        .where('orgId', '=', orgId)
        .executeTakeFirst()
      return row === undefined ? undefined : Number(row.retentionSeconds)
    })
  }

  setRetention(options: {
    orgId: string
    retentionSeconds: number | null
    effectiveRetentionSeconds: number
    nowMs: number
    notBeforeMs: number
  }) {
    const { orgId, retentionSeconds, nowMs, notBeforeMs } = options
    const retentionMs = options.effectiveRetentionSeconds * 1000
    return guard(() =>
      this.db.transaction().execute(async (trx) => {
        if (retentionSeconds === null) {
          await trx.deleteFrom('orgSettings').where('orgId', '=', orgId).execute()
        } else {
          await trx
            .insertInto('orgSettings')
            .values({ orgId, retentionSeconds, updatedAt: nowMs })
            .onConflict((oc) =>
              oc.column('orgId').doUpdateSet({ retentionSeconds, updatedAt: nowMs }),
            )
            .execute()
        }
        // Expired rows stay expired (they are already 404 and may be half deleted).
        const result = await trx
          .updateTable('recordings')
          .set({
            expiresAt: sql<number>`case when created_at + ${retentionMs} > ${notBeforeMs}
              then created_at + ${retentionMs} else ${notBeforeMs} end`,
          })
          .where('orgId', '=', orgId)
          .where('state', '=', 'active')
          .where('expiresAt', '>', nowMs)
          .executeTakeFirst()
        return Number(result.numUpdatedRows)
      }),
    )
  }
}

async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await retryWhileBusy(work)
  } catch (error) {
    throw translateDatabaseError(error)
  }
}
