#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander'

import { ConfigError, loadConfig, parseDurationSeconds, type Config } from '../config.js'
import { createDatabase, migrateToLatest } from '../db/database.js'
import { createLogger } from '../logger.js'
import { serve } from '../main.js'
import { mintToken } from './token-command.js'
import { uploadFile } from './upload-command.js'

const program = new Command()
  .name('wcr-recordings')
  .description('Meeting recordings backend: server and operator tools.')
  .showHelpAfterError()

program
  .command('serve')
  .description('run the HTTP API (configured by environment variables; see README)')
  .action(async () => {
    const config = configOrExit()
    await serve(config, createLogger(config.logLevel))
  })

program
  .command('token')
  .description('print a signed JWT for the embedded default (or AUTH_JWT_SECRET)')
  .requiredOption('--org <org>', 'organisation id (org_id claim)')
  .option(
    '--permission <permission>',
    'permission to grant: org_admin or recorder (repeatable)',
    (value: string, previous: string[] = []) => [...previous, value],
  )
  .option('--sub <subject>', 'token subject (who acts; recorded in the audit log)', 'cli')
  .option('--ttl <duration>', 'lifetime, e.g. 15m, 1h, 7d', parseTtl, 3600)
  .action(async (options: { org: string; permission?: string[]; sub: string; ttl: number }) => {
    const token = await mintToken(configOrExit(), {
      orgId: options.org,
      permissions: options.permission ?? ['org_admin'],
      subject: options.sub,
      ttlSeconds: options.ttl,
    })
    process.stdout.write(`${token}\n`)
  })

program
  .command('upload')
  .description('upload a recording, with a progress bar and safe retries')
  .argument('<file>', 'the recording file')
  .requiredOption('--meeting-id <id>', 'meeting the recording belongs to')
  .option('--url <url>', 'server base URL', process.env.WCR_URL ?? 'http://localhost:8080')
  .option('--token <jwt>', 'Bearer token (default: $WCR_TOKEN)', process.env.WCR_TOKEN)
  .option('--created-at <instant>', 'meeting start, RFC 3339 (default: upload time)')
  .option('--retries <n>', 'attempts after the first on network errors and 5xx', toInt, 5)
  .option('--no-progress', 'no progress bar')
  .action(async (file: string, options) => {
    if (!options.token) {
      throw new InvalidArgumentError('a token is needed: --token or WCR_TOKEN')
    }
    const recording = await uploadFile({
      file,
      meetingId: options.meetingId,
      baseUrl: options.url,
      token: options.token,
      createdAt: options.createdAt,
      retries: options.retries,
      progress: options.progress && process.stderr.isTTY === true,
    })
    process.stdout.write(`${JSON.stringify(recording, null, 2)}\n`)
  })

program
  .command('migrate')
  .description('apply database migrations and exit (serve also does this at start)')
  .action(async () => {
    const config = configOrExit()
    const db = createDatabase(config.database)
    try {
      for (const line of await migrateToLatest(db, config.database.kind))
        process.stderr.write(`${line}\n`)
      process.stderr.write('database is up to date\n')
    } finally {
      await db.destroy()
    }
  })

function configOrExit(): Readonly<Config> {
  try {
    return loadConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write('wcr-recordings: invalid configuration\n')
      for (const problem of error.problems) process.stderr.write(`  - ${problem}\n`)
      process.exit(2)
    }
    throw error
  }
}

function parseTtl(value: string): number {
  const seconds = parseDurationSeconds(value)
  if (seconds === undefined) throw new InvalidArgumentError('use a duration such as 1h or 7d')
  return seconds
}

function toInt(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number is needed')
  return n
}

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(
    `wcr-recordings: ${error instanceof Error ? error.message : String(error)}\n`,
  )
  process.exit(1)
})
