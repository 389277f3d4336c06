import { randomUUID } from 'node:crypto'
import { PassThrough, type Readable, type Writable } from 'node:stream'

import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'

import { errors, isAppError } from '../errors.js'
import type { ByteSource } from '../media/byte-source.js'
import {
  deleteEach,
  type BlobListing,
  type BlobStore,
  type BulkDeleteResult,
  type ByteRange,
  type StagedBlob,
} from './blob-store.js'

export interface S3BlobStoreOptions {
  bucket: string
  /** Key prefix, empty or ending in `/`. */
  prefix: string
  region: string
  endpoint?: string
  forcePathStyle: boolean
  /** Multipart part size: 8 MiB keeps memory low and allows uploads up to ~78 GiB. */
  partSizeBytes?: number
  /** Parts uploaded at once per upload; memory per upload is about this × part size. */
  partsInFlight?: number
  /** Explicit keys; by default the SDK's chain (AWS_ACCESS_KEY_ID, profiles, roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string }
}

const DEFAULT_PART_SIZE_BYTES = 8 * 1024 * 1024
const CONNECT_TIMEOUT_MS = 5000
// Reads and metadata calls: a healthy store answers in well under a second; with the one retry
// a hung store still costs under 10 s (S47). The body then streams with no deadline.
const RESPONSE_HEADERS_TIMEOUT_MS = 4000
// Uploads: a part's body may take long on a slow link, so only silence counts. Healthy stores
// send whitespace every 10 s during a long CompleteMultipartUpload (S3, MinIO, Swift); with the
// one retry a hung store fails a part in under a minute, the server's idle timeout (60 s).
const UPLOAD_IDLE_TIMEOUT_MS = 20_000

/**
 * Blobs as objects in one S3-compatible bucket under a prefix (`<prefix><key>`).
 *
 * An upload streams into a multipart upload at the final key; it completes in `finish()` so
 * the staged bytes can be probed with ranged GETs. The object is unreachable through the API
 * until its row is committed, and `discard()` aborts an unfinished multipart upload (so no
 * hidden, billed parts stay behind) or deletes a finished object. Stale multipart uploads of
 * crashed processes are aborted by `abortStaleUploads`.
 *
 * The client sends checksums only when an operation requires them: S3-compatible stores
 * (Swift, MinIO, Ceph, R2) reject the SDK's default streaming checksums.
 */
export class S3BlobStore implements BlobStore {
  readonly client: S3Client
  /** For multipart uploads (lib-storage), which must not have a deadline on each answer. */
  readonly uploadClient: S3Client

  constructor(private readonly options: S3BlobStoreOptions) {
    const settings = {
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle,
      credentials: options.credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 2,
    } as const
    // No socket idle timeout here: a download whose client reads slowly pauses this socket.
    this.client = new S3Client({
      ...settings,
      requestHandler: {
        connectionTimeout: CONNECT_TIMEOUT_MS,
        requestTimeout: RESPONSE_HEADERS_TIMEOUT_MS,
        throwOnRequestTimeout: true,
      },
    })
    this.uploadClient = new S3Client({
      ...settings,
      requestHandler: {
        connectionTimeout: CONNECT_TIMEOUT_MS,
        socketTimeout: UPLOAD_IDLE_TIMEOUT_MS,
      },
    })
  }

  /**
   * Refuses a bucket with versioning enabled: a plain delete there keeps every byte of the
   * recording as a noncurrent version, which breaks "deleted for good".
   */
  async init(): Promise<void> {
    const versioning = await this.call((c) =>
      c.send(new GetBucketVersioningCommand({ Bucket: this.options.bucket })),
    )
    if (versioning.Status === 'Enabled') {
      throw new Error('the bucket has versioning enabled; deleted recordings would be kept')
    }
  }

  async beginUpload(key: string): Promise<StagedBlob> {
    return new S3StagedBlob(this, this.objectKey(key))
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable | undefined> {
    try {
      const response = await this.client.send(
        new GetObjectCommand({
          Bucket: this.options.bucket,
          Key: this.objectKey(key),
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      )
      return response.Body as Readable
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw translate(error)
    }
  }

  async stat(key: string): Promise<{ sizeBytes: number } | undefined> {
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.objectKey(key) }),
      )
      return { sizeBytes: head.ContentLength ?? 0 }
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw translate(error)
    }
  }

  async delete(key: string): Promise<void> {
    await this.deleteObject(this.objectKey(key))
  }

  deleteMany(keys: readonly string[]): Promise<BulkDeleteResult> {
    // One DeleteObject per exact key: never a prefix, and no Content-MD5 (which several
    // S3-compatible stores handle differently for DeleteObjects).
    return deleteEach(keys, (key) => this.delete(key))
  }

  async *listKeys(): AsyncIterable<BlobListing> {
    // The delimiter-terminated prefix matches recordings/ only, never recordings-x/ (B15).
    const prefix = `${this.options.prefix}recordings/`
    let token: string | undefined
    do {
      const page = await this.call((c) =>
        c.send(
          new ListObjectsV2Command({
            Bucket: this.options.bucket,
            Prefix: prefix,
            ContinuationToken: token,
          }),
        ),
      )
      for (const object of page.Contents ?? []) {
        if (!object.Key?.startsWith(prefix)) continue
        yield {
          key: object.Key.slice(this.options.prefix.length),
          modifiedAt: object.LastModified?.getTime() ?? 0,
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
  }

  removeStaleUploads(olderThanMs: number): Promise<number> {
    return this.abortStaleUploads(olderThanMs)
  }

  async ping(): Promise<void> {
    await this.call((c) => c.send(new HeadBucketCommand({ Bucket: this.options.bucket })))
  }

  /**
   * A GET URL for `key` signed for `expiresInSeconds`, for redirect-mode downloads. The
   * storage answers it with our `Content-Disposition` and `Content-Type` (signed overrides).
   * Signing is local: no request is made, so a missing object is only found by the client.
   */
  presignGet(
    key: string,
    options: { expiresInSeconds: number; contentDisposition?: string; contentType?: string },
  ): Promise<string> {
    return this.call((client) =>
      getSignedUrl(
        client,
        new GetObjectCommand({
          Bucket: this.options.bucket,
          Key: this.objectKey(key),
          ResponseContentDisposition: options.contentDisposition,
          ResponseContentType: options.contentType,
        }),
        { expiresIn: options.expiresInSeconds },
      ),
    )
  }

  /**
   * Aborts multipart uploads under the prefix that were started, and last received a part,
   * before `olderThanMs`; returns how many. A long upload that is still sending parts is kept.
   */
  async abortStaleUploads(olderThanMs: number): Promise<number> {
    let aborted = 0
    let keyMarker: string | undefined
    let uploadIdMarker: string | undefined
    for (;;) {
      const page = await this.call((c) =>
        c.send(
          new ListMultipartUploadsCommand({
            Bucket: this.options.bucket,
            // Only our recordings' keys: a bucket may be shared with other applications.
            Prefix: `${this.options.prefix}recordings/`,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        ),
      )
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId) continue
        if ((upload.Initiated?.getTime() ?? 0) >= olderThanMs) continue
        if ((await this.lastPartAt(upload.Key, upload.UploadId)) >= olderThanMs) continue
        await this.call((c) =>
          c.send(
            new AbortMultipartUploadCommand({
              Bucket: this.options.bucket,
              Key: upload.Key,
              UploadId: upload.UploadId,
            }),
          ),
        )
        aborted++
      }
      if (!page.IsTruncated) return aborted
      keyMarker = page.NextKeyMarker
      uploadIdMarker = page.NextUploadIdMarker
    }
  }

  /** When the newest part of a multipart upload arrived (epoch ms; 0 when it has none). */
  private async lastPartAt(objectKey: string, uploadId: string): Promise<number> {
    let latestMs = 0
    let marker: string | undefined
    for (;;) {
      const page = await this.call((c) =>
        c.send(
          new ListPartsCommand({
            Bucket: this.options.bucket,
            Key: objectKey,
            UploadId: uploadId,
            PartNumberMarker: marker,
          }),
        ),
      )
      for (const part of page.Parts ?? []) {
        latestMs = Math.max(latestMs, part.LastModified?.getTime() ?? 0)
      }
      if (!page.IsTruncated || !page.NextPartNumberMarker) return latestMs
      marker = page.NextPartNumberMarker
    }
  }

  /** Byte-range reads of one object, for probing staged uploads. */
  async openObjectSource(objectKey: string): Promise<ByteSource & { close(): Promise<void> }> {
    const head = await this.call((c) =>
      c.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: objectKey })),
    )
    const size = head.ContentLength ?? 0
    return {
      size,
      read: async (start, end) => {
        const to = Math.min(end, size)
        if (to <= start) return new Uint8Array(0)
        const response = await this.call((c) =>
          c.send(
            new GetObjectCommand({
              Bucket: this.options.bucket,
              Key: objectKey,
              Range: `bytes=${start}-${to - 1}`,
            }),
          ),
        )
        return (await response.Body?.transformToByteArray()) ?? new Uint8Array(0)
      },
      close: async () => undefined,
    }
  }

  createUpload(objectKey: string, body: PassThrough): Upload {
    return new Upload({
      client: this.uploadClient,
      params: { Bucket: this.options.bucket, Key: objectKey, Body: body },
      partSize: this.options.partSizeBytes ?? DEFAULT_PART_SIZE_BYTES,
      queueSize: this.options.partsInFlight ?? 2,
      leavePartsOnError: false,
    })
  }

  objectKey(key: string): string {
    return `${this.options.prefix}${key}`
  }

  /** Runs one SDK call, translating its failures into AppErrors where they mean something. */
  async call<T>(work: (client: S3Client) => Promise<T>): Promise<T> {
    try {
      return await work(this.client)
    } catch (error) {
      throw translate(error)
    }
  }

  deleteObject(objectKey: string) {
    return this.call((c) =>
      c.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: objectKey })),
    )
  }
}

class S3StagedBlob implements StagedBlob {
  readonly sink: Writable
  readonly #body = new PassThrough({ highWaterMark: 1024 * 1024 })
  // What lib-storage reads. When a part fails it stops reading and Node destroys this stream
  // with a bare AbortError; kept apart from the sink, so the writer sees the translated upload
  // error instead (503, not 500).
  readonly #parts = new PassThrough()
  readonly #upload: Upload
  readonly #done: Promise<unknown>
  #completed = false
  readonly id = randomUUID()

  constructor(
    private readonly store: S3BlobStore,
    private readonly objectKey: string,
  ) {
    this.sink = this.#body
    this.#body.pipe(this.#parts)
    this.#upload = store.createUpload(objectKey, this.#parts)
    this.#done = this.#upload.done().then(
      (result) => {
        this.#completed = true
        return result
      },
      (error: unknown) => {
        // Fail the writer too, or a pipeline into a dead upload would wait for ever.
        const translated = translate(error)
        this.#body.destroy(translated instanceof Error ? translated : new Error('upload failed'))
        throw translated
      },
    )
    this.#done.catch(() => undefined)
  }

  async finish(): Promise<void> {
    await this.#done
  }

  openByteSource() {
    return this.store.openObjectSource(this.objectKey)
  }

  async publish(): Promise<void> {
    // The object was written at its final key by finish(); the row makes it visible.
  }

  async discard(): Promise<void> {
    if (this.#completed) {
      await this.store.deleteObject(this.objectKey)
      return
    }
    this.#body.destroy()
    this.#parts.destroy()
    await this.#upload.abort().catch(() => undefined)
    await this.#done.catch(() => undefined)
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } }
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404
}

/** Network failures and 5xx from the store are an outage (503), not our bug (500). */
function translate(error: unknown): unknown {
  if (isAppError(error)) return error
  const e = error as {
    name?: string
    code?: string
    $metadata?: { httpStatusCode?: number }
  }
  const status = e?.$metadata?.httpStatusCode
  if (
    (status !== undefined && status >= 500) ||
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(e?.code ?? '') ||
    ['TimeoutError', 'RequestTimeout', 'AbortError'].includes(e?.name ?? '')
  ) {
    return errors.serviceUnavailable(error)
  }
  if (e?.name === 'EntityTooLarge') return errors.insufficientStorage(error)
  return error
}
