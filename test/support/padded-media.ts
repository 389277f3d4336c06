import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'

import { corpusPath } from './corpus.js'

export interface PaddedMedia {
  path: string
  sizeBytes: number
  sha256: string
}

const ZEROS = Buffer.alloc(1024 * 1024)

/**
 * A corpus MP4 followed by one top-level `free` box of zeros so that the whole file is
 * `sizeBytes` long: still valid ISO-BMFF with the same duration, but as big as a test needs.
 * `marker` (written at the start of the padding) makes files of equal size differ.
 */
export async function createPaddedMp4(options: {
  dir: string
  sizeBytes: number
  source?: string
  marker?: string
}): Promise<PaddedMedia> {
  const { dir, sizeBytes } = options
  const head = await fs.readFile(corpusPath(options.source ?? 'mp4ff_prog_8s.mp4'))
  const boxBytes = sizeBytes - head.length
  if (boxBytes < 8 || boxBytes >= 2 ** 32) throw new Error('padding must be 8 B..4 GiB')

  const file = path.join(dir, `padded-${sizeBytes}-${options.marker ?? 'x'}.mp4`)
  const hash = createHash('sha256')
  const handle = await fs.open(file, 'w')
  try {
    const boxHeader = Buffer.alloc(8)
    boxHeader.writeUInt32BE(boxBytes, 0)
    boxHeader.write('free', 4, 'latin1')
    const marker = Buffer.from(options.marker ?? '')
    const first = Buffer.concat([head, boxHeader, marker])
    await handle.write(first)
    hash.update(first)
    let left = sizeBytes - first.length
    while (left > 0) {
      const chunk = ZEROS.subarray(0, Math.min(left, ZEROS.length))
      await handle.write(chunk)
      hash.update(chunk)
      left -= chunk.length
    }
  } finally {
    await handle.close()
  }
  return { path: file, sizeBytes, sha256: hash.digest('hex') }
}
