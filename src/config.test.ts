import assert from 'node:assert/strict'
import { test } from 'node:test'

import { ConfigError, loadConfig, parseDurationSeconds } from './config.js'

const SECRET = 'k'.repeat(40)

test('the embedded default needs no settings at all', () => {
  const config = loadConfig({}, '/srv/app')
  assert.equal(config.port, 8080)
  assert.equal(config.dataDir, '/srv/app/data')
  assert.deepEqual(config.database, { kind: 'sqlite', path: '/srv/app/data/recordings.db' })
  assert.deepEqual(config.storage, { kind: 'file', root: '/srv/app/data/blobs' })
  assert.equal(config.auth.key.kind, 'generated-secret')
  assert.equal(config.retentionSeconds, 30 * 86_400)
  assert.equal(config.maxUploadBytes, 32 * 1024 ** 3)
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.auth))
})

test('unsafe authentication settings refuse to start, naming the variable only (S53)', () => {
  const refused: Record<string, string>[] = [
    { AUTH_JWT_SECRET: 'x'.repeat(31), AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' },
    { AUTH_JWT_SECRET: 'secret', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' },
    { AUTH_JWT_SECRET: SECRET, AUTH_AUDIENCE: 'a' },
    { AUTH_JWT_SECRET: SECRET, AUTH_ISSUER: 'i' },
    { AUTH_JWKS_URL: 'http://idp.example.org/keys', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' },
    { AUTH_JWT_SECRET: SECRET, AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a', AUTH_ALGORITHMS: 'none' },
    { AUTH_JWT_SECRET: SECRET, AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a', AUTH_ALGORITHMS: 'RS256' },
    {
      AUTH_JWKS_URL: 'https://idp.test/k',
      AUTH_ISSUER: 'i',
      AUTH_AUDIENCE: 'a',
      AUTH_ALGORITHMS: 'HS256',
    },
    {
      AUTH_JWKS_URL: 'https://idp.test/k',
      AUTH_ISSUER: 'i',
      AUTH_AUDIENCE: 'a',
      AUTH_ALGORITHMS: 'XYZ1',
    },
    { DATABASE_URL: 'postgres://u:hunter22@db.example.org/rec' },
    { DATABASE_URL: 'postgres://u:hunter22@db.example.org/rec?sslmode=prefer' },
    { S3_ENDPOINT: 'http://minio.example.org:9000' },
  ]
  for (const env of refused) {
    assert.throws(
      () => loadConfig(env),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError)
        for (const value of Object.values(env)) {
          if (value.length > 2) assert.ok(!error.message.includes(value), 'value leaked')
        }
        return true
      },
      JSON.stringify(Object.keys(env)),
    )
  }
})

test('safe variants of the same settings are accepted', () => {
  const jwks = { AUTH_JWKS_URL: 'https://idp.test/k', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' }
  assert.deepEqual(loadConfig({ ...jwks, AUTH_ALGORITHMS: 'RS256, PS256' }).auth.algorithms, [
    'RS256',
    'PS256',
  ])
  assert.equal(
    loadConfig({ AUTH_JWKS_URL: 'http://127.0.0.1:9/k', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' }).auth
      .key.kind,
    'jwks',
  )
  for (const url of [
    'postgres://u:p@db.example.org/rec?sslmode=verify-full',
    'postgres://u:p@127.0.0.1:5432/rec',
    'postgresql://u:p@localhost/rec',
  ]) {
    assert.equal(loadConfig({ DATABASE_URL: url }).database.kind, 'postgres', url)
  }
  assert.doesNotThrow(() => loadConfig({ S3_ENDPOINT: 'http://127.0.0.1:9000' }))
  assert.doesNotThrow(() => loadConfig({ S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com' }))
})

test('bad values are reported together, by name', () => {
  try {
    loadConfig({ PORT: 'eighty', RETENTION: 'forever', LOG_LEVEL: 'loud' })
    assert.fail('expected a ConfigError')
  } catch (error) {
    assert.ok(error instanceof ConfigError)
    assert.equal(error.problems.length, 3)
    assert.match(error.message, /PORT/)
    assert.match(error.message, /RETENTION/)
    assert.match(error.message, /LOG_LEVEL/)
  }
})

test('durations', () => {
  assert.equal(parseDurationSeconds('90s'), 90)
  assert.equal(parseDurationSeconds('12h'), 43_200)
  assert.equal(parseDurationSeconds('30d'), 2_592_000)
  assert.equal(parseDurationSeconds('45'), undefined, 'a unit is required')
  assert.equal(parseDurationSeconds('0d'), undefined)
  assert.equal(parseDurationSeconds('1y'), undefined)
  assert.equal(parseDurationSeconds('-5s'), undefined)
})

test('storage and database URLs', () => {
  const config = loadConfig(
    { DATABASE_URL: 'sqlite:/var/lib/wcr/db.sqlite', STORAGE_URL: 's3://my-bucket/rec/' },
    '/x',
  )
  assert.deepEqual(config.database, { kind: 'sqlite', path: '/var/lib/wcr/db.sqlite' })
  assert.deepEqual(config.storage, {
    kind: 's3',
    bucket: 'my-bucket',
    prefix: 'rec/',
    endpoint: undefined,
    region: 'us-east-1',
    forcePathStyle: false,
    downloadMode: 'stream',
    presignTtlSeconds: 300,
  })
  const minio = loadConfig({
    STORAGE_URL: 's3://recordings',
    S3_ENDPOINT: 'http://127.0.0.1:9000',
    S3_REGION: 'eu-west-1',
    DOWNLOAD_MODE: 'redirect',
  })
  assert.equal(minio.storage.kind === 's3' && minio.storage.forcePathStyle, true)
  assert.equal(minio.storage.kind === 's3' && minio.storage.region, 'eu-west-1')
  assert.throws(() => loadConfig({ DOWNLOAD_MODE: 'redirect' }), /DOWNLOAD_MODE/)
  assert.throws(() => loadConfig({ DATABASE_URL: 'mysql://x' }), /DATABASE_URL/)
  assert.throws(() => loadConfig({ PUBLIC_URL: 'https://h.example?x=1' }), /PUBLIC_URL/)
  assert.throws(() => loadConfig({ RETENTION: '30' }), /RETENTION/)
})
