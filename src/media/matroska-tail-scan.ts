import type { ByteSource } from './byte-source.js'
import { EBML_ID, LEVEL1_IDS, readElementId, readUint, readVint } from './ebml.js'

export interface MatroskaTailScanOptions {
  /** Give up after searching back this many bytes from the end of the file. Default 32 MiB. */
  maxScanBytes?: number
}

const HEAD_BYTES = 64 * 1024
const FIRST_WINDOW_BYTES = 256 * 1024
const DEFAULT_MAX_SCAN_BYTES = 32 * 1024 * 1024
const DEFAULT_TIMECODE_SCALE_NS = 1_000_000
// Without DefaultDuration the last frame's length is guessed from the spacing of blocks; a sparse
// track must not add much.
const MAX_GAP_ESTIMATE_NS = 250_000_000
const CLUSTER_ID_BYTES = Buffer.from([0x1f, 0x43, 0xb6, 0x75])
const SKIPPABLE_CLUSTER_CHILDREN = new Set([EBML_ID.crc32, EBML_ID.void, 0xa7, 0xab, 0x58d7, 0xaf])

interface TrackEnd {
  maxTicks: number
  durationTicks: number | null // BlockDuration of the block at maxTicks
  previousTicks: number
  minGapTicks: number | null
}

interface SegmentHeader {
  timecodeScale: number
  /** Timecode of the first Cluster when it lies in the head: where the content starts. */
  firstClusterTicks: number
  /** Track number → DefaultDuration in nanoseconds, for tracks that declare one. */
  defaultDurationsNs: Map<number, number>
}

/** Calls `visit` for each child element of the element body [start, end) that fits in `bytes`. */
function forEachChild(
  bytes: Uint8Array,
  start: number,
  end: number,
  visit: (id: number, body: number, size: number) => void,
): void {
  for (let pos = start; pos < Math.min(end, bytes.length);) {
    const id = readElementId(bytes, pos)
    const size = id && readVint(bytes, pos + id.length)
    if (!id || !size || size.unknown) return
    const body = pos + id.length + size.length
    if (body + size.value > bytes.length) return
    visit(id.id, body, size.value)
    pos = body + size.value
  }
}

function readTrackDefaults(
  head: Uint8Array,
  body: number,
  size: number,
  into: Map<number, number>,
) {
  forEachChild(head, body, body + size, (id, entryBody, entrySize) => {
    if (id !== EBML_ID.trackEntry) return
    let track: number | null = null
    let defaultDuration: number | null = null
    forEachChild(head, entryBody, entryBody + entrySize, (field, at, length) => {
      if (field === EBML_ID.trackNumber) track = readUint(head, at, length)
      if (field === EBML_ID.defaultDuration) defaultDuration = readUint(head, at, length)
    })
    if (track !== null && defaultDuration) into.set(track, defaultDuration)
  })
}

/** Reads TimecodeScale and per-track DefaultDuration from the head; Matroska defaults if absent. */
function readSegmentHeader(head: Uint8Array): SegmentHeader {
  const header: SegmentHeader = {
    timecodeScale: DEFAULT_TIMECODE_SCALE_NS,
    firstClusterTicks: 0,
    defaultDurationsNs: new Map(),
  }
  const ebml = readElementId(head, 0)
  const ebmlSize = ebml && readVint(head, ebml.length)
  if (!ebml || !ebmlSize || ebmlSize.unknown) return header
  let pos = ebml.length + ebmlSize.length + ebmlSize.value
  const segment = readElementId(head, pos)
  const segmentSize = segment && readVint(head, pos + segment.length)
  if (segment?.id !== EBML_ID.segment || !segmentSize) return header
  pos += segment.length + segmentSize.length
  while (pos < head.length) {
    const child = readElementId(head, pos)
    const size = child && readVint(head, pos + child.length)
    if (!child || !size) break
    const body = pos + child.length + size.length
    if (child.id === EBML_ID.cluster) {
      const clusterEnd = size.unknown ? head.length : body + size.value
      forEachChild(head, body, clusterEnd, (id, at, length) => {
        const ticks = id === EBML_ID.timecode ? readUint(head, at, length) : null
        if (ticks !== null && header.firstClusterTicks === 0) header.firstClusterTicks = ticks
      })
      break
    }
    if (size.unknown) break
    if (child.id === EBML_ID.info) {
      forEachChild(head, body, body + size.value, (id, at, length) => {
        const scale = id === EBML_ID.timecodeScale ? readUint(head, at, length) : null
        if (scale) header.timecodeScale = scale
      })
    }
    if (child.id === EBML_ID.tracks) {
      readTrackDefaults(head, body, size.value, header.defaultDurationsNs)
    }
    pos = body + size.value
  }
  return header
}

/** Track number and absolute timestamp (ticks) of a Block/SimpleBlock body, or null if cut. */
function readBlockHeader(buf: Uint8Array, start: number, end: number, clusterTicks: number) {
  const track = readVint(buf, start)
  if (!track || track.unknown || start + track.length + 3 > end) return null
  const at = start + track.length
  const relative = ((((buf[at] ?? 0) << 8) | (buf[at + 1] ?? 0)) << 16) >> 16 // int16
  return { track: track.value, ticks: clusterTicks + relative, duration: null as number | null }
}

function recordBlock(
  tracks: Map<number, TrackEnd>,
  track: number,
  ticks: number,
  durationTicks: number | null,
) {
  const known = tracks.get(track)
  if (!known) {
    tracks.set(track, {
      maxTicks: ticks,
      durationTicks,
      previousTicks: ticks,
      minGapTicks: null,
    })
    return
  }
  const gap = Math.abs(ticks - known.previousTicks)
  if (gap > 0 && (known.minGapTicks === null || gap < known.minGapTicks)) known.minGapTicks = gap
  known.previousTicks = ticks
  if (ticks >= known.maxTicks) {
    known.maxTicks = ticks
    known.durationTicks = durationTicks
  }
}

function readBlockGroup(buf: Uint8Array, start: number, end: number, clusterTicks: number) {
  let block: { track: number; ticks: number } | null = null
  let duration: number | null = null
  for (let pos = start; pos < end;) {
    const id = readElementId(buf, pos)
    const size = id && readVint(buf, pos + id.length)
    if (!id || !size || size.unknown) break
    const body = pos + id.length + size.length
    if (body + size.value > end) break
    if (id.id === EBML_ID.block) block = readBlockHeader(buf, body, body + size.value, clusterTicks)
    if (id.id === EBML_ID.blockDuration) duration = readUint(buf, body, size.value)
    pos = body + size.value
  }
  return block && { ...block, duration }
}

/**
 * Parses the Cluster starting at `offset` up to its end (or the next top-level element / the end
 * of `buf`). Returns the end of its latest complete block in ticks, or null when this is no
 * Cluster (no Timecode before the first block, garbage) or holds no complete block.
 */
function clusterEndTicks(buf: Uint8Array, offset: number, header: SegmentHeader): number | null {
  const size = readVint(buf, offset + 4)
  if (!size) return null
  let pos = offset + 4 + size.length
  const end = size.unknown ? buf.length : Math.min(buf.length, pos + size.value)
  let clusterTicks: number | null = null
  const tracks = new Map<number, TrackEnd>()
  while (pos < end) {
    const child = readElementId(buf, pos)
    const childSize = child && readVint(buf, pos + child.length)
    if (!child || !childSize || childSize.unknown || LEVEL1_IDS.has(child.id)) break
    const body = pos + child.length + childSize.length
    const bodyEnd = body + childSize.value
    if (bodyEnd > buf.length) break // cut off by the end of the file
    if (child.id === EBML_ID.timecode) {
      clusterTicks ??= readUint(buf, body, childSize.value)
      if (clusterTicks === null) return null
    } else if (child.id === EBML_ID.simpleBlock || child.id === EBML_ID.blockGroup) {
      if (clusterTicks === null) return null
      const block =
        child.id === EBML_ID.simpleBlock
          ? readBlockHeader(buf, body, bodyEnd, clusterTicks)
          : readBlockGroup(buf, body, bodyEnd, clusterTicks)
      if (block) recordBlock(tracks, block.track, block.ticks, block.duration)
    } else if (!SKIPPABLE_CLUSTER_CHILDREN.has(child.id)) {
      break
    }
    pos = bodyEnd
  }
  if (tracks.size === 0) return null
  const { timecodeScale, defaultDurationsNs } = header
  let endTicks = -Infinity
  for (const [number, track] of tracks) {
    const defaultNs = defaultDurationsNs.get(number)
    const estimateNs =
      defaultNs ?? Math.min((track.minGapTicks ?? 0) * timecodeScale, MAX_GAP_ESTIMATE_NS)
    endTicks = Math.max(
      endTicks,
      track.maxTicks + (track.durationTicks ?? estimateNs / timecodeScale),
    )
  }
  return endTicks
}

/**
 * Computes a Matroska/WebM duration from content, for files without a Duration element (browser
 * MediaRecorder output): from the first Cluster's timecode (when in the first 64 KiB, else 0) to
 * the end of the latest block of the last Cluster holding a complete block, found by searching
 * back from the end of the file in growing windows. Reads the first
 * 64 KiB (TimecodeScale, DefaultDuration) and at most `maxScanBytes` of the tail, never the whole
 * file. The last frame's length comes from BlockDuration, DefaultDuration or the track's block
 * spacing (at most 0.25 s). Resolves null when no such Cluster is found in the scanned tail.
 */
export async function scanMatroskaTail(
  source: ByteSource,
  options: MatroskaTailScanOptions = {},
): Promise<number | null> {
  const size = source.size
  const maxScanBytes = Math.min(size, options.maxScanBytes ?? DEFAULT_MAX_SCAN_BYTES)
  const header = readSegmentHeader(await source.read(0, Math.min(size, HEAD_BYTES)))
  let windowStart = size
  let buf = Buffer.alloc(0) // holds the file's bytes [windowStart, size)
  for (let windowBytes = FIRST_WINDOW_BYTES; windowStart > size - maxScanBytes; windowBytes *= 4) {
    const start = Math.max(0, size - Math.min(windowBytes, maxScanBytes))
    const fresh = await source.read(start, windowStart)
    if (fresh.length !== windowStart - start) return null // the source is shorter than it claims
    buf = Buffer.concat([fresh, buf])
    windowStart = start
    // Candidates starting in older parts of the window were already tried.
    for (let i = buf.lastIndexOf(CLUSTER_ID_BYTES, fresh.length - 1); i >= 0;) {
      const endTicks = clusterEndTicks(buf, i, header)
      if (endTicks !== null) {
        return ((endTicks - header.firstClusterTicks) * header.timecodeScale) / 1e9
      }
      i = i > 0 ? buf.lastIndexOf(CLUSTER_ID_BYTES, i - 1) : -1
    }
  }
  return null
}
