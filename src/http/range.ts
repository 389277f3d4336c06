import type { ByteRange } from '../storage/blob-store.js'

export type RangeDecision =
  { kind: 'full' } | { kind: 'partial'; range: ByteRange } | { kind: 'unsatisfiable' }

/**
 * Interprets a Range header for a representation of `size` bytes (RFC 9110 §14.2):
 * one well-formed byte range → partial (clamped to the end); a syntactically valid range
 * that selects nothing → unsatisfiable; anything else, including several ranges and
 * unknown units, is ignored and the whole representation is sent.
 */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' }
  // Range units are case-insensitive (RFC 9110 §14.1).
  const match = /^bytes=(\d*)-(\d*)$/i.exec(header.trim())
  if (!match) return { kind: 'full' }
  const [, first = '', last = ''] = match
  if (first === '' && last === '') return { kind: 'full' }

  if (first === '') {
    // Suffix range: the last N bytes.
    const suffix = Number(last)
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' }
    return { kind: 'partial', range: { start: Math.max(0, size - suffix), end: size - 1 } }
  }

  const start = Number(first)
  const end = last === '' ? size - 1 : Number(last)
  if (last !== '' && end < start) return { kind: 'full' }
  // Digits beyond 2^53 parse to imprecise numbers, but any such start is past every file.
  if (!Number.isFinite(start) || start >= size) return { kind: 'unsatisfiable' }
  return { kind: 'partial', range: { start, end: Math.min(end, size - 1) } }
}
