// Test helpers shared by the media tests: where the shared corpus lives, what its manifest
// promises, and ByteSources that present large virtual files or count what is read.
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { clampRange, type ByteSource } from './byte-source.js'

export interface ManifestEntry {
  file: string
  size_bytes: number
  sha256: string
  container: string
  categories: string[]
  expect_upload: 'accept' | 'reject'
  expect_duration_seconds: number[] | 'any' | null
  streams?: { type: string }[] | null
}

/** The repository root: the nearest ancestor of this file holding tsconfig.json (not dist/). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!existsSync(path.join(dir, 'tsconfig.json'))) {
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error('repository root (tsconfig.json) not found')
    dir = parent
  }
  return dir
}

/** `WCR_CORPUS_DIR`, else `<repo root>/../shared/corpus`. Throws if it has no manifest.json. */
export function corpusDir(): string {
  const dir = process.env.WCR_CORPUS_DIR ?? path.join(repoRoot(), '..', 'shared', 'corpus')
  if (!existsSync(path.join(dir, 'manifest.json'))) {
    throw new Error(`media corpus not found at ${dir} (set WCR_CORPUS_DIR)`)
  }
  return dir
}

export function loadManifest(): ManifestEntry[] {
  const manifest = JSON.parse(readFileSync(path.join(corpusDir(), 'manifest.json'), 'utf8')) as {
    files: ManifestEntry[]
  }
  return manifest.files
}

export function corpusPath(file: string): string {
  return path.join(corpusDir(), file)
}

export function readCorpusFile(file: string): Uint8Array {
  return new Uint8Array(readFileSync(corpusPath(file)))
}

/** The manifest's rule: within 1 s of a listed duration and never null; 'any' accepts anything. */
export function durationMatches(
  expected: ManifestEntry['expect_duration_seconds'],
  actual: number | null,
): boolean {
  if (expected === 'any') return true
  if (expected === null) return false
  return actual !== null && expected.some((seconds) => Math.abs(seconds - actual) <= 1)
}

/** A ByteSource that remembers how many bytes were requested from it. */
export type CountingSource = ByteSource & { readonly bytesRead: number }

/** Wraps `source`, counting the bytes actually returned. */
export function countingSource(source: ByteSource): CountingSource {
  let bytesRead = 0
  return {
    size: source.size,
    get bytesRead() {
      return bytesRead
    },
    async read(start, end) {
      const bytes = await source.read(start, end)
      bytesRead += bytes.length
      return bytes
    },
  }
}

/**
 * A virtual file made of real byte pieces and zero runs (`{ zeros: n }`), without allocating the
 * zeros: lets a test present a 1 GiB file built from a small real recording.
 */
export function virtualFile(parts: readonly (Uint8Array | { zeros: number })[]): CountingSource {
  const pieces = parts.map((part) => (part instanceof Uint8Array ? part : part.zeros))
  const size = pieces.reduce<number>((sum, p) => sum + (typeof p === 'number' ? p : p.length), 0)
  return countingSource({
    size,
    async read(start, end) {
      const range = clampRange(start, end, size)
      if (!range) return new Uint8Array(0)
      const out = new Uint8Array(range.end - range.start) // zero-filled
      let offset = 0
      for (const piece of pieces) {
        const length = typeof piece === 'number' ? piece : piece.length
        const from = Math.max(range.start, offset)
        const to = Math.min(range.end, offset + length)
        if (to > from && typeof piece !== 'number') {
          out.set(piece.subarray(from - offset, to - offset), from - range.start)
        }
        offset += length
      }
      return out
    },
  })
}

/** Deterministic pseudo-random bytes (mulberry32), so damaged variants are reproducible. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
