import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import { backendEnv } from './backend.js'
import { REPO_ROOT } from './corpus.js'

export const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')

export interface ServerProcess {
  baseUrl: string
  dataDir: string
  env: Record<string, string>
  child: ChildProcess
  output: () => string
  stop(): Promise<void>
}

export async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** `wcr-recordings serve` as a user runs it, on a free port and a fresh data directory. */
export async function startServerProcess(env: Record<string, string> = {}): Promise<ServerProcess> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-proc-'))
  const port = await freePort()
  const fullEnv = {
    ...(process.env as Record<string, string>),
    DATA_DIR: dataDir,
    PORT: String(port),
    HOST: '127.0.0.1',
    ...(await backendEnv()),
    ...env,
  }
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: fullEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (d) => (output += d))
  child.stderr?.on('data', (d) => (output += d))
  const baseUrl = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  const giveUp = async (why: string) => {
    child.kill('SIGKILL')
    await fs.rm(dataDir, { recursive: true, force: true })
    return new Error(`${why}: ${output}`)
  }
  for (;;) {
    if (child.exitCode !== null) throw await giveUp('server exited')
    try {
      const response = await fetch(`${baseUrl}/healthz`)
      if (response.ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw await giveUp('server did not start')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    baseUrl,
    dataDir,
    env: fullEnv,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      await fs.rm(dataDir, { recursive: true, force: true })
    },
  }
}
