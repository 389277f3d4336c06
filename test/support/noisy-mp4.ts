import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'

import { corpusPath } from './corpus.js'

export interface NoisyMp4 {
  path: string
  sizeBytes: number
  sha256: string
}

const NOISE_BLOCK_BYTES = 1024 * 1024
const FREE_BOX_HEADER_BYTES = 16 // 32-bit size (= 1), type, 64-bit largesize

/**
 * A corpus MP4 followed by one top-level `free` box of random (non-zero) bytes, `sizeBytes`
 * long in all: valid ISO-BMFF with the source's duration. Unlike zero padding, nothing along
 * the way (compression, sparse files, dedup) can make its bytes cheaper than they look, and
 * a misplaced part shows up in the hash.
 */
export async function createNoisyMp4(options: {
  dir: string
  sizeBytes: number
  source?: string
}): Promise<NoisyMp4> {
  const { dir, sizeBytes } = options
  const head = await fs.readFile(corpusPath(options.source ?? 'mp4ff_prog_8s.mp4'))
  const boxBytes = sizeBytes - head.length
  if (boxBytes < FREE_BOX_HEADER_BYTES) throw new Error('target smaller than the source')

  const header = Buffer.alloc(FREE_BOX_HEADER_BYTES)
  header.writeUInt32BE(1, 0)
  header.write('free', 4, 'latin1')
  header.writeBigUInt64BE(BigInt(boxBytes), 8)
  const file = path.join(dir, `noisy-${sizeBytes}-${randomBytes(4).toString('hex')}.mp4`)
  const hash = createHash('sha256')
  const handle = await fs.open(file, 'w')
  try {
    const first = Buffer.concat([head, header])
    await handle.write(first)
    hash.update(first)
    let left = sizeBytes - first.length
    while (left > 0) {
      const block = randomBytes(Math.min(left, NOISE_BLOCK_BYTES))
      await handle.write(block)
      hash.update(block)
      left -= block.length
    }
  } finally {
    await handle.close()
  }
  return { path: file, sizeBytes, sha256: hash.digest('hex') }
}
