import { readBoxHeader, readFourCc } from './iso-box.js'

// mediabunny expands sample tables and track runs into one object per sample. A 4-byte edit
// (a count of 2^31) then fills the worker heap through one growing array, and V8 may abort the
// whole process instead of stopping the worker (nodejs/node#47224). These checks bound every
// count before mediabunny sees it.

/** What a movie header reveals without mediabunny; `safe` says mediabunny may parse it. */
export interface MoovCheck {
  safe: boolean
  /** The movie declares fragments (has mvex). */
  fragmented: boolean
  hasVideo: boolean | null
  /** mvhd duration; null when absent or zero. */
  headerSeconds: number | null
}

const SAMPLE_TABLE_PATH = ['trak', 'mdia', 'minf', 'stbl']

interface Child {
  type: string
  body: Uint8Array
}

function* children(bytes: Uint8Array): Generator<Child> {
  for (let offset = 0; offset + 8 <= bytes.length;) {
    const box = readBoxHeader(bytes, offset)
    if (!box) return
    const end = box.size === null ? bytes.length : Math.min(bytes.length, offset + box.size)
    yield { type: box.type, body: bytes.subarray(offset + box.headerSize, end) }
    offset = end
  }
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Sum of the per-entry counts of an stts/ctts body, or null if the entry count overruns it. */
function sumOfCounts(body: Uint8Array): number | null {
  if (body.length < 8) return null
  const data = view(body)
  const entries = data.getUint32(4)
  if (8 + entries * 8 > body.length) return null
  let sum = 0
  for (let i = 0; i < entries; i++) sum += data.getUint32(8 + i * 8)
  return sum
}

/** True when the fixed-size entry table of a full box fits in its body. */
function tableFits(body: Uint8Array, countOffset: number, entryBytes: number): boolean {
  if (body.length < countOffset + 4) return false
  return countOffset + 4 + view(body).getUint32(countOffset) * entryBytes <= body.length
}

function sampleTableSafe(stbl: Uint8Array, maxSamples: number): boolean {
  const boxes = [...children(stbl)]
  // Composition offsets (ctts) make mediabunny build one object per sample counted in stts.
  const expands = boxes.some((box) => box.type === 'ctts')
  for (const { type, body } of boxes) {
    if (type === 'stts' || type === 'ctts') {
      const samples = sumOfCounts(body)
      if (samples === null || (expands && samples > maxSamples)) return false
    }
    if (type === 'stsz' && body.length >= 12 && view(body).getUint32(4) === 0) {
      if (!tableFits(body, 8, 4)) return false
    }
    if (type === 'stz2' && body.length >= 12) {
      const bits = view(body).getUint32(8) * (body[7] ?? 0)
      if (12 + Math.ceil(bits / 8) > body.length) return false
    }
    if (type === 'stsc' && !tableFits(body, 4, 12)) return false
    if (type === 'stco' && !tableFits(body, 4, 4)) return false
    if (type === 'co64' && !tableFits(body, 4, 8)) return false
    if (type === 'stss' && !tableFits(body, 4, 4)) return false
  }
  return true
}

function mvhdSeconds(body: Uint8Array): number | null {
  const data = view(body)
  const version = body[0]
  const at = version === 1 ? 20 : 12
  if (body.length < at + (version === 1 ? 12 : 8)) return null
  const timescale = data.getUint32(at)
  const duration = version === 1 ? Number(data.getBigUint64(at + 4)) : data.getUint32(at + 4)
  const isUnknown = version === 1 ? duration >= 2 ** 53 : duration === 0xffffffff
  return timescale > 0 && duration > 0 && !isUnknown ? duration / timescale : null
}

function descend(bytes: Uint8Array, path: readonly string[]): Uint8Array[] {
  const [first, ...rest] = path
  if (first === undefined) return [bytes]
  const found: Uint8Array[] = []
  for (const child of children(bytes)) {
    if (child.type === first) found.push(...descend(child.body, rest))
  }
  return found
}

/**
 * Checks the body of a moov box: every sample-table count must fit its box, and tracks with
 * composition offsets (expanded per sample) must not count more than `maxSamples` samples. Also reads the track kinds (hdlr)
 * and the mvhd duration, so a movie too large to parse safely still gets a type and duration.
 */
export function checkMoov(moovBody: Uint8Array, maxSamples: number): MoovCheck {
  let headerSeconds: number | null = null
  let fragmented = false
  for (const child of children(moovBody)) {
    if (child.type === 'mvhd') headerSeconds = mvhdSeconds(child.body)
    if (child.type === 'mvex') fragmented = true
  }
  const handlers = descend(moovBody, ['trak', 'mdia', 'hdlr']).map((hdlr) => readFourCc(hdlr, 8))
  const hasVideo = handlers.includes('vide') ? true : handlers.includes('soun') ? false : null
  const tables = descend(moovBody, SAMPLE_TABLE_PATH)
  const safe = tables.every((stbl) => sampleTableSafe(stbl, maxSamples))
  return { safe, fragmented, hasVideo, headerSeconds }
}

// trun flags that add a field per sample (duration, size, flags, composition offset).
const TRUN_PER_SAMPLE_FLAGS = [0x100, 0x200, 0x400, 0x800]

/**
 * Checks the body of a moof box: each track run's sample count must be backed by per-sample
 * fields that fit the box, or (runs using only defaults) stay under `maxSamples`.
 */
export function checkMoof(moofBody: Uint8Array, maxSamples: number): boolean {
  for (const trun of descend(moofBody, ['traf', 'trun'])) {
    if (trun.length < 8) return false
    const flags = view(trun).getUint32(0) & 0xffffff
    const samples = view(trun).getUint32(4)
    const perSampleBytes = TRUN_PER_SAMPLE_FLAGS.filter((flag) => flags & flag).length * 4
    const headerBytes = 8 + (flags & 0x1 ? 4 : 0) + (flags & 0x4 ? 4 : 0)
    if (perSampleBytes > 0 && headerBytes + samples * perSampleBytes > trun.length) return false
    if (samples > maxSamples) return false
  }
  return true
}
