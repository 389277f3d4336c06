#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander'

import {
  ConfigError,
  loadConfig,
  MAX_RETENTION_SECONDS,
  parseDurationSeconds,
  type Config,
} from '../config.js'
import { createDatabase, migrateToLatest } from '../db/database.js'
import { createLogger } from '../logger.js'
import { serve } from '../main.js'
import { exportAudit, getOrgRetention, runSweep, setOrgRetention } from './operator-commands.js'
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
  .requiredOption(
    '--permission <permission>',
    'permission to grant: org_admin or recorder (repeatable)',
    (value: string, previous: string[] = []) => {
      if (value !== 'org_admin' && value !== 'recorder') {
        throw new InvalidArgumentError('use org_admin or recorder')
      }
      return [...previous, value]
    },
  )
  .option('--sub <subject>', 'token subject (who acts; recorded in the audit log)', 'cli')
  .addOption(
    new Option('--ttl <duration>', 'lifetime, e.g. 15m, 1h, 24h (at most AUTH_MAX_TOKEN_AGE)')
      .argParser(parseTtl)
      .default(3600, '1h'),
  )
  .action(async (options: { org: string; permission: string[]; sub: string; ttl: number }) => {
    const config = configOrExit()
    if (options.org.trim() === '') throw new InvalidArgumentError('--org must not be empty')
    const maxAge = config.auth.maxTokenAgeSeconds
    if (maxAge > 0 && options.ttl > maxAge) {
      throw new InvalidArgumentError(
        `--ttl is longer than AUTH_MAX_TOKEN_AGE (${maxAge} s): the server would refuse the token`,
      )
    }
    const token = await mintToken(config, {
      orgId: options.org,
      permissions: options.permission,
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
    const db = createDatabase(config.database, undefined, { purpose: 'migrate' })
    try {
      for (const line of await migrateToLatest(db, config.database.kind))
        process.stderr.write(`${line}\n`)
      process.stderr.write('database is up to date\n')
    } finally {
      await db.destroy()
    }
  })

program
  .command('sweep')
  .description('run one retention pass now and print what it did (JSON)')
  .action(async () => {
    const report = await runSweep(configOrExit())
    process.stdout.write(`${JSON.stringify(report)}\n`)
    if (report.errors.length > 0) process.exitCode = 1
  })

const org = program.command('org').description('per-organisation settings')
org
  .command('set-retention')
  .description('set how long an organisation keeps recordings (`default`: back to RETENTION)')
  .argument('<org>', 'organisation id')
  .argument('<duration>', 'e.g. 90d, 12h, or default')
  .option('--actor <name>', 'who makes the change (recorded in the audit log)', 'operator')
  .action(async (orgId: string, duration: string, options: { actor: string }) => {
    const retentionSeconds = duration === 'default' ? null : parseRetention(duration)
    const result = await setOrgRetention(configOrExit(), {
      orgId,
      retentionSeconds,
      actor: options.actor,
    })
    process.stdout.write(`${JSON.stringify(result)}\n`)
  })
org
  .command('get-retention')
  .description('print an organisation’s retention and whether it is its own or the default')
  .argument('<org>', 'organisation id')
  .action(async (orgId: string) => {
    process.stdout.write(`${JSON.stringify(await getOrgRetention(configOrExit(), orgId))}\n`)
  })

program
  .command('audit')
  .description('the audit log')
  .command('export')
  .description('print audit entries as JSON lines, oldest first')
  .option('--org <org>', 'only this organisation')
  .option('--since <instant>', 'only entries at or after this RFC 3339 instant', parseSince)
  .action(async (options: { org?: string; since?: number }) => {
    await exportAudit(configOrExit(), {
      orgId: options.org,
      sinceMs: options.since,
      write: (line) =>
        new Promise<void>((resolve) => {
          if (process.stdout.write(line)) resolve()
          else process.stdout.once('drain', resolve)
        }),
    })
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

function parseRetention(value: string): number {
  const seconds = parseDurationSeconds(value)
  if (seconds === undefined || seconds > MAX_RETENTION_SECONDS) {
    throw new InvalidArgumentError('use a duration such as 90d or 12h, up to 36500d')
  }
  return seconds
}

function parseSince(value: string): number {
  const ms = Date.parse(value)
  if (!Number.isFinite(ms) || !/(Z|[+-]\d{2}:\d{2})$/i.test(value)) {
    throw new InvalidArgumentError('use an RFC 3339 instant with a zone, e.g. 2025-01-15T00:00:00Z')
  }
  return ms
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
