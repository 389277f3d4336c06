/** Per-org settings port: the operator's retention overrides. */
export interface OrgSettingsRepository {
  /** The org's retention override in seconds, or undefined when it uses the default. */
  findRetentionSeconds(orgId: string): Promise<number | undefined>
  /**
   * Sets (or, with null, removes) the org's override and, in the same transaction, moves
   * `expires_at` of its unexpired, active recordings to `created_at + retentionSeconds`, but
   * never earlier than `notBeforeMs`. Returns how many recordings were updated.
   */
  setRetention(options: {
    orgId: string
    retentionSeconds: number | null
    effectiveRetentionSeconds: number
    nowMs: number
    notBeforeMs: number
  }): Promise<number>
}
