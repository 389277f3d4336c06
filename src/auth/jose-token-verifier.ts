import { createPublicKey, type KeyObject } from 'node:crypto'

import {
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
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

type VerificationKey = Uint8Array | KeyObject | JWTVerifyGetKey

/**
 * Verifies tokens with `jose`, with every check pinned by configuration: the algorithm
 * allow-list, issuer, audience, required claims, clock tolerance and maximum age. Keys
 * come only from configuration: `jku`, `x5u`, `jwk` and `x5c` headers are never followed.
 */
export class JoseTokenVerifier implements TokenVerifier {
  private readonly key: VerificationKey
  private readonly algorithms: string[]
  private readonly remote: boolean

  constructor(
    private readonly config: AuthConfig,
    secret?: string,
  ) {
    const { key } = config
    this.remote = key.kind === 'jwks'
    if (key.kind === 'jwks') {
      this.key = createRemoteJWKSet(new URL(key.url), {
        timeoutDuration: JWKS_TIMEOUT_MS,
        cooldownDuration: JWKS_COOLDOWN_MS,
      })
      this.algorithms = config.algorithms ?? ['RS256', 'ES256']
    } else if (key.kind === 'public-key') {
      const publicKey = createPublicKey(key.pem)
      this.key = publicKey
      this.algorithms = config.algorithms ?? [algorithmFor(publicKey)]
    } else {
      const text = key.kind === 'secret' ? key.secret : secret
      if (!text) throw new Error('an HMAC secret is required')
      this.key = new TextEncoder().encode(text)
      this.algorithms = config.algorithms ?? ['HS256']
    }
  }

  async verify(token: string): Promise<Principal> {
    if (!COMPACT_JWS.test(token)) throw errors.invalidToken()
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
    return this.principalFrom(payload)
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
    if (error instanceof joseErrors.JWTExpired) {
      return errors.invalidToken(error, 'token expired')
    }
    if (this.remote) {
      // The key endpoint being down is our problem, not the caller's token: 503.
      if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid) {
        return errors.serviceUnavailable(error)
      }
      if (!(error instanceof joseErrors.JOSEError)) return errors.serviceUnavailable(error)
    }
    return errors.invalidToken(error)
  }
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
