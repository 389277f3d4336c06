import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'

import { loadOrCreateSigningSecret } from '../../src/auth/signing-secret.js'
import { issueToken } from '../../src/auth/token-issuer.js'
import { loadConfig, type Config } from '../../src/config.js'
import { createLogger } from '../../src/logger.js'
import { createServer, type Server } from '../../src/main.js'
import type { Clock } from '../../src/recordings/clock.js'
import { backendEnv } from './backend.js'

export interface TestServer {
  server: Server
  config: Readonly<Config>
  dataDir: string
  /**
   * The exact environment given to `loadConfig`, for CLI commands that must reach the same
   * database and storage (add `process.env` for PATH and the like).
   */
  env: Record<string, string>
  /** Base URL when started with `listen: true`. */
  baseUrl: string
  /** Every log line written so far, raw JSON text. */
  logs: string[]
  token(
    orgId: string,
    permissions?: string[],
    extra?: { sub?: string; ttlSeconds?: number },
  ): Promise<string>
  close(): Promise<void>
}

/**
 * A real server on a fresh temporary data directory (SQLite + disk), logging at debug into
 * memory so tests can read what an operator would see.
 */
export async function startTestServer(
  options: { env?: Record<string, string>; listen?: boolean; clock?: Clock; dataDir?: string } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-test-')))
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    LOG_LEVEL: 'debug',
    ...(await backendEnv()),
    ...options.env,
  }
  const config = loadConfig(env)
  const logs: string[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split('\n').filter(Boolean))
      done()
    },
  })
  const server = await createServer(config, createLogger(config.logLevel, sink), options.clock)
  let baseUrl = ''
  if (options.listen) {
    await server.app.listen({ host: '127.0.0.1', port: 0 })
    const address = server.app.server.address()
    if (address && typeof address === 'object') baseUrl = `http://127.0.0.1:${address.port}`
  } else {
    await server.app.ready()
  }
  const secret =
    config.auth.key.kind === 'secret'
      ? config.auth.key.secret
      : await loadOrCreateSigningSecret(dataDir)

  return {
    server,
    config,
    dataDir,
    env,
    baseUrl,
    logs,
    token: (orgId, permissions = ['org_admin'], extra = {}) =>
      issueToken(config.auth, secret, {
        orgId,
        permissions,
        subject: extra.sub ?? `user-${orgId}`,
        ttlSeconds: extra.ttlSeconds ?? 3600,
      }),
    async close() {
      await server.close()
      if (!options.dataDir) await fs.rm(dataDir, { recursive: true, force: true })
    },
  }
}
