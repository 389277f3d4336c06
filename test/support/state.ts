import fs from 'node:fs/promises'
import path from 'node:path'

import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import type { Kysely } from 'kysely'

import type { Config } from '../../src/config.js'
import { createDatabase } from '../../src/db/database.js'
import type { Database } from '../../src/db/schema.js'

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
