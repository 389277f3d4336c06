import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'

/**
 * Everything the bench starts or creates registers its undo here, so a failure half-way (or
 * Ctrl-C) still leaves no process and no temp file behind. Undone in reverse order.
 */
export class Cleanup {
  #tasks: { name: string; undo: () => Promise<void> | void }[] = []
  #running: Promise<void> | undefined

  add(name: string, undo: () => Promise<void> | void): void {
    this.#tasks.push({ name, undo })
  }

  run(): Promise<void> {
    this.#running ??= (async () => {
      for (let task = this.#tasks.pop(); task; task = this.#tasks.pop()) {
        try {
          await task.undo()
        } catch (error) {
          console.error(`cleanup of ${task.name} failed:`, error)
        }
      }
    })()
    return this.#running
  }
}

export interface Child {
  name: string
  process: ChildProcess
  pid: number
  output(): string
  exited(): boolean
  /** SIGTERM, then SIGKILL if it has not gone within `graceMs`. */
  stop(graceMs?: number): Promise<void>
}

/** Starts a long-running child (server, nginx) whose stop is registered with `cleanup`. */
export function startChild(
  cleanup: Cleanup,
  name: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Child {
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const keep = (data: Buffer) => {
    // The tail is enough to explain a failure; never let a chatty child grow our memory.
    output = (output + data.toString()).slice(-20_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const gone = new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.once('error', () => resolve())
  })
  const exited = () => child.exitCode !== null || child.signalCode !== null
  const handle: Child = {
    name,
    process: child,
    pid: child.pid ?? -1,
    output: () => output,
    exited,
    async stop(graceMs = 5000) {
      if (exited() || child.pid === undefined) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await gone
      clearTimeout(timer)
    },
  }
  cleanup.add(name, () => handle.stop())
  return handle
}

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
  elapsedMs: number
}

/** Runs a short command to completion, killed after `timeoutMs`. */
export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6
      resolve({ code, stdout, stderr, elapsedMs })
    })
  })
}

/** Polls `url` until it answers 2xx, the child dies, or `timeoutMs` passes. */
export async function waitForHttp(url: string, child: Child, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exited()) throw new Error(`${child.name} exited:\n${child.output()}`)
    try {
      const response = await fetch(url)
      await response.arrayBuffer()
      if (response.ok) return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${child.name} did not start:\n${child.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** VmRSS of a process in bytes, from /proc. */
export function readRssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)
  if (!match?.[1]) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(match[1]) * 1024
}

/** Samples a process's RSS every `intervalMs` until stopped; keeps the peak. */
export class RssSampler {
  #timer: NodeJS.Timeout | undefined
  peakBytes = 0
  samples = 0

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 20,
  ) {}

  start(): this {
    this.sample()
    this.#timer = setInterval(() => this.sample(), this.intervalMs)
    return this
  }

  stop(): number {
    clearInterval(this.#timer)
    this.sample()
    return this.peakBytes
  }

  private sample() {
    try {
      this.peakBytes = Math.max(this.peakBytes, readRssBytes(this.pid))
      this.samples++
    } catch {
      // the process is gone; the caller finds out from its requests failing
    }
  }
}

/** The RSS of an idle process: the median of a few samples over `windowMs`. */
export async function idleRssBytes(pid: number, windowMs = 1000): Promise<number> {
  const values: number[] = []
  const deadline = Date.now() + windowMs
  while (Date.now() < deadline) {
    values.push(readRssBytes(pid))
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return median(values)
}

export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of nothing')
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

const CLOCK_TICKS_PER_SECOND = 100 // USER_HZ, the unit of /proc/<pid>/stat times on Linux

/** User + system CPU a process has used so far, in seconds. */
export function readCpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15)
  return ticks / CLOCK_TICKS_PER_SECOND
}
