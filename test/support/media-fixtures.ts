import { createHash } from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'

import { corpusPath } from './corpus.js'

const FREE_BOX_HEADER_BYTES = 16 // 32-bit size (= 1), type, 64-bit largesize
const ZEROS = Buffer.alloc(1024 * 1024)

export interface PaddedMedia {
  path: string
  sizeBytes: number
  /** SHA-256 (hex) of the whole file. */
  sha256: string
}

/**
 * A corpus MP4 (`source`, default `mp4ff_prog_8s.mp4`) followed by one top-level `free` box in
 * the 64-bit size form, so that the whole file is `sizeBytes` long: still valid ISO-BMFF with
 * the source's duration (F6/F7), but as big as a test needs, past 4 GiB too. `marker`, written
 * at the start of the padding, makes files of equal size differ. The rest of the padding is
 * made with ftruncate, so the file is sparse and costs no disk space; its hash is computed
 * from memory, without reading the file back.
 */
export async function createPaddedMp4(options: {
  dir: string
  sizeBytes: number
  source?: string
  marker?: string
}): Promise<PaddedMedia> {
  const { dir, sizeBytes } = options
  const marker = options.marker ?? 'x'
  const head = await fsp.readFile(corpusPath(options.source ?? 'mp4ff_prog_8s.mp4'))
  const boxBytes = sizeBytes - head.length
  if (boxBytes < FREE_BOX_HEADER_BYTES + Buffer.byteLength(marker)) {
    throw new Error('target smaller than the source')
  }

  const boxHeader = Buffer.alloc(FREE_BOX_HEADER_BYTES)
  boxHeader.writeUInt32BE(1, 0)
  boxHeader.write('free', 4, 'latin1')
  boxHeader.writeBigUInt64BE(BigInt(boxBytes), 8)
  const written = Buffer.concat([head, boxHeader, Buffer.from(marker)])
  const file = path.join(dir, `padded-${sizeBytes}-${marker}.mp4`)
  const handle = await fsp.open(file, 'w')
  try {
    await handle.write(written)
    await handle.truncate(sizeBytes)
  } finally {
    await handle.close()
  }

  const hash = createHash('sha256').update(written)
  for (let left = sizeBytes - written.length; left > 0; left -= ZEROS.length) {
    hash.update(ZEROS.subarray(0, Math.min(left, ZEROS.length)))
  }
  return { path: file, sizeBytes, sha256: hash.digest('hex') }
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
