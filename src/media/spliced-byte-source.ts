import { clampRange, type ByteSource } from './byte-source.js'

/** A piece of a spliced view: literal bytes, or the range [start, end) of the base source. */
export type SplicePart = { bytes: Uint8Array } | { start: number; end: number }

/**
 * A ByteSource presenting `parts` back to back, so a parser can be shown a file's header next to
 * its last fragments, or a missing header in front of the real bytes. Ranges are taken as given
 * (the caller keeps them inside `base`); reads past the end are clamped.
 */
export function createSplicedByteSource(
  base: ByteSource,
  parts: readonly SplicePart[],
): ByteSource {
  const lengths = parts.map((part) => ('bytes' in part ? part.bytes.length : part.end - part.start))
  const size = lengths.reduce((sum, length) => sum + length, 0)
  return {
    size,
    async read(start, end) {
      const range = clampRange(start, end, size)
      if (!range) return new Uint8Array(0)
      const pieces: Promise<Uint8Array>[] = []
      let partStart = 0
      parts.forEach((part, i) => {
        const partEnd = partStart + (lengths[i] ?? 0)
        const from = Math.max(range.start, partStart) - partStart
        const to = Math.min(range.end, partEnd) - partStart
        if (to > from) {
          pieces.push(
            'bytes' in part
              ? Promise.resolve(part.bytes.subarray(from, to))
              : base.read(part.start + from, part.start + to),
          )
        }
        partStart = partEnd
      })
      const loaded = await Promise.all(pieces)
      return loaded.length === 1 && loaded[0] ? loaded[0] : Buffer.concat(loaded)
    },
  }
}
