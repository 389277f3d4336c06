import assert from 'node:assert/strict'
import { test } from 'node:test'

import { evaluateConditionals } from './conditional.js'

const ETAG = '"abc123"'
const LAST_MODIFIED_MS = Date.parse('2025-01-15T10:30:00Z')
const LM = new Date(LAST_MODIFIED_MS).toUTCString()
const FUTURE = new Date(LAST_MODIFIED_MS + 86_400_000).toUTCString()
const PAST = new Date(LAST_MODIFIED_MS - 86_400_000).toUTCString()

const check = (headers: Record<string, string>) =>
  evaluateConditionals(headers, ETAG, LAST_MODIFIED_MS)

test('If-None-Match and If-Modified-Since (S31)', () => {
  assert.equal(check({ 'if-none-match': ETAG }), 'not-modified')
  assert.equal(check({ 'if-none-match': `W/${ETAG}` }), 'not-modified')
  assert.equal(check({ 'if-none-match': '"x", ' + ETAG }), 'not-modified')
  assert.equal(check({ 'if-none-match': '"x"' }), 'proceed')
  assert.equal(check({ 'if-none-match': '*' }), 'not-modified')
  assert.equal(check({ 'if-modified-since': LM }), 'not-modified')
  assert.equal(check({ 'if-modified-since': PAST }), 'proceed')
  // If-Modified-Since is ignored when If-None-Match is present.
  assert.equal(check({ 'if-none-match': '"x"', 'if-modified-since': FUTURE }), 'proceed')
  assert.equal(check({ 'if-modified-since': 'not a date' }), 'proceed')
})

test('If-Match and If-Unmodified-Since', () => {
  assert.equal(check({ 'if-match': '"x"' }), 'precondition-failed')
  assert.equal(check({ 'if-match': ETAG }), 'proceed')
  assert.equal(check({ 'if-match': `W/${ETAG}` }), 'precondition-failed')
  assert.equal(check({ 'if-match': '*' }), 'proceed')
  assert.equal(check({ 'if-unmodified-since': PAST }), 'precondition-failed')
  assert.equal(check({ 'if-unmodified-since': LM }), 'proceed')
})

test('If-Range decides whether the Range is honoured', () => {
  const range = 'bytes=0-9'
  assert.equal(check({ range, 'if-range': ETAG }), 'proceed')
  assert.equal(check({ range, 'if-range': '"other"' }), 'ignore-range')
  assert.equal(check({ range, 'if-range': `W/${ETAG}` }), 'ignore-range')
  assert.equal(check({ range, 'if-range': LM }), 'proceed')
  assert.equal(check({ range, 'if-range': PAST }), 'ignore-range')
  assert.equal(check({ 'if-range': '"other"' }), 'proceed')
})
