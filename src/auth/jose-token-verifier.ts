import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto'

import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose'

import type { AuthConfig } from '../config.js'
import { errors } from '../errors.js'
import type { Principal, TokenVerifier } from './principal.js'

const JWKS_TIMEOUT_MS = 5000
const JWKS_COOLDOWN_MS = 30_000 // at most one refetch per 30 s for unknown kids
const JWKS_RETRY_MS = 1000 // while the key endpoint fails, at most one attempt per second
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
// A real protected header (alg, typ, kid) is under 200 bytes; we never use x5c or jwk, so a
// larger one only costs parsing time (S15).
const MAX_HEADER_SEGMENT_CHARS = 2048
// Verified tokens are remembered briefly, so a client making many requests with one token
// pays for the signature check once a minute rather than on every request.
const VERIFIED_CACHE_ENTRIES = 10_000
const VERIFIED_CACHE_MS = 60_000

type VerificationKey = Uint8Array | KeyObject | JWTVerifyGetKey

/**
 * Verifies tokens with `jose`, with every check pinned by configuration: the algorithm
 * allow-list, issuer, audience, required claims, clock tolerance and maximum age. Keys
 * come only from configuration: `jku`, `x5u`, `jwk` and `x5c` headers are never followed.
 */
export class JoseTokenVerifier implements TokenVerifier {
  private readonly key: VerificationKey
  private readonly algorithms: string[]
  private readonly verified = new Map<string, { principal: Principal; validUntilMs: number }>()

  constructor(
    private readonly config: AuthConfig,
    secret?: string,
  ) {
    const { key } = config
    if (key.kind === 'jwks') {
      this.key = remoteKeySet(key.url)
      this.algorithms = config.algorithms ?? ['RS256', 'ES256']
    } else if (key.kind === 'public-key') {
      const publicKey = createPublicKey(key.pem)
      this.key = publicKey
      this.algorithms = config.algorithms ?? [algorithmFor(publicKey)]
    } else {
      const text = key.kind === 'secret' ? key.secret : secret
      if (!text) throw new Error('an HMAC secret is required')
      // A KeyObject is imported once; raw bytes would be re-imported on every verification.
      this.key = createSecretKey(Buffer.from(text, 'utf8'))
      this.algorithms = config.algorithms ?? ['HS256']
    }
  }

  async verify(token: string): Promise<Principal> {
    const nowMs = Date.now()
    const cached = this.verified.get(token)
    if (cached && nowMs < cached.validUntilMs) return cached.principal
    if (cached) this.verified.delete(token)

    if (!isAcceptableCompactJws(token)) throw errors.invalidToken()
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, this.key as Uint8Array, {
        algorithms: this.algorithms,
        issuer: this.config.issuer,
        audience: this.config.audience,
        clockTolerance: this.config.clockToleranceSeconds,
        maxTokenAge: this.config.maxTokenAgeSeconds || undefined,
        requiredClaims: ['exp', 'iat', 'sub'],
        typ: this.config.tokenType,
      }))
    } catch (error) {
      throw this.translate(error)
    }
    const principal = this.principalFrom(payload)
    this.remember(token, principal, payload, nowMs)
    return principal
  }

  /** Caches a verified token no longer than it would stay valid (expiry and maximum age). */
  private remember(token: string, principal: Principal, payload: JWTPayload, nowMs: number) {
    const limits = [nowMs + VERIFIED_CACHE_MS]
    if (typeof payload.exp === 'number') limits.push(payload.exp * 1000)
    if (this.config.maxTokenAgeSeconds > 0 && typeof payload.iat === 'number') {
      limits.push((payload.iat + this.config.maxTokenAgeSeconds) * 1000)
    }
    if (this.verified.size >= VERIFIED_CACHE_ENTRIES) {
      const oldest = this.verified.keys().next()
      if (!oldest.done) this.verified.delete(oldest.value)
    }
    this.verified.set(token, { principal, validUntilMs: Math.min(...limits) })
  }

  private principalFrom(payload: JWTPayload): Principal {
    const orgId = readPath(payload, this.config.orgClaim)
    if (typeof orgId !== 'string' || orgId === '' || typeof payload.sub !== 'string') {
      throw errors.invalidToken()
    }
    const raw = readPath(payload, this.config.permissionsClaim)
    const list = typeof raw === 'string' ? raw.split(' ') : Array.isArray(raw) ? raw : []
    const permissions = new Set(list.filter((p): p is string => typeof p === 'string' && p !== ''))
    return { subject: payload.sub, orgId, permissions }
  }

  private translate(error: unknown): unknown {
    if (error instanceof KeySetUnavailable) return errors.serviceUnavailable(error.cause)
    if (error instanceof joseErrors.JWTExpired) {
      return errors.invalidToken(error, 'token expired')
    }
    // Anything else is about the token (jose also throws TypeError for a key of the wrong
    // type): 401, and the library's text stays in `cause`, never in the response.
    return errors.invalidToken(error)
  }
}

/** The key endpoint failed: not the caller's fault, so 503 rather than 401. */
class KeySetUnavailable extends Error {
  constructor(cause?: unknown) {
    super('the JWKS endpoint is unavailable', { cause })
    this.name = 'KeySetUnavailable'
  }
}

/**
 * Keys from `AUTH_JWKS_URL`. Errors that describe the token (no key for its kid) stay jose
 * errors; every other failure (refused, timeout, redirect, not JSON, not a JWKS) becomes
 * KeySetUnavailable. After a failure, the endpoint is not asked again for JWKS_RETRY_MS: jose
 * would otherwise refetch on every request of an outage. Meanwhile a still-fresh cached set
 * keeps answering.
 */
function remoteKeySet(url: string): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(new URL(url), {
    timeoutDuration: JWKS_TIMEOUT_MS,
    cooldownDuration: JWKS_COOLDOWN_MS,
  })
  let failedAtMs = Number.NEGATIVE_INFINITY
  return async (header, token) => {
    if (Date.now() - failedAtMs < JWKS_RETRY_MS) {
      const cached = remote.jwks()
      if (!remote.fresh || !cached) throw new KeySetUnavailable()
      return createLocalJWKSet(cached)(header, token)
    }
    try {
      return await remote(header, token)
    } catch (error) {
      if (
        error instanceof joseErrors.JWKSNoMatchingKey ||
        error instanceof joseErrors.JWKSMultipleMatchingKeys ||
        error instanceof joseErrors.JOSENotSupported
      ) {
        throw error
      }
      failedAtMs = Date.now()
      throw new KeySetUnavailable(error)
    }
  }
}

/**
 * Three base64url segments, each in its one canonical spelling, with a header of sane size.
 * Base64 leaves spare bits in the last character; a token whose spare bits were flipped
 * decodes to the same bytes, and accepting it would make signatures malleable.
 */
function isAcceptableCompactJws(token: string): boolean {
  if (!COMPACT_JWS.test(token)) return false
  const segments = token.split('.')
  if ((segments[0]?.length ?? 0) > MAX_HEADER_SEGMENT_CHARS) return false
  return segments.every((part) => Buffer.from(part, 'base64url').toString('base64url') === part)
}

/** Reads a dot-separated claim path such as `realm_access.roles`. */
function readPath(payload: JWTPayload, claimPath: string): unknown {
  let value: unknown = payload
  for (const part of claimPath.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
    value = Object.hasOwn(value, part) ? (value as Record<string, unknown>)[part] : undefined
  }
  return value
}

function algorithmFor(key: KeyObject): string {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RS256'
    case 'ed25519':
      return 'EdDSA'
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve
      if (curve === 'prime256v1') return 'ES256'
      if (curve === 'secp384r1') return 'ES384'
      if (curve === 'secp521r1') return 'ES512'
      break
    }
  }
  throw new Error('AUTH_PUBLIC_KEY has an unsupported key type')
}
