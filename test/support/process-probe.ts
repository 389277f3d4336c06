import fs from 'node:fs/promises'
import path from 'node:path'

import { loadOrCreateSigningSecret } from '../../src/auth/signing-secret.js'
import { issueToken } from '../../src/auth/token-issuer.js'
import { loadConfig } from '../../src/config.js'
import type { ServerProcess } from './process-server.js'

/** A token for a server started by `startServerProcess`, signed with its generated secret. */
export async function mintProcessToken(
  server: ServerProcess,
  orgId: string,
  permissions: string[],
): Promise<string> {
  const config = loadConfig(server.env)
  const secret =
    config.auth.key.kind === 'secret'
      ? config.auth.key.secret
      : await loadOrCreateSigningSecret(server.dataDir)
  return issueToken(config.auth, secret, {
    orgId,
    permissions,
    subject: `user-${orgId}`,
    ttlSeconds: 3600,
  })
}

/** How many file descriptors the process holds open right now (Linux /proc). */
export async function countOpenFds(pid: number): Promise<number> {
  return (await fs.readdir(path.join('/proc', String(pid), 'fd'))).length
}

/** Open descriptors that point at files under `dir`. */
export async function listFdsUnder(pid: number, dir: string): Promise<string[]> {
  const fdDir = path.join('/proc', String(pid), 'fd')
  const targets = await Promise.all(
    (await fs.readdir(fdDir)).map((fd) => fs.readlink(path.join(fdDir, fd)).catch(() => '')),
  )
  return targets.filter((target) => target.startsWith(dir + path.sep))
}

/** Resident set size of the process in bytes (VmRSS from /proc/<pid>/status). */
export async function readRssBytes(pid: number): Promise<number> {
  const status = await fs.readFile(path.join('/proc', String(pid), 'status'), 'utf8')
  const kib = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1]
  if (kib === undefined) throw new Error('no VmRSS in /proc status')
  return Number(kib) * 1024
}

/** Samples the RSS every `intervalMs` until stopped; `stop()` returns the largest sample. */
export function sampleRss(pid: number, intervalMs = 200): { stop(): Promise<number> } {
  let peak = 0
  let sampling = Promise.resolve()
  const timer = setInterval(() => {
    sampling = readRssBytes(pid).then(
      (rss) => {
        peak = Math.max(peak, rss)
      },
      () => undefined,
    )
  }, intervalMs)
  return {
    async stop() {
      clearInterval(timer)
      await sampling
      return Math.max(peak, await readRssBytes(pid))
    },
  }
}

/** Polls `read` until `accept` holds or `timeoutMs` passes; returns the last value read. */
export async function pollUntil<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  { timeoutMs, intervalMs = 100 }: { timeoutMs: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let value = await read()
  while (!accept(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
    value = await read()
  }
  return value
}
