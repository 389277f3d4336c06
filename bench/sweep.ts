import fsp from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { run, type Cleanup } from './processes.js'
import { costRow, rateRow, type Row } from './report.js'
import { countSweepState, prepareSweepState, sweepPaths } from './sweep-state.js'

const EXPIRED = 100_000
const UNEXPIRED_MANY = 1_000_000
const UNEXPIRED_FEW = 10_000
const WORKER_TIMEOUT_MS = 10 * 60 * 1000

interface PassResult {
  seconds: number
  deleted: number
  batches: number
  errors: string[]
  /** The reference's time in fs.unlink alone. */
  unlinkSeconds?: number
}

const seconds = (value = NaN) => `${value.toFixed(2)} s`

/**
 * Issue #3: one retention pass of the embedded default (SQLite + files) over 100,000 expired
 * recordings, (1) against deleting the same files and rows directly, on an identical copy of
 * the same state, and (2) with 1,000,000 unexpired rows beside them against 10,000.
 */
export async function benchSweep(options: {
  cleanup: Cleanup
  tmp: string
  rows: Row[]
  notes: string[]
  step: (text: string) => void
}): Promise<void> {
  const { cleanup, rows, notes, step } = options
  const dir = path.join(options.tmp, 'sweep')
  await fsp.mkdir(dir)
  cleanup.add('sweep dirs', () => fsp.rm(dir, { recursive: true, force: true }))

  // Both states and all four copies first, then the four passes back to back: on a busy
  // machine, figures taken minutes apart compare badly.
  step(`sweep: preparing ${EXPIRED} expired + ${UNEXPIRED_MANY} unexpired recordings`)
  const many = path.join(dir, 'many')
  const started = Date.now()
  await prepareSweepState(many, EXPIRED, UNEXPIRED_MANY)
  const prepareSeconds = (Date.now() - started) / 1000
  step(`sweep: preparing ${EXPIRED} expired + ${UNEXPIRED_FEW} unexpired recordings`)
  const few = path.join(dir, 'few')
  await prepareSweepState(few, EXPIRED, UNEXPIRED_FEW)
  const databaseMb = (await fsp.stat(sweepPaths(many).db)).size / 1e6
  step('sweep: copying each state twice')
  const runs = {
    ours: path.join(dir, 'ours'),
    reference: path.join(dir, 'reference'),
    oursFew: path.join(dir, 'ours-few'),
    referenceFew: path.join(dir, 'reference-few'),
  }
  await copyState(many, runs.ours)
  await copyState(many, runs.reference)
  await copyState(few, runs.oursFew)
  await copyState(few, runs.referenceFew)
  await fsp.rm(many, { recursive: true })
  await fsp.rm(few, { recursive: true })
  await run('sync', [])

  step('sweep: the product Sweeper, expiry pass')
  const ours = await runPass('ours', runs.ours, UNEXPIRED_MANY)
  // The reference deletes in batches as large as the product's (DEFAULT_BATCH_ROWS).
  const batchRows = Math.ceil(EXPIRED / ours.batches)
  step(`sweep: reference, unlink + DELETE … WHERE id IN (${batchRows} ids)`)
  const reference = await runPass('reference', runs.reference, UNEXPIRED_MANY, batchRows)
  step('sweep: the product Sweeper and the reference beside 10,000 unexpired rows')
  const oursFew = await runPass('ours', runs.oursFew, UNEXPIRED_FEW)
  const referenceFew = await runPass('reference', runs.referenceFew, UNEXPIRED_FEW, batchRows)
  for (const copy of Object.values(runs)) await fsp.rm(copy, { recursive: true })

  notes.push(
    `sweep: in-process Sweeper.sweep({ reconcile: false }) (expiry pass only, no orphan scan), ` +
      `each pass in its own process on a fresh cp of the prepared DATA_DIR after sync; ` +
      `${ours.batches} batches of ${batchRows}; ours ${ours.seconds.toFixed(2)} s with ` +
      `${UNEXPIRED_MANY} unexpired rows beside, ${oursFew.seconds.toFixed(2)} s with ` +
      `${UNEXPIRED_FEW}; reference ${reference.seconds.toFixed(2)} s and ` +
      `${referenceFew.seconds.toFixed(2)} s (of which unlink ${seconds(reference.unlinkSeconds)} ` +
      `and ${seconds(referenceFew.unlinkSeconds)}; ids selected before timing), so the ` +
      `reference itself grows ${(reference.seconds / referenceFew.seconds).toFixed(2)}×; preparing ${EXPIRED + UNEXPIRED_MANY} rows + ${EXPIRED} files took ` +
      `${prepareSeconds.toFixed(1)} s (database ${databaseMb.toFixed(0)} MB)`,
  )
  rows.push(
    rateRow(
      `sweep pass, ${EXPIRED} expired among ${EXPIRED + UNEXPIRED_MANY} rows, vs unlink + DELETE`,
      EXPIRED / ours.seconds,
      EXPIRED / reference.seconds,
      'recordings/s',
      0.5,
    ),
  )
  // Deleting the same rows from a larger table costs more in SQLite itself (deeper B-trees,
  // more pages per index): the direct reference grows too. The sweep must add no growth of
  // its own, i.e. read an index and not the table, so its growth is compared with that one.
  rows.push(
    costRow(
      `sweep time growth, ${UNEXPIRED_FEW} → ${UNEXPIRED_MANY} unexpired rows beside, vs unlink + DELETE's own growth`,
      ours.seconds / oursFew.seconds,
      reference.seconds / referenceFew.seconds,
      '×',
      1.25,
    ),
  )
}

/** A byte-identical copy (synced before any pass, so no pass pays for the copy's writeback). */
async function copyState(from: string, to: string): Promise<void> {
  const copied = await run('cp', ['-a', from, to], { timeoutMs: 300_000 })
  if (copied.code !== 0) throw new Error(`cp failed: ${copied.stderr}`)
}

async function runPass(
  mode: 'ours' | 'reference',
  dataDir: string,
  unexpired: number,
  batchRows?: number,
): Promise<PassResult> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sweep-worker.js')
  const env = { ...process.env, MODE: mode, DATA_DIR: dataDir, BATCH_ROWS: String(batchRows) }
  const result = await run(process.execPath, [script], { env, timeoutMs: WORKER_TIMEOUT_MS })
  if (result.code !== 0) throw new Error(`sweep worker (${mode}) failed:\n${result.stderr}`)
  const pass = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as PassResult
  const left = countSweepState(dataDir)
  if (
    pass.deleted !== EXPIRED ||
    pass.errors.length > 0 ||
    left.rows !== unexpired ||
    left.files !== 0
  ) {
    throw new Error(`sweep (${mode}) did not finish: ${JSON.stringify({ pass, left })}`)
  }
  return pass
}
