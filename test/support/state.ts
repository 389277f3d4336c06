import { createHash, randomUUID } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'

import {
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import type { Kysely } from 'kysely'

import type { Config } from '../../src/config.js'
import { createDatabase } from '../../src/db/database.js'
import type { Database } from '../../src/db/schema.js'
import { recordingBlobKey } from '../../src/storage/keys.js'
import { BACKEND } from './backend.js'

/**
 * What a server left behind, read from outside the application and the same way on both
 * backends: the blobs (files under the disk root, or objects in the bucket), uploads still
 * staged (`.part` files, or unfinished multipart uploads), and the database (through Kysely).
 */

/** Keys of every published blob, sorted. */
export async function listBlobKeys(config: Readonly<Config>): Promise<string[]> {
  const { storage } = config
  if (storage.kind === 'file') {
    const root = path.join(storage.root, 'recordings')
    const entries = await fs.readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])
    return entries
      .filter((e) => e.isFile())
      .map((e) => path.relative(storage.root, path.join(e.parentPath, e.name)))
      .sort()
  }
  return withS3(config, async (client) => {
    const keys: string[] = []
    let token: string | undefined
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: storage.bucket,
          Prefix: storage.prefix,
          ContinuationToken: token,
        }),
      )
      keys.push(...(page.Contents ?? []).map((o) => (o.Key ?? '').slice(storage.prefix.length)))
      token = page.NextContinuationToken
    } while (token)
    return keys.sort()
  })
}

/** Uploads in progress or abandoned: `.part` files on disk, unfinished multipart uploads on S3. */
export async function listStagedUploads(config: Readonly<Config>): Promise<string[]> {
  const { storage } = config
  if (storage.kind === 'file') {
    return (await fs.readdir(path.join(storage.root, 'tmp')).catch(() => [])).sort()
  }
  return withS3(config, async (client) => {
    const page = await client.send(
      new ListMultipartUploadsCommand({ Bucket: storage.bucket, Prefix: storage.prefix }),
    )
    return (page.Uploads ?? []).map((u) => `${u.Key}#${u.UploadId}`).sort()
  })
}

/** Whether the blob of recording `recordingId` is published (the key `keys.ts` makes for it). */
export async function hasRecordingBlob(
  config: Readonly<Config>,
  recordingId: string,
): Promise<boolean> {
  return (await listBlobKeys(config)).includes(recordingBlobKey(recordingId))
}

/** The bytes of one published blob, or undefined when it does not exist. */
export async function readBlob(config: Readonly<Config>, key: string): Promise<Buffer | undefined> {
  const { storage } = config
  if (storage.kind === 'file') {
    return fs.readFile(path.join(storage.root, key)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined
      throw error
    })
  }
  return withS3(config, async (client) => {
    try {
      const object = await client.send(
        new GetObjectCommand({ Bucket: storage.bucket, Key: storage.prefix + key }),
      )
      return Buffer.from((await object.Body?.transformToByteArray()) ?? [])
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata
      if (error instanceof NoSuchKey || status?.httpStatusCode === 404) return undefined
      throw error
    }
  })
}

/** Every published blob's key with the SHA-256 (hex) of its bytes: a snapshot to compare. */
export async function readBlobSha256s(config: Readonly<Config>): Promise<Record<string, string>> {
  const snapshot: Record<string, string> = {}
  for (const key of await listBlobKeys(config)) {
    const bytes = await readBlob(config, key)
    snapshot[key] = bytes ? createHash('sha256').update(bytes).digest('hex') : 'gone'
  }
  return snapshot
}

/**
 * Removes one published blob behind the server's back, as a lost disk or a bucket lifecycle
 * rule would; removing a missing blob is not an error.
 */
export async function removeBlob(config: Readonly<Config>, key: string): Promise<void> {
  const { storage } = config
  if (storage.kind === 'file') {
    await fs.rm(path.join(storage.root, key), { force: true })
    return
  }
  await withS3(config, (client) =>
    client.send(new DeleteObjectCommand({ Bucket: storage.bucket, Key: storage.prefix + key })),
  )
}

/**
 * Writes `bytes` at `key` behind the server's back, as another program sharing the disk or
 * the bucket would (a file under the root, or an object under the prefix).
 */
export async function writeBlob(
  config: Readonly<Config>,
  key: string,
  bytes: Uint8Array,
): Promise<void> {
  const { storage } = config
  if (storage.kind === 'file') {
    const file = path.join(storage.root, key)
    await fs.mkdir(path.dirname(file), { recursive: true })
    await fs.writeFile(file, bytes)
    return
  }
  await withS3(config, (client) =>
    client.send(
      new PutObjectCommand({ Bucket: storage.bucket, Key: storage.prefix + key, Body: bytes }),
    ),
  )
}

/**
 * Leaves an upload of `key` staged and unfinished, as a server that crashed mid-upload does:
 * a `.part` file under `tmp/`, or a multipart upload with one part. Returns its name as
 * `listStagedUploads` shows it.
 */
export async function stageUnfinishedUpload(
  config: Readonly<Config>,
  key: string,
  bytes: Uint8Array = Buffer.from('staged bytes'),
): Promise<string> {
  const { storage } = config
  if (storage.kind === 'file') {
    const name = `${randomUUID()}.part`
    await fs.mkdir(path.join(storage.root, 'tmp'), { recursive: true })
    await fs.writeFile(path.join(storage.root, 'tmp', name), bytes)
    return name
  }
  return withS3(config, async (client) => {
    const objectKey = storage.prefix + key
    const { UploadId } = await client.send(
      new CreateMultipartUploadCommand({ Bucket: storage.bucket, Key: objectKey }),
    )
    await client.send(
      new UploadPartCommand({
        Bucket: storage.bucket,
        Key: objectKey,
        UploadId,
        PartNumber: 1,
        Body: bytes,
      }),
    )
    return `${objectKey}#${UploadId}`
  })
}

/** The server's database, opened anew from its configuration; destroy it when done. */
export function openDatabase(config: Readonly<Config>): Kysely<Database> {
  return createDatabase(config.database)
}

async function withS3<T>(config: Readonly<Config>, work: (client: S3Client) => Promise<T>) {
  const { storage } = config
  if (storage.kind !== 's3') throw new Error('not an S3 configuration')
  const client = new S3Client({
    region: storage.region,
    endpoint: storage.endpoint,
    forcePathStyle: storage.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
  })
  try {
    return await work(client)
  } finally {
    client.destroy()
  }
}

/** Test options for a case whose subject exists only in the embedded shape (SQLite + disk). */
export function embeddedOnly(why: string): { skip: string | false } {
  return { skip: BACKEND !== 'embedded' && `SQLite/disk only: ${why}` }
}

/** Test options for a case whose subject exists only in the scale-out shape (PostgreSQL + S3). */
export function scaleoutOnly(why: string): { skip: string | false } {
  return { skip: BACKEND !== 'scaleout' && `PostgreSQL/S3 only: ${why}` }
}
