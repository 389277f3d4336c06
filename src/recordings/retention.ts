/** However late a recording arrives, it stays at least this long after upload. */
export const LATE_ARRIVAL_GRACE_MS = 24 * 3600 * 1000

/**
 * `createdAt + retention`; a recording whose expiry has already passed when it arrives is
 * kept 24 h from now instead, so nobody loses a late upload before they could see it.
 */
export function computeExpiry(createdAtMs: number, retentionSeconds: number, nowMs: number) {
  const expiresAt = createdAtMs + retentionSeconds * 1000
  return expiresAt <= nowMs ? nowMs + LATE_ARRIVAL_GRACE_MS : expiresAt
}

const UNITS: [string, number][] = [
  ['d', 86_400],
  ['h', 3600],
  ['m', 60],
]

/** A duration as RETENTION spells it, in the largest unit that divides it: 7776000 → `90d`. */
export function formatDuration(seconds: number): string {
  for (const [unit, size] of UNITS) {
    if (seconds % size === 0) return `${seconds / size}${unit}`
  }
  return `${seconds}s`
}
