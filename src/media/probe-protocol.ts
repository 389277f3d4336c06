import type { AnalysisLimits, MediaAnalysis } from './analysis-utils.js'
import type { ContainerKind } from './sniff-container.js'

/** Messages from the prober (main thread) to a probe worker. */
export type MainToWorker =
  | {
      type: 'probe'
      jobId: number
      size: number
      head: ArrayBuffer
      container: ContainerKind
      limits: AnalysisLimits
    }
  | { type: 'bytes'; jobId: number; requestId: number; buffer: ArrayBuffer }
  | { type: 'readFailed'; jobId: number; requestId: number }

/** Messages from a probe worker: 'ready' once loaded, then per job byte requests and one result. */
export type WorkerToMain =
  | { type: 'ready' }
  | { type: 'read'; jobId: number; requestId: number; start: number; end: number }
  | { type: 'done'; jobId: number; analysis: MediaAnalysis }
