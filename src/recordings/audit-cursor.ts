import { createHash } from 'node:crypto'

import { errors } from '../errors.js'

/** The filters an audit page was made for; a cursor only continues the same list. */
export interface AuditFilter {
  recordingId?: string
  action?: string
  atOrAfterMs?: number
  beforeMs?: number
}

/** Opaque keyset cursor over audit entries: the last id plus a fingerprint of org and filter. */
export function encodeAuditCursor(lastId: number, orgId: string, filter: AuditFilter): string {
  return Buffer.from(`a1|${lastId}|${fingerprint(orgId, filter)}`).toString('base64url')
}

/** Throws invalid_cursor for anything that is not a cursor made for this org and filter. */
export function decodeAuditCursor(cursor: string, orgId: string, filter: AuditFilter): number {
  const parts = Buffer.from(cursor, 'base64url').toString('utf8').split('|')
  const [version, id, print] = parts
  if (
    parts.length !== 3 ||
    version !== 'a1' ||
    !/^\d{1,15}$/.test(id ?? '') ||
    print !== fingerprint(orgId, filter)
  ) {
    throw errors.invalidCursor()
  }
  return Number(id)
}

function fingerprint(orgId: string, filter: AuditFilter): string {
  const material = JSON.stringify([
    orgId,
    filter.recordingId ?? null,
    filter.action ?? null,
    filter.atOrAfterMs ?? null,
    filter.beforeMs ?? null,
  ])
  return createHash('sha256').update(material).digest('base64url').slice(0, 16)
}
