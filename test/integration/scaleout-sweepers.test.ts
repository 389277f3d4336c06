import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { sql } from 'kysely'

import { createRecordingId } from '../../src/recordings/recording-id.js'
import { recordingBlobKey } from '../../src/storage/keys.js'
import { startServerProcess, type ServerProcess } from '../support/process-server.js'
import { startScaleoutStack, type ScaleoutStack } from '../support/scaleout-stack.js'
import { listBlobKeys, openDatabase } from '../support/state.js'

const RECORDINGS = 1000
const DAY_MS = 86_400_000

describe('two nodes sweeping one PostgreSQL database and one bucket', () => {
  let stack: ScaleoutStack
  const nodes: ServerProcess[] = []

  before(async () => (stack = await startScaleoutStack()))
  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()))
    await stack.stop()
  })

  test('1,000 expired recordings are each deleted exactly once, leaving nothing', async () => {
    const { env, config } = await stack.createBackend()
    if (config.storage.kind !== 's3') throw new Error('expected S3 storage')
    const { bucket, prefix } = config.storage

    // A first node creates the schema; then 1,000 recordings that expired yesterday are
    // written straight into the database and the bucket.
    const first = await startServerProcess({ ...env, SWEEP_INTERVAL_SECONDS: '3600' })
    await first.stop()
    const db = openDatabase(config)
    const s3 = new S3Client({
      region: config.storage.region,
      endpoint: config.storage.endpoint,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
    })
    const now = Date.now()
    const ids = Array.from({ length: RECORDINGS }, () => createRecordingId(now))
    try {
      for (let i = 0; i < ids.length; i += 100) {
        const batch = ids.slice(i, i + 100)
        await db
          .insertInto('recordings')
          .values(
            batch.map((id, n) => ({
              id,
              orgId: 'org-sweep',
              meetingId: `m-${i + n}`,
              createdAt: now - 40 * DAY_MS,
              uploadedAt: now - 40 * DAY_MS,
              expiresAt: now - DAY_MS,
              durationMs: 1000,
              sizeBytes: 16,
              contentType: 'video/mp4',
              extension: 'mp4',
              sha256: id.padEnd(64, '0').slice(0, 64),
              blobKey: recordingBlobKey(id),
              fileName: `${id}.mp4`,
              state: 'active' as const,
              legalHold: 0,
              idempotencyKey: null,
              uploadedBy: 'seed',
            })),
          )
          .execute()
        await Promise.all(
          batch.map((id) =>
            s3.send(
              new PutObjectCommand({
                Bucket: bucket,
                Key: prefix + recordingBlobKey(id),
                Body: Buffer.from('not really media'),
              }),
            ),
          ),
        )
      }
      assert.equal((await listBlobKeys(config)).length, RECORDINGS)

      // Two nodes, each sweeping every second, race over the same rows.
      for (let n = 0; n < 2; n++) {
        nodes.push(await startServerProcess({ ...env, SWEEP_INTERVAL_SECONDS: '1' }))
      }
      const deadline = Date.now() + 120_000
      let left = RECORDINGS
      while (left > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 500))
        const row = await db
          .selectFrom('recordings')
          .select(sql<number>`count(*)`.as('n'))
          .executeTakeFirstOrThrow()
        left = Number(row.n)
      }
      assert.equal(left, 0, 'every row is gone')
      assert.deepEqual(await listBlobKeys(config), [], 'every object is gone')

      const expiries = await db
        .selectFrom('auditEvents')
        .select(['recordingId'])
        .where('action', '=', 'expire')
        .where('orgId', '=', 'org-sweep')
        .execute()
      assert.equal(expiries.length, RECORDINGS, 'one expiry entry per recording')
      assert.equal(new Set(expiries.map((e) => e.recordingId)).size, RECORDINGS)
      assert.deepEqual(
        new Set(expiries.map((e) => e.recordingId)),
        new Set(ids),
        'exactly the seeded recordings',
      )

      for (const node of nodes) {
        const problems = node
          .output()
          .split('\n')
          .filter((line) => /"level":"(error|fatal)"/.test(line))
        assert.deepEqual(problems, [], 'no error logged')
      }
      // Both nodes took part (each logs its passes); neither crashed.
      for (const node of nodes) assert.equal(node.child.exitCode, null)
    } finally {
      s3.destroy()
      await db.destroy()
    }
  })
})
