import path from 'node:path'

/**
 * Resolves `key` under `root`, refusing anything that would leave it (`..`, absolute paths,
 * NUL bytes). Keys are ours, so a refusal here means a bug, not bad input.
 */
export function resolveUnder(root: string, key: string): string {
  if (key.includes('\0') || path.isAbsolute(key)) throw new Error('unsafe storage key')
  const resolved = path.resolve(root, key)
  const rootWithSep = root.endsWith(path.sep) ? root : root + path.sep
  if (!resolved.startsWith(rootWithSep)) throw new Error('unsafe storage key')
  return resolved
}
