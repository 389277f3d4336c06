import { randomUUID } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import fs, { type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { Writable, type Readable } from 'node:stream'

import { errors } from '../errors.js'
import { createFileByteSource } from '../media/byte-source.js'
import {
  deleteEach,
  type BlobListing,
  type BlobStore,
  type BulkDeleteResult,
  type ByteRange,
  type StagedBlob,
} from './blob-store.js'
import { resolveUnder } from './safe-path.js'

const READ_CHUNK_BYTES = 1024 * 1024 // large reads keep syscalls per GiB low when streaming
const WRITE_BUFFER_BYTES = 1024 * 1024
const RECORDINGS_DIR = 'recordings'

/**
 * Blobs as files under one root on local disk:
 *   <root>/recordings/<shard>/<id>   published recordings
 *   <root>/tmp/<uuid>.part           uploads in progress (same filesystem, so rename is atomic)
 * A publish is fsync(file) → rename → fsync(directory), so a crash leaves either the whole
 * file at its final name or only a `.part` file that cleanup removes.
 */
export class LocalBlobStore implements BlobStore {
  readonly tmpDir: string

  constructor(readonly root: string) {
    this.tmpDir = path.join(root, 'tmp')
  }

  /** Creates the directories; call once at start. */
  async init(): Promise<void> {
    await fs.mkdir(this.tmpDir, { recursive: true, mode: 0o700 })
    await fs.mkdir(path.join(this.root, 'recordings'), { recursive: true, mode: 0o700 })
  }

  async beginUpload(key: string): Promise<StagedBlob> {
    const finalPath = resolveUnder(this.root, key)
    const tmpPath = path.join(this.tmpDir, `${randomUUID()}.part`)
    const handle = await fs.open(tmpPath, 'wx', 0o600).catch((error: unknown) => {
      // Our own tmp directory missing means the volume is gone (unmounted, moved): an outage.
      throw isErrno(error, 'ENOENT') ? errors.serviceUnavailable(error) : translate(error)
    })
    return new LocalStagedBlob(handle, tmpPath, finalPath)
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable | undefined> {
    const handle = await openIfExists(resolveUnder(this.root, key))
    if (!handle) {
      await this.ping()
      return undefined
    }
    return handle.createReadStream({
      start: range?.start,
      end: range?.end,
      highWaterMark: READ_CHUNK_BYTES,
    })
  }

  async stat(key: string): Promise<{ sizeBytes: number } | undefined> {
    try {
      const stats = await fs.stat(resolveUnder(this.root, key))
      return { sizeBytes: stats.size }
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined
      throw translate(error)
    }
  }

  async delete(key: string): Promise<void> {
    const file = resolveUnder(this.root, key)
    try {
      await fs.unlink(file)
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return
      throw translate(error)
    }
    await syncDirectory(path.dirname(file))
  }

  deleteMany(keys: readonly string[]): Promise<BulkDeleteResult> {
    return deleteEach(keys, async (key) => {
      await fs.unlink(resolveUnder(this.root, key)).catch((error: unknown) => {
        if (!isErrno(error, 'ENOENT')) throw translate(error)
      })
    })
  }

  async *listKeys(): AsyncIterable<BlobListing> {
    const top = path.join(this.root, RECORDINGS_DIR)
    for (const shard of await readdirIfExists(top)) {
      if (!shard.isDirectory()) continue
      const dir = path.join(top, shard.name)
      for (const entry of await readdirIfExists(dir)) {
        if (!entry.isFile()) continue
        const stats = await fs.stat(path.join(dir, entry.name)).catch(() => undefined)
        if (!stats) continue // deleted since the listing
        yield { key: `${RECORDINGS_DIR}/${shard.name}/${entry.name}`, modifiedAt: stats.mtimeMs }
      }
    }
  }

  async removeStaleUploads(olderThanMs: number): Promise<number> {
    let removed = 0
    for (const entry of await readdirIfExists(this.tmpDir)) {
      if (!entry.isFile() || !entry.name.endsWith('.part')) continue
      const file = path.join(this.tmpDir, entry.name)
      // Every write moves mtime, so only an upload idle since the cutoff qualifies.
      const stats = await fs.stat(file).catch(() => undefined)
      if (!stats || stats.mtimeMs >= olderThanMs) continue
      await fs.rm(file, { force: true })
      removed++
    }
    return removed
  }

  async ping(): Promise<void> {
    try {
      await fs.access(this.tmpDir, fsConstants.R_OK | fsConstants.W_OK)
    } catch (error) {
      throw errors.serviceUnavailable(error)
    }
  }
}

class LocalStagedBlob implements StagedBlob {
  readonly sink: Writable
  #open = true
  #published = false

  constructor(
    private readonly handle: FileHandle,
    private readonly tmpPath: string,
    private readonly finalPath: string,
  ) {
    this.sink = new FileSink(handle)
  }

  async finish(): Promise<void> {
    try {
      await this.handle.sync()
      await this.close()
    } catch (error) {
      throw translate(error)
    }
  }

  openByteSource() {
    return createFileByteSource(this.tmpPath)
  }

  async publish(): Promise<void> {
    const dir = path.dirname(this.finalPath)
    try {
      const created = await fs.mkdir(dir, { recursive: true, mode: 0o700 })
      if (created !== undefined) await syncDirectory(path.dirname(dir))
      await fs.rename(this.tmpPath, this.finalPath)
      this.#published = true
      await syncDirectory(dir)
    } catch (error) {
      throw translate(error)
    }
  }

  async discard(): Promise<void> {
    await this.close().catch(() => undefined)
    if (this.#published) return
    await fs.rm(this.tmpPath, { force: true })
  }

  private async close(): Promise<void> {
    if (!this.#open) return
    this.#open = false
    this.sink.destroy()
    await this.handle.close()
  }
}

/** Writes straight to a file handle, gathering queued chunks into one writev. */
class FileSink extends Writable {
  constructor(private readonly handle: FileHandle) {
    super({ highWaterMark: WRITE_BUFFER_BYTES })
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error) => void) {
    this.writeAll([chunk]).then(() => done(), done)
  }

  override _writev(items: { chunk: Buffer }[], done: (error?: Error) => void) {
    this.writeAll(items.map((item) => item.chunk)).then(() => done(), done)
  }

  private async writeAll(chunks: Buffer[]): Promise<void> {
    const expected = chunks.reduce((sum, chunk) => sum + chunk.length, 0)
    try {
      const { bytesWritten } = await this.handle.writev(chunks)
      // A regular file only writes short when the disk is full.
      if (bytesWritten !== expected)
        throw Object.assign(new Error('short write'), { code: 'ENOSPC' })
    } catch (error) {
      throw translate(error)
    }
  }
}

async function openIfExists(file: string): Promise<FileHandle | undefined> {
  try {
    return await fs.open(file, 'r')
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined
    throw translate(error)
  }
}

async function readdirIfExists(dir: string) {
  try {
    return await fs.readdir(dir, { withFileTypes: true })
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return []
    throw translate(error)
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY)
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code
}

/** Disk-full errors become 507; everything else stays itself and ends as a logged 500. */
function translate(error: unknown): unknown {
  if (isErrno(error, 'ENOSPC') || isErrno(error, 'EDQUOT')) return errors.insufficientStorage(error)
  // The disk failing or turning read-only is an outage of the store, not a bug of ours.
  if (isErrno(error, 'EIO') || isErrno(error, 'EROFS')) return errors.serviceUnavailable(error)
  return error
}
