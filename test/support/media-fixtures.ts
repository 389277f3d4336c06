import { createHash } from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'

const FREE_BOX_HEADER_BYTES = 16 // 32-bit size (= 1), type, 64-bit largesize

/**
 * Writes `source` (a real MP4) followed by one top-level `free` box in the 64-bit size form,
 * zero-padded up to `targetBytes`. The padding is made with ftruncate, so the file is sparse
 * and costs no disk space; it is still valid ISO-BMFF with the source's duration (F6/F7).
 */
export async function createPaddedMp4(options: {
  source: string
  targetBytes: number
  file: string
}): Promise<string> {
  const { source, targetBytes, file } = options
  await fsp.copyFile(source, file)
  const sourceBytes = (await fsp.stat(file)).size
  const boxBytes = targetBytes - sourceBytes
  if (boxBytes < FREE_BOX_HEADER_BYTES) throw new Error('target smaller than the source')

  const header = Buffer.alloc(FREE_BOX_HEADER_BYTES)
  header.writeUInt32BE(1, 0)
  header.write('free', 4, 'latin1')
  header.writeBigUInt64BE(BigInt(boxBytes), 8)
  const handle = await fsp.open(file, 'r+')
  try {
    await handle.write(header, 0, header.length, sourceBytes)
    await handle.truncate(targetBytes)
  } finally {
    await handle.close()
  }
  return file
}

/** SHA-256 (hex) of a file, or of its inclusive byte range, read as a stream. */
export async function sha256OfFile(file: string, range?: { start: number; end: number }) {
  const hash = createHash('sha256')
  await pipeline(fs.createReadStream(file, { ...range, highWaterMark: 1024 * 1024 }), hash)
  return hash.digest('hex')
}

export function sha256Of(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** The inclusive byte range `start..end` of a file, read with positioned reads. */
export async function readSlice(file: string, start: number, end: number): Promise<Buffer> {
  const handle = await fsp.open(file, 'r')
  try {
    const buffer = Buffer.alloc(end - start + 1)
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, start)
    return buffer.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}
