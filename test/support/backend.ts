import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import pg from 'pg'

import { startPostgres, type PostgresServer } from './postgres-server.js'
import { startS3Server, type S3Server } from './s3-server.js'

/**
 * Which deployment shape the integration suite runs against: the embedded default (SQLite +
 * local disk) or scale-out (PostgreSQL + S3). `npm test` runs the suite once for each; the
 * scale-out run gets its PostgreSQL cluster and S3 store from `scripts/test-scaleout.ts`
 * through WCR_TEST_* variables, or starts its own when run alone.
 */
export type Backend = 'embedded' | 'scaleout'

export const BACKEND: Backend =
  process.env.WCR_TEST_BACKEND === 'scaleout' ? 'scaleout' : 'embedded'

export interface ScaleoutServices {
  /** postgres:// URL of the cluster's maintenance database. */
  postgresUrl: string
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string }
  stop(): Promise<void>
}

/** Starts a throw-away PostgreSQL cluster and S3 store (Swift) for the scale-out run. */
export async function startScaleoutServices(): Promise<ScaleoutServices> {
  const [postgres, s3]: [PostgresServer, S3Server] = await Promise.all([
    startPostgres(),
    startS3Server(),
  ])
  return {
    postgresUrl: `postgres://postgres@127.0.0.1:${postgres.port}/postgres`,
    s3: {
      endpoint: s3.endpoint,
      region: s3.region,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
    },
    async stop() {
      await Promise.allSettled([postgres.stop(), s3.stop()])
    },
  }
}

/** The services' coordinates as environment variables, for child test processes. */
export function scaleoutServicesEnv(services: ScaleoutServices): Record<string, string> {
  return {
    WCR_TEST_PG_URL: services.postgresUrl,
    WCR_TEST_S3_ENDPOINT: services.s3.endpoint,
    WCR_TEST_S3_REGION: services.s3.region,
    WCR_TEST_S3_ACCESS_KEY_ID: services.s3.accessKeyId,
    WCR_TEST_S3_SECRET_ACCESS_KEY: services.s3.secretAccessKey,
  }
}

let ownServices: Promise<ScaleoutServices> | undefined

async function services(): Promise<Omit<ScaleoutServices, 'stop'>> {
  const env = process.env
  if (env.WCR_TEST_PG_URL && env.WCR_TEST_S3_ENDPOINT) {
    return {
      postgresUrl: env.WCR_TEST_PG_URL,
      s3: {
        endpoint: env.WCR_TEST_S3_ENDPOINT,
        region: env.WCR_TEST_S3_REGION ?? 'us-east-1',
        accessKeyId: env.WCR_TEST_S3_ACCESS_KEY_ID ?? '',
        secretAccessKey: env.WCR_TEST_S3_SECRET_ACCESS_KEY ?? '',
      },
    }
  }
  if (!ownServices) {
    ownServices = startScaleoutServices()
    const started = await ownServices
    process.once('beforeExit', () => void started.stop())
  }
  return ownServices
}

let counter = 0

/**
 * Settings for one new server of the current backend: nothing for the embedded default; a
 * fresh PostgreSQL database and S3 bucket for scale-out. The S3 keys also go into this
 * process's environment, where the AWS SDK of in-process servers looks for them.
 */
export async function backendEnv(): Promise<Record<string, string>> {
  if (BACKEND === 'embedded') return {}
  const { postgresUrl, s3 } = await services()
  const name = `wcr_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 8)}`

  const admin = new pg.Client(postgresUrl)
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const client = new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  })
  const bucket = name.replaceAll('_', '-')
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }))
  } finally {
    client.destroy()
  }

  const credentials = {
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
  }
  Object.assign(process.env, credentials)
  return {
    DATABASE_URL: postgresUrl.replace(/\/postgres$/, `/${name}`),
    STORAGE_URL: `s3://${bucket}/recordings-test`,
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: s3.region,
    S3_FORCE_PATH_STYLE: 'true',
    ...credentials,
  }
}
