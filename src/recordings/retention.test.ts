import assert from 'node:assert/strict'
import { test } from 'node:test'

import { computeExpiry, formatDuration, LATE_ARRIVAL_GRACE_MS } from './retention.js'

test('expiry is created_at + retention, in integer milliseconds', () => {
  const created = Date.parse('2025-03-10T11:00:00Z')
  const now = Date.parse('2025-03-10T12:00:00Z')
  assert.equal(computeExpiry(created, 7 * 86_400, now), Date.parse('2025-03-17T11:00:00Z'))
})

test('a recording that arrives already expired is kept 24 h from its arrival', () => {
  const now = Date.parse('2025-03-20T00:00:00Z')
  const created = Date.parse('2025-03-01T00:00:00Z')
  assert.equal(computeExpiry(created, 86_400, now), now + LATE_ARRIVAL_GRACE_MS)
  // Exactly at the boundary counts as expired.
  assert.equal(computeExpiry(now - 1000, 1, now), now + LATE_ARRIVAL_GRACE_MS)
})

test('durations print in the largest unit that divides them', () => {
  assert.equal(formatDuration(90 * 86_400), '90d')
  assert.equal(formatDuration(12 * 3600), '12h')
  assert.equal(formatDuration(15 * 60), '15m')
  assert.equal(formatDuration(90), '90s')
})
