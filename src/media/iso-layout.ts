import type { ByteSource } from './byte-source.js'
import { readBoxHeader } from './iso-box.js'
import { checkMoof } from './isobmff-table-check.js'

export interface ByteRange {
  start: number
  end: number
}

export interface IsoLayout {
  /** The movie header box, or null when none precedes the first fragment. */
  moov: ByteRange | null
  /** The first moof after the moov (fragmented files), or null. */
  firstMoof: ByteRange | null
}

/**
 * Where the last fragments of a fragmented file are, as a byte range to splice after the moov;
 * 'none' for an init segment without fragments; 'unsafe' when a run's sample count is absurd.
 */
export type FragmentTail = ByteRange | 'none' | 'unknown' | 'unsafe'

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

/**
 * Walks top-level box headers from the start (16 bytes read per box, so a moov after a huge mdat
 * costs a few reads) to find the moov and the first moof after it. A moov after fragments is not
 * looked for.
 */
export async function readIsoLayout(source: ByteSource): Promise<IsoLayout> {
  let moov: ByteRange | null = null
  let offset = 0
  for (let i = 0; i < MAX_TOP_LEVEL_BOXES && offset + 8 <= source.size; i++) {
    const box = readBoxHeader(await source.read(offset, offset + 16), 0)
    if (!box) break
    const end = box.size === null ? source.size : offset + box.size
    if (box.type === 'moof') return { moov, firstMoof: moov ? { start: offset, end } : null }
    if (box.type === 'moov') moov ??= { start: offset, end }
    if (box.size === null) break
    offset = end
  }
  return { moov, firstMoof: null }
}

/**
 * True when the boxes from `offset` chain up to the end of `buf` (the end of the file) through
 * fragment-level boxes only; the last box may be cut off, but not the moof itself.
 */
function chainsToEnd(buf: Uint8Array, offset: number, maxSamples: number) {
  const moof = readBoxHeader(buf, offset)
  if (moof?.type !== 'moof' || moof.size === null || moof.size < 16) return null
  if (offset + moof.size > buf.length || readBoxHeader(buf, offset + 8)?.type !== 'mfhd')
    return null
  let mfraStart: number | null = null
  let safe = true
  for (let pos = offset; pos < buf.length;) {
    const box = readBoxHeader(buf, pos)
    if (!box) return pos + 8 > buf.length ? { mfraStart, safe } : null // header cut by the end
    if (!FRAGMENT_CHAIN_TYPES.has(box.type)) return null
    if (box.type === 'mfra') mfraStart ??= pos
    if (box.size === null) break
    if (box.type === 'moof' && pos + box.size <= buf.length) {
      safe &&= checkMoof(buf.subarray(pos + box.headerSize, pos + box.size), maxSamples)
    }
    pos += box.size
  }
  return { mfraStart, safe }
}

/**
 * Locates the last fragments of a fragmented MP4 by searching back from the end of the file (at
 * most `maxScanBytes`) for the earliest moof whose box chain reaches the end of the file. The
 * range stops before any mfra, whose offsets would not match a spliced view. 'none' when the
 * whole region after `afterOffset` holds no moof at all; 'unknown' when no moof chaining to the
 * end was found within `maxScanBytes` (trailing garbage, huge fragments); 'unsafe' when one of
 * the chained moofs fails checkMoof.
 */
export async function findFragmentTail(
  source: ByteSource,
  afterOffset: number,
  maxSamples: number,
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
      const chain = chainsToEnd(buf, i - 4, maxSamples)
      if (chain && !chain.safe) return 'unsafe'
      if (chain) return { start: start + i - 4, end: start + (chain.mfraStart ?? buf.length) }
      sawMoof ||= readBoxHeader(buf, i + 4)?.type === 'mfhd'
      i = buf.indexOf('moof', i + 1, 'latin1')
    }
  }
  return limit === size - afterOffset && !sawMoof ? 'none' : 'unknown'
}
