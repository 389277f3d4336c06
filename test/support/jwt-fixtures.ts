import {
  constants,
  createHmac,
  createSign,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto'

/**
 * Hand-made JWTs for the authentication tests: any header, any payload bytes, any signature.
 * `jose` refuses to produce most of these (alg none, broken crit, non-object payloads), so the
 * compact form is assembled here and signed with node:crypto directly.
 */

export const TEST_ISSUER = 'https://idp.test'
export const TEST_AUDIENCE = 'recordings-api'

export interface KeyPair {
  privateKey: KeyObject
  publicKey: KeyObject
  publicPem: string
  kid: string
}

export function createRsaKeyPair(kid = 'k1'): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { privateKey, publicKey, publicPem: pemOf(publicKey), kid }
}

export function createEcKeyPair(kid = 'e1'): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return { privateKey, publicKey, publicPem: pemOf(publicKey), kid }
}

function pemOf(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString()
}

export function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url')
}

export type SigningKey = KeyObject | Buffer | string

/**
 * Signs `signingInput` as `alg` would; `es-der` gives an ES256 signature in DER instead of
 * the raw r‖s JWS requires.
 */
export function signature(alg: string, key: SigningKey, signingInput: string): Buffer {
  switch (alg) {
    case 'HS256':
    case 'HS384':
    case 'HS512':
      return createHmac(`sha${alg.slice(2)}`, key as Buffer | string)
        .update(signingInput)
        .digest()
    case 'RS256':
    case 'RS384':
    case 'RS512':
      return createSign(`sha${alg.slice(2)}`)
        .update(signingInput)
        .sign(key as KeyObject)
    case 'PS256':
    case 'PS512':
      return createSign(`sha${alg.slice(2)}`)
        .update(signingInput)
        .sign({
          key: key as KeyObject,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
        })
    case 'ES256':
      return createSign('sha256')
        .update(signingInput)
        .sign({ key: key as KeyObject, dsaEncoding: 'ieee-p1363' })
    case 'es-der':
      return createSign('sha256')
        .update(signingInput)
        .sign({ key: key as KeyObject, dsaEncoding: 'der' })
    default:
      throw new Error(`no signer for ${alg}`)
  }
}

export interface RawTokenOptions {
  /** Header object, or raw header JSON text. */
  header: Record<string, unknown> | string
  /** Claims object, or the exact payload bytes. */
  payload: Record<string, unknown> | string | Buffer
  /** Algorithm used to sign (may differ from the header's `alg`); omitted = empty signature. */
  signWith?: { alg: string; key: SigningKey }
}

/** A compact JWS built byte by byte. */
export function rawToken({ header, payload, signWith }: RawTokenOptions): string {
  const headerText = typeof header === 'string' ? header : JSON.stringify(header)
  const payloadBytes =
    Buffer.isBuffer(payload) || typeof payload === 'string'
      ? Buffer.from(payload)
      : Buffer.from(JSON.stringify(payload))
  const signingInput = `${base64url(headerText)}.${base64url(payloadBytes)}`
  const sig = signWith ? signature(signWith.alg, signWith.key, signingInput) : Buffer.alloc(0)
  return `${signingInput}.${base64url(sig)}`
}

export const nowSeconds = () => Math.floor(Date.now() / 1000)

/** A complete, valid claims set for `orgId` with the org_admin permission. */
export function validClaims(
  overrides: Record<string, unknown> = {},
  orgId = 'org-a',
): Record<string, unknown> {
  const now = nowSeconds()
  return {
    iss: TEST_ISSUER,
    aud: TEST_AUDIENCE,
    sub: `user-${orgId}`,
    org_id: orgId,
    permissions: ['org_admin'],
    iat: now,
    exp: now + 600,
    ...overrides,
  }
}

/** Removes the named claims from a claims set (for the missing-claim cases). */
export function without(claims: Record<string, unknown>, ...names: string[]) {
  const copy = { ...claims }
  for (const name of names) delete copy[name]
  return copy
}

/** A token signed by `pair` with RS256 (or ES256 for an EC pair) and its kid. */
export function signedToken(
  pair: KeyPair,
  claims: Record<string, unknown>,
  headerExtra: Record<string, unknown> = {},
): string {
  const alg = pair.privateKey.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256'
  return rawToken({
    header: { alg, typ: 'JWT', kid: pair.kid, ...headerExtra },
    payload: claims,
    signWith: { alg, key: pair.privateKey },
  })
}

/** Flips one character of the signature segment, keeping it valid base64url. */
export function tamperSignature(token: string): string {
  const last = token.at(-2) === 'A' ? 'B' : 'A'
  return token.slice(0, -2) + last + token.slice(-1)
}

export const randomKid = () => randomBytes(12).toString('hex')
