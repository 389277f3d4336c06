import { SignJWT } from 'jose'

import type { AuthConfig } from '../config.js'

export interface TokenRequest {
  orgId: string
  permissions: string[]
  subject: string
  ttlSeconds: number
}

/**
 * Mints HS256 tokens with the configured (or generated) secret, carrying the claims the
 * server expects at the configured claim paths. Used by the CLI and the tests.
 */
export async function issueToken(
  config: AuthConfig,
  secret: string,
  request: TokenRequest,
): Promise<string> {
  const claims: Record<string, unknown> = {}
  setPath(claims, config.orgClaim, request.orgId)
  setPath(claims, config.permissionsClaim, request.permissions)
  const header: { alg: string; typ?: string } = { alg: 'HS256' }
  if (config.tokenType) header.typ = config.tokenType
  return new SignJWT(claims)
    .setProtectedHeader(header)
    .setIssuer(config.issuer)
    .setAudience(config.audience)
    .setSubject(request.subject)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + request.ttlSeconds)
    .sign(new TextEncoder().encode(secret))
}

function setPath(target: Record<string, unknown>, claimPath: string, value: unknown): void {
  const parts = claimPath.split('.')
  let node = target
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {}
    node = node[part] as Record<string, unknown>
  }
  node[parts.at(-1) as string] = value
}
