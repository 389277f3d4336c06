import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'

import { createMemoryByteSource, type ByteSource } from './byte-source.js'
import { corpusPath, readCorpusFile } from './corpus-fixtures.js'
import { MediaProber } from './media-prober.js'
import { ProbeWorkerPool } from './probe-worker-pool.js'
import { sniffContainer, SNIFF_HEAD_BYTES } from './sniff-container.js'

// Probe children are found through /proc (Linux), so the tests need no hook into the pool.

const WEBM = 'ts-ebml_chrome52.webm' // 2.4 MiB: the parser must ask for bytes past the head
const WEBM_SECONDS = 50.783
const DAMAGED_WEBM = {
  container: 'webm',
  contentType: 'video/webm',
  extension: 'webm',
  durationSeconds: null,
}
// Long enough that a probe ending sooner was ended by its child's death, not by the timeout.
const LONG_TIMEOUT_MS = 60_000

/** Live probe children of `parentPid` (default: this process), by pid. */
function probeChildren(parentPid = process.pid): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // Fields after the parenthesised command name: state, ppid, ...
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      if (Number(ppid) === parentPid && state !== 'Z' && cmdline.includes('probe-worker.js')) {
        pids.push(Number(entry))
      }
    } catch {
      // the process ended while we looked
    }
  }
  return pids
}

function isProbeChildAlive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0]
    return state !== 'Z' && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('probe-worker')
  } catch {
    return false
  }
}

function moduleUrl(relative: string): string {
  return new URL(relative, import.meta.url).href
}

/** Waits up to 10 s for probe children that are not ours to wait on; kills leftovers, fails. */
async function assertExitsSoon(pids: number[]): Promise<void> {
  const deadline = performance.now() + 10_000
  while (pids.some(isProbeChildAlive) && performance.now() < deadline) await delay(50)
  const alive = pids.filter(isProbeChildAlive)
  for (const pid of alive) process.kill(pid, 'SIGKILL') // leave nothing spinning behind
  assert.deepEqual(alive, [], 'orphaned probe children exited')
}

/**
 * Serves the sniff read (the first one) at once and holds every later read, which only the
 * probe child makes, until `release()`; `requested` resolves at the first held read.
 */
function heldSource(bytes: Uint8Array) {
  let sniffed = false
  let release = () => {}
  let markRequested = () => {}
  const released = new Promise<void>((resolve) => (release = resolve))
  const requested = new Promise<void>((resolve) => (markRequested = resolve))
  const source: ByteSource = {
    size: bytes.length,
    async read(start, end) {
      if (sniffed) {
        markRequested()
        await released
      }
      sniffed = true
      return bytes.subarray(start, end)
    },
  }
  return { source, requested, release }
}

/** A probe that never gets its bytes: the child sits waiting for the server. */
function stalledSource(bytes: Uint8Array) {
  const held = heldSource(bytes)
  return { source: held.source, requested: held.requested }
}

describe('probe child processes', () => {
  test('a child killed with SIGKILL mid-probe gives a null duration; the next probe works', async () => {
    const prober = new MediaProber({ timeoutMs: LONG_TIMEOUT_MS })
    try {
      const bytes = readCorpusFile(WEBM)
      const { source, requested } = stalledSource(bytes)
      const started = performance.now()
      const probing = prober.probe(source)
      await requested
      const [pid, ...others] = probeChildren()
      assert.ok(pid !== undefined && others.length === 0, 'one child is probing')
      process.kill(pid, 'SIGKILL')

      assert.deepEqual(await probing, DAMAGED_WEBM)
      assert.ok(performance.now() - started < LONG_TIMEOUT_MS / 2, 'ended by the kill')
      const next = await prober.probe(createMemoryByteSource(bytes))
      assert.ok(next?.durationSeconds, 'a fresh child parsed the next upload')
      assert.ok(Math.abs(next.durationSeconds - WEBM_SECONDS) < 0.05, `${next.durationSeconds}`)
      assert.ok(!probeChildren().includes(pid), 'the killed child was replaced')
    } finally {
      await prober.close()
    }
  })

  test('a child that hits its heap cap dies alone; this process and the pool carry on', async () => {
    // 2^31 samples in a 4-byte edit, with the pre-check off: mediabunny expands them into one
    // array until the 32 MiB heap is exhausted. In a worker thread this could abort the whole
    // process (nodejs/node#47224); here only the child dies.
    const pool = new ProbeWorkerPool({
      workerUrl: new URL('./probe-worker.js', import.meta.url),
      poolSize: 1,
      timeoutMs: LONG_TIMEOUT_MS,
      maxHeapMb: 32,
      maxSamples: Number.MAX_SAFE_INTEGER,
    })
    try {
      const bytes = Buffer.from(readCorpusFile('go-mp4_sample.mp4'))
      bytes.writeUInt32BE(0x7fffffff, bytes.indexOf('stts', 0, 'latin1') + 12)
      const head = bytes.subarray(0, SNIFF_HEAD_BYTES)
      const container = sniffContainer(head)
      assert.equal(container, 'mp4')

      const started = performance.now()
      const outcome = await pool.run(createMemoryByteSource(bytes), head, container)
      assert.deepEqual(outcome, { kind: 'abandoned' })
      assert.ok(performance.now() - started < LONG_TIMEOUT_MS / 2, 'ended by the crash')
      const intact = readCorpusFile('go-mp4_sample.mp4')
      const next = await pool.run(createMemoryByteSource(intact), intact, container)
      assert.equal(next.kind, 'media')
      assert.ok(next.kind === 'media' && Math.abs((next.durationSeconds ?? 0) - 1.024) < 0.05)
    } finally {
      await pool.close()
    }
  })

  test('at most two children, started on demand, reused, all gone after close()', async () => {
    const before = probeChildren()
    const prober = new MediaProber({ timeoutMs: LONG_TIMEOUT_MS })
    try {
      assert.deepEqual(probeChildren(), before, 'no child before the first probe')
      const bytes = readCorpusFile(WEBM)
      const held = Array.from({ length: 4 }, () => heldSource(bytes))
      const probing = Promise.all(held.map(({ source }) => prober.probe(source)))
      probing.catch(() => {}) // awaited below; a failed assertion first must not hide its cause
      await Promise.all(held.slice(0, 2).map(({ requested }) => requested))

      const children = probeChildren()
      assert.equal(children.length, before.length + 2, 'two children for four probes')
      for (const pid of children.filter((p) => !before.includes(p))) {
        assert.equal(readlinkSync(`/proc/${pid}/fd/1`), '/dev/null', 'child stdout is not ours')
        const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean)
        assert.deepEqual(
          env.filter((entry) => !entry.startsWith('NODE_CHANNEL_')),
          [],
          'no server secrets in the child environment',
        )
      }
      for (const { release } of held) release()
      const infos = await probing
      for (const info of infos)
        assert.ok(Math.abs((info?.durationSeconds ?? 0) - WEBM_SECONDS) < 0.05)
      assert.deepEqual(probeChildren().sort(), children.sort(), 'the same children were reused')
    } finally {
      await prober.close()
    }
    assert.deepEqual(probeChildren(), before, 'close() left no child behind')
  })

  test('an idle prober never keeps the process alive; its children leave with it', async () => {
    const script = `
      import { readFileSync, readdirSync } from 'node:fs'
      import { MediaProber } from ${JSON.stringify(moduleUrl('./media-prober.js'))}
      import { createMemoryByteSource } from ${JSON.stringify(moduleUrl('./byte-source.js'))}
      const prober = new MediaProber()
      const bytes = new Uint8Array(readFileSync(${JSON.stringify(corpusPath(WEBM))}))
      const info = await prober.probe(createMemoryByteSource(bytes))
      const children = readdirSync('/proc').filter((pid) => {
        try {
          const stat = readFileSync('/proc/' + pid + '/stat', 'utf8')
          return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === String(process.pid)
        } catch { return false }
      })
      process.stdout.write(JSON.stringify({ info, children: children.map(Number) }))
      // no close(): the idle child must not hold this process open
    `
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--input-type=module', '-e', script],
      { timeout: 30_000 },
    )
    // Everything on stdout is the script's own output: the child printed nothing there.
    const { info, children } = JSON.parse(stdout) as { info: unknown; children: number[] }
    assert.equal((info as { durationSeconds: number }).durationSeconds > 50, true)
    assert.equal(children.length, 1, 'one probe child was running')

    await assertExitsSoon(children)
  })

  test('a child stuck in a parser loop exits when the server is SIGKILLed', async () => {
    // The server probes a WebM on which mediabunny spins without yielding, waits until its
    // child burns CPU with no reads outstanding, reports the child's pid and kills itself.
    const script = `
      import { readFileSync, readdirSync } from 'node:fs'
      import { setTimeout as delay } from 'node:timers/promises'
      import { MediaProber } from ${JSON.stringify(moduleUrl('./media-prober.js'))}
      import { readCorpusFile, virtualFile } from ${JSON.stringify(moduleUrl('./corpus-fixtures.js'))}
      const bytes = readCorpusFile(${JSON.stringify(WEBM)})
      const cluster = Buffer.from([0x1f, 0x43, 0xb6, 0x75])
      const file = virtualFile([
        bytes.subarray(0, Buffer.from(bytes).indexOf(cluster)),
        { zeros: 16 * 1024 * 1024 },
        bytes.subarray(Buffer.from(bytes).lastIndexOf(cluster)),
      ])
      let lastReadMs = performance.now()
      const source = { size: file.size, read: (start, end) => {
        lastReadMs = performance.now()
        return file.read(start, end)
      } }
      void new MediaProber({ timeoutMs: 60000 }).probe(source)
      const cpuTicks = (pid) => {
        const stat = readFileSync('/proc/' + pid + '/stat', 'utf8')
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) }
      }
      let child = null
      let ticksAtLastRead = 0
      for (const started = performance.now(); performance.now() - started < 20000; ) {
        await delay(50)
        child ??= readdirSync('/proc').map(Number).find((pid) => {
          try { return cpuTicks(pid).ppid === process.pid } catch { return false }
        }) ?? null
        if (child === null) continue
        const { ticks } = cpuTicks(child)
        if (performance.now() - lastReadMs < 300) ticksAtLastRead = ticks
        else if (ticks - ticksAtLastRead >= 30) break // 0.3 s of CPU without asking for bytes
      }
      process.stdout.write(String(child))
      process.kill(process.pid, 'SIGKILL')
    `
    const result = await new Promise<{ stdout: string; signal: NodeJS.Signals | null }>(
      (resolve) => {
        execFile(
          process.execPath,
          ['--input-type=module', '-e', script],
          { timeout: 40_000 },
          (error, stdout) => resolve({ stdout, signal: error?.signal ?? null }),
        )
      },
    )
    assert.equal(result.signal, 'SIGKILL', 'the server died without closing the prober')
    const child = Number(result.stdout)
    assert.ok(child > 0, `child pid ${result.stdout}`)
    await assertExitsSoon([child])
  })
})
