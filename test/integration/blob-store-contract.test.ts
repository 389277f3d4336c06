import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { after, before, describe, test } from 'node:test'

import { createRecordingId } from '../../src/recordings/recording-id.js'
import type { BlobStore } from '../../src/storage/blob-store.js'
import { recordingBlobKey } from '../../src/storage/keys.js'
import { LocalBlobStore } from '../../src/storage/local-blob-store.js'
import { S3BlobStore } from '../../src/storage/s3-blob-store.js'
import { startS3Server, type S3Server } from '../support/s3-server.js'

const readAll = async (stream: Readable | undefined) => {
  assert.ok(stream, 'expected a stream')
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** 20 MiB of non-repeating bytes: more than two multipart parts on S3. */
const payload = Buffer.alloc(20 * 1024 * 1024)
for (let i = 0; i < payload.length; i += 32) {
  createHash('sha256').update(String(i)).digest().copy(payload, i)
}

const stores: {
  name: string
  open: () => Promise<{ store: BlobStore; close(): Promise<void> }>
}[] = []
let s3: S3Server | undefined

stores.push({
  name: 'local disk',
  open: async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-blobs-'))
    const store = new LocalBlobStore(root)
    await store.init()
    return { store, close: () => fs.rm(root, { recursive: true, force: true }) }
  },
})
stores.push({
  name: 'S3 (Swift)',
  open: async () => {
    s3 ??= await startS3Server()
    const bucket = await s3.createBucket()
    const store = new S3BlobStore({
      bucket,
      prefix: 'rec/',
      region: s3.region,
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      partSizeBytes: 5 * 1024 * 1024,
    })
    await store.init()
    return { store, close: async () => store.client.destroy() }
  },
})

after(async () => s3?.stop())

for (const { name, open } of stores) {
  describe(`BlobStore contract: ${name}`, () => {
    let store: BlobStore
    let close: () => Promise<void>
    before(async () => ({ store, close } = await open()))
    after(() => close())

    test('a staged upload is invisible until published, then reads back whole and by range', async () => {
      const key = recordingBlobKey(createRecordingId())
      const staged = await store.beginUpload(key)
      await pipeline(
        Readable.from([payload.subarray(0, 7_000_000), payload.subarray(7_000_000)]),
        staged.sink,
      )
      await staged.finish()
      const source = await staged.openByteSource()
      assert.equal(source.size, payload.length)
      assert.deepEqual(Buffer.from(await source.read(10, 20)), payload.subarray(10, 20))
      await source.close()
      await staged.publish()

      assert.deepEqual(await store.stat(key), { sizeBytes: payload.length })
      assert.ok((await readAll(await store.openRead(key))).equals(payload))
      const tail = await readAll(
        await store.openRead(key, { start: payload.length - 100, end: payload.length - 1 }),
      )
      assert.ok(tail.equals(payload.subarray(payload.length - 100)))
    })

    test('a discarded upload leaves nothing, before or after finishing', async () => {
      for (const finishFirst of [false, true]) {
        const key = recordingBlobKey(createRecordingId())
        const staged = await store.beginUpload(key)
        if (finishFirst) {
          await pipeline(Readable.from([payload]), staged.sink)
          await staged.finish()
        } else {
          staged.sink.write(payload.subarray(0, 6 * 1024 * 1024))
        }
        await staged.discard()
        await staged.discard()
        assert.equal(await store.stat(key), undefined)
        assert.equal(await store.openRead(key), undefined)
      }
    })

    test('delete removes exactly one key and is idempotent', async () => {
      const keys = [createRecordingId(), createRecordingId()].map(recordingBlobKey)
      for (const key of keys) {
        const staged = await store.beginUpload(key)
        await pipeline(Readable.from([Buffer.from('x'.repeat(1000))]), staged.sink)
        await staged.finish()
        await staged.publish()
      }
      await store.delete(keys[0] as string)
      await store.delete(keys[0] as string)
      assert.equal(await store.stat(keys[0] as string), undefined)
      assert.deepEqual(await store.stat(keys[1] as string), { sizeBytes: 1000 })
    })

    const publish = async (key: string, bytes = Buffer.from('x'.repeat(1000))) => {
      const staged = await store.beginUpload(key)
      await pipeline(Readable.from([bytes]), staged.sink)
      await staged.finish()
      await staged.publish()
    }
    const allKeys = async () => {
      const keys = new Map<string, number>()
      for await (const blob of store.listKeys()) keys.set(blob.key, blob.modifiedAt)
      return keys
    }

    test('listKeys lists published blobs with their modification time, not staged ones', async () => {
      const key = recordingBlobKey(createRecordingId())
      const startedMs = Date.now()
      await publish(key)
      const staged = await store.beginUpload(recordingBlobKey(createRecordingId()))
      staged.sink.write(Buffer.from('in progress'))
      const keys = await allKeys()
      assert.ok(keys.has(key))
      const modifiedAt = keys.get(key) ?? 0
      // Object stores keep whole seconds; allow for that and a little clock skew.
      assert.ok(Math.abs(modifiedAt - startedMs) < 60_000, `${modifiedAt} vs ${startedMs}`)
      for (const listed of keys.keys()) assert.match(listed, /^recordings\/[0-9a-z]{2}\/rec_/)
      await staged.discard()
    })

    test('B15: deleteMany removes exactly the given keys, never neighbours sharing a prefix', async () => {
      // Ids that agree on all but their last character: as strings, each is a prefix-neighbour.
      const stem = createRecordingId().slice(0, -1)
      const ids = ['0', '1', 'a', 'b'].map((c) => `${stem}${c}`)
      const keys = ids.map(recordingBlobKey)
      for (const key of keys) await publish(key)
      const before = await allKeys()

      const result = await store.deleteMany([
        keys[0] as string,
        keys[2] as string,
        keys[0] as string,
      ])
      assert.deepEqual(result.failed, [])
      assert.deepEqual(new Set(result.deleted), new Set([keys[0], keys[2]]))
      const after = await allKeys()
      const removed = [...before.keys()].filter((key) => !after.has(key)).sort()
      assert.deepEqual(removed, [keys[0], keys[2]].sort())
      for (const key of [keys[1], keys[3]]) {
        assert.deepEqual(await store.stat(key as string), { sizeBytes: 1000 })
      }
      // Missing keys count as deleted.
      assert.deepEqual((await store.deleteMany([keys[0] as string])).deleted, [keys[0]])
    })

    test('removeStaleUploads removes only uploads idle since the cutoff', async () => {
      const staged = await store.beginUpload(recordingBlobKey(createRecordingId()))
      staged.sink.write(payload.subarray(0, 6 * 1024 * 1024))
      // Let the store see the bytes (a part upload, a file write) before asking.
      await new Promise((resolve) => setTimeout(resolve, 1500))
      assert.equal(await store.removeStaleUploads(Date.now() - 3600_000), 0)
      // With a cutoff after its last write, the same upload counts as abandoned.
      assert.ok((await store.removeStaleUploads(Date.now() + 3600_000)) >= 1)
      assert.equal(await store.removeStaleUploads(Date.now() + 3600_000), 0)
      await staged.discard()
    })

    test('ping answers while the store is reachable', async () => {
      await store.ping()
    })
  })
}
