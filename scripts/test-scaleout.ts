import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {
  scaleoutServicesEnv,
  startScaleoutServices,
  type ScaleoutServices,
} from '../test/support/backend.js'

/**
 * Runs the integration suite against the scale-out shape: one throw-away PostgreSQL cluster
 * and one S3 store (Swift) for the whole run, a fresh database and bucket per server.
 * Arguments are passed to `node --test` (default: every integration test).
 */
async function main(): Promise<number> {
  process.stderr.write('test-scaleout: starting PostgreSQL and an S3 store (Swift)...\n')
  let services: ScaleoutServices | undefined
  let interrupted = false
  const onSignal = () => (interrupted = true)
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    services = await startScaleoutServices()
    if (interrupted) return 130
    const files = process.argv.slice(2)
    const child = spawn(
      process.execPath,
      [
        '--enable-source-maps',
        '--test',
        '--test-concurrency=1',
        ...(files.length > 0 ? files : defaultFiles()),
      ],
      {
        stdio: 'inherit',
        env: { ...process.env, WCR_TEST_BACKEND: 'scaleout', ...scaleoutServicesEnv(services) },
      },
    )
    const stop = () => child.kill('SIGTERM')
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal)
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    return await new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)))
  } finally {
    await services?.stop()
  }
}

const INTEGRATION_DIR = 'dist/test/integration'
// These pick their own backends (both shapes, or scale-out only) whatever the run.
const OWN_BACKENDS = /^(scaleout-.*|blob-store-contract)\.test\.js$/

function defaultFiles(): string[] {
  return fs
    .readdirSync(INTEGRATION_DIR)
    .filter((name) => name.endsWith('.test.js') && !OWN_BACKENDS.test(name))
    .sort()
    .map((name) => path.join(INTEGRATION_DIR, name))
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`test-scaleout: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  },
)
