/** A variable-length integer as used by EBML for element sizes. */
export interface Vint {
  length: number
  value: number
  /** True for the reserved all-ones value meaning "unknown size" (live/streamed elements). */
  unknown: boolean
}

export const EBML_ID = {
  ebml: 0x1a45dfa3,
  docType: 0x4282,
  segment: 0x18538067,
  seekHead: 0x114d9b74,
  info: 0x1549a966,
  timecodeScale: 0x2ad7b1,
  tracks: 0x1654ae6b,
  trackEntry: 0xae,
  trackNumber: 0xd7,
  defaultDuration: 0x23e383,
  cluster: 0x1f43b675,
  cues: 0x1c53bb6b,
  tags: 0x1254c367,
  attachments: 0x1941a469,
  chapters: 0x1043a770,
  timecode: 0xe7,
  simpleBlock: 0xa3,
  blockGroup: 0xa0,
  block: 0xa1,
  blockDuration: 0x9b,
  crc32: 0xbf,
  void: 0xec,
} as const

/** IDs that may follow a Cluster at the Segment level (and so end an unknown-size Cluster). */
export const LEVEL1_IDS: ReadonlySet<number> = new Set([
  EBML_ID.ebml,
  EBML_ID.segment,
  EBML_ID.seekHead,
  EBML_ID.info,
  EBML_ID.tracks,
  EBML_ID.cluster,
  EBML_ID.cues,
  EBML_ID.tags,
  EBML_ID.attachments,
  EBML_ID.chapters,
])

function vintLength(first: number): number {
  for (let length = 1; length <= 8; length++) {
    if (first & (0x100 >> length)) return length
  }
  return 0 // 0x00 is not a valid first byte
}

/**
 * Reads an element size at `offset`. Returns null when the bytes run out or the first byte is 0.
 * Values above 2^53 (only possible for 8-byte sizes) are returned as unknown-size.
 */
export function readVint(bytes: Uint8Array, offset: number): Vint | null {
  const first = bytes[offset]
  if (first === undefined) return null
  const length = vintLength(first)
  if (length === 0 || offset + length > bytes.length) return null
  const mask = (0x100 >> length) - 1
  let value = first & mask
  let allOnes = value === mask
  for (let i = 1; i < length; i++) {
    const byte = bytes[offset + i] ?? 0
    if (byte !== 0xff) allOnes = false
    value = value * 256 + byte
  }
  const unknown = allOnes || !Number.isSafeInteger(value)
  return { length, value, unknown }
}

/** Reads an element ID (marker bits kept, 1 to 4 bytes) at `offset`, or null. */
export function readElementId(
  bytes: Uint8Array,
  offset: number,
): { id: number; length: number } | null {
  const first = bytes[offset]
  if (first === undefined) return null
  const length = vintLength(first)
  if (length === 0 || length > 4 || offset + length > bytes.length) return null
  let id = 0
  for (let i = 0; i < length; i++) id = id * 256 + (bytes[offset + i] ?? 0)
  return { id, length }
}

/** Reads a big-endian unsigned int of `length` (0..8) bytes; null past the end or above 2^53. */
export function readUint(bytes: Uint8Array, offset: number, length: number): number | null {
  if (length > 8 || offset + length > bytes.length) return null
  let value = 0
  for (let i = 0; i < length; i++) value = value * 256 + (bytes[offset + i] ?? 0)
  return Number.isSafeInteger(value) ? value : null
}

/**
 * Finds the DocType string ('webm', 'matroska', ...) by searching the first bytes for the DocType
 * element rather than walking the header, so a header with one damaged element still yields it.
 * Returns null when no DocType is found.
 */
export function findDocType(head: Uint8Array, searchBytes = 256): string | null {
  const limit = Math.min(head.length, searchBytes)
  for (let i = 4; i + 3 < limit; i++) {
    if (head[i] !== 0x42 || head[i + 1] !== 0x82) continue
    const size = readVint(head, i + 2)
    if (!size || size.unknown || size.value < 1 || size.value > 32) continue
    const start = i + 2 + size.length
    if (start + size.value > head.length) continue
    const text = String.fromCharCode(...head.subarray(start, start + size.value)).replace(
      /\0+$/,
      '',
    )
    if (/^[a-z][a-z0-9-]*$/.test(text)) return text
  }
  return null
}
