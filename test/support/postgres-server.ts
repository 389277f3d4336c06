import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import { freePort } from './process-server.js'

const run = promisify(execFile)

export interface PostgresServer {
  /** postgres:// URL of a fresh database on the cluster. */
  createDatabase(): Promise<string>
  port: number
  /** Stops the cluster (data kept), for outage tests. */
  pause(): Promise<void>
  resume(): Promise<void>
  stop(): Promise<void>
}

/** The PostgreSQL server binaries of the machine (Debian's layout), newest version first. */
async function findBinDir(): Promise<string> {
  const root = '/usr/lib/postgresql'
  const versions = (await fs.readdir(root).catch(() => [] as string[])).sort(
    (a, b) => Number(b) - Number(a),
  )
  for (const version of versions) {
    const bin = path.join(root, version, 'bin')
    if (await fs.stat(path.join(bin, 'initdb')).catch(() => undefined)) return bin
  }
  throw new Error(
    'PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)',
  )
}

/**
 * A throw-away PostgreSQL cluster: initdb in a temporary directory, started with pg_ctl on a
 * free loopback port, removed by stop(). Runs as the `postgres` user when we are root, since
 * initdb refuses to run as root.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = await findBinDir()
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-pg-'))
  const dataDir = path.join(dir, 'data')
  const asRoot = process.getuid?.() === 0
  if (asRoot) await run('chown', ['-R', 'postgres:postgres', dir])
  const exec = (command: string, args: string[]) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', path.join(bin, command), ...args])
      : run(path.join(bin, command), args)

  await exec('initdb', [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '--auth=trust',
    '--no-locale',
    '-E',
    'UTF8',
  ])
  const port = await freePort()
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`
  const start = () =>
    exec('pg_ctl', [
      '-D',
      dataDir,
      '-o',
      options,
      '-l',
      path.join(dir, 'log'),
      '-w',
      '-t',
      '30',
      'start',
    ])
  const stopCluster = () => exec('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop'])
  await start()

  let counter = 0
  return {
    port,
    async createDatabase() {
      const name = `wcr_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 8)}`
      await exec('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', name])
      return `postgres://postgres@127.0.0.1:${port}/${name}`
    },
    pause: async () => void (await stopCluster()),
    resume: async () => void (await start()),
    async stop() {
      await stopCluster().catch(() => undefined)
      await fs.rm(dir, { recursive: true, force: true })
    },
  }
}
