import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import { sql } from 'kysely'

import { createRsaKeyPair } from '../support/jwt-fixtures.js'
import { CLI, freePort } from '../support/process-server.js'
import { pathOf, uploadRecording, type RecordingJson } from '../support/requests.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

const PROBLEM_KEYS = ['code', 'detail', 'error', 'request_id', 'status', 'title', 'type']

/**
 * Every route the server answers, as "METHOD /path". Reviewed: the API of DESIGN.md §5, the
 * operations routes, and Swagger UI's /docs with its static files. Nothing for debugging or
 * tests. The legal-hold routes are listed because DESIGN.md promises them.
 */
const REVIEWED_ROUTES = new Set([
  'GET /recordings',
  'POST /recordings',
  'GET /recordings/:id',
  'DELETE /recordings/:id',
  'GET /recordings/:id/:file',
  'HEAD /recordings/:id/:file',
  'PUT /recordings/:id/legal-hold',
  'DELETE /recordings/:id/legal-hold',
  // org_admin only: the org's retention (DESIGN.md §6) and audit trail (§7).
  'GET /retention',
  'GET /audit-events',
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
  'GET /openapi.json',
  'GET /docs',
  'GET /docs/',
  'GET /docs/static/index.html',
  'GET /docs/static/swagger-initializer.js',
  'GET /docs/*', // printed so; it is /docs/static/*, Swagger UI's assets
  'HEAD /docs/*',
  'GET /docs/json',
  'GET /docs/yaml',
])
const REQUIRED_ROUTES = [...REVIEWED_ROUTES].filter((route) => !/legal-hold|\*/.test(route))

/** Parses `printRoutes({ commonPrefix: false })` into "METHOD /path" entries. */
function routeList(printed: string): string[] {
  const routes: string[] = []
  const stack: string[] = []
  for (const line of printed.split('\n')) {
    const match = /^([│ ]*)(?:[├└]── )(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (!match) continue
    const depth = (match[1] ?? '').length / 4
    stack.length = depth
    stack.push(match[2] ?? '')
    for (const method of (match[3] ?? '').split(', ').filter(Boolean)) {
      routes.push(`${method} ${stack.join('').replace(/^\/+/, '/')}`)
    }
  }
  return routes
}

describe('error and route hygiene (S51)', () => {
  let t: TestServer
  let admin: string
  let recording: RecordingJson

  before(async () => {
    t = await startTestServer({ listen: true })
    admin = await t.token('org-a', ['org_admin'])
    recording = await uploadRecording(t, await t.token('org-a', ['recorder']), 'm-hygiene')
  })
  after(() => t.close())

  test('an unknown route is a 404 problem, with or without a token', async () => {
    const anonymous: Record<string, string> = {}
    for (const headers of [anonymous, { authorization: `Bearer ${admin}` }]) {
      const response = await fetch(`${t.baseUrl}/admin/debug?x=1`, { headers })
      assert.equal(response.status, 404)
      assert.match(String(response.headers.get('content-type')), /^application\/problem\+json/)
      const body = (await response.json()) as Record<string, unknown>
      assert.deepEqual(Object.keys(body).sort(), PROBLEM_KEYS)
      assert.equal(body.error, 'not_found')
    }
  })

  test('TRACE is refused and reflects nothing', async () => {
    const marker = `reflect-${Date.now()}`
    const response = await t.server.app.inject({
      method: 'TRACE',
      url: '/recordings',
      headers: { authorization: `Bearer ${admin}`, 'x-marker': marker, cookie: marker },
    })
    assert.ok([404, 405].includes(response.statusCode), String(response.statusCode))
    assert.ok(!response.body.includes(marker), 'a request header was reflected')
    assert.ok(!response.body.includes(admin.slice(0, 20)), 'the token was reflected')
    assert.notEqual(response.headers['content-type'], 'message/http')
  })

  test('a foreign Origin gets no CORS grant', async () => {
    const origin = 'https://evil.example'
    const preflight = await fetch(`${t.baseUrl}/recordings`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization',
      },
    })
    await preflight.arrayBuffer() // an unread body would hold the connection open at close
    const simple = await fetch(`${t.baseUrl}${pathOf(recording.url)}`, {
      headers: { origin, authorization: `Bearer ${admin}` },
    })
    assert.equal(simple.status, 200)
    await simple.arrayBuffer()
    for (const response of [preflight, simple]) {
      assert.equal(response.headers.get('access-control-allow-origin'), null)
      assert.equal(response.headers.get('access-control-allow-credentials'), null)
    }
  })

  test('a malformed URL is a problem response that reflects nothing', async () => {
    const marker = 'zz-reflected-marker'
    for (const url of [`/recordings/%zz${marker}`, `/recordings/${marker.repeat(500)}`]) {
      const response = await fetch(`${t.baseUrl}${url}`, {
        headers: { authorization: `Bearer ${admin}` },
      })
      const text = await response.text()
      assert.ok([400, 404].includes(response.status), String(response.status))
      assert.match(String(response.headers.get('content-type')), /^application\/problem\+json/)
      assert.ok(!text.includes(marker) && !text.includes('FST_'), text.slice(0, 200))
    }
  })

  test('the served routes are exactly the reviewed ones', () => {
    const routes = routeList(t.server.app.printRoutes({ commonPrefix: false }))
    assert.ok(routes.length > 5, t.server.app.printRoutes({ commonPrefix: false }))
    for (const route of routes) assert.ok(REVIEWED_ROUTES.has(route), `unreviewed route ${route}`)
    for (const route of REQUIRED_ROUTES) assert.ok(routes.includes(route), `missing ${route}`)
  })
})

describe('internal failures (S51)', () => {
  let t: TestServer
  let admin: string
  let recording: RecordingJson

  before(async () => {
    t = await startTestServer({ listen: true })
    admin = await t.token('org-a', ['org_admin'])
    recording = await uploadRecording(t, await t.token('org-a', ['recorder']), 'm-broken')
    // Break the schema under the running server, as a botched manual migration would.
    await sql`ALTER TABLE recordings RENAME COLUMN org_id TO org_id_renamed`.execute(t.server.db)
  })
  after(() => t.close())

  async function assertGeneric500(url: string) {
    const response = await fetch(`${t.baseUrl}${url}`, {
      headers: { authorization: `Bearer ${admin}` },
    })
    assert.equal(response.status, 500, url)
    assert.match(String(response.headers.get('content-type')), /^application\/problem\+json/)
    const text = await response.text()
    const body = JSON.parse(text)
    assert.deepEqual(Object.keys(body).sort(), PROBLEM_KEYS)
    assert.equal(body.error, 'internal_error')
    assert.equal(body.detail, 'internal error')
    const leaks = [/sqlite/i, /postgres/i, /select/i, /column/i, /org_id/, /\//, /node_modules/]
    for (const leak of leaks) {
      assert.doesNotMatch(text.replace(/"type":"[^"]*"/, ''), leak, `${url}: ${text}`)
    }
    assert.ok(!text.includes(t.dataDir) && !text.includes(os.hostname()))

    // The operator still gets the detail, tied to the request id the client saw.
    const requestId = response.headers.get('x-request-id')
    assert.equal(body.request_id, requestId)
    const logged = t.logs.find((line) => {
      const entry = JSON.parse(line) as { request_id?: string; level?: string }
      return entry.request_id === requestId && entry.level === 'error'
    })
    assert.ok(logged, 'no error log line for the request id')
    // SQLite: "no such column: org_id"; PostgreSQL: 'column "org_id" does not exist'.
    assert.match(logged, /no such column|column \\?"\w+\\?" does not exist/)
  }

  test('a database failure is a bare 500 whose detail only the log holds', async () => {
    await assertGeneric500(`/recordings/${recording.id}`)
    await assertGeneric500(pathOf(recording.url))
    await assertGeneric500('/recordings?limit=5')
    assert.equal((await fetch(`${t.baseUrl}/healthz`)).status, 200)
  })

  test('a database failure on the streamed full list is a 500, not a cut-off 200', async () => {
    await assertGeneric500('/recordings')
  })
})

interface ExitResult {
  code: number | null
  output: string
}

/** Runs `wcr-recordings serve` with `env` and waits (at most 15 s) for it to exit. */
async function serveUntilExit(env: Record<string, string>): Promise<ExitResult> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'wcr-unsafe-'))
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !/^(AUTH_|DATABASE_URL|STORAGE_URL|S3_|LOG_LEVEL)/.test(name),
    ),
  ) as Record<string, string>
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: {
      ...inherited,
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  try {
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    return { code, output }
  } finally {
    clearTimeout(timer)
    await fs.rm(dataDir, { recursive: true, force: true })
  }
}

describe('refusing to start with unsafe configuration (S53)', () => {
  const rsa = createRsaKeyPair()
  const issuer = { AUTH_ISSUER: 'https://idp.test', AUTH_AUDIENCE: 'recordings-api' }
  const goodSecret = 'S'.repeat(8) + Buffer.from('0123456789abcdef0123456789').toString('hex')
  const cases: [string, Record<string, string>, string, string][] = [
    [
      'an HMAC secret of 31 bytes',
      { AUTH_JWT_SECRET: 'k7Q2x9WmPz4LrT8vN3bY6cJ1hF5dG0s', ...issuer },
      'AUTH_JWT_SECRET',
      'k7Q2x9WmPz4LrT8vN3bY6cJ1hF5dG0s',
    ],
    ['the secret "secret"', { AUTH_JWT_SECRET: 'secret', ...issuer }, 'AUTH_JWT_SECRET', 'secret'],
    [
      'no issuer',
      { AUTH_JWT_SECRET: goodSecret, AUTH_AUDIENCE: 'recordings-api' },
      'AUTH_ISSUER',
      goodSecret,
    ],
    [
      'no audience with an external key',
      { AUTH_PUBLIC_KEY: rsa.publicPem, AUTH_ISSUER: 'https://idp.test' },
      'AUTH_AUDIENCE',
      'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A',
    ],
    [
      'plain-http JWKS on a non-loopback host',
      { AUTH_JWKS_URL: 'http://idp.example.org/jwks-secret-path.json', ...issuer },
      'AUTH_JWKS_URL',
      'jwks-secret-path',
    ],
    [
      'unsigned tokens allowed',
      { AUTH_JWT_SECRET: goodSecret, AUTH_ALGORITHMS: 'HS256,none', ...issuer },
      'AUTH_ALGORITHMS',
      goodSecret,
    ],
    [
      'an HMAC algorithm for a public key',
      { AUTH_PUBLIC_KEY: rsa.publicPem, AUTH_ALGORITHMS: 'HS256', ...issuer },
      'AUTH_ALGORITHMS',
      'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A',
    ],
    [
      'PostgreSQL without TLS on a non-loopback host',
      { DATABASE_URL: 'postgres://rec:pg-pass-value@db.example.org/recordings' },
      'DATABASE_URL',
      'pg-pass-value',
    ],
    [
      'a plaintext S3 endpoint on a non-loopback host',
      { S3_ENDPOINT: 'http://minio-host.example.org:9000' },
      'S3_ENDPOINT',
      'minio-host',
    ],
  ]

  for (const [label, env, variable, secretPart] of cases) {
    test(`exits before listening with ${label}, naming ${variable} only`, async () => {
      const { code, output } = await serveUntilExit(env)
      assert.notEqual(code, 0, output)
      assert.notEqual(code, null, 'still running after 15 s')
      assert.match(output, new RegExp(variable), output)
      assert.ok(!output.includes(secretPart), `the value leaked: ${output}`)
      assert.doesNotMatch(output, /listening/)
    })
  }
})
