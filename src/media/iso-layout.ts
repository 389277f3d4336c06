import type { ByteSource } from './byte-source.js'
import { readBoxHeader } from './iso-box.js'

export interface IsoLayout {
  /** Byte range of the movie header box, or null when none precedes the first fragment. */
  moov: { start: number; end: number } | null
  /** True when the moov declares fragments (has an mvex box). */
  fragmented: boolean
}

/** Where the last fragments of a fragmented file are, as a byte range to splice after the moov. */
export type FragmentTail = { start: number; end: number } | 'none' | 'unknown'

const MAX_TOP_LEVEL_BOXES = 4096
const FIRST_WINDOW_BYTES = 1024 * 1024
const DEFAULT_MAX_SCAN_BYTES = 64 * 1024 * 1024
const FRAGMENT_CHAIN_TYPES = new Set([
  'moof',
  'mdat',
  'styp',
  'sidx',
  'ssix',
  'free',
  'skip',
  'emsg',
  'prft',
  'uuid',
  'mfra',
])

async function readHeaderAt(source: ByteSource, offset: number) {
  return readBoxHeader(await source.read(offset, offset + 16), 0)
}

/**
 * Finds the moov by walking top-level box headers from the start (16 bytes read per box, so a
 * moov after a huge mdat costs a few reads) and checks it for mvex. Stops at the first moof: a
 * moov after fragments is not looked for.
 */
export async function readIsoLayout(source: ByteSource): Promise<IsoLayout> {
  let offset = 0
  for (let i = 0; i < MAX_TOP_LEVEL_BOXES && offset + 8 <= source.size; i++) {
    const box = await readHeaderAt(source, offset)
    if (!box || box.type === 'moof') break
    const end = box.size === null ? source.size : offset + box.size
    if (box.type === 'moov') {
      return {
        moov: { start: offset, end },
        fragmented: await hasChild(source, offset, end, 'mvex'),
      }
    }
    if (box.size === null) break
    offset = end
  }
  return { moov: null, fragmented: false }
}

async function hasChild(source: ByteSource, start: number, end: number, type: string) {
  let offset = start + 8
  for (let i = 0; i < MAX_TOP_LEVEL_BOXES && offset + 8 <= Math.min(end, source.size); i++) {
    const box = await readHeaderAt(source, offset)
    if (!box) return false
    if (box.type === type) return true
    if (box.size === null) return false
    offset += box.size
  }
  return false
}

/**
 * True when the boxes from `offset` chain up to the end of `buf` (the end of the file) through
 * fragment-level boxes only; the last box may be cut off, but not the moof itself.
 */
function chainsToEnd(buf: Uint8Array, offset: number): { mfraStart: number | null } | null {
  const moof = readBoxHeader(buf, offset)
  if (moof?.type !== 'moof' || moof.size === null || moof.size < 16) return null
  if (offset + moof.size > buf.length || readBoxHeader(buf, offset + 8)?.type !== 'mfhd')
    return null
  let mfraStart: number | null = null
  let pos = offset
  while (pos < buf.length) {
    const box = readBoxHeader(buf, pos)
    if (!box) return pos + 8 > buf.length ? { mfraStart } : null // a header cut by the file end
    if (!FRAGMENT_CHAIN_TYPES.has(box.type)) return null
    if (box.type === 'mfra') mfraStart ??= pos
    if (box.size === null) return { mfraStart }
    pos += box.size
  }
  return { mfraStart }
}

/**
 * Locates the last fragments of a fragmented MP4 by searching back from the end of the file (at
 * most `maxScanBytes`) for the earliest moof whose box chain reaches the end of the file. The
 * range stops before any mfra, whose offsets would not match a spliced view. 'none' when the
 * whole region after the moov holds no moof at all (an init segment alone); 'unknown' when no
 * moof chaining to the end was found within `maxScanBytes` (trailing garbage, huge fragments).
 */
export async function findFragmentTail(
  source: ByteSource,
  afterOffset: number,
  maxScanBytes = DEFAULT_MAX_SCAN_BYTES,
): Promise<FragmentTail> {
  const size = source.size
  const limit = Math.min(size - afterOffset, maxScanBytes)
  let windowStart = size
  let buf = Buffer.alloc(0)
  let sawMoof = false
  for (let windowBytes = FIRST_WINDOW_BYTES; windowStart > size - limit; windowBytes *= 4) {
    const start = Math.max(size - limit, size - windowBytes)
    const fresh = await source.read(start, windowStart)
    if (fresh.length !== windowStart - start) return 'unknown'
    buf = Buffer.concat([fresh, buf])
    windowStart = start
    for (let i = buf.indexOf('moof', 4, 'latin1'); i >= 0 && i - 4 < fresh.length;) {
      const chain = chainsToEnd(buf, i - 4)
      if (chain) return { start: start + i - 4, end: start + (chain.mfraStart ?? buf.length) }
      sawMoof ||= readBoxHeader(buf, i + 4)?.type === 'mfhd'
      i = buf.indexOf('moof', i + 1, 'latin1')
    }
  }
  return limit === size - afterOffset && !sawMoof ? 'none' : 'unknown'
}
