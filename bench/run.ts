/**
 * `npm run bench`: speed and memory of the real server process, each figure beside a
 * reference measured in the same run on the same machine (nginx, dd, a bare node:http +
 * better-sqlite3 server; deleting files and rows directly; the AWS SDK and a bare `pg`
 * server for the PostgreSQL + S3 shape), so the ratios hold from one machine to the next.
 * Loopback only. Writes bench/results.md (keeping the previous run's table below the new
 * one) and exits 1 when a target is missed.
 *
 * `npm run bench -- list` (or download, upload, memory, sweep, scaleout) runs only those
 * sections and leaves results.md alone. BENCH_SERVER_ARGS adds node flags to the server process, e.g.
 * `BENCH_SERVER_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm run bench -- list`.
 */
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import Database from 'better-sqlite3'

import { createDatabase, migrateToLatest } from '../src/db/database.js'
import { KyselyRecordingRepository } from '../src/db/kysely-recording-repository.js'
import { createRecordingId } from '../src/recordings/recording-id.js'
import { recordingBlobKey } from '../src/storage/keys.js'
import { corpusPath, REPO_ROOT } from '../test/support/corpus.js'
import { CLI, freePort } from '../test/support/process-server.js'
import { download, downloadConcurrently, upload } from './curl.js'
import { PAGE_SQL } from './list-sql.js'
import { checkSamePage, pageRate, withCpu, type Load } from './load.js'
import { writePaddedMp4 } from './media-file.js'
import {
  Cleanup,
  idleRssBytes,
  median,
  RssSampler,
  run,
  startChild,
  waitForHttp,
  type Child,
} from './processes.js'
import { describeMachine, growthRow, rateRow, renderTable, type Row } from './report.js'
import { benchScaleout } from './scaleout.js'
import { startStaticServer } from './static-server.js'
import { benchSweep } from './sweep.js'

const RECORDING_BYTES = 1024 ** 3
const SOURCE_MP4 = 'mp4ff_prog_8s.mp4'
const ORG = 'bench'
const SINGLE_DOWNLOAD_RUNS = 5
const CONCURRENT_DOWNLOADS = 8
const CONCURRENT_RUNS = 3
const UPLOAD_RUNS = 5
const LIST_ROWS = 100_000
const LOAD: Load = { connections: 10, durationSeconds: 10, warmupSeconds: 2, rounds: 2 }
const WATCHDOG_MS = 30 * 60 * 1000 // the whole bench takes a few minutes; never hang for ever
const MB = 1e6
const SECTIONS = ['download', 'upload', 'memory', 'list', 'sweep', 'scaleout'] as const
type Section = (typeof SECTIONS)[number]

interface Server {
  child: Child
  baseUrl: string
  dataDir: string
  env: NodeJS.ProcessEnv
  token: string
  /** curl -H arguments that authenticate as an org_admin of ORG. */
  auth: string[]
}

async function main(): Promise<number> {
  const asked = process.argv.slice(2)
  const unknown = asked.filter((name) => !SECTIONS.includes(name as Section))
  if (unknown.length > 0) throw new Error(`unknown sections ${unknown}; have ${SECTIONS}`)
  const sections = new Set<Section>(asked.length > 0 ? (asked as Section[]) : SECTIONS)
  const cleanup = new Cleanup()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void cleanup.run().finally(() => process.exit(130)))
  }
  const watchdog = setTimeout(() => {
    console.error(`bench still running after ${WATCHDOG_MS / 60_000} min: giving up`)
    void cleanup.run().finally(() => process.exit(2))
  }, WATCHDOG_MS)
  try {
    const machine = describeMachine({})
    const { rows, notes } = await runBench(cleanup, sections)
    const table = renderTable(rows)
    const loadAtEnd = os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')
    const report = [
      '# Benchmark results',
      '',
      'Produced by `npm run bench` (bench/run.ts). Every reference ran in the same run, on the',
      'same machine, over loopback; ratios are ours / reference.',
      '',
      machine,
      `- load average at end: ${loadAtEnd}`,
      ...notes.map((note) => `- ${note}`),
      '',
      table,
      '',
    ].join('\n')
    const resultsFile = path.join(REPO_ROOT, 'bench', 'results.md')
    console.log(`\n${machine}\n${notes.map((n) => `- ${n}`).join('\n')}\n\n${table}\n`)
    if (sections.size === SECTIONS.length) {
      fs.writeFileSync(resultsFile, report + previousRun(resultsFile))
      console.log('written to bench/results.md')
    }
    return rows.every((row) => row.pass) ? 0 : 1
  } finally {
    clearTimeout(watchdog)
    await cleanup.run()
  }
}

/** The table of the run results.md holds now, to read before/after side by side. */
function previousRun(file: string): string {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch {
    return ''
  }
  // Only the latest table of the old file: its own "previous run" is dropped.
  const latest = text.split('\n## Previous run')[0] ?? ''
  const date = /^- date: (.*)$/m.exec(latest)?.[1] ?? 'unknown date'
  const table = latest.split('\n').filter((line) => line.startsWith('|'))
  if (table.length === 0) return ''
  return ['', `## Previous run (${date})`, '', ...table, ''].join('\n')
}

interface Context {
  cleanup: Cleanup
  tmp: string
  server: Server
  /** The real recording every section uses, uploaded once. */
  media: string
  recording: { id: string; url: string; size_bytes: number }
  rows: Row[]
  notes: string[]
}

async function runBench(
  cleanup: Cleanup,
  sections: Set<Section>,
): Promise<{ rows: Row[]; notes: string[] }> {
  await checkPageSql()
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'wcr-bench-'))
  cleanup.add('temp dir', () => fsp.rm(tmp, { recursive: true, force: true }))

  // The list alone needs no big file: any real recording will do for its rows.
  const big = sections.has('download') || sections.has('upload') || sections.has('memory')
  let media = corpusPath(SOURCE_MP4)
  if (big || sections.has('scaleout')) {
    media = path.join(tmp, 'recording.mp4')
    step(`writing a ${RECORDING_BYTES / 1024 ** 3} GiB MP4 (${SOURCE_MP4} + free box)`)
    await writePaddedMp4(corpusPath(SOURCE_MP4), media, RECORDING_BYTES)
  }
  const rows: Row[] = []
  const notes: string[] = []

  // The embedded default's server: every section but sweep and scaleout uses it.
  let server: Server | undefined
  if (big || sections.has('list')) {
    server = await startServer(cleanup, path.join(tmp, 'data'))
    step('uploading the recording once')
    const first = await upload(uploadUrl(server, 'bench-download'), media, server.auth)
    const recording = first.body as Context['recording']
    const context: Context = { cleanup, tmp, server, media, recording, rows, notes }

    if (sections.has('download')) await benchDownloads(context)
    if (sections.has('upload')) await benchUploads(context)
    if (sections.has('memory')) await benchTransferMemory(context)
    if (sections.has('list')) await benchList(context)
    if (server.child.exited()) throw new Error(`server died:\n${server.child.output()}`)
    await server.child.stop()
  }
  if (sections.has('sweep')) await benchSweep({ cleanup, tmp, rows, notes, step })
  if (sections.has('scaleout')) {
    await benchScaleout({ cleanup, tmp, media, rows, notes, step, load: LOAD })
  }
  return { rows, notes }
}

/** 1. Downloads: ours vs nginx serving the very blob file. */
async function benchDownloads({ cleanup, tmp, server, recording, rows, notes }: Context) {
  const blobKey = recordingBlobKey(recording.id)
  const blobPath = path.join(server.dataDir, 'blobs', blobKey)
  if (fs.statSync(blobPath).size !== RECORDING_BYTES) throw new Error(`${blobPath} is not whole`)
  const reference = await startStaticServer(cleanup, path.join(server.dataDir, 'blobs'), tmp)
  notes.push(`download reference: ${reference.description}`)
  const referenceUrl = `${reference.baseUrl}/${blobKey}`

  step('single downloads')
  await download(recording.url, RECORDING_BYTES, server.auth) // warm the page cache and JIT
  await download(referenceUrl, RECORDING_BYTES)
  const singleOurs: number[] = []
  const singleReference: number[] = []
  const cpu = { ours: 0, reference: 0, gib: 0 }
  for (let i = 0; i < SINGLE_DOWNLOAD_RUNS; i++) {
    const [ours, ourCpu] = await withCpu(server.child.pid, () =>
      download(recording.url, RECORDING_BYTES, server.auth),
    )
    singleOurs.push(ours.bytes / ours.seconds / MB)
    const [theirs, theirCpu] = await withCpu(reference.child.pid, () =>
      download(referenceUrl, RECORDING_BYTES),
    )
    singleReference.push(theirs.bytes / theirs.seconds / MB)
    Object.assign(cpu, {
      ours: cpu.ours + ourCpu,
      reference: cpu.reference + theirCpu,
      gib: cpu.gib + RECORDING_BYTES / 1024 ** 3,
    })
  }
  rows.push(
    rateRow(
      `1 GiB download, 1 client (median of ${SINGLE_DOWNLOAD_RUNS})`,
      median(singleOurs),
      median(singleReference),
      'MB/s',
      0.6,
    ),
  )

  step(`${CONCURRENT_DOWNLOADS} downloads at once`)
  const manyOurs: number[] = []
  const manyReference: number[] = []
  for (let i = 0; i < CONCURRENT_RUNS; i++) {
    const [ours, ourCpu] = await withCpu(server.child.pid, () =>
      downloadConcurrently(recording.url, RECORDING_BYTES, CONCURRENT_DOWNLOADS, server.auth),
    )
    manyOurs.push(ours.bytesPerSecond / MB)
    const [theirs, theirCpu] = await withCpu(reference.child.pid, () =>
      downloadConcurrently(referenceUrl, RECORDING_BYTES, CONCURRENT_DOWNLOADS),
    )
    manyReference.push(theirs.bytesPerSecond / MB)
    Object.assign(cpu, {
      ours: cpu.ours + ourCpu,
      reference: cpu.reference + theirCpu,
      gib: cpu.gib + (CONCURRENT_DOWNLOADS * RECORDING_BYTES) / 1024 ** 3,
    })
  }
  notes.push(
    `download CPU (user+sys, all threads) per GiB served: ours ` +
      `${(cpu.ours / cpu.gib).toFixed(2)} s, reference ${(cpu.reference / cpu.gib).toFixed(2)} s`,
  )
  rows.push(
    rateRow(
      `1 GiB download, ${CONCURRENT_DOWNLOADS} at once, total (median of ${CONCURRENT_RUNS})`,
      median(manyOurs),
      median(manyReference),
      'MB/s',
      0.75,
    ),
  )
  await reference.child.stop()
}

/** 2. Upload until 201 vs dd writing as much with an fsync, on the same disk. */
async function benchUploads({ cleanup, tmp, server, media, rows, notes }: Context) {
  step('uploads, bare node:http uploads and dd')
  const bare = await startBareUploadServer(cleanup, tmp)
  const bareRates: number[] = []
  const uploadOurs: number[] = []
  const uploadReference: number[] = []
  const uploadCpu: number[] = []
  for (let i = 0; i < UPLOAD_RUNS; i++) {
    // Each side starts with no dirty pages of the other's to write back.
    await run('sync', [])
    const [ours, ourCpu] = await withCpu(server.child.pid, () =>
      upload(uploadUrl(server, `bench-upload-${i}`), media, server.auth),
    )
    uploadOurs.push(RECORDING_BYTES / ours.seconds / MB)
    uploadCpu.push(ourCpu)
    await deleteRecording(server, (ours.body as { id: string }).id)

    await run('sync', [])
    const floor = await upload(`${bare.baseUrl}/upload`, media, [])
    bareRates.push(RECORDING_BYTES / floor.seconds / MB)

    await run('sync', [])
    const ddFile = path.join(tmp, 'dd.bin')
    const dd = await run('dd', [
      'if=/dev/zero',
      `of=${ddFile}`,
      'bs=1M',
      'count=1024',
      'conv=fsync',
    ])
    if (dd.code !== 0) throw new Error(`dd failed: ${dd.stderr}`)
    uploadReference.push(RECORDING_BYTES / (dd.elapsedMs / 1000) / MB)
    await fsp.rm(ddFile)
  }
  notes.push(
    `upload: ours ${uploadOurs.map((r) => r.toFixed(0)).join(', ')} MB/s, dd ` +
      `${uploadReference.map((r) => r.toFixed(0)).join(', ')} MB/s; server CPU per GiB ` +
      `uploaded ${median(uploadCpu).toFixed(2)} s; bare node:http receive + SHA-256 + fsync ` +
      `(bench/upload-server.ts) ${bareRates.map((r) => r.toFixed(0)).join(', ')} MB/s, ` +
      `ours / bare = ${(median(uploadOurs) / median(bareRates)).toFixed(2)}`,
  )
  await bare.child.stop()
  rows.push(
    rateRow(
      `1 GiB upload until 201 vs dd conv=fsync (median of ${UPLOAD_RUNS})`,
      median(uploadOurs),
      median(uploadReference),
      'MB/s',
      0.7,
    ),
  )
}

/** 5. Memory while moving 5 GiB at once. */
async function benchTransferMemory({ server, media, recording, rows }: Context) {
  step('RSS during 4 downloads + 1 upload')
  const idle = await idleRssBytes(server.child.pid)
  const sampler = new RssSampler(server.child.pid).start()
  const [busy] = await Promise.all([
    upload(uploadUrl(server, 'bench-memory'), media, server.auth),
    ...Array.from({ length: 4 }, () => download(recording.url, RECORDING_BYTES, server.auth)),
  ])
  const peak = sampler.stop()
  await deleteRecording(server, (busy.body as { id: string }).id)
  rows.push(growthRow('peak RSS, 4 × 1 GiB downloads + 1 × 1 GiB upload', peak, idle, 100))
}

/** 3 and 4. Pages of a 100,000-row list vs the same SQL in a bare server; the whole list. */
async function benchList({ cleanup, tmp, server, recording, rows, notes }: Context) {
  step(`inserting ${LIST_ROWS} recordings`)
  insertRecordings(server.dataDir, LIST_ROWS, recording.size_bytes)
  const sqlServer = await startSqlReference(cleanup, server.dataDir)
  await checkSamePage(
    { url: `${server.baseUrl}/recordings?limit=100`, authorization: bearer(server) },
    `${sqlServer.baseUrl}/recordings?limit=100`,
  )

  step(`GET /recordings?limit=100 for ${LOAD.rounds} × ${LOAD.durationSeconds} s per server`)
  const ourPage = `${server.baseUrl}/recordings?limit=100`
  const theirPage = `${sqlServer.baseUrl}/recordings?limit=100`
  const authHeader = { authorization: bearer(server) }
  await pageRate(ourPage, authHeader, LOAD.warmupSeconds, LOAD)
  await pageRate(theirPage, {}, LOAD.warmupSeconds, LOAD)
  const pagesOurs: number[] = []
  const pagesReference: number[] = []
  const cpu = { ours: 0, reference: 0, ourPages: 0, theirPages: 0 }
  for (let i = 0; i < LOAD.rounds; i++) {
    const [ours, ourCpu] = await withCpu(server.child.pid, () =>
      pageRate(ourPage, authHeader, LOAD.durationSeconds, LOAD),
    )
    const [theirs, theirCpu] = await withCpu(sqlServer.child.pid, () =>
      pageRate(theirPage, {}, LOAD.durationSeconds, LOAD),
    )
    pagesOurs.push(ours)
    pagesReference.push(theirs)
    cpu.ours += ourCpu
    cpu.reference += theirCpu
    cpu.ourPages += ours * LOAD.durationSeconds
    cpu.theirPages += theirs * LOAD.durationSeconds
  }
  notes.push(
    `list CPU per page (server process): ours ${((cpu.ours / cpu.ourPages) * 1e6).toFixed(0)} µs, ` +
      `reference ${((cpu.reference / cpu.theirPages) * 1e6).toFixed(0)} µs`,
  )
  await sqlServer.child.stop()
  notes.push(
    `list load: autocannon ${LOAD.connections} connections, ${LOAD.rounds} × ` +
      `${LOAD.durationSeconds} s per server after ${LOAD.warmupSeconds} s warm-up, alternated`,
  )
  rows.push(
    rateRow(
      `GET /recordings?limit=100, ${LIST_ROWS} rows in the org`,
      median(pagesOurs),
      median(pagesReference),
      'req/s',
      0.6,
    ),
  )

  step('GET /recordings (the whole list)')
  const listFile = path.join(tmp, 'list.json')
  const before = await idleRssBytes(server.child.pid)
  const sampler = new RssSampler(server.child.pid).start()
  const listed = await run('curl', [
    '-s',
    '-o',
    listFile,
    '--max-time',
    '120',
    '-H',
    `Authorization: ${bearer(server)}`,
    '-w',
    '%{http_code} %{size_download} %{time_total}',
    `${server.baseUrl}/recordings`,
  ])
  const peak = sampler.stop()
  const [status, , seconds] = listed.stdout.split(' ')
  const count = (JSON.parse(fs.readFileSync(listFile, 'utf8')) as { recordings: unknown[] })
    .recordings.length
  if (status !== '200' || count < LIST_ROWS) {
    throw new Error(`full list answered ${listed.stdout} with ${count} recordings`)
  }
  notes.push(`full list: ${count} recordings in ${Number(seconds).toFixed(2)} s`)
  rows.push(growthRow(`GET /recordings, all ${count} recordings streamed`, peak, before, 50))
}

async function startServer(cleanup: Cleanup, dataDir: string): Promise<Server> {
  const port = await freePort()
  const env: NodeJS.ProcessEnv = { ...process.env }
  // The embedded default only: no key, database or storage from the caller's shell.
  for (const name of Object.keys(env)) {
    if (/^(AUTH_|DATABASE_URL|STORAGE_URL|PUBLIC_URL|RETENTION|MAX_UPLOAD)/.test(name)) {
      delete env[name]
    }
  }
  Object.assign(env, { DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: String(port) })
  env.LOG_LEVEL = 'warn'
  const nodeArgs = (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean)
  const child = startChild(cleanup, 'server', process.execPath, [...nodeArgs, CLI, 'serve'], {
    env,
  })
  const baseUrl = `http://127.0.0.1:${port}`
  await waitForHttp(`${baseUrl}/healthz`, child)
  const minted = await run(
    process.execPath,
    [CLI, 'token', '--org', ORG, '--permission', 'org_admin', '--ttl', '2h'],
    { env },
  )
  if (minted.code !== 0) throw new Error(`token failed: ${minted.stderr}`)
  const token = minted.stdout.trim()
  return { child, baseUrl, dataDir, env, token, auth: [`Authorization: Bearer ${token}`] }
}

function bearer(server: Server): string {
  return `Bearer ${server.token}`
}

function uploadUrl(server: Server, meetingId: string): string {
  return `${server.baseUrl}/recordings?meeting_id=${meetingId}-${Date.now()}`
}

async function deleteRecording(server: Server, id: string): Promise<void> {
  const response = await fetch(`${server.baseUrl}/recordings/${id}`, {
    method: 'DELETE',
    headers: { authorization: bearer(server) },
  })
  if (response.status !== 204) throw new Error(`DELETE ${id} answered ${response.status}`)
}

/** Straight into the server's SQLite file (WAL allows it while the server runs). */
function insertRecordings(dataDir: string, count: number, sizeBytes: number): void {
  const db = new Database(path.join(dataDir, 'recordings.db'))
  try {
    db.pragma('busy_timeout = 5000')
    const insert = db.prepare(
      'insert into recordings (id, org_id, meeting_id, created_at, uploaded_at, expires_at, ' +
        'duration_ms, size_bytes, content_type, extension, sha256, blob_key, file_name, state, ' +
        "legal_hold, idempotency_key, uploaded_by) values (?, ?, ?, ?, ?, ?, 8000, ?, 'video/mp4', " +
        "'mp4', ?, ?, ?, 'active', 0, null, 'bench')",
    )
    const nowMs = Date.now()
    const expiresAt = nowMs + 30 * 86_400_000
    db.transaction(() => {
      for (let i = 0; i < count; i++) {
        // One a minute into the past, older than the real uploads. Ids, blob keys and
        // (meeting, content) are unique by schema, so each row gets its own.
        const createdAt = Math.floor((nowMs - (i + 1) * 60_000) / 1000) * 1000
        const id = createRecordingId(createdAt)
        const meeting = `bench-meeting-${i}`
        const sha256 = i.toString(16).padStart(64, '0')
        const values = [id, ORG, meeting, createdAt, createdAt, expiresAt, sizeBytes, sha256]
        insert.run(...values, recordingBlobKey(id), `${meeting}.mp4`)
      }
    })()
    db.pragma('wal_checkpoint(TRUNCATE)')
  } finally {
    db.close()
  }
}

async function startSqlReference(cleanup: Cleanup, dataDir: string) {
  const port = await freePort()
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sql-reference-server.js')
  const child = startChild(cleanup, 'sql reference server', process.execPath, [script], {
    env: { ...process.env, DB_PATH: path.join(dataDir, 'recordings.db'), PORT: String(port) },
  })
  const baseUrl = `http://127.0.0.1:${port}`
  await waitForHttp(`${baseUrl}/healthz`, child)
  return { child, baseUrl }
}

async function startBareUploadServer(cleanup: Cleanup, tmp: string) {
  const port = await freePort()
  const dir = path.join(tmp, 'bare-uploads')
  await fsp.mkdir(dir)
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'upload-server.js')
  const child = startChild(cleanup, 'bare upload server', process.execPath, [script], {
    env: { ...process.env, DIR: dir, PORT: String(port) },
  })
  const baseUrl = `http://127.0.0.1:${port}`
  await waitForHttp(`${baseUrl}/healthz`, child)
  return { child, baseUrl }
}

/** The bare reference server runs PAGE_SQL; fail loudly if the product's query changed. */
async function checkPageSql(): Promise<void> {
  const db = createDatabase({ kind: 'sqlite', path: ':memory:' })
  try {
    await migrateToLatest(db, 'sqlite')
    const repository = new KyselyRecordingRepository(db) as unknown as {
      pageQuery(options: object): { compile(): { sql: string } }
    }
    const { sql } = repository.pageQuery({ orgId: ORG, filter: {}, nowMs: 0, limit: 101 }).compile()
    if (sql !== PAGE_SQL)
      throw new Error(`the list query changed; update bench/list-sql.ts:\n${sql}`)
  } finally {
    await db.destroy()
  }
}

function step(text: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${text}`)
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('bench failed:', error)
    process.exit(1)
  },
)
