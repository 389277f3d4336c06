import type { OrgSettingsRepository } from '../db/org-settings-repository.js'
import type { AuditLog } from './audit-log.js'
import type { Clock } from './clock.js'
import { LATE_ARRIVAL_GRACE_MS } from './retention.js'

/** An org's retention and where it comes from: its own override, or the server default. */
export interface OrgRetention {
  orgId: string
  retentionSeconds: number
  source: 'org' | 'default'
}

/** What ingest needs to date a new recording's expiry. */
export interface RetentionLookup {
  retentionSecondsFor(orgId: string): Promise<number>
}

/**
 * Retention per org (DESIGN.md §6): `RETENTION` for everyone unless the operator set an
 * override. A change applies to existing recordings too, but never brings an expiry closer
 * than 24 h from the change, so shortening retention never deletes without warning.
 */
export class RetentionService implements RetentionLookup {
  constructor(
    private readonly deps: {
      settings: OrgSettingsRepository
      audit: AuditLog
      clock: Clock
      defaultRetentionSeconds: number
    },
  ) {}

  async getRetention(orgId: string): Promise<OrgRetention> {
    const own = await this.deps.settings.findRetentionSeconds(orgId)
    return own === undefined
      ? { orgId, retentionSeconds: this.deps.defaultRetentionSeconds, source: 'default' }
      : { orgId, retentionSeconds: own, source: 'org' }
  }

  async retentionSecondsFor(orgId: string): Promise<number> {
    return (await this.getRetention(orgId)).retentionSeconds
  }

  /**
   * Sets the org's retention (null: back to the default) and recomputes the expiry of its
   * unexpired recordings. Audited before the change: no entry, no change.
   */
  async setRetention(options: {
    orgId: string
    retentionSeconds: number | null
    actor: string
  }): Promise<OrgRetention & { recordingsUpdated: number }> {
    const { orgId, retentionSeconds, actor } = options
    const effective = retentionSeconds ?? this.deps.defaultRetentionSeconds
    const nowMs = this.deps.clock()
    await this.deps.audit.append({
      action: 'retention_set',
      outcome: 'success',
      orgId,
      actor,
      detail: {
        retention_seconds: effective,
        source: retentionSeconds === null ? 'default' : 'org',
      },
    })
    const recordingsUpdated = await this.deps.settings.setRetention({
      orgId,
      retentionSeconds,
      effectiveRetentionSeconds: effective,
      nowMs,
      notBeforeMs: nowMs + LATE_ARRIVAL_GRACE_MS,
    })
    return {
      orgId,
      retentionSeconds: effective,
      source: retentionSeconds === null ? 'default' : 'org',
      recordingsUpdated,
    }
  }
}
