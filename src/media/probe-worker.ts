import { Worker } from 'node:worker_threads'

import { clampRange, type ByteSource } from './byte-source.js'
import type { MediaAnalysis } from './analysis-utils.js'
import { analyzeMedia } from './media-analysis.js'
import type { MainToWorker, WorkerToMain } from './probe-protocol.js'

// Entry point of a probe child process: parses one upload at a time, asking the server process
// for every byte range it needs, so it works the same whether the bytes are on disk or in S3.
// Its stdout is not the server's; it prints nothing anyway.

if (!process.send) throw new Error('probe-worker.js must be forked with an IPC channel')

interface PendingRead {
  resolve(bytes: Uint8Array): void
  reject(error: Error): void
}

const pendingReads = new Map<number, PendingRead>()
let nextRequestId = 1

function send(message: WorkerToMain): void {
  // A parent that went away is noticed through 'disconnect'; the send error adds nothing.
  if (process.connected) process.send?.(message, undefined, undefined, () => {})
}

/** Serves reads inside the already-sent head locally, everything else via the server process. */
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
  let analysis: MediaAnalysis
  try {
    const source = remoteByteSource(job.jobId, job.size, job.head)
    analysis = await analyzeMedia(source, job.head, job.container, job.limits)
  } catch {
    analysis = { kind: 'media', hasVideo: null, durationSeconds: null }
  }
  send({ type: 'done', jobId: job.jobId, analysis })
}

process.on('message', (message: MainToWorker) => {
  if (message.type === 'probe') {
    void probe(message)
    return
  }
  const pending = pendingReads.get(message.requestId)
  pendingReads.delete(message.requestId)
  if (message.type === 'bytes') pending?.resolve(message.bytes)
  else pending?.reject(new Error('the server process could not read the upload'))
})

// Without a parent nobody wants the result: leave, even with reads still pending.
process.on('disconnect', () => process.exit(0))

// A parser stuck in a synchronous loop never sees 'disconnect'. If the server dies without
// killing us (SIGKILL, a crash), this thread notices the re-parenting and ends the process.
const PARENT_CHECK_MS = 1000
const watchdog = `
  const { workerData } = require('node:worker_threads')
  setInterval(() => {
    if (process.ppid !== workerData.ppid) process.kill(process.pid, 'SIGKILL')
  }, workerData.intervalMs)
`
new Worker(watchdog, {
  eval: true,
  workerData: { ppid: process.ppid, intervalMs: PARENT_CHECK_MS },
})
  .on('error', () => {}) // losing the watchdog must not take the probe down with it
  .unref()

send({ type: 'ready' })
