import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'

import { REPO_ROOT } from './corpus.js'

const run = promisify(execFile)
const SCRIPT = path.join(REPO_ROOT, 'test', 'support', 'swift-s3.sh')

export interface S3Server {
  endpoint: string
  region: string
  accessKeyId: string
  secretAccessKey: string
  dir: string
  /** A new empty bucket with a random name. */
  createBucket(): Promise<string>
  /** Stops the store's processes (data kept), for outage tests. */
  pause(): Promise<void>
  /** Starts it again on the same ports. */
  resume(): Promise<void>
  stop(): Promise<void>
}

/**
 * A real S3-compatible object store (OpenStack Swift with its S3 API, from Debian's packages)
 * on free loopback ports, started by `swift-s3.sh` and removed afterwards.
 */
export async function startS3Server(): Promise<S3Server> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-s3-'))
  const start = async () => {
    const { stdout } = await run('bash', [SCRIPT, 'start', path.join(dir, 'store')], {
      maxBuffer: 1024 * 1024,
    })
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')
  }
  const info = await start()
  const client = new S3Client({
    region: info.region,
    endpoint: info.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  })
  return {
    endpoint: info.endpoint,
    region: info.region,
    accessKeyId: info.accessKeyId,
    secretAccessKey: info.secretAccessKey,
    dir,
    async createBucket() {
      const bucket = `wcr-${Math.random().toString(36).slice(2, 10)}`
      await client.send(new CreateBucketCommand({ Bucket: bucket }))
      return bucket
    },
    async pause() {
      await run('bash', [SCRIPT, 'stop', path.join(dir, 'store')])
    },
    async resume() {
      await start()
    },
    async stop() {
      client.destroy()
      await run('bash', [SCRIPT, 'stop', path.join(dir, 'store')]).catch(() => undefined)
      await fs.rm(dir, { recursive: true, force: true })
    },
  }
}
