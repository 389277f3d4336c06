import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'

import type { Permission, Principal, TokenVerifier } from '../auth/principal.js'
import { errors, isAppError } from '../errors.js'
import type { AuditLog } from '../recordings/audit-log.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
}

// Scheme is case-insensitive (RFC 9110 §11.1); trailing white space is tolerated.
const BEARER = /^bearer(?:\s+(\S*))?\s*$/i

/**
 * An onRequest hook that admits only a verified token holding one of `permissions`.
 * Tokens are read from the Authorization header only, never from the query string.
 */
export function requirePermission(
  deps: { verifier: TokenVerifier; audit: AuditLog },
  ...permissions: Permission[]
): onRequestHookHandler {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    const principal = await authenticate(deps, request)
    if (!permissions.some((p) => principal.permissions.has(p))) {
      throw errors.insufficientScope(permissions.join(' or '))
    }
    request.principal = principal
  }
}

async function authenticate(
  deps: { verifier: TokenVerifier; audit: AuditLog },
  request: FastifyRequest,
): Promise<Principal> {
  const header = request.headers.authorization
  const match = header === undefined ? null : BEARER.exec(header)
  if (!match) {
    await auditFailure(deps.audit, request, header === undefined ? 'missing' : 'scheme')
    throw errors.unauthorized()
  }
  try {
    return await deps.verifier.verify(match[1] ?? '')
  } catch (error) {
    if (isAppError(error) && error.code === 'invalid_token') {
      await auditFailure(deps.audit, request, 'invalid')
    }
    throw error
  }
}

/**
 * Records a refused credential. The request is refused whatever happens here, so a database
 * outage must not turn a 401 into a 503: a failed entry is logged instead.
 */
function auditFailure(audit: AuditLog, request: FastifyRequest, reason: string) {
  return audit
    .append({
      action: 'auth_failed',
      outcome: 'failure',
      clientIp: request.ip,
      requestId: request.id,
      detail: { reason, method: request.method, route: request.routeOptions.url },
    })
    .catch((error: unknown) => request.log.warn({ err: error }, 'auth failure not audited'))
}

/** The principal an auth hook established; routes without one never call this. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw errors.unauthorized()
  return request.principal
}
