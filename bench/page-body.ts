/** A recordings row as both reference list servers read it (snake_case, as stored). */
export interface PageRow {
  id: string
  meeting_id: string
  created_at: number
  expires_at: number
  duration_ms: number | null
  size_bytes: number
  content_type: string
  extension: string
  sha256: string
  legal_hold: number
}

/** The JSON of a list page, in the shape GET /recordings answers, from `limit + 1` rows. */
export function pageBody(rows: PageRow[], limit: number, base: string): string {
  const shown = rows.slice(0, limit)
  const last = shown.at(-1)
  return JSON.stringify({
    recordings: shown.map((row) => ({
      id: row.id,
      meeting_id: row.meeting_id,
      created_at: rfc3339(row.created_at),
      duration_seconds: row.duration_ms === null ? null : Math.round(row.duration_ms / 1000),
      url: `${base}/recordings/${row.id}/content.${row.extension}`,
      size_bytes: row.size_bytes,
      content_type: row.content_type,
      sha256: row.sha256,
      expires_at: rfc3339(row.expires_at),
      legal_hold: row.legal_hold === 1,
    })),
    next_cursor:
      rows.length > limit && last
        ? Buffer.from(`1|${last.created_at}|${last.id}`).toString('base64url')
        : null,
  })
}

function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}
