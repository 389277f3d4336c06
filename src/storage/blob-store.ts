import type { Readable, Writable } from 'node:stream'

import type { ByteSource } from '../media/byte-source.js'

/** An inclusive byte range, as HTTP Range uses them. */
export interface ByteRange {
  start: number
  end: number
}

/**
 * Where recording bytes live. Keys come from `keys.ts` only. Every method translates the
 * backend's own errors into `AppError`s (not found is `undefined` where documented).
 */
export interface BlobStore {
  /**
   * Starts a write that stays invisible at `key` until `publish()`. An upload that is never
   * published leaves only a staged object that `discard()` (or a later cleanup) removes.
   */
  beginUpload(key: string): Promise<StagedBlob>
  /** Streams the bytes of `key`, or the inclusive `range` of them; undefined when missing. */
  openRead(key: string, range?: ByteRange): Promise<Readable | undefined>
  /** Size of `key` in bytes, or undefined when it does not exist. */
  stat(key: string): Promise<{ sizeBytes: number } | undefined>
  /** Removes `key` for good. Deleting a missing key succeeds (idempotent). */
  delete(key: string): Promise<void>
  /**
   * Removes each of `keys` exactly (never by prefix), a bounded number at a time, and reports
   * per key. Missing keys count as deleted. For bulk jobs: unlike `delete`, a local store does
   * not fsync the directory, so a crash may bring a file back; the orphan scan removes it.
   */
  deleteMany(keys: readonly string[]): Promise<BulkDeleteResult>
  /**
   * Every published blob under `recordings/`, with its last modification (epoch ms), in no
   * particular order. Staged uploads are not included.
   */
  listKeys(): AsyncIterable<BlobListing>
  /**
   * Removes staged uploads (temporary files, unfinished multipart uploads) that nothing has
   * written to since `olderThanMs` (epoch ms); returns how many were removed.
   */
  removeStaleUploads(olderThanMs: number): Promise<number>
  /** Resolves when the store can be read and written; rejects with service_unavailable. */
  ping(): Promise<void>
}

export interface BlobListing {
  key: string
  modifiedAt: number
}

export interface BulkDeleteResult {
  deleted: string[]
  failed: { key: string; error: unknown }[]
}

/** Blob deletions in flight at once in bulk jobs: enough to hide latency, few enough fds. */
export const BULK_DELETE_CONCURRENCY = 16

/** Runs `work` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await work(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/** `deleteMany` for any store, over a single-key delete. */
export async function deleteEach(
  keys: readonly string[],
  remove: (key: string) => Promise<void>,
): Promise<BulkDeleteResult> {
  const result: BulkDeleteResult = { deleted: [], failed: [] }
  await mapWithConcurrency(keys, BULK_DELETE_CONCURRENCY, async (key) => {
    try {
      await remove(key)
      result.deleted.push(key)
    } catch (error) {
      result.failed.push({ key, error })
    }
  })
  return result
}

/** One upload in progress. */
export interface StagedBlob {
  /** Where the body is written; its errors are the backend's, already translated. */
  readonly sink: Writable
  /** Makes the written bytes durable (fsync, or the multipart upload completed). */
  finish(): Promise<void>
  /** Random access to the staged bytes, after `finish()`, for probing. */
  openByteSource(): Promise<ByteSource & { close(): Promise<void> }>
  /** Atomically makes the bytes visible at the final key, durably. */
  publish(): Promise<void>
  /** Removes whatever was staged. Safe to call at any point, more than once. */
  discard(): Promise<void>
}
