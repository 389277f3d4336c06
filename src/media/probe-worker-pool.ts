import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import type { ByteSource } from './byte-source.js'
import type { AnalysisLimits, MediaAnalysis } from './analysis-utils.js'
import type { MainToWorker, WorkerToMain } from './probe-protocol.js'
import type { ContainerKind } from './sniff-container.js'

// Why child processes and not worker threads: a worker thread that hits its resourceLimits heap
// cap can take V8's fatal out-of-memory path and abort the whole server (nodejs/node#47224). A
// child process with --max-old-space-size dies alone, whatever route inside the parser made it
// allocate; the pool sees an exit and abandons the probe.

/** A child's analysis, or 'abandoned' when it ran out of time or memory, or died. */
export type PoolOutcome = MediaAnalysis | { kind: 'abandoned' }

export interface ProbeWorkerPoolOptions {
  /** The compiled probe-worker.js. */
  workerUrl: URL
  poolSize: number
  timeoutMs: number
  /** Old-generation heap cap of each child (--max-old-space-size). */
  maxHeapMb: number
  /** Overrides the sample budget derived from maxHeapMb; tests use it to skip the pre-check. */
  maxSamples?: number
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
  child: ChildProcess | null
  /** The child loaded its modules; failures before that are ours, not the upload's. */
  ready: boolean
  job: ActiveJob | null
}

// mediabunny keeps per-sample objects of roughly 100-200 bytes; half the heap is the budget.
const HEAP_BYTES_PER_SAMPLE = 320
// A forged element size must not make the server load gigabytes for the parser.
const MAX_READ_BYTES = 128 * 1024 * 1024
// Enough of a child's stderr to say why it failed to start (module not found, heap too small).
const STDERR_TAIL_CHARS = 2000

function settle(job: Job, outcome: { value: PoolOutcome } | { error: unknown }): void {
  if (job.settled) return
  job.settled = true
  if ('value' in outcome) job.resolve(outcome.value)
  else job.reject(outcome.error)
}

/**
 * Runs analyses in a few child processes, started on demand, one job per child at a time,
 * queueing the rest. A job that exceeds `timeoutMs` (counted from dispatch) or whose child dies
 * (heap cap, crash, signal) resolves 'abandoned'; that child is killed and replaced on the next
 * dispatch. A failing `source.read`, or a child that dies before it is ready, rejects the job
 * with the original error. Idle children never keep the process alive.
 */
export class ProbeWorkerPool {
  readonly #options: ProbeWorkerPoolOptions
  readonly #limits: AnalysisLimits
  readonly #slots: Slot[]
  readonly #queue: Job[] = []
  /** Every child not yet reaped, including killed ones, with a promise of its exit. */
  readonly #running = new Map<ChildProcess, Promise<void>>()
  #nextJobId = 1
  #closed = false

  constructor(options: ProbeWorkerPoolOptions) {
    this.#options = options
    const derived = Math.floor((options.maxHeapMb * 2 ** 20) / HEAP_BYTES_PER_SAMPLE)
    this.#limits = { maxSamples: options.maxSamples ?? derived }
    this.#slots = Array.from({ length: Math.max(1, options.poolSize) }, () => ({
      child: null,
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

  /** Kills all children and waits until they are gone; running and queued jobs reject. */
  async close(): Promise<void> {
    this.#closed = true
    const error = new Error('MediaProber was closed while probing')
    for (const job of this.#queue.splice(0)) settle(job, { error })
    for (const slot of this.#slots) {
      const job = slot.job
      slot.child = null
      slot.job = null
      if (job) {
        clearTimeout(job.timer)
        settle(job, { error })
      }
    }
    for (const child of this.#running.keys()) {
      child.ref() // an unref'd child would let the process exit before close() resolves
      child.kill('SIGKILL')
    }
    await Promise.all(this.#running.values())
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
    slot.child ??= this.#spawn(slot)
    const id = this.#nextJobId++
    const timer = setTimeout(() => this.#abandon(slot), this.#options.timeoutMs)
    slot.job = { ...job, id, timer }
    // A fresh child gets the job once it reports ready: IPC messages sent before its listener
    // exists would be lost.
    if (slot.ready) this.#sendProbe(slot)
  }

  #sendProbe(slot: Slot): void {
    const job = slot.job
    if (!job) return
    const { container, head } = job
    const limits = this.#limits
    this.#send(slot.child, {
      type: 'probe',
      jobId: job.id,
      size: job.source.size,
      head,
      container,
      limits,
    })
  }

  #spawn(slot: Slot): ChildProcess {
    slot.ready = false
    const child = fork(fileURLToPath(this.#options.workerUrl), [], {
      serialization: 'advanced',
      execArgv: [`--max-old-space-size=${this.#options.maxHeapMb}`],
      // The server's stdout carries its JSON log; stderr is kept only to explain a failed start.
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // The parser needs no configuration, and secrets in the environment are none of its business.
      env: {},
    })
    let stderrTail = ''
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (text: string) => {
      stderrTail = (stderrTail + text).slice(-STDERR_TAIL_CHARS)
    })
    child.on('message', (message: WorkerToMain) => this.#onMessage(slot, child, message))
    child.on('error', (error) => this.#onChildGone(slot, child, error))
    this.#running.set(
      child,
      new Promise((resolve) => {
        child.on('exit', (code, signal) => {
          this.#running.delete(child)
          resolve()
          const how = signal ? `signal ${signal}` : `code ${code}`
          const detail = stderrTail.trim() ? `: ${stderrTail.trim()}` : ''
          this.#onChildGone(slot, child, new Error(`probe child exited with ${how}${detail}`))
        })
      }),
    )
    // A probe in flight is kept alive by its timer; an idle child must not hold the server.
    child.unref()
    child.channel?.unref()
    const stderr = child.stderr as (NodeJS.ReadableStream & { unref?: () => void }) | null
    stderr?.unref?.()
    return child
  }

  #send(child: ChildProcess | null, message: MainToWorker): void {
    // A failed send means the child is gone; its 'exit' handler abandons the job.
    if (child?.connected) child.send(message, undefined, undefined, () => {})
  }

  #onMessage(slot: Slot, child: ChildProcess, message: WorkerToMain): void {
    const job = slot.job
    if (slot.child !== child) return
    if (message.type === 'ready') {
      slot.ready = true
      this.#sendProbe(slot)
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
      this.#send(slot.child, { type: 'readFailed', jobId: job.id, requestId })
      return
    }
    let bytes: Uint8Array
    try {
      bytes = await job.source.read(start, end)
    } catch (error) {
      // Our own failure, not the upload's: the caller gets the original error. The child is
      // told so it can wind down; the slot frees when it reports or times out.
      settle(job, { error })
      if (slot.job === job) this.#send(slot.child, { type: 'readFailed', jobId: job.id, requestId })
      return
    }
    if (slot.job !== job || !slot.child) return // timed out while reading
    // The serializer copies only the view's bytes, so views of a larger buffer are cheap.
    const view = bytes.subarray(0, Math.max(0, end - start))
    this.#send(slot.child, { type: 'bytes', jobId: job.id, requestId, bytes: view })
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
    const child = slot.child
    slot.child = null
    slot.ready = false
    child?.kill('SIGKILL')
    this.#finish(slot, { kind: 'abandoned' })
  }

  /**
   * A child that dies while parsing (heap cap hit, crash, killed) abandons its job: the upload's
   * fault. One that dies before it is ready is a broken installation: the job rejects.
   */
  #onChildGone(slot: Slot, child: ChildProcess, error: unknown): void {
    if (child.pid === undefined) this.#running.delete(child) // never started: no 'exit' comes
    if (slot.child !== child) return
    if (!slot.ready && slot.job) settle(slot.job, { error })
    this.#abandon(slot)
  }
}
