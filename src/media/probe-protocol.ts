import type { AnalysisLimits, MediaAnalysis } from './analysis-utils.js'
import type { ContainerKind } from './sniff-container.js'

// Sent over a child process's IPC channel with `serialization: 'advanced'`, so Uint8Arrays
// arrive as Uint8Arrays (copied once by the V8 serializer, no base64 or JSON arrays).

/** Messages from the prober (server process) to a probe child. */
export type MainToWorker =
  | {
      type: 'probe'
      jobId: number
      size: number
      head: Uint8Array
      container: ContainerKind
      limits: AnalysisLimits
    }
  | { type: 'bytes'; jobId: number; requestId: number; bytes: Uint8Array }
  | { type: 'readFailed'; jobId: number; requestId: number }

/** Messages from a probe child: 'ready' once loaded, then per job byte requests and one result. */
export type WorkerToMain =
  | { type: 'ready' }
  | { type: 'read'; jobId: number; requestId: number; start: number; end: number }
  | { type: 'done'; jobId: number; analysis: MediaAnalysis }
