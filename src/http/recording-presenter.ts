import type { RecordingRecord } from '../db/recording-repository.js'

/** The public JSON form of a recording (DESIGN.md §4); internal fields never leave here. */
export interface RecordingJson {
  id: string
  meeting_id: string
  created_at: string
  duration_seconds: number | null
  url: string
  size_bytes: number
  content_type: string
  sha256: string
  expires_at: string
  legal_hold: boolean
}

export function toRecordingJson(record: RecordingRecord, baseUrl: string): RecordingJson {
  return {
    id: record.id,
    meeting_id: record.meetingId,
    created_at: toRfc3339(record.createdAt),
    duration_seconds: record.durationMs === null ? null : Math.round(record.durationMs / 1000),
    url: contentUrl(baseUrl, record),
    size_bytes: record.sizeBytes,
    content_type: record.contentType,
    sha256: record.sha256,
    expires_at: toRfc3339(record.expiresAt),
    legal_hold: record.legalHold,
  }
}

export function contentUrl(baseUrl: string, record: RecordingRecord): string {
  return `${baseUrl}/recordings/${record.id}/content.${record.extension}`
}

/** RFC 3339 in UTC with `Z`, whole seconds. */
export function toRfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}
