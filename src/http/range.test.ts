import assert from 'node:assert/strict'
import { test } from 'node:test'

import { decideRange } from './range.js'

const SIZE = 1000

test('single satisfiable ranges are clamped to the representation (S26)', () => {
  const cases: [string, number, number][] = [
    ['bytes=0-99', 0, 99],
    ['bytes=900-', 900, 999],
    ['bytes=-100', 900, 999],
    ['bytes=-5000', 0, 999],
    ['bytes=0-999999', 0, 999],
    [' bytes=5-5 ', 5, 5],
  ]
  for (const [header, start, end] of cases) {
    assert.deepEqual(decideRange(header, SIZE), { kind: 'partial', range: { start, end } }, header)
  }
})

test('ranges that select nothing are unsatisfiable (S27)', () => {
  for (const header of [
    'bytes=1000-',
    'bytes=5000-6000',
    'bytes=-0',
    'bytes=99999999999999999999999-',
  ]) {
    assert.deepEqual(decideRange(header, SIZE), { kind: 'unsatisfiable' }, header)
  }
})

test('invalid, foreign or multiple ranges are ignored: the whole file is sent (S28)', () => {
  for (const header of [
    'bytes=500-100',
    'bytes=abc',
    'bytes=',
    'items=0-5',
    'bytes 0-5',
    'bytes=0x10-0x20',
    'bytes=+5-10',
    'bytes=0-5, bytes=10-20',
    'bytes=0-5,10-20',
    'bytes=-',
  ]) {
    assert.deepEqual(decideRange(header, SIZE), { kind: 'full' }, header)
  }
  assert.deepEqual(decideRange(undefined, SIZE), { kind: 'full' })
})

test('offsets past 4 GiB stay exact (B08)', () => {
  const size = 4_831_838_208
  assert.deepEqual(decideRange('bytes=4294967296-4294968319', size), {
    kind: 'partial',
    range: { start: 4_294_967_296, end: 4_294_968_319 },
  })
  assert.deepEqual(decideRange('bytes=-1024', size), {
    kind: 'partial',
    range: { start: size - 1024, end: size - 1 },
  })
})

test('the range unit is case-insensitive (RFC 9110 §14.1)', () => {
  assert.deepEqual(decideRange('BYTES=0-9', SIZE), { kind: 'partial', range: { start: 0, end: 9 } })
  assert.deepEqual(decideRange('Bytes=-10', SIZE), {
    kind: 'partial',
    range: { start: 990, end: 999 },
  })
})
