import type { MediaAnalysis } from './media-analysis.js'
import type { ContainerKind } from './sniff-container.js'

/** Messages from the prober (main thread) to a probe worker. */
export type MainToWorker =
  | { type: 'probe'; jobId: number; size: number; head: ArrayBuffer; container: ContainerKind }
  | { type: 'bytes'; jobId: number; requestId: number; buffer: ArrayBuffer }
  | { type: 'readFailed'; jobId: number; requestId: number }

/** Messages from a probe worker to the prober: byte requests, then exactly one result. */
export type WorkerToMain =
  | { type: 'read'; jobId: number; requestId: number; start: number; end: number }
  | { type: 'done'; jobId: number; analysis: MediaAnalysis }
