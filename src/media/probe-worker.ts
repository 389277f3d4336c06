import { parentPort } from 'node:worker_threads'

import { clampRange, type ByteSource } from './byte-source.js'
import type { MediaAnalysis } from './analysis-utils.js'
import { analyzeMedia } from './media-analysis.js'
import type { MainToWorker, WorkerToMain } from './probe-protocol.js'

// Entry point of a probe worker thread: parses one upload at a time, asking the main thread for
// every byte range it needs, so it works the same whether the bytes are on disk or in S3.

const port = parentPort
if (!port) throw new Error('probe-worker.js must be started as a worker thread')

interface PendingRead {
  resolve(bytes: Uint8Array): void
  reject(error: Error): void
}

const pendingReads = new Map<number, PendingRead>()
let nextRequestId = 1

function send(message: WorkerToMain): void {
  port?.postMessage(message)
}

/** Serves reads inside the already-sent head locally, everything else via the main thread. */
function remoteByteSource(jobId: number, size: number, head: Uint8Array): ByteSource {
  return {
    size,
    read(start, end) {
      const range = clampRange(start, end, size)
      if (!range) return Promise.resolve(new Uint8Array(0))
      if (range.end <= head.length) return Promise.resolve(head.subarray(range.start, range.end))
      const requestId = nextRequestId++
      return new Promise((resolve, reject) => {
        pendingReads.set(requestId, { resolve, reject })
        send({ type: 'read', jobId, requestId, start: range.start, end: range.end })
      })
    },
  }
}

async function probe(job: Extract<MainToWorker, { type: 'probe' }>): Promise<void> {
  const head = new Uint8Array(job.head)
  let analysis: MediaAnalysis
  try {
    const source = remoteByteSource(job.jobId, job.size, head)
    analysis = await analyzeMedia(source, head, job.container, job.limits)
  } catch {
    analysis = { kind: 'media', hasVideo: null, durationSeconds: null }
  }
  send({ type: 'done', jobId: job.jobId, analysis })
}

port.on('message', (message: MainToWorker) => {
  if (message.type === 'probe') {
    void probe(message)
    return
  }
  const pending = pendingReads.get(message.requestId)
  pendingReads.delete(message.requestId)
  if (message.type === 'bytes') pending?.resolve(new Uint8Array(message.buffer))
  else pending?.reject(new Error('the main thread could not read the upload'))
})

send({ type: 'ready' })
