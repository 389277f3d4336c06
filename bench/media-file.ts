import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'

const CHUNK_BYTES = 4 * 1024 * 1024
const FREE_BOX_HEADER_BYTES = 8
const FREE_BOX_LARGE_HEADER_BYTES = 16 // size field 1, then a 64-bit size

/**
 * Writes a real MP4 of exactly `totalBytes`: the corpus file unchanged, followed by one
 * top-level `free` box that pads it. The padding is incompressible, non-zero data written to
 * disk (no sparse holes), so every reader pays for every byte.
 */
export async function writePaddedMp4(
  sourceMp4: string,
  target: string,
  totalBytes: number,
): Promise<void> {
  const media = await fs.readFile(sourceMp4)
  const boxBytes = totalBytes - media.length
  const large = boxBytes > 0xffff_ffff
  const headerBytes = large ? FREE_BOX_LARGE_HEADER_BYTES : FREE_BOX_HEADER_BYTES
  if (boxBytes < headerBytes) throw new Error(`${sourceMp4} is larger than ${totalBytes} bytes`)

  const header = Buffer.alloc(headerBytes)
  if (large) {
    header.writeUInt32BE(1, 0)
    header.write('free', 4, 'latin1')
    header.writeBigUInt64BE(BigInt(boxBytes), 8)
  } else {
    header.writeUInt32BE(boxBytes, 0)
    header.write('free', 4, 'latin1')
  }

  const handle = await fs.open(target, 'w', 0o600)
  try {
    await handle.write(media)
    await handle.write(header)
    // One random block, re-stamped per chunk so no two chunks are equal.
    const block = randomBytes(CHUNK_BYTES)
    let remaining = boxBytes - headerBytes
    for (let index = 0; remaining > 0; index++) {
      block.writeUInt32BE(index, 0)
      const length = Math.min(remaining, CHUNK_BYTES)
      await handle.write(block, 0, length)
      remaining -= length
    }
  } finally {
    await handle.close()
  }
}
