import { createHash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'

import { errors } from '../errors.js'
import type { ContainerKind } from '../media/media-prober.js'

export const SNIFF_BYTES = 64 * 1024 // enough for every container's signature and DocType

/**
 * Passes an upload through unchanged while it hashes it, counts it, enforces the size limit
 * and, once the first bytes are in, rejects content that is no media container at all, so
 * a 30 GiB text file is refused after 64 KiB instead of after 30 GiB.
 */
export class UploadMeter extends Transform {
  readonly #hash = createHash('sha256')
  #head: Buffer[] = []
  #headBytes = 0
  #sniffed = false
  bytes = 0

  constructor(
    private readonly maxBytes: number,
    private readonly sniff: (head: Uint8Array) => ContainerKind | null,
  ) {
    // Large buffers: the default 16 KiB would split each socket read into many tiny writes.
    super({ highWaterMark: 1024 * 1024 })
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
    this.bytes += chunk.length
    if (this.bytes > this.maxBytes) {
      done(errors.payloadTooLarge(this.maxBytes))
      return
    }
    this.#hash.update(chunk)
    if (!this.#sniffed) {
      this.#head.push(chunk)
      this.#headBytes += chunk.length
      if (this.#headBytes >= SNIFF_BYTES && !this.checkHead()) {
        done(errors.unsupportedMediaType())
        return
      }
    }
    done(null, chunk)
  }

  override _flush(done: TransformCallback) {
    if (this.bytes === 0) done(errors.emptyUpload())
    else if (!this.#sniffed && !this.checkHead()) done(errors.unsupportedMediaType())
    else done()
  }

  /** The hex SHA-256 of everything that passed; call once, after the stream ended. */
  sha256Hex(): string {
    return this.#hash.digest('hex')
  }

  private checkHead(): boolean {
    this.#sniffed = true
    const head = Buffer.concat(this.#head)
    this.#head = []
    return this.sniff(head.subarray(0, SNIFF_BYTES)) !== null
  }
}
