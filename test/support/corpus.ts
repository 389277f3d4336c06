import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root, found from this file whether it runs as .ts or compiled in dist/. */
export const REPO_ROOT = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)))

/** The shared media corpus: $WCR_CORPUS_DIR or `<repo>/../shared/corpus`. */
export const CORPUS_DIR =
  process.env.WCR_CORPUS_DIR ?? path.resolve(REPO_ROOT, '..', 'shared', 'corpus')

export interface CorpusEntry {
  file: string
  size_bytes: number
  sha256: string
  container: string | null
  categories: string[]
  expect_upload: 'accept' | 'reject'
  expect_duration_seconds: number[] | 'any' | null
}

export function loadManifest(): CorpusEntry[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(CORPUS_DIR, 'manifest.json'), 'utf8'))
  return manifest.files as CorpusEntry[]
}

export function corpusPath(entry: CorpusEntry | string): string {
  return path.join(CORPUS_DIR, typeof entry === 'string' ? entry : entry.file)
}

function findRepoRoot(start: string): string {
  let dir = start
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error('package.json not found above ' + start)
    dir = parent
  }
  return dir
}
