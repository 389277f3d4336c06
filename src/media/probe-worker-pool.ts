import { Worker } from 'node:worker_threads'

import type { ByteSource } from './byte-source.js'
import type { AnalysisLimits, MediaAnalysis } from './analysis-utils.js'
import type { MainToWorker, WorkerToMain } from './probe-protocol.js'
import type { ContainerKind } from './sniff-container.js'

/** A worker's analysis, or 'abandoned' when it ran out of time or memory, or crashed. */
export type PoolOutcome = MediaAnalysis | { kind: 'abandoned' }

export interface ProbeWorkerPoolOptions {
  workerUrl: URL
  poolSize: number
  timeoutMs: number
  maxHeapMb: number
}

interface Job {
  source: ByteSource
  head: Uint8Array
  container: ContainerKind
  settled: boolean
  resolve(outcome: PoolOutcome): void
  reject(error: unknown): void
}

interface ActiveJob extends Job {
  id: number
  timer: NodeJS.Timeout
}

interface Slot {
  worker: Worker | null
  /** The worker loaded its modules; failures before that are ours, not the upload's. */
  ready: boolean
  job: ActiveJob | null
}

// mediabunny keeps per-sample objects of roughly 100-200 bytes; half the heap is the budget.
const HEAP_BYTES_PER_SAMPLE = 320
// A forged element size must not make the main thread load gigabytes for the parser.
const MAX_READ_BYTES = 128 * 1024 * 1024

function settle(job: Job, outcome: { value: PoolOutcome } | { error: unknown }): void {
  if (job.settled) return
  job.settled = true
  if ('value' in outcome) job.resolve(outcome.value)
  else job.reject(outcome.error)
}

/**
 * Runs analyses in a few worker threads, one job per worker at a time, queueing the rest. A job
 * that exceeds `timeoutMs` (counted from dispatch) or kills its worker resolves 'abandoned'; that
 * worker is terminated and replaced on the next dispatch. A failing `source.read`, or a worker
 * that cannot start, rejects the job with the original error. Idle workers never keep the
 * process alive.
 */
export class ProbeWorkerPool {
  readonly #options: ProbeWorkerPoolOptions
  readonly #limits: AnalysisLimits
  readonly #slots: Slot[]
  readonly #queue: Job[] = []
  #nextJobId = 1
  #closed = false

  constructor(options: ProbeWorkerPoolOptions) {
    this.#options = options
    this.#limits = { maxSamples: Math.floor((options.maxHeapMb * 2 ** 20) / HEAP_BYTES_PER_SAMPLE) }
    this.#slots = Array.from({ length: Math.max(1, options.poolSize) }, () => ({
      worker: null,
      ready: false,
      job: null,
    }))
  }

  /** Queues an analysis; rejects at once if the pool is closed. */
  run(source: ByteSource, head: Uint8Array, container: ContainerKind): Promise<PoolOutcome> {
    if (this.#closed) return Promise.reject(new Error('MediaProber is closed'))
    return new Promise((resolve, reject) => {
      this.#queue.push({ source, head, container, settled: false, resolve, reject })
      this.#dispatch()
    })
  }

  /** Terminates all workers; running and queued jobs reject. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    const error = new Error('MediaProber was closed while probing')
    for (const job of this.#queue.splice(0)) settle(job, { error })
    const exits = this.#slots.map((slot) => {
      const { worker, job } = slot
      slot.worker = null
      slot.job = null
      if (job) {
        clearTimeout(job.timer)
        settle(job, { error })
      }
      return worker?.terminate()
    })
    await Promise.all(exits)
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.job) continue
      const job = this.#queue.shift()
      if (!job) return
      this.#start(slot, job)
    }
  }

  #start(slot: Slot, job: Job): void {
    const worker = (slot.worker ??= this.#spawn(slot))
    const id = this.#nextJobId++
    const timer = setTimeout(() => this.#abandon(slot), this.#options.timeoutMs)
    slot.job = { ...job, id, timer }
    // Copy: transferring detaches the buffer, and the head may belong to the caller.
    const head = new Uint8Array(job.head)
    const size = job.source.size
    const { container } = job
    const limits = this.#limits
    this.#post(worker, { type: 'probe', jobId: id, size, head: head.buffer, container, limits }, [
      head.buffer,
    ])
  }

  #spawn(slot: Slot): Worker {
    slot.ready = false
    const worker = new Worker(this.#options.workerUrl, {
      resourceLimits: { maxOldGenerationSizeMb: this.#options.maxHeapMb },
      stdout: true, // the parser must not write to the server's output
      stderr: true,
    })
    worker.unref() // a probe in flight is kept alive by its timer
    worker.stdout.resume()
    worker.stderr.resume()
    worker.on('message', (message: WorkerToMain) => this.#onMessage(slot, worker, message))
    worker.on('error', (error) => this.#onWorkerGone(slot, worker, error))
    worker.on('exit', (code) => {
      this.#onWorkerGone(slot, worker, new Error(`probe worker exited with code ${code}`))
    })
    return worker
  }

  #post(worker: Worker | null, message: MainToWorker, transfer: ArrayBuffer[] = []): void {
    worker?.postMessage(message, transfer)
  }

  #onMessage(slot: Slot, worker: Worker, message: WorkerToMain): void {
    const job = slot.job
    if (slot.worker !== worker) return
    if (message.type === 'ready') {
      slot.ready = true
      return
    }
    if (!job || message.jobId !== job.id) return
    if (message.type === 'read') void this.#serveRead(slot, job, message)
    else this.#finish(slot, message.analysis)
  }

  async #serveRead(slot: Slot, job: ActiveJob, request: Extract<WorkerToMain, { type: 'read' }>) {
    const { requestId, start, end } = request
    if (end - start > MAX_READ_BYTES) {
      // Refused, not failed: the parser treats it as damaged media; the probe goes on.
      this.#post(slot.worker, { type: 'readFailed', jobId: job.id, requestId })
      return
    }
    let bytes: Uint8Array
    try {
      bytes = await job.source.read(start, end)
    } catch (error) {
      // Our own failure, not the upload's: the caller gets the original error. The worker is
      // told so it can wind down; the slot frees when it reports or times out.
      settle(job, { error })
      if (slot.job === job)
        this.#post(slot.worker, { type: 'readFailed', jobId: job.id, requestId })
      return
    }
    if (slot.job !== job || !slot.worker) return // timed out while reading
    // Copy before transferring: the source may hand out views of memory it still uses.
    const copy = new Uint8Array(bytes.subarray(0, Math.max(0, end - start)))
    const message: MainToWorker = { type: 'bytes', jobId: job.id, requestId, buffer: copy.buffer }
    this.#post(slot.worker, message, [copy.buffer])
  }

  #finish(slot: Slot, outcome: PoolOutcome): void {
    const job = slot.job
    if (job) {
      clearTimeout(job.timer)
      settle(job, { value: outcome })
    }
    slot.job = null
    if (!this.#closed) this.#dispatch()
  }

  #abandon(slot: Slot): void {
    const worker = slot.worker
    slot.worker = null
    void worker?.terminate()
    this.#finish(slot, { kind: 'abandoned' })
  }

  /**
   * A worker that dies while parsing (heap cap hit, crash) abandons its job: the upload's fault.
   * One that dies before it is ready is a broken installation: the job rejects with the error.
   */
  #onWorkerGone(slot: Slot, worker: Worker, error: unknown): void {
    if (slot.worker !== worker) return
    if (!slot.ready && slot.job) settle(slot.job, { error })
    this.#abandon(slot)
  }
}
