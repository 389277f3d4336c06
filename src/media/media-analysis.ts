import { fileTypeFromBuffer } from 'file-type'
import {
  CustomSource,
  Input,
  Logging,
  LogLevel,
  MATROSKA,
  MP4,
  QTFF,
  WEBM,
  type InputFormat,
} from 'mediabunny'

import type { ByteSource } from './byte-source.js'
import { findFragmentTail, readIsoLayout } from './iso-layout.js'
import { scanMatroskaTail } from './matroska-tail-scan.js'
import { readOggStreams, scanOggDuration } from './ogg-scan.js'
import type { ContainerKind } from './sniff-container.js'
import { createSplicedByteSource, type SplicePart } from './spliced-byte-source.js'

/** What the parser learnt; `hasVideo` is null when the tracks could not be read. */
export type MediaAnalysis =
  { kind: 'media'; hasVideo: boolean | null; durationSeconds: number | null } | { kind: 'notMedia' }

const FULL_READ_MAX_BYTES = 64 * 1024 * 1024

// The parser runs on untrusted uploads and must not write to the server's stdout.
Logging.level = LogLevel.Silent

/** Positive finite seconds, or null: mediabunny reports 0 for files without content. */
function usable(seconds: number | null | undefined): number | null {
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0 ? seconds : null
}

/**
 * The header's duration unless the content says it is far off (headers written before a crash,
 * or placeholders like 3900 s in an 8 s file); small differences are normal (edit lists, last
 * frame duration, subtitle tracks the content scan does not see).
 */
export function pickDuration(header: number | null, content: number | null): number | null {
  if (header === null || content === null) return header ?? content
  const toleranceSeconds = Math.max(10, 0.1 * Math.max(header, content))
  return Math.abs(header - content) <= toleranceSeconds ? header : content
}

async function attempt<T>(work: () => Promise<T>): Promise<T | null> {
  try {
    return await work()
  } catch {
    return null // damaged media: the caller falls back to "unknown"
  }
}

function openInput(source: ByteSource, formats: InputFormat[]): Input {
  const custom = new CustomSource({
    getSize: () => source.size,
    read: (start, end) => source.read(start, end),
    handleUnhandledError: () => {}, // a failed prefetch nobody waits for is not our concern
  })
  return new Input({ source: custom, formats })
}

async function readHasVideo(input: Input): Promise<boolean | null> {
  const tracks = await attempt(() => input.getTracks())
  if (!tracks || tracks.length === 0) return null
  if (tracks.some((track) => track.isVideoTrack())) return true
  return tracks.some((track) => track.isAudioTrack()) ? false : null
}

async function analyzeMatroska(source: ByteSource): Promise<MediaAnalysis> {
  const input = openInput(source, [WEBM, MATROSKA])
  try {
    const hasVideo = await readHasVideo(input)
    const header = usable(await attempt(() => input.getDurationFromMetadata()))
    // mediabunny's computeDuration reads every cluster; the tail scan reads only the end.
    const content = usable(await attempt(() => scanMatroskaTail(source)))
    return { kind: 'media', hasVideo, durationSeconds: pickDuration(header, content) }
  } finally {
    input.dispose()
  }
}

function syntheticFtyp(brand: string): Uint8Array {
  const box = Buffer.alloc(20)
  box.writeUInt32BE(20, 0)
  box.write(`ftyp${brand}`, 4, 'latin1')
  box.write(brand, 16, 'latin1')
  return box
}

/**
 * End of a fragmented file's content: the header plus its last fragments parse as a short file
 * whose end is the real end (fragments carry absolute decode times). 'none' for an init segment
 * without fragments.
 */
async function fragmentedContent(
  source: ByteSource,
  input: Input,
  prefix: SplicePart[],
  moovEnd: number,
): Promise<number | null | 'none'> {
  const tail = await findFragmentTail(source, moovEnd)
  if (tail === 'none') return 'none'
  if (tail === 'unknown') {
    // Reading every fragment is acceptable only while the file is small.
    return source.size <= FULL_READ_MAX_BYTES ? usable(await input.computeDuration()) : null
  }
  const spliced = createSplicedByteSource(source, [...prefix, { start: 0, end: moovEnd }, tail])
  const tailInput = openInput(spliced, [MP4, QTFF])
  try {
    return usable(await tailInput.computeDuration())
  } finally {
    tailInput.dispose()
  }
}

async function analyzeIsoBmff(
  source: ByteSource,
  head: Uint8Array,
  container: 'mp4' | 'mov',
): Promise<MediaAnalysis> {
  // mediabunny only recognises files that begin with ftyp (or a fragment); classic QuickTime
  // files start with mdat/moov/wide, so they are shown a synthetic ftyp in front.
  const firstType = Buffer.from(head.subarray(4, 8)).toString('latin1')
  const prefix: SplicePart[] = ['ftyp', 'styp', 'moof', 'sidx'].includes(firstType)
    ? []
    : [{ bytes: syntheticFtyp(container === 'mov' ? 'qt  ' : 'isom') }]
  const viewed = prefix.length
    ? createSplicedByteSource(source, [...prefix, { start: 0, end: source.size }])
    : source
  const input = openInput(viewed, [MP4, QTFF])
  try {
    const hasVideo = await readHasVideo(input)
    const header = usable(await attempt(() => input.getDurationFromMetadata()))
    const layout = await attempt(() => readIsoLayout(source))
    const moov = layout?.fragmented ? layout.moov : null
    let content: number | null
    if (moov) {
      const found = await attempt(() => fragmentedContent(source, input, prefix, moov.end))
      if (found === 'none') return { kind: 'media', hasVideo, durationSeconds: null } // init only
      content = found
    } else {
      // Without fragments the sample tables are in the moov mediabunny has already read.
      content = usable(await attempt(() => input.computeDuration()))
    }
    return { kind: 'media', hasVideo, durationSeconds: pickDuration(header, content) }
  } finally {
    input.dispose()
  }
}

async function analyzeOgg(source: ByteSource, head: Uint8Array): Promise<MediaAnalysis> {
  const streams = readOggStreams(head)
  const hasVideo = streams.some((s) => s.kind === 'video')
    ? true
    : streams.some((s) => s.kind === 'audio')
      ? false
      : null
  const durationSeconds = usable(await attempt(() => scanOggDuration(source, streams)))
  return { kind: 'media', hasVideo, durationSeconds }
}

/** True when file-type recognises the head as something other than audio or video. */
async function isOtherFileType(head: Uint8Array): Promise<boolean> {
  const type = await attempt(() => fileTypeFromBuffer(head))
  return type ? !/^(audio|video)\//.test(type.mime) : false
}

/**
 * Reads tracks and duration of bytes already sniffed as `container`. Never throws for damaged
 * media (unknown parts come back null); resolves notMedia when file-type identifies the head as
 * a non-media format. Reads only what it needs through `source` (header, moov, the tail).
 */
export async function analyzeMedia(
  source: ByteSource,
  head: Uint8Array,
  container: ContainerKind,
): Promise<MediaAnalysis> {
  if (await isOtherFileType(head)) return { kind: 'notMedia' }
  switch (container) {
    case 'ogg':
      return analyzeOgg(source, head)
    case 'webm':
    case 'matroska':
      return analyzeMatroska(source)
    case 'mp4':
    case 'mov':
      return analyzeIsoBmff(source, head, container)
  }
}
