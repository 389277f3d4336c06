import fs from 'node:fs/promises'

/**
 * Random access to bytes that may live on disk or in object storage. end is exclusive; reads past
 * size are clamped.
 */
export interface ByteSource {
  readonly size: number
  read(start: number, end: number): Promise<Uint8Array>
}

/**
 * Clamps a requested range to [0, size). Returns null when nothing is left to read, so callers
 * can answer with an empty array without touching the underlying storage.
 */
export function clampRange(
  start: number,
  end: number,
  size: number,
): { start: number; end: number } | null {
  const from = Math.max(0, Math.floor(start))
  const to = Math.min(size, Math.floor(end))
  return to > from ? { start: from, end: to } : null
}

/**
 * A ByteSource over a local file. Keeps one handle open until close() (idempotent); reads after
 * close reject. `size` is taken when opening; if the file shrinks later, reads return fewer bytes.
 */
export async function createFileByteSource(
  path: string,
): Promise<ByteSource & { close(): Promise<void> }> {
  const handle = await fs.open(path, 'r')
  let size: number
  try {
    size = (await handle.stat()).size
  } catch (error) {
    await handle.close()
    throw error
  }
  let closing: Promise<void> | null = null

  return {
    size,
    async read(start, end) {
      if (closing) throw new Error(`ByteSource for ${path} is closed`)
      const range = clampRange(start, end, size)
      if (!range) return new Uint8Array(0)
      const bytes = new Uint8Array(range.end - range.start)
      let filled = 0
      while (filled < bytes.length) {
        const { bytesRead } = await handle.read(
          bytes,
          filled,
          bytes.length - filled,
          range.start + filled,
        )
        if (bytesRead === 0) break // the file shrank since it was opened
        filled += bytesRead
      }
      return filled === bytes.length ? bytes : bytes.subarray(0, filled)
    },
    close() {
      closing ??= handle.close()
      return closing
    },
  }
}

/** A ByteSource over bytes already in memory (tests, small uploads). The bytes are not copied. */
export function createMemoryByteSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    async read(start, end) {
      const range = clampRange(start, end, bytes.length)
      return range ? bytes.subarray(range.start, range.end) : new Uint8Array(0)
    },
  }
}
