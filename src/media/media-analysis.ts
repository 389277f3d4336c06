import { fileTypeFromBuffer } from 'file-type'
import { MATROSKA, WEBM } from 'mediabunny'

import {
  attempt,
  pickDuration,
  usable,
  type AnalysisLimits,
  type MediaAnalysis,
} from './analysis-utils.js'
import type { ByteSource } from './byte-source.js'
import { analyzeIsoBmff } from './isobmff-analysis.js'
import { scanMatroskaTail } from './matroska-tail-scan.js'
import { openInput, readHasVideo } from './mediabunny-input.js'
import { readOggStreams, scanOggDuration } from './ogg-scan.js'
import type { ContainerKind } from './sniff-container.js'

export type { AnalysisLimits, MediaAnalysis }

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

/**
 * True when file-type recognises the head as something other than audio or video (an image in
 * an ISO-BMFF wrapper, say). Ogg whose first stream file-type cannot name (a Skeleton track
 * first) comes back as application/ogg and still counts as media.
 */
async function isOtherFileType(head: Uint8Array): Promise<boolean> {
  const type = await attempt(() => fileTypeFromBuffer(head))
  if (!type || type.mime === 'application/ogg') return false
  return !/^(audio|video)\//.test(type.mime)
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
  limits: AnalysisLimits,
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
      return analyzeIsoBmff(source, head, container, limits)
  }
}
