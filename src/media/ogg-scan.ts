import type { ByteSource } from './byte-source.js'

/** One logical bitstream of an Ogg file, identified from its first (BOS) page. */
export interface OggStream {
  serial: number
  kind: 'audio' | 'video' | 'other'
  /** Converts a page's granule position to the end time in seconds; null when not timeable. */
  toSeconds: ((granule: bigint) => number) | null
}

interface OggPage {
  serial: number
  granule: bigint
  bos: boolean
  headerBytes: number
  totalBytes: number
}

const MAX_BOS_PAGES = 32
const FIRST_WINDOW_BYTES = 64 * 1024
const DEFAULT_MAX_SCAN_BYTES = 4 * 1024 * 1024
const NO_GRANULE = 0xffffffffffffffffn
const OGGS = Buffer.from('OggS', 'latin1')

const CRC_TABLE = Array.from({ length: 256 }, (_, i) => {
  let r = i << 24
  for (let bit = 0; bit < 8; bit++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1
  return r >>> 0
})

function pageCrc(page: Uint8Array): number {
  let crc = 0
  for (let i = 0; i < page.length; i++) {
    const byte = i >= 22 && i < 26 ? 0 : (page[i] ?? 0) // the CRC field counts as zero
    crc = ((crc << 8) ^ (CRC_TABLE[((crc >>> 24) ^ byte) & 0xff] ?? 0)) >>> 0
  }
  return crc
}

/** Parses the page header at `offset`; null unless the whole page lies inside `bytes`. */
function readPage(bytes: Uint8Array, offset: number): OggPage | null {
  if (offset + 27 > bytes.length || bytes[offset + 4] !== 0) return null
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint32(offset) !== 0x4f676753) return null
  const segments = bytes[offset + 26] ?? 0
  const headerBytes = 27 + segments
  if (offset + headerBytes > bytes.length) return null
  let bodyBytes = 0
  for (let i = 0; i < segments; i++) bodyBytes += bytes[offset + 27 + i] ?? 0
  const totalBytes = headerBytes + bodyBytes
  if (offset + totalBytes > bytes.length) return null
  return {
    serial: view.getUint32(offset + 14, true),
    granule: view.getBigUint64(offset + 6, true),
    bos: ((bytes[offset + 5] ?? 0) & 0x02) !== 0,
    headerBytes,
    totalBytes,
  }
}

function identify(serial: number, packet: Uint8Array): OggStream {
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength)
  const text = (start: number, length: number) =>
    String.fromCharCode(...packet.subarray(start, start + length))
  const audio = (rate: number, skip = 0): OggStream => ({
    serial,
    kind: 'audio',
    toSeconds: rate > 0 ? (granule) => (Number(granule) - skip) / rate : null,
  })
  if (packet.length >= 16 && text(0, 7) === '\x01vorbis') return audio(view.getUint32(12, true))
  if (packet.length >= 12 && text(0, 8) === 'OpusHead') {
    return audio(48000, view.getUint16(10, true)) // granules always count 48 kHz samples
  }
  if (packet.length >= 30 && text(0, 5) === '\x7fFLAC' && text(9, 4) === 'fLaC') {
    return audio(((packet[27] ?? 0) << 12) | ((packet[28] ?? 0) << 4) | ((packet[29] ?? 0) >> 4))
  }
  if (packet.length >= 40 && text(0, 8) === 'Speex   ') return audio(view.getUint32(36, true))
  if (packet.length >= 42 && text(0, 7) === '\x80theora') {
    const fpsNumerator = view.getUint32(22)
    const fpsDenominator = view.getUint32(26)
    const shift = BigInt((((packet[40] ?? 0) & 0x03) << 3) | ((packet[41] ?? 0) >> 5))
    // Before Theora 3.2.1 granules counted from frame 0 instead of 1.
    const version = ((packet[7] ?? 0) << 16) | ((packet[8] ?? 0) << 8) | (packet[9] ?? 0)
    const base = version < 0x030201 ? 1 : 0
    const toSeconds = (granule: bigint) => {
      const frames = (granule >> shift) + (granule & ((1n << shift) - 1n))
      return ((Number(frames) + base) * fpsDenominator) / fpsNumerator
    }
    return { serial, kind: 'video', toSeconds: fpsNumerator > 0 ? toSeconds : null }
  }
  if (text(0, 4) === 'BBCD' || text(0, 6) === '\x80daala') {
    return { serial, kind: 'video', toSeconds: null }
  }
  return { serial, kind: 'other', toSeconds: null }
}

/**
 * Lists the logical streams declared by the BOS pages at the start of `head`. Empty when the
 * head holds no complete BOS page (damaged or truncated file).
 */
export function readOggStreams(head: Uint8Array): OggStream[] {
  const streams: OggStream[] = []
  let offset = 0
  for (let i = 0; i < MAX_BOS_PAGES; i++) {
    const page = readPage(head, offset)
    if (!page?.bos) break
    let packetBytes = 0
    for (let s = 0; s < (head[offset + 26] ?? 0); s++) {
      const lace = head[offset + 27 + s] ?? 0
      packetBytes += lace
      if (lace < 255) break
    }
    const body = offset + page.headerBytes
    streams.push(identify(page.serial, head.subarray(body, body + packetBytes)))
    offset += page.totalBytes
  }
  return streams
}

/**
 * Duration of an Ogg file from the granule position of each stream's last page, found by
 * searching back from the end (pages must pass their CRC and belong to a known stream). Reads at
 * most `maxScanBytes` of the tail. Resolves null when no timeable page is found there.
 */
export async function scanOggDuration(
  source: ByteSource,
  streams: readonly OggStream[],
  maxScanBytes = DEFAULT_MAX_SCAN_BYTES,
): Promise<number | null> {
  const timed = new Map<number, (granule: bigint) => number>()
  for (const { serial, toSeconds } of streams) if (toSeconds) timed.set(serial, toSeconds)
  if (timed.size === 0) return null
  const size = source.size
  const limit = Math.min(size, maxScanBytes)
  const ends = new Map<number, number>()
  let windowStart = size
  let buf = Buffer.alloc(0)
  for (let windowBytes = FIRST_WINDOW_BYTES; windowStart > size - limit; windowBytes *= 4) {
    const start = Math.max(0, size - Math.min(windowBytes, limit))
    const fresh = await source.read(start, windowStart)
    if (fresh.length !== windowStart - start) return null // the source is shorter than it claims
    buf = Buffer.concat([fresh, buf])
    windowStart = start
    for (let i = buf.lastIndexOf(OGGS, fresh.length - 1); i >= 0;) {
      const page = readPage(buf, i)
      const toSeconds = page && timed.get(page.serial)
      if (page && toSeconds && !ends.has(page.serial) && page.granule !== NO_GRANULE) {
        if (pageCrc(buf.subarray(i, i + page.totalBytes)) === buf.readUInt32LE(i + 22)) {
          ends.set(page.serial, toSeconds(page.granule))
        }
      }
      i = i > 0 ? buf.lastIndexOf(OGGS, i - 1) : -1
    }
    if (ends.size > 0) break // the streams' last pages sit close together
  }
  return ends.size > 0 ? Math.max(...ends.values()) : null
}
