import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { ERROR_SPECS, errors } from '../../src/errors.js'
import { startTestServer, type TestServer } from '../support/test-server.js'

describe('operations endpoints and the API document', () => {
  let t: TestServer
  before(async () => (t = await startTestServer()))
  after(() => t.close())

  test('/healthz and /readyz answer without a token', async () => {
    const health = await t.server.app.inject({ url: '/healthz' })
    assert.equal(health.statusCode, 200)
    const ready = await t.server.app.inject({ url: '/readyz' })
    assert.equal(ready.statusCode, 200)
    assert.deepEqual(ready.json(), { status: 'ok', database: 'ok', storage: 'ok' })
  })

  test('/metrics is Prometheus text with request counters', async () => {
    await t.server.app.inject({ url: '/recordings' })
    const metrics = await t.server.app.inject({ url: '/metrics' })
    assert.equal(metrics.statusCode, 200)
    assert.match(String(metrics.headers['content-type']), /^text\/plain/)
    assert.match(
      metrics.body,
      /wcr_http_requests_total\{method="GET",route="\/recordings",status="401"\} \d+/,
    )
    assert.match(metrics.body, /process_resident_memory_bytes/)
  })

  test('/openapi.json documents every recordings route, the schemas and every error code', async () => {
    const response = await t.server.app.inject({ url: '/openapi.json' })
    assert.equal(response.statusCode, 200)
    const document = response.json()
    assert.equal(document.openapi, '3.1.0')
    const paths = Object.keys(document.paths)
    for (const path of ['/recordings', '/recordings/{id}', '/recordings/{id}/{file}']) {
      assert.ok(paths.includes(path), `${path} in ${paths.join(', ')}`)
    }
    assert.ok(document.paths['/recordings'].get)
    assert.ok(document.paths['/recordings'].post)
    assert.ok(document.paths['/recordings/{id}'].delete)
    assert.ok(document.components.schemas.Recording)
    for (const code of Object.keys(ERROR_SPECS)) {
      assert.ok(document.info.description.includes(`\`${code}\``), `${code} documented`)
    }
    // Operations routes are hidden from the API document, not from the server.
    assert.ok(!paths.includes('/healthz'))
  })

  test('/docs serves the API browser', async () => {
    const response = await t.server.app.inject({ url: '/docs/' })
    assert.equal(response.statusCode, 200)
    assert.match(response.body, /swagger/i)
  })

  test('every log line of a request carries its request id, echoed in X-Request-Id', async () => {
    const before = t.logs.length
    const response = await t.server.app.inject({
      url: '/recordings',
      headers: { 'x-request-id': 'trace-abc-123' },
    })
    assert.equal(response.headers['x-request-id'], 'trace-abc-123')
    assert.equal(response.json().request_id, 'trace-abc-123')
    const lines = t.logs.slice(before).map((line) => JSON.parse(line))
    assert.ok(lines.length >= 1)
    for (const line of lines) assert.equal(line.request_id, 'trace-abc-123')
    const done = lines.filter((line) => line.msg === 'request done')
    assert.equal(done.length, 1, 'one line per request')
    assert.equal(done[0].status, 401)
  })

  test('a hostile X-Request-Id is replaced, not echoed', async () => {
    const response = await t.server.app.inject({
      url: '/healthz',
      headers: { 'x-request-id': 'a"b<script>' },
    })
    assert.match(String(response.headers['x-request-id']), /^[0-9a-f-]{36}$/)
  })
})

describe('error codes', () => {
  test('each code has one status and title, and a factory that produces it', () => {
    const produced = new Set<string>()
    for (const factory of Object.values(errors)) {
      const error = (factory as (...args: unknown[]) => { code: string; statusCode: number })(
        'x',
        'x',
      )
      assert.equal(error.statusCode, ERROR_SPECS[error.code as keyof typeof ERROR_SPECS].statusCode)
      produced.add(error.code)
    }
    for (const code of Object.keys(ERROR_SPECS)) {
      assert.ok(produced.has(code), `no factory makes ${code}`)
    }
  })
})
