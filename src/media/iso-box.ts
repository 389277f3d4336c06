/** An ISO-BMFF (MP4/QuickTime) box header. */
export interface BoxHeader {
  type: string
  /** Total size including the header; null when the box runs to the end of the file (size 0). */
  size: number | null
  headerSize: number
}

/** Boxes that may appear at the top level of MP4, QuickTime and fragmented-MP4 files. */
export const TOP_LEVEL_BOX_TYPES: ReadonlySet<string> = new Set([
  'ftyp',
  'styp',
  'moov',
  'moof',
  'mdat',
  'free',
  'skip',
  'wide',
  'sidx',
  'ssix',
  'mfra',
  'uuid',
  'pnot',
  'pdin',
  'meta',
  'emsg',
  'prft',
  'udta',
])

/**
 * Reads the box header at `offset` of `bytes`. Returns null when fewer than 8 (or 16 for 64-bit
 * sizes) bytes are available, the type is not four printable ASCII characters, or the size is
 * smaller than the header itself.
 */
export function readBoxHeader(bytes: Uint8Array, offset: number): BoxHeader | null {
  if (offset < 0 || offset + 8 > bytes.length) return null
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 4; i < 8; i++) {
    const c = bytes[offset + i] ?? 0
    if (c < 0x20 || c > 0x7e) return null
  }
  const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8))
  const size32 = view.getUint32(offset)
  if (size32 === 0) return { type, size: null, headerSize: 8 }
  if (size32 === 1) {
    if (offset + 16 > bytes.length) return null
    const size = Number(view.getBigUint64(offset + 8))
    return size >= 16 && Number.isSafeInteger(size) ? { type, size, headerSize: 16 } : null
  }
  return size32 >= 8 ? { type, size: size32, headerSize: 8 } : null
}

/** Reads a four-character code at `offset`, or null when out of range. */
export function readFourCc(bytes: Uint8Array, offset: number): string | null {
  if (offset < 0 || offset + 4 > bytes.length) return null
  return String.fromCharCode(...bytes.subarray(offset, offset + 4))
}
