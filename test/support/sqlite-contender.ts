import { spawn, type ChildProcess } from 'node:child_process'
import readline from 'node:readline'

import { REPO_ROOT } from './corpus.js'

/**
 * A second process on the same SQLite file, as another API node, the CLI or an operator's
 * script would be. It prints one JSON line per event on stdout.
 */
const SCRIPT = String.raw`
const Database = require('better-sqlite3')
const [file, mode, ms] = process.argv.slice(1)
const db = new Database(file)
db.pragma('busy_timeout = 5000')
const say = (event) => process.stdout.write(JSON.stringify(event) + '\n')
const sleep = (n) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, n)
if (mode === 'hold') {
  db.exec('BEGIN IMMEDIATE')
  db.prepare('UPDATE recordings SET legal_hold = legal_hold').run()
  say({ event: 'locked' })
  sleep(Number(ms))
  db.exec('COMMIT')
  say({ event: 'released' })
} else {
  const deadline = Date.now() + Number(ms)
  let commits = 0
  let busy = 0
  while (Date.now() < deadline) {
    try {
      db.exec('BEGIN')
      const row = db.prepare('SELECT id FROM recordings ORDER BY created_at LIMIT 1').get()
      if (row) db.prepare('UPDATE recordings SET legal_hold = legal_hold WHERE id = ?').run(row.id)
      db.exec('COMMIT')
      commits += 1
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK')
      if (!String(error.code).startsWith('SQLITE_BUSY')) throw error
      busy += 1
    }
    sleep(2)
  }
  say({ event: 'done', commits, busy })
}
db.close()
`

export interface Contender {
  child: ChildProcess
  /** Resolves with the first event of this name the script reports. */
  next(event: string): Promise<Record<string, unknown>>
  /** Resolves with the exit code. */
  exited: Promise<number | null>
  stop(): Promise<void>
}

/**
 * `hold`: BEGIN IMMEDIATE, one write, report `locked`, keep the lock `ms`, COMMIT, report
 * `released`. `loop`: for `ms`, BEGIN (deferred); SELECT; UPDATE one row; COMMIT, then report
 * `done` with the counts.
 */
export function startContender(file: string, mode: 'hold' | 'loop', ms: number): Contender {
  const child = spawn(process.execPath, ['-e', SCRIPT, file, mode, String(ms)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const events: Record<string, unknown>[] = []
  const waiters: { name: string; resolve: (event: Record<string, unknown>) => void }[] = []
  let stderr = ''
  child.stderr?.on('data', (chunk) => (stderr += chunk))
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const event = JSON.parse(line) as Record<string, unknown>
    events.push(event)
    for (const waiter of waiters.filter((w) => w.name === event.event)) waiter.resolve(event)
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))

  return {
    child,
    exited,
    next(name) {
      const seen = events.find((event) => event.event === name)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        waiters.push({ name, resolve })
        exited.then((code) => reject(new Error(`contender exited ${code}: ${stderr}`)))
      })
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}
