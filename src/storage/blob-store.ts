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
  /** Resolves when the store can be read and written; rejects with service_unavailable. */
  ping(): Promise<void>
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
