import path from 'node:path'

/**
 * Runtime configuration, read once from the environment by `loadConfig` and frozen.
 * Nothing else in the code base reads `process.env`.
 */
export interface Config {
  host: string
  port: number
  /** Base for the absolute `url` of recordings; undefined = derived from each request's Host. */
  publicUrl: string | undefined
  dataDir: string
  database: DatabaseConfig
  storage: StorageConfig
  auth: AuthConfig
  retentionSeconds: number
  sweepIntervalSeconds: number
  maxUploadBytes: number
  /** A socket with no traffic for this long is closed (slow-loris and stalled uploads). */
  idleTimeoutSeconds: number
  /** Uploads one token subject may run at once on one node; more get 429. */
  maxConcurrentUploadsPerSubject: number
  logLevel: string
}

export type DatabaseConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string }

export type StorageConfig = { kind: 'file'; root: string } | S3StorageConfig

export interface S3StorageConfig {
  kind: 's3'
  bucket: string
  /** Empty, or ending in `/`. */
  prefix: string
  /** Custom endpoint (MinIO, Ceph, R2, GCS); undefined = AWS. */
  endpoint: string | undefined
  region: string
  forcePathStyle: boolean
  /** `redirect` answers downloads with a short-lived presigned URL instead of proxying. */
  downloadMode: 'stream' | 'redirect'
  presignTtlSeconds: number
}

export type AuthKeyConfig =
  | { kind: 'generated-secret' }
  | { kind: 'secret'; secret: string }
  | { kind: 'public-key'; pem: string }
  | { kind: 'jwks'; url: string }

export interface AuthConfig {
  key: AuthKeyConfig
  /** Explicit allow-list; undefined = the one algorithm family that fits the key. */
  algorithms: string[] | undefined
  issuer: string
  audience: string
  orgClaim: string
  permissionsClaim: string
  clockToleranceSeconds: number
  /** Upper bound on `now - iat`; 0 disables the check. */
  maxTokenAgeSeconds: number
  /** Required `typ` header (e.g. `at+jwt`); undefined = not checked. */
  tokenType: string | undefined
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`)
    this.name = 'ConfigError'
  }
}

/** Issuer and audience the embedded default signs and expects when no external key is set. */
export const EMBEDDED_ISSUER = 'wcr-recordings'
export const EMBEDDED_AUDIENCE = 'recordings-api'

const DEFAULT_MAX_UPLOAD_BYTES = 32 * 1024 ** 3 // 32 GiB: a full day of 1080p meeting video
/** A hundred years: "keep for ever" in practice, and still a valid date to compute. */
export const MAX_RETENTION_SECONDS = 36_500 * 86_400
const MAX_CLOCK_TOLERANCE_SECONDS = 60 // DESIGN.md §2: at most 60 s of skew
const MIN_HMAC_SECRET_BYTES = 32 // RFC 7518 §3.2: a key at least as long as the hash
const HMAC_ALGS = ['HS256', 'HS384', 'HS512']
const SIGNATURE_ALGS = 'RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA'.split(' ')

/**
 * Validates the environment. Every problem is collected and reported by variable name only:
 * values may be secrets and never appear in the message.
 */
export function loadConfig(env: NodeJS.ProcessEnv, cwd = process.cwd()): Readonly<Config> {
  const problems: string[] = []
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }
  const fail = (name: string, why: string): undefined => {
    problems.push(`${name} ${why}`)
    return undefined
  }

  const port = parseInteger(read('PORT') ?? '8080', 0, 65535) ?? fail('PORT', 'must be 0..65535')
  const dataDir = path.resolve(cwd, read('DATA_DIR') ?? './data')

  let publicUrl = read('PUBLIC_URL')
  if (publicUrl !== undefined) {
    const parsed = safeUrl(publicUrl)
    if (parsed === undefined || !['http:', 'https:'].includes(parsed.protocol)) {
      publicUrl = fail('PUBLIC_URL', 'must be an absolute http(s) URL')
    } else if (parsed.search !== '' || parsed.hash !== '' || parsed.username !== '') {
      publicUrl = fail('PUBLIC_URL', 'must have no query, fragment or credentials')
    } else {
      publicUrl = parsed.href.replace(/\/+$/, '')
    }
  }

  const database = parseDatabase(read('DATABASE_URL'), dataDir, cwd, fail)
  const s3Endpoint = read('S3_ENDPOINT')
  if (s3Endpoint !== undefined) {
    const url = safeUrl(s3Endpoint)
    if (url === undefined || !['http:', 'https:'].includes(url.protocol)) {
      fail('S3_ENDPOINT', 'must be an absolute http(s) URL')
    } else if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
      fail('S3_ENDPOINT', 'must use https (plain http only on loopback)')
    }
  }
  const storage = parseStorage(read('STORAGE_URL'), dataDir, cwd, fail)
  const downloadMode = read('DOWNLOAD_MODE') ?? 'stream'
  if (downloadMode !== 'stream' && downloadMode !== 'redirect') {
    fail('DOWNLOAD_MODE', 'must be stream or redirect')
  } else if (downloadMode === 'redirect' && storage?.kind !== 's3') {
    fail('DOWNLOAD_MODE', 'redirect needs S3 storage')
  }
  const presignTtlSeconds =
    parseInteger(read('PRESIGN_TTL_SECONDS') ?? '300', 10, 3600) ??
    fail('PRESIGN_TTL_SECONDS', 'must be 10..3600')
  if (storage?.kind === 's3') {
    storage.endpoint = s3Endpoint
    storage.region = read('S3_REGION') ?? read('AWS_REGION') ?? 'us-east-1'
    const pathStyle = read('S3_FORCE_PATH_STYLE')
    if (pathStyle !== undefined && !['true', 'false', '1', '0'].includes(pathStyle)) {
      fail('S3_FORCE_PATH_STYLE', 'must be true or false')
    }
    // Custom endpoints (MinIO, Ceph, Swift) usually need path-style addressing; AWS does not.
    storage.forcePathStyle =
      pathStyle === undefined ? s3Endpoint !== undefined : ['true', '1'].includes(pathStyle)
    storage.downloadMode = downloadMode === 'redirect' ? 'redirect' : 'stream'
    storage.presignTtlSeconds = presignTtlSeconds ?? 300
  }
  const auth = parseAuth(read, fail)

  const retention = parseDurationSeconds(read('RETENTION') ?? '30d')
  const retentionSeconds =
    retention !== undefined && retention <= MAX_RETENTION_SECONDS
      ? retention
      : fail('RETENTION', 'must be a duration with a unit, such as 30d, 12h, 90s, up to 36500d')
  const sweepIntervalSeconds =
    parseInteger(read('SWEEP_INTERVAL_SECONDS') ?? '60', 1, 86_400) ??
    fail('SWEEP_INTERVAL_SECONDS', 'must be 1..86400')
  const maxUploadBytes =
    parseInteger(read('MAX_UPLOAD_BYTES') ?? String(DEFAULT_MAX_UPLOAD_BYTES), 1, 2 ** 50) ??
    fail('MAX_UPLOAD_BYTES', 'must be a positive whole number of bytes')
  const maxConcurrentUploadsPerSubject =
    parseInteger(read('MAX_CONCURRENT_UPLOADS') ?? '10', 1, 10_000) ??
    fail('MAX_CONCURRENT_UPLOADS', 'must be 1..10000')
  const idleTimeoutSeconds =
    parseInteger(read('IDLE_TIMEOUT_SECONDS') ?? '60', 1, 3600) ??
    fail('IDLE_TIMEOUT_SECONDS', 'must be 1..3600')
  const logLevel = read('LOG_LEVEL') ?? 'info'
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    fail('LOG_LEVEL', 'must be one of fatal, error, warn, info, debug, trace, silent')
  }

  if (problems.length > 0 || !database || !storage || !auth) throw new ConfigError(problems)

  return deepFreeze({
    host: read('HOST') ?? '0.0.0.0',
    port: port ?? 8080,
    publicUrl,
    dataDir,
    database,
    storage,
    auth,
    retentionSeconds: retentionSeconds ?? 0,
    sweepIntervalSeconds: sweepIntervalSeconds ?? 60,
    maxUploadBytes: maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES,
    idleTimeoutSeconds: idleTimeoutSeconds ?? 60,
    maxConcurrentUploadsPerSubject: maxConcurrentUploadsPerSubject ?? 10,
    logLevel,
  })
}

type Fail = (name: string, why: string) => undefined

function parseDatabase(
  value: string | undefined,
  dataDir: string,
  cwd: string,
  fail: Fail,
): DatabaseConfig | undefined {
  if (value === undefined) return { kind: 'sqlite', path: path.join(dataDir, 'recordings.db') }
  if (value.startsWith('sqlite:')) {
    const file = value.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
    if (file === '') return fail('DATABASE_URL', 'needs a file path after sqlite:')
    return { kind: 'sqlite', path: path.resolve(cwd, file) }
  }
  if (/^postgres(ql)?:\/\//.test(value)) {
    // Metadata (meeting ids, org ids, audit) must not cross a network in plain text.
    const url = safeUrl(value)
    if (url === undefined) return fail('DATABASE_URL', 'is not a valid postgres:// URL')
    const sslMode = url.searchParams.get('sslmode')
    const encrypted = sslMode !== null && ['require', 'verify-ca', 'verify-full'].includes(sslMode)
    if (!encrypted && !isLoopback(url.hostname)) {
      return fail('DATABASE_URL', 'needs sslmode=require or verify-full for a non-loopback host')
    }
    return { kind: 'postgres', url: value }
  }
  return fail('DATABASE_URL', 'must start with sqlite: or postgres://')
}

function parseStorage(
  value: string | undefined,
  dataDir: string,
  cwd: string,
  fail: Fail,
): StorageConfig | undefined {
  if (value === undefined) return { kind: 'file', root: path.join(dataDir, 'blobs') }
  if (value.startsWith('file:')) {
    const dir = value.slice('file:'.length).replace(/^\/\/(?=\/)/, '')
    if (dir === '') return fail('STORAGE_URL', 'needs a directory after file:')
    return { kind: 'file', root: path.resolve(cwd, dir) }
  }
  const s3 = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(value)
  if (s3?.[1]) {
    const prefix = (s3[2] ?? '').replace(/^\/+|\/+$/g, '')
    return {
      kind: 's3',
      bucket: s3[1],
      prefix: prefix === '' ? '' : `${prefix}/`,
      endpoint: undefined,
      region: 'us-east-1',
      forcePathStyle: false,
      downloadMode: 'stream',
      presignTtlSeconds: 300,
    }
  }
  return fail('STORAGE_URL', 'must be file:<dir> or s3://<bucket>/<prefix>')
}

function parseAuth(read: (name: string) => string | undefined, fail: Fail): AuthConfig | undefined {
  const secret = read('AUTH_JWT_SECRET')
  const pem = read('AUTH_PUBLIC_KEY')
  const jwksUrl = read('AUTH_JWKS_URL')
  const configured = [secret, pem, jwksUrl].filter((v) => v !== undefined).length
  if (configured > 1) {
    return fail('AUTH_JWT_SECRET', 'AUTH_PUBLIC_KEY and AUTH_JWKS_URL are exclusive: set one')
  }

  let key: AuthKeyConfig = { kind: 'generated-secret' }
  if (secret !== undefined) {
    if (Buffer.byteLength(secret) < MIN_HMAC_SECRET_BYTES) {
      return fail('AUTH_JWT_SECRET', `must be at least ${MIN_HMAC_SECRET_BYTES} bytes`)
    }
    key = { kind: 'secret', secret }
  } else if (pem !== undefined) {
    if (!pem.includes('-----BEGIN PUBLIC KEY-----')) {
      return fail('AUTH_PUBLIC_KEY', 'must be a PEM public key (BEGIN PUBLIC KEY)')
    }
    key = { kind: 'public-key', pem: pem.replace(/\\n/g, '\n') }
  } else if (jwksUrl !== undefined) {
    const url = safeUrl(jwksUrl)
    if (url === undefined) return fail('AUTH_JWKS_URL', 'must be an absolute URL')
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
      return fail('AUTH_JWKS_URL', 'must use https (plain http only on loopback)')
    }
    key = { kind: 'jwks', url: url.href }
  }

  // An external key means an external issuer: we cannot guess its iss and aud, and
  // accepting any would let tokens minted for another application in.
  const external = key.kind !== 'generated-secret'
  const issuer = read('AUTH_ISSUER') ?? (external ? undefined : EMBEDDED_ISSUER)
  const audience = read('AUTH_AUDIENCE') ?? (external ? undefined : EMBEDDED_AUDIENCE)
  if (issuer === undefined) fail('AUTH_ISSUER', 'is required when an external key is configured')
  if (audience === undefined) {
    fail('AUTH_AUDIENCE', 'is required when an external key is configured')
  }

  const algorithms = read('AUTH_ALGORITHMS')
    ?.split(',')
    .map((a) => a.trim())
    .filter(Boolean)
  if (algorithms?.some((a) => a.toLowerCase() === 'none')) {
    fail('AUTH_ALGORITHMS', 'must not allow unsigned tokens')
  } else if (algorithms) {
    // A shared secret verifies only HMAC; a public key only signatures (RFC 8725 §3.1), so a
    // token cannot pick the other family and reuse the key in a way it was not meant for.
    const allowed =
      key.kind === 'secret' || key.kind === 'generated-secret' ? HMAC_ALGS : SIGNATURE_ALGS
    if (algorithms.length === 0 || !algorithms.every((a) => allowed.includes(a))) {
      fail('AUTH_ALGORITHMS', `must be a comma-separated subset of ${allowed.join(', ')}`)
    }
  }
  const clockToleranceSeconds =
    parseInteger(read('AUTH_CLOCK_TOLERANCE_SECONDS') ?? '60', 0, MAX_CLOCK_TOLERANCE_SECONDS) ??
    fail('AUTH_CLOCK_TOLERANCE_SECONDS', `must be 0..${MAX_CLOCK_TOLERANCE_SECONDS}`)
  const maxAge = read('AUTH_MAX_TOKEN_AGE') ?? '24h'
  const maxTokenAgeSeconds =
    maxAge === '0' || maxAge === 'off'
      ? 0
      : (parseDurationSeconds(maxAge) ??
        fail('AUTH_MAX_TOKEN_AGE', 'must be a duration such as 1h, or off'))

  if (issuer === undefined || audience === undefined) return undefined
  return {
    key,
    algorithms,
    issuer,
    audience,
    orgClaim: read('AUTH_ORG_CLAIM') ?? 'org_id',
    permissionsClaim: read('AUTH_PERMISSIONS_CLAIM') ?? 'permissions',
    clockToleranceSeconds: clockToleranceSeconds ?? 60,
    maxTokenAgeSeconds: maxTokenAgeSeconds ?? 0,
    tokenType: read('AUTH_TOKEN_TYPE'),
  }
}

const DURATION_UNITS_SECONDS: Record<string, number> = {
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
  w: 604_800,
}

/**
 * Parses `90s`, `15m`, `12h`, `30d`, `2w`; undefined when invalid. The unit is required: a
 * bare `30` meant as days but read as seconds would delete a month of recordings at once.
 */
export function parseDurationSeconds(text: string): number | undefined {
  const match = /^(\d{1,9})\s*([smhdw])$/.exec(text.trim())
  if (!match?.[1] || !match[2]) return undefined
  const seconds = Number(match[1]) * (DURATION_UNITS_SECONDS[match[2]] ?? 1)
  return seconds > 0 ? seconds : undefined
}

function parseInteger(text: string, min: number, max: number): number | undefined {
  if (!/^\d+$/.test(text)) return undefined
  const value = Number(text)
  return Number.isSafeInteger(value) && value >= min && value <= max ? value : undefined
}

function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text)
  } catch {
    return undefined
  }
}

export function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}
