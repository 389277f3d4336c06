import type { FastifyInstance } from 'fastify'
import type { Kysely } from 'kysely'
import type { Logger } from 'pino'

import { buildApp } from './app.js'
import { JoseTokenVerifier } from './auth/jose-token-verifier.js'
import { loadOrCreateSigningSecret } from './auth/signing-secret.js'
import type { Config } from './config.js'
import { createDatabase, migrateToLatest } from './db/database.js'
import { KyselyAuditLog } from './db/kysely-audit-log.js'
import { KyselyOrgSettingsRepository } from './db/kysely-org-settings-repository.js'
import { KyselyRecordingRepository } from './db/kysely-recording-repository.js'
import type { Database } from './db/schema.js'
import type { DownloadLinks } from './http/app-deps.js'
import { contentDisposition } from './http/content-disposition.js'
import { MediaProber } from './media/media-prober.js'
import { systemClock, type Clock } from './recordings/clock.js'
import { IngestService } from './recordings/ingest-service.js'
import { RecordingsService } from './recordings/recordings-service.js'
import { RetentionService } from './recordings/retention-service.js'
import { Sweeper } from './recordings/sweeper.js'
import { LocalBlobStore } from './storage/local-blob-store.js'
import { S3BlobStore } from './storage/s3-blob-store.js'
import type { BlobStore } from './storage/blob-store.js'

export interface Server {
  app: FastifyInstance
  db: Kysely<Database>
  blobs: BlobStore
  sweeper: Sweeper
  retention: RetentionService
  /** Stops accepting requests, lets in-flight ones finish, then releases everything. */
  close(): Promise<void>
}

/** Wires config → database → blob store → services → HTTP, by hand (no container). */
export async function createServer(
  config: Readonly<Config>,
  logger: Logger,
  clock: Clock = systemClock,
): Promise<Server> {
  await migrate(config)
  const blobs = await createBlobStore(config)
  const db = createDatabase(config.database, (error) =>
    logger.warn({ err: error, module: 'db' }, 'idle database connection lost'),
  )
  const secret =
    config.auth.key.kind === 'generated-secret'
      ? await loadOrCreateSigningSecret(config.dataDir)
      : undefined
  const verifier = new JoseTokenVerifier(config.auth, secret)
  const prober = new MediaProber()
  const repository = new KyselyRecordingRepository(db, config.database.kind)
  const audit = new KyselyAuditLog(db, clock)
  const retention = new RetentionService({
    settings: new KyselyOrgSettingsRepository(db),
    audit,
    clock,
    defaultRetentionSeconds: config.retentionSeconds,
  })

  const recordings = new RecordingsService({
    recordings: repository,
    blobs,
    audit,
    clock,
    retention,
    auditReader: audit,
    logger: logger.child({ module: 'recordings' }),
  })
  const ingest = new IngestService({
    recordings: repository,
    blobs,
    prober,
    audit,
    clock,
    maxUploadBytes: config.maxUploadBytes,
    retention,
  })
  const sweeper = new Sweeper({ recordings: repository, blobs, audit, clock })
  const app = await buildApp(
    {
      config,
      verifier,
      audit,
      recordings,
      ingest,
      repository,
      blobs,
      downloadLinks: createDownloadLinks(config, blobs),
    },
    logger,
  )

  sweeper.start(config.sweepIntervalSeconds * 1000, logger.child({ module: 'sweeper' }))

  return {
    app,
    db,
    blobs,
    sweeper,
    retention,
    async close() {
      await sweeper.stop()
      await app.close()
      await prober.close()
      await db.destroy()
    },
  }
}

/** Applies pending migrations on a connection of their own, without statement time limits. */
async function migrate(config: Readonly<Config>): Promise<void> {
  const db = createDatabase(config.database, undefined, { purpose: 'migrate' })
  try {
    await migrateToLatest(db, config.database.kind)
  } finally {
    await db.destroy()
  }
}

/** The blob store the configuration names, initialised. */
export async function createBlobStore(config: Readonly<Config>): Promise<BlobStore> {
  const { storage } = config
  if (storage.kind === 's3') {
    const store = new S3BlobStore({
      bucket: storage.bucket,
      prefix: storage.prefix,
      region: storage.region,
      endpoint: storage.endpoint,
      forcePathStyle: storage.forcePathStyle,
    })
    await store.init()
    return store
  }
  const store = new LocalBlobStore(storage.root)
  await store.init()
  return store
}

/** Presigned download links, only for S3 storage with `DOWNLOAD_MODE=redirect`. */
function createDownloadLinks(config: Readonly<Config>, blobs: BlobStore) {
  const { storage } = config
  if (storage.kind !== 's3' || storage.downloadMode !== 'redirect') return undefined
  if (!(blobs instanceof S3BlobStore)) return undefined
  const links: DownloadLinks = {
    presign: (record) =>
      blobs.presignGet(record.blobKey, {
        expiresInSeconds: storage.presignTtlSeconds,
        contentDisposition: contentDisposition(record.fileName),
        contentType: record.contentType,
      }),
  }
  return links
}

/** Starts the server, logs where it listens, and shuts down cleanly on SIGINT/SIGTERM. */
export async function serve(config: Readonly<Config>, logger: Logger): Promise<Server> {
  const server = await createServer(config, logger)
  await server.app.listen({ host: config.host, port: config.port })
  const address = server.app.server.address()
  logger.info(
    {
      address: typeof address === 'object' && address ? address : undefined,
      dataDir: config.dataDir,
      database: config.database.kind,
      storage: config.storage.kind,
    },
    'listening',
  )
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'shutting down')
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.once('SIGINT', () => stop('SIGINT'))
  process.once('SIGTERM', () => stop('SIGTERM'))
  return server
}
