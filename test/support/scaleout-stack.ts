import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import { issueToken } from '../../src/auth/token-issuer.js'
import { loadConfig, type Config } from '../../src/config.js'
import { startPostgres, type PostgresServer } from './postgres-server.js'
import { startS3Server, type S3Server } from './s3-server.js'

/**
 * PostgreSQL + a real S3 store (Swift) for tests of the scale-out shape, whatever backend the
 * rest of the suite runs on. Servers reach Swift through a TCP forwarder on a fixed loopback
 * port: Swift comes back on new ports after `pause()`/`resume()`, the forwarder keeps the
 * endpoint the servers were started with. While the store is down the forwarder does not
 * listen either, so a server sees what it would see from a stopped store: connection refused.
 */
export interface ScaleoutStack {
  postgres: PostgresServer
  s3: S3Server
  /** The endpoint servers use (the forwarder), not Swift's own port. */
  s3Endpoint: string
  /** Shared by every node: one token works on all of them. */
  auth: { secret: string; issuer: string; audience: string }
  /** A fresh database and bucket: the env a node needs, and the config it will parse. */
  createBackend(extra?: Record<string, string>): Promise<Backend>
  /** A token for `orgId`, valid on every node of this stack. */
  token(orgId: string, permissions: string[]): Promise<string>
  /** Stops Swift (data kept) and the forwarder; new connections are refused. */
  pauseS3(): Promise<void>
  /** Starts Swift again and points the forwarder at its new port. */
  resumeS3(): Promise<void>
  /** The pid of Swift's proxy server (what answers S3), for `kill -STOP` hangs. */
  swiftProxyPid(): Promise<number>
  stop(): Promise<void>
}

export interface Backend {
  env: Record<string, string>
  config: Readonly<Config>
}

export async function startScaleoutStack(): Promise<ScaleoutStack> {
  const [postgres, s3] = await Promise.all([startPostgres(), startS3Server()])
  const forwarder = await startForwarder(await swiftProxyPort(s3))
  // listBlobKeys/listStagedUploads (state.ts) find the keys where the SDK looks for them.
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
  })
  const auth = {
    secret: randomBytes(32).toString('hex'),
    issuer: 'https://idp.scaleout.test',
    audience: 'recordings-scaleout',
  }
  const s3Endpoint = `http://127.0.0.1:${forwarder.port}`

  const stack: ScaleoutStack = {
    postgres,
    s3,
    s3Endpoint,
    auth,
    async createBackend(extra = {}) {
      const [databaseUrl, bucket] = await Promise.all([
        postgres.createDatabase(),
        s3.createBucket(),
      ])
      const env = {
        DATABASE_URL: databaseUrl,
        STORAGE_URL: `s3://${bucket}/recordings-${randomBytes(3).toString('hex')}`,
        S3_ENDPOINT: s3Endpoint,
        S3_REGION: s3.region,
        S3_FORCE_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_EC2_METADATA_DISABLED: 'true',
        AUTH_JWT_SECRET: auth.secret,
        AUTH_ISSUER: auth.issuer,
        AUTH_AUDIENCE: auth.audience,
        ...extra,
      }
      const config = loadConfig({ ...env, DATA_DIR: os.tmpdir() })
      return { env, config }
    },
    async token(orgId, permissions) {
      const config = loadConfig({
        AUTH_JWT_SECRET: auth.secret,
        AUTH_ISSUER: auth.issuer,
        AUTH_AUDIENCE: auth.audience,
        DATA_DIR: os.tmpdir(),
      })
      return issueToken(config.auth, auth.secret, {
        orgId,
        permissions,
        subject: `user-${orgId}`,
        ttlSeconds: 3600,
      })
    },
    async pauseS3() {
      await forwarder.close()
      await s3.pause()
    },
    async resumeS3() {
      await s3.resume()
      forwarder.retarget(await swiftProxyPort(s3))
      await forwarder.listen()
    },
    async swiftProxyPid() {
      return (await swiftProxyLine(s3)).pid
    },
    async stop() {
      await forwarder.close()
      await Promise.allSettled([postgres.stop(), s3.stop()])
    },
  }
  return stack
}

async function swiftProxyLine(s3: S3Server): Promise<{ pid: number; port: number }> {
  // DIR/pids holds "name pid port" per line (swift-s3.sh).
  const lines = (await fs.readFile(path.join(s3.dir, 'store', 'pids'), 'utf8')).split('\n')
  const proxy = lines.map((l) => l.trim().split(/\s+/)).find((fields) => fields[0] === 'proxy')
  if (!proxy) throw new Error('no proxy line in the Swift pids file')
  return { pid: Number(proxy[1]), port: Number(proxy[2]) }
}

async function swiftProxyPort(s3: S3Server): Promise<number> {
  return (await swiftProxyLine(s3)).port
}

interface Forwarder {
  port: number
  retarget(port: number): void
  listen(): Promise<void>
  /** Stops listening and cuts every forwarded connection. */
  close(): Promise<void>
}

/** A loopback TCP forwarder on a port of its own to `127.0.0.1:targetPort`. */
async function startForwarder(initialTarget: number): Promise<Forwarder> {
  let targetPort = initialTarget
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1')
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  const listenOn = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
  await listenOn(0)
  const port = (server.address() as net.AddressInfo).port
  return {
    port,
    retarget: (next) => void (targetPort = next),
    listen: () => listenOn(port),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        if (!server.listening) return resolve()
        server.close(() => resolve())
      }),
  }
}

export interface TimedResponse {
  status: number
  headers: Headers
  body: Buffer
  elapsedMs: number
}

/**
 * One request with fetch, its whole body read, and how long it took; rejects after
 * `timeoutMs` (a hang is a failure, never a stuck test). Redirects are not followed.
 */
export async function timedFetch(
  url: string,
  init: { method?: string; token?: string; headers?: Record<string, string>; body?: Buffer },
  timeoutMs = 30_000,
): Promise<TimedResponse> {
  const started = Date.now()
  const headers: Record<string, string> = { ...init.headers }
  if (init.token) headers.authorization = `Bearer ${init.token}`
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers,
    body: init.body,
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  })
  const body = Buffer.from(await response.arrayBuffer())
  return {
    status: response.status,
    headers: response.headers,
    body,
    elapsedMs: Date.now() - started,
  }
}
