import type { ByteSource } from './byte-source.js'
import { ProbeWorkerPool } from './probe-worker-pool.js'
import { SNIFF_HEAD_BYTES, sniffContainer, type ContainerKind } from './sniff-container.js'

export { sniffContainer }
export type { ContainerKind }

/** What a probe learnt about an accepted upload; every field is derived from the bytes. */
export interface MediaInfo {
  /** Sniffed from the first bytes (ftyp brand, EBML DocType, OggS), never from a file name. */
  container: ContainerKind
  /**
   * video/* when a video track is present or the tracks are unreadable, else audio/*: video/mp4,
   * audio/mp4, video/quicktime, video/webm, audio/webm, video/x-matroska, audio/x-matroska,
   * video/ogg, audio/ogg. Audio-only QuickTime is reported as audio/mp4 (m4a).
   */
  contentType: string
  /** Without dot: mp4, m4a, mov, webm, mkv, mka, ogv, ogg */
  extension: string
  /**
   * Exact float seconds (caller rounds); null only when unknowable (damaged, truncated, init-only,
   * lone segment, parse timed out).
   */
  durationSeconds: number | null
}

export interface MediaProberOptions {
  /** Per-probe parsing budget; default 20000. */
  timeoutMs?: number
  /** Old-generation heap cap of each parser child process; default 128. */
  maxHeapMb?: number
}

const DEFAULT_TIMEOUT_MS = 20_000
const DEFAULT_MAX_HEAP_MB = 128
// Probes are short and mostly wait on reads; two children keep a slow file from blocking others.
const POOL_SIZE = 2

const TYPES: Record<ContainerKind, { video: [string, string]; audio: [string, string] }> = {
  mp4: { video: ['video/mp4', 'mp4'], audio: ['audio/mp4', 'm4a'] },
  // QuickTime audio is MP4 audio to every player; there is no registered audio/quicktime.
  mov: { video: ['video/quicktime', 'mov'], audio: ['audio/mp4', 'm4a'] },
  webm: { video: ['video/webm', 'webm'], audio: ['audio/webm', 'webm'] },
  matroska: { video: ['video/x-matroska', 'mkv'], audio: ['audio/x-matroska', 'mka'] },
  ogg: { video: ['video/ogg', 'ogv'], audio: ['audio/ogg', 'ogg'] },
}

function toMediaInfo(
  container: ContainerKind,
  hasVideo: boolean | null,
  duration: number | null,
): MediaInfo {
  // Unreadable tracks (truncated files) are assumed to hold video, the usual recording.
  const [contentType, extension] = TYPES[container][hasVideo === false ? 'audio' : 'video']
  const durationSeconds =
    typeof duration === 'number' && Number.isFinite(duration) && duration > 0 ? duration : null
  return { container, contentType, extension, durationSeconds }
}

/**
 * Probes uploaded bytes. Resolves null when the bytes are not a recognised media container
 * (empty, text, HTML, playlists, images...). Never rejects for damaged media: a recognisable but
 * damaged file resolves with durationSeconds null. Rejects only on its own infrastructure failure
 * (e.g. the ByteSource read itself failed) with the original error.
 *
 * The container is sniffed in this process from the first 64 KiB; tracks and duration are parsed
 * in child processes (heap-capped, `timeoutMs` each, started on the first probe and reused). A
 * probe that times out or whose child dies (heap cap, crash, signal) resolves with the sniffed
 * container and durationSeconds null; the server process is never at risk. Audio-only media gets
 * an audio/* type.
 */
export class MediaProber {
  readonly #pool: ProbeWorkerPool

  constructor(options: MediaProberOptions = {}) {
    this.#pool = new ProbeWorkerPool({
      workerUrl: new URL('./probe-worker.js', import.meta.url),
      poolSize: POOL_SIZE,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxHeapMb: options.maxHeapMb ?? DEFAULT_MAX_HEAP_MB,
    })
  }

  /** See the class comment. Rejects once close() was called. */
  async probe(source: ByteSource): Promise<MediaInfo | null> {
    if (!(source.size > 0)) return null
    const head = await source.read(0, Math.min(source.size, SNIFF_HEAD_BYTES))
    const container = sniffContainer(head)
    if (container === null) return null
    const outcome = await this.#pool.run(source, head, container)
    if (outcome.kind === 'notMedia') return null
    if (outcome.kind === 'abandoned') return toMediaInfo(container, null, null)
    return toMediaInfo(container, outcome.hasVideo, outcome.durationSeconds)
  }

  /** Kills the child processes and waits for them to exit; running probes reject. Idempotent. */
  close(): Promise<void> {
    return this.#pool.close()
  }
}
