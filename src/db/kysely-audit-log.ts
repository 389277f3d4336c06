import type { Kysely } from 'kysely'

import { errors } from '../errors.js'
import type { AuditEvent, AuditLog } from '../recordings/audit-log.js'
import type { Clock } from '../recordings/clock.js'
import { retryWhileBusy } from './busy-retry.js'
import type { Database } from './schema.js'

/** The audit log as rows of `audit_events`: inserted, never updated or deleted. */
export class KyselyAuditLog implements AuditLog {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
  ) {}

  async append(event: AuditEvent): Promise<void> {
    try {
      await retryWhileBusy(() =>
        this.db
          .insertInto('auditEvents')
          .values({
            at: this.clock(),
            orgId: event.orgId ?? null,
            actor: event.actor ?? null,
            action: event.action,
            recordingId: event.recordingId ?? null,
            outcome: event.outcome,
            clientIp: event.clientIp ?? null,
            requestId: event.requestId ?? null,
            detail: event.detail ? JSON.stringify(event.detail) : null,
          })
          .execute(),
      )
    } catch (error) {
      throw errors.serviceUnavailable(error)
    }
  }
}
