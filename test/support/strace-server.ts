import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { CLI, freePort } from './process-server.js'

export const STRACE = '/usr/bin/strace'

/** The system calls S37 follows: file opens, syncs, renames and every kind of write. */
const TRACED = 'openat,fsync,fdatasync,rename,renameat,renameat2,write,pwrite64,writev,sendto'

export interface TracedServer {
  baseUrl: string
  dataDir: string
  traceFile: string
  /** Stops the server (SIGTERM to node, not to strace) and waits for the trace to be flushed. */
  stop(): Promise<void>
  /** Stops the server if needed, then deletes its data directory and the trace. */
  remove(): Promise<void>
}

/**
 * `wcr-recordings serve` under `strace -f -tt -y`: every thread is followed, each line carries
 * the thread id and a timestamp, and `-y` prints the path behind every fd argument, so the
 * trace names files without any per-process fd bookkeeping on our side.
 */
export async function startTracedServer(env: Record<string, string> = {}): Promise<TracedServer> {
  if (!existsSync(STRACE)) throw new Error(`${STRACE} is missing: install the strace package`)
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-strace-'))
  const traceFile = path.join(dataDir, '..', `${path.basename(dataDir)}.trace`)
  const port = await freePort()
  const child = spawn(
    STRACE,
    ['-f', '-tt', '-y', '-s', '96', '-o', traceFile, '-e', `trace=${TRACED}`].concat([
      process.execPath,
      CLI,
      'serve',
    ]),
    {
      env: {
        ...(process.env as Record<string, string>),
        DATA_DIR: dataDir,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  child.stdout?.on('data', (d) => (output += d))
  child.stderr?.on('data', (d) => (output += d))
  const exited = new Promise((resolve) => child.once('exit', resolve))

  const baseUrl = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`traced server exited: ${output}`)
    const healthy = await fetch(`${baseUrl}/healthz`).then(
      (r) => r.ok,
      () => false,
    )
    if (healthy) break
    if (Date.now() > deadline) throw new Error(`traced server did not start: ${output}`)
    await sleep(100)
  }

  const stop = async () => {
    // strace detaches on SIGTERM and would leave node running: signal the tracee itself.
    const children = await fs
      .readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
      .catch(() => '')
    for (const pid of children.trim().split(/\s+/).filter(Boolean)) {
      process.kill(Number(pid), 'SIGTERM')
    }
    const stopped = await Promise.race([exited.then(() => true), sleep(10_000, false)])
    if (!stopped) child.kill('SIGKILL')
    await exited
  }

  return {
    baseUrl,
    dataDir,
    traceFile,
    stop,
    async remove() {
      await stop()
      await fs.rm(dataDir, { recursive: true, force: true })
      await fs.rm(traceFile, { force: true })
    },
  }
}

/** One system call from the trace: where it started and where it returned (line numbers). */
export interface TracedCall {
  tid: number
  name: string
  /** Everything between the parentheses, with `-y` paths, e.g. `23</data/x.part>`. */
  args: string
  result: string
  startLine: number
  endLine: number
}

const LINE = /^(\d+)\s+\d\d:\d\d:\d\d\.\d+\s+(.*)$/
const RESUMED = /^<\.\.\. (\w+) resumed>(.*)$/
const UNFINISHED = /^(\w+)\((.*?)\s*<unfinished \.\.\.>$/
const COMPLETE = /^(\w+)\((.*)\)\s+=\s+(.*)$/

/**
 * Parses `strace -f -tt -o` output. Calls interrupted by another thread appear as
 * `<unfinished ...>` and `<... name resumed>` pairs; they are joined per thread id.
 */
export function parseTrace(text: string): TracedCall[] {
  const calls: TracedCall[] = []
  const pending = new Map<number, { name: string; args: string; startLine: number }>()
  text.split('\n').forEach((line, index) => {
    const match = LINE.exec(line)
    if (!match) return
    const tid = Number(match[1])
    const rest = match[2] ?? ''
    const resumed = RESUMED.exec(rest)
    if (resumed) {
      const started = pending.get(tid)
      pending.delete(tid)
      const tail = /^(.*)\)\s+=\s+(.*)$/.exec(resumed[2] ?? '')
      if (!started || !tail) return
      calls.push({
        tid,
        name: started.name,
        args: started.args + (tail[1] ?? ''),
        result: tail[2] ?? '',
        startLine: started.startLine,
        endLine: index,
      })
      return
    }
    const unfinished = UNFINISHED.exec(rest)
    if (unfinished) {
      pending.set(tid, { name: unfinished[1] ?? '', args: unfinished[2] ?? '', startLine: index })
      return
    }
    const complete = COMPLETE.exec(rest)
    if (complete) {
      calls.push({
        tid,
        name: complete[1] ?? '',
        args: complete[2] ?? '',
        result: complete[3] ?? '',
        startLine: index,
        endLine: index,
      })
    }
  })
  return calls
}
