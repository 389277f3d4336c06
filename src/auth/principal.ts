/** Who is calling, as established from a verified token. */
export interface Principal {
  /** The token's `sub`: recorded in the audit log, never a secret. */
  subject: string
  orgId: string
  permissions: ReadonlySet<string>
}

export const PERMISSIONS = {
  orgAdmin: 'org_admin',
  recorder: 'recorder',
} as const

export type Permission = (typeof PERMISSIONS)[keyof typeof PERMISSIONS]

/** Verifies a compact JWS and returns its principal; throws AppError 401 or 503. */
export interface TokenVerifier {
  verify(token: string): Promise<Principal>
}
