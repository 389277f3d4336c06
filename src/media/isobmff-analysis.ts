import { MP4, QTFF, type Input } from 'mediabunny'

import {
  attempt,
  pickDuration,
  usable,
  type AnalysisLimits,
  type MediaAnalysis,
} from './analysis-utils.js'
import type { ByteSource } from './byte-source.js'
import { readBoxHeader } from './iso-box.js'
import { findFragmentTail, readIsoLayout, type ByteRange } from './iso-layout.js'
import { checkMoof, checkMoov, type MoovCheck } from './isobmff-table-check.js'
import { openInput, readHasVideo } from './mediabunny-input.js'
import { createSplicedByteSource, type SplicePart } from './spliced-byte-source.js'

// Larger boxes are not read into memory: no real recording needs them, a forged size would.
const MAX_MOOV_BYTES = 64 * 1024 * 1024
const MAX_MOOF_BYTES = 16 * 1024 * 1024

function syntheticFtyp(brand: string): Uint8Array {
  const box = Buffer.alloc(20)
  box.writeUInt32BE(20, 0)
  box.write(`ftyp${brand}`, 4, 'latin1')
  box.write(brand, 16, 'latin1')
  return box
}

/** Serves reads inside [start, start + bytes.length) from `bytes`, the rest from `source`. */
function withCachedRange(source: ByteSource, start: number, bytes: Uint8Array): ByteSource {
  return {
    size: source.size,
    read: (from, to) =>
      from >= start && to <= start + bytes.length
        ? Promise.resolve(bytes.subarray(from - start, to - start))
        : source.read(from, to),
  }
}

/** Reads a box and returns its body, or null when it is too large or unreadable. */
async function readBoxBody(source: ByteSource, range: ByteRange, maxBytes: number) {
  if (range.end - range.start > maxBytes) return null
  const bytes = await source.read(range.start, range.end)
  const header = readBoxHeader(bytes, 0)
  return header ? { bytes, body: bytes.subarray(header.headerSize) } : null
}

async function withInput<T>(source: ByteSource, use: (input: Input) => Promise<T>) {
  const input = openInput(source, [MP4, QTFF])
  try {
    return await attempt(() => use(input))
  } finally {
    input.dispose()
  }
}

/**
 * Content duration of a fragmented file: the header plus its last fragments parse as a short file
 * whose end is the real end (fragments carry absolute decode times), minus the first fragment's
 * start. 'none' for an init segment without fragments; null when unknown or unsafe to parse.
 */
async function fragmentedContent(
  source: ByteSource,
  prefix: SplicePart[],
  moovEnd: number,
  firstMoof: ByteRange | null,
  limits: AnalysisLimits,
): Promise<number | null | 'none'> {
  const tail = await findFragmentTail(source, moovEnd, limits.maxSamples)
  if (tail === 'none') return 'none'
  if (typeof tail === 'string') return null
  const header: SplicePart = { start: 0, end: moovEnd }
  const end = await withInput(createSplicedByteSource(source, [...prefix, header, tail]), (input) =>
    input.computeDuration(),
  )
  const start = firstMoof
    ? await withInput(createSplicedByteSource(source, [...prefix, header, firstMoof]), (input) =>
        input.getFirstTimestamp(),
      )
    : 0
  const endSeconds = usable(end)
  return endSeconds === null ? null : usable(endSeconds - Math.max(0, start ?? 0))
}

/**
 * Tracks and duration of an MP4/MOV. The moov (and the fragments handed to mediabunny) are checked
 * for sample counts that would exhaust the worker's heap; such files get the track kinds and the
 * mvhd duration read directly. Init segments resolve with a null duration.
 */
export async function analyzeIsoBmff(
  source: ByteSource,
  head: Uint8Array,
  container: 'mp4' | 'mov',
  limits: AnalysisLimits,
): Promise<MediaAnalysis> {
  const layout = await attempt(() => readIsoLayout(source))
  const moov = layout?.moov ?? null
  let check: MoovCheck | null = null
  let parsed = source
  if (moov) {
    const box = await attempt(() => readBoxBody(source, moov, MAX_MOOV_BYTES))
    if (!box) return { kind: 'media', hasVideo: null, durationSeconds: null }
    check = checkMoov(box.body, limits.maxSamples)
    const firstMoof = layout?.firstMoof
    if (check.safe && firstMoof) {
      const moof = await attempt(() => readBoxBody(source, firstMoof, MAX_MOOF_BYTES))
      check.safe = moof !== null && checkMoof(moof.body, limits.maxSamples)
    }
    if (!check.safe) {
      return { kind: 'media', hasVideo: check.hasVideo, durationSeconds: check.headerSeconds }
    }
    parsed = withCachedRange(source, moov.start, box.bytes) // mediabunny reads it again
  }
  // mediabunny only recognises files that begin with ftyp (or a fragment); classic QuickTime
  // files start with mdat/moov/wide, so they are shown a synthetic ftyp in front.
  const firstType = Buffer.from(head.subarray(4, 8)).toString('latin1')
  const prefix: SplicePart[] = ['ftyp', 'styp', 'moof', 'sidx'].includes(firstType)
    ? []
    : [{ bytes: syntheticFtyp(container === 'mov' ? 'qt  ' : 'isom') }]
  const viewed = prefix.length
    ? createSplicedByteSource(parsed, [...prefix, { start: 0, end: source.size }])
    : parsed
  const input = openInput(viewed, [MP4, QTFF])
  try {
    const hasVideo = (await readHasVideo(input)) ?? check?.hasVideo ?? null
    const header = usable(await attempt(() => input.getDurationFromMetadata()))
    let content: number | null
    if (moov && check?.fragmented) {
      const found = await attempt(() =>
        fragmentedContent(parsed, prefix, moov.end, layout?.firstMoof ?? null, limits),
      )
      if (found === 'none') return { kind: 'media', hasVideo, durationSeconds: null } // init only
      content = found
    } else {
      // Without fragments the sample tables are in the moov mediabunny has already read.
      const end = usable(await attempt(() => input.computeDuration()))
      const start = Math.max(0, (await attempt(() => input.getFirstTimestamp())) ?? 0)
      content = end === null ? null : usable(end - start)
    }
    return { kind: 'media', hasVideo, durationSeconds: pickDuration(header, content) }
  } finally {
    input.dispose()
  }
}
