import { randomBytes } from 'node:crypto'

// Crockford base32 in lower case: no i, l, o, u, so ids read unambiguously.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const ID_PATTERN = /^rec_[0-9abcdefghjkmnpqrstvwxyz]{26}$/

/**
 * `rec_` + 26 characters: 48 bits of millisecond time (so ids sort by creation) followed by
 * 80 random bits (so they cannot be guessed), ULID-style.
 */
export function createRecordingId(nowMs: number = Date.now()): string {
  let time = ''
  let remaining = nowMs
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[remaining % 32] + time
    remaining = Math.floor(remaining / 32)
  }
  const random = randomBytes(10)
  let bits = 0
  let value = 0
  let suffix = ''
  for (const byte of random) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      suffix += ALPHABET[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  return `rec_${time}${suffix}`
}

/** True for a well-formed id; checked before any lookup so junk never reaches a query. */
export function isRecordingId(text: string): boolean {
  return ID_PATTERN.test(text)
}

/** Ids are case-insensitive on input: an upper-cased id names the same recording. */
export function canonicalRecordingId(text: string): string | undefined {
  if (text.length !== 30) return undefined
  const lower = text.toLowerCase()
  return isRecordingId(lower) ? lower : undefined
}
