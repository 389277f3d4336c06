import { createHash } from 'node:crypto'

import type { Keyset, RecordingFilter } from '../db/recording-repository.js'
import { errors } from '../errors.js'

/**
 * Opaque keyset cursors: the position (createdAt, id) plus a fingerprint of the org and
 * filters it was made for, so a cursor replayed by another org or with other filters is
 * refused rather than silently mixing lists.
 */
export function encodeCursor(position: Keyset, orgId: string, filter: RecordingFilter): string {
  const text = `1|${position.createdAt}|${position.id}|${fingerprint(orgId, filter)}`
  return Buffer.from(text).toString('base64url')
}

/** Throws invalid_cursor for anything that is not a cursor made for this org and filter. */
export function decodeCursor(cursor: string, orgId: string, filter: RecordingFilter): Keyset {
  const parts = Buffer.from(cursor, 'base64url').toString('utf8').split('|')
  const [version, createdAt, id, print] = parts
  if (
    parts.length !== 4 ||
    version !== '1' ||
    !/^\d{1,16}$/.test(createdAt ?? '') ||
    !/^rec_[0-9a-z]{26}$/.test(id ?? '') ||
    print !== fingerprint(orgId, filter)
  ) {
    throw errors.invalidCursor()
  }
  return { createdAt: Number(createdAt), id: id as string }
}

function fingerprint(orgId: string, filter: RecordingFilter): string {
  const material = JSON.stringify([
    orgId,
    filter.meetingId ?? null,
    filter.createdAfter ?? null,
    filter.createdBefore ?? null,
  ])
  return createHash('sha256').update(material).digest('base64url').slice(0, 16)
}
