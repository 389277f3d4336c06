import { randomBytes } from 'node:crypto'
import fsp from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'

import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { SignJWT } from 'jose'
import pg from 'pg'

import { createDatabase } from '../src/db/database.js'
import { KyselyRecordingRepository } from '../src/db/kysely-recording-repository.js'
import { createRecordingId } from '../src/recordings/recording-id.js'
import { recordingBlobKey } from '../src/storage/keys.js'
import { startPostgres } from '../test/support/postgres-server.js'
import { CLI, freePort } from '../test/support/process-server.js'
import { startS3Server } from '../test/support/s3-server.js'
import { download, upload } from './curl.js'
import { PG_PAGE_SQL } from './list-sql.js'
import { checkSamePage, pageRate, withCpu, type Load } from './load.js'
import { median, startChild, waitForHttp, type Cleanup } from './processes.js'
import { rateRow, type Row } from './report.js'

const ORG = 'bench'
const LIST_ROWS = 1_000_000
const INSERT_CHUNK_ROWS = 10_000
const DOWNLOAD_RUNS = 3
const MB = 1e6
const PREFIX = 'rec'

/**
 * Issue #4, the scale-out shape: the real server process on PostgreSQL + an S3 store
 * (OpenStack Swift's S3 API), (a) a 1 GiB download streamed through it against the same
 * object fetched with the AWS SDK, (b) list pages over 1,000,000 rows against the same SQL
 * through `pg` in a bare node:http server.
 */
export async function benchScaleout(options: {
  cleanup: Cleanup
  tmp: string
  /** A 1 GiB MP4 to upload. */
  media: string
  rows: Row[]
  notes: string[]
  step: (text: string) => void
  load: Load
}): Promise<void> {
  const { cleanup, tmp, media, rows, notes, step, load } = options
  step('scaleout: starting PostgreSQL and Swift (S3)')
  const [postgres, s3] = await Promise.all([startPostgres(), startS3Server()])
  cleanup.add('postgres', () => postgres.stop())
  cleanup.add('swift', () => s3.stop())
  const [databaseUrl, bucket] = await Promise.all([postgres.createDatabase(), s3.createBucket()])
  await checkPgPageSql()

  const auth = {
    secret: randomBytes(32).toString('hex'),
    issuer: 'https://idp.bench.test',
    audience: 'wcr-bench',
  }
  const port = await freePort()
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of Object.keys(env)) {
    if (/^(AUTH_|DATABASE_URL|STORAGE_URL|PUBLIC_URL|RETENTION|MAX_UPLOAD|S3_|AWS_)/.test(name)) {
      delete env[name]
    }
  }
  Object.assign(env, {
    DATA_DIR: path.join(tmp, 'scaleout-data'),
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    DATABASE_URL: databaseUrl,
    STORAGE_URL: `s3://${bucket}/${PREFIX}`,
    DOWNLOAD_MODE: 'stream',
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: s3.region,
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AUTH_JWT_SECRET: auth.secret,
    AUTH_ISSUER: auth.issuer,
    AUTH_AUDIENCE: auth.audience,
  })
  const nodeArgs = (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter(Boolean)
  const child = startChild(
    cleanup,
    'scaleout server',
    process.execPath,
    [...nodeArgs, CLI, 'serve'],
    {
      env,
    },
  )
  const baseUrl = `http://127.0.0.1:${port}`
  await waitForHttp(`${baseUrl}/healthz`, child)
  const token = await new SignJWT({ org_id: ORG, permissions: ['org_admin'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('bench')
    .setIssuedAt()
    .setExpirationTime('2h')
    .setIssuer(auth.issuer)
    .setAudience(auth.audience)
    .sign(new TextEncoder().encode(auth.secret))
  const authorization = `Bearer ${token}`

  step('scaleout: uploading the 1 GiB recording to S3 through the server')
  const uploaded = await upload(
    `${baseUrl}/recordings?meeting_id=bench-scaleout-${Date.now()}`,
    media,
    [`Authorization: ${authorization}`],
  )
  const recording = uploaded.body as { id: string; url: string; size_bytes: number }
  const sizeBytes = recording.size_bytes
  notes.push(
    `scaleout: PostgreSQL (fsync=off) and OpenStack Swift's S3 API (${s3.endpoint}) on this ` +
      `machine; 1 GiB upload through the server to S3 took ${uploaded.seconds.toFixed(1)} s`,
  )

  // (a) Downloads: through our server vs the SDK straight from the store.
  const client = new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  cleanup.add('s3 client', () => client.destroy())
  const objectKey = `${PREFIX}/${recordingBlobKey(recording.id)}`
  const sdkDownload = async () => {
    const started = process.hrtime.bigint()
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }))
    let bytes = 0
    for await (const chunk of response.Body as Readable) bytes += (chunk as Buffer).length
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    if (bytes !== sizeBytes) throw new Error(`SDK download got ${bytes} of ${sizeBytes} bytes`)
    return bytes / seconds / MB
  }
  const headers = [`Authorization: ${authorization}`]
  step(`scaleout: 1 GiB downloads, ours (curl) and SDK GetObject, ${DOWNLOAD_RUNS} each`)
  await download(recording.url, sizeBytes, headers) // warm Swift's caches and our JIT
  await sdkDownload()
  const ours: number[] = []
  const theirs: number[] = []
  let ourCpu = 0
  for (let i = 0; i < DOWNLOAD_RUNS; i++) {
    const [transfer, cpu] = await withCpu(child.pid, () =>
      download(recording.url, sizeBytes, headers),
    )
    ours.push(transfer.bytes / transfer.seconds / MB)
    ourCpu += cpu
    theirs.push(await sdkDownload())
  }
  notes.push(
    `scaleout download: ours ${ours.map((r) => r.toFixed(0)).join(', ')} MB/s, SDK ` +
      `${theirs.map((r) => r.toFixed(0)).join(', ')} MB/s; server CPU per GiB ` +
      `${(ourCpu / ((DOWNLOAD_RUNS * sizeBytes) / 1024 ** 3)).toFixed(2)} s`,
  )
  rows.push(
    rateRow(
      `S3: 1 GiB download through server vs SDK GetObject (median of ${DOWNLOAD_RUNS})`,
      median(ours),
      median(theirs),
      'MB/s',
      0.6,
    ),
  )

  // (b) List pages over 1,000,000 rows on PostgreSQL.
  step(`scaleout: inserting ${LIST_ROWS} rows into PostgreSQL`)
  const insertStarted = Date.now()
  await insertPgRows(databaseUrl, LIST_ROWS, sizeBytes)
  notes.push(
    `scaleout list: ${LIST_ROWS} rows inserted with unnest() in ${INSERT_CHUNK_ROWS}-row ` +
      `statements in ${((Date.now() - insertStarted) / 1000).toFixed(1)} s, then ANALYZE`,
  )
  const referencePort = await freePort()
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pg-reference-server.js')
  const reference = startChild(cleanup, 'pg reference server', process.execPath, [script], {
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: String(referencePort) },
  })
  const referenceBase = `http://127.0.0.1:${referencePort}`
  await waitForHttp(`${referenceBase}/healthz`, reference)
  const ourPage = `${baseUrl}/recordings?limit=100`
  const theirPage = `${referenceBase}/recordings?limit=100`
  await checkSamePage({ url: ourPage, authorization }, theirPage)

  step(`scaleout: GET /recordings?limit=100, ${load.rounds} × ${load.durationSeconds} s each`)
  const authHeader = { authorization }
  await pageRate(ourPage, authHeader, load.warmupSeconds, load)
  await pageRate(theirPage, {}, load.warmupSeconds, load)
  const pagesOurs: number[] = []
  const pagesTheirs: number[] = []
  const cpu = { ours: 0, theirs: 0, ourPages: 0, theirPages: 0 }
  for (let i = 0; i < load.rounds; i++) {
    const [rate, ourSeconds] = await withCpu(child.pid, () =>
      pageRate(ourPage, authHeader, load.durationSeconds, load),
    )
    const [theirRate, theirSeconds] = await withCpu(reference.pid, () =>
      pageRate(theirPage, {}, load.durationSeconds, load),
    )
    pagesOurs.push(rate)
    pagesTheirs.push(theirRate)
    cpu.ours += ourSeconds
    cpu.theirs += theirSeconds
    cpu.ourPages += rate * load.durationSeconds
    cpu.theirPages += theirRate * load.durationSeconds
  }
  notes.push(
    `scaleout list CPU per page (node process only; PostgreSQL not counted): ours ` +
      `${((cpu.ours / cpu.ourPages) * 1e6).toFixed(0)} µs, reference ` +
      `${((cpu.theirs / cpu.theirPages) * 1e6).toFixed(0)} µs`,
  )
  rows.push(
    rateRow(
      `PostgreSQL: GET /recordings?limit=100, ${LIST_ROWS} rows in the org`,
      median(pagesOurs),
      median(pagesTheirs),
      'req/s',
      0.5,
    ),
  )
  if (child.exited()) throw new Error(`scaleout server died:\n${child.output()}`)
  await reference.stop()
  await child.stop()
  await fsp.rm(env.DATA_DIR as string, { recursive: true, force: true })
}

/** 1,000,000 rows of one org in a few big statements: arrays in, unnest() out. */
async function insertPgRows(url: string, count: number, sizeBytes: number): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const nowMs = Date.now()
    const expiresAt = nowMs + 30 * 86_400_000
    for (let from = 0; from < count; from += INSERT_CHUNK_ROWS) {
      const ids: string[] = []
      const meetings: string[] = []
      const created: number[] = []
      const shas: string[] = []
      const keys: string[] = []
      for (let i = from; i < Math.min(count, from + INSERT_CHUNK_ROWS); i++) {
        // One a minute into the past, older than the real upload; unique ids, keys, content.
        const createdAt = Math.floor((nowMs - (i + 1) * 60_000) / 1000) * 1000
        const id = createRecordingId(createdAt)
        ids.push(id)
        meetings.push(`bench-meeting-${i}`)
        created.push(createdAt)
        shas.push(i.toString(16).padStart(64, '0'))
        keys.push(recordingBlobKey(id))
      }
      await client.query(
        'insert into recordings (id, org_id, meeting_id, created_at, uploaded_at, expires_at, ' +
          'duration_ms, size_bytes, content_type, extension, sha256, blob_key, file_name, ' +
          'state, legal_hold, idempotency_key, uploaded_by) ' +
          "select id, $1, meeting, created, created, $2, 8000, $3, 'video/mp4', 'mp4', sha, " +
          "key, meeting || '.mp4', 'active', 0, null, 'bench' " +
          'from unnest($4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[]) ' +
          'as t(id, meeting, created, sha, key)',
        [ORG, expiresAt, sizeBytes, ids, meetings, created, shas, keys],
      )
    }
    await client.query('analyze recordings')
  } finally {
    await client.end()
  }
}

/** The reference runs PG_PAGE_SQL; fail loudly if the product's PostgreSQL query changed. */
async function checkPgPageSql(): Promise<void> {
  // Compiling needs no connection: the pool never connects.
  const db = createDatabase({ kind: 'postgres', url: 'postgres://bench@127.0.0.1:1/none' })
  try {
    const repository = new KyselyRecordingRepository(db, 'postgres') as unknown as {
      pageQuery(options: object): { compile(): { sql: string } }
    }
    const { sql } = repository.pageQuery({ orgId: ORG, filter: {}, nowMs: 0, limit: 101 }).compile()
    if (sql !== PG_PAGE_SQL) {
      throw new Error(`the list query changed; update bench/list-sql.ts:\n${sql}`)
    }
  } finally {
    await db.destroy()
  }
}
