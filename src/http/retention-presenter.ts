import { formatDuration } from '../recordings/retention.js'
import type { OrgRetention } from '../recordings/retention-service.js'

/** The JSON form of an org's retention, shared by `GET /retention` and the `org` commands. */
export function toRetentionJson(retention: OrgRetention) {
  return {
    org_id: retention.orgId,
    retention: formatDuration(retention.retentionSeconds),
    retention_seconds: retention.retentionSeconds,
    source: retention.source,
  }
}
