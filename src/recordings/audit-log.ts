export type AuditAction =
  'list' | 'read' | 'download' | 'upload' | 'delete' | 'auth_failed' | 'access_denied'

export interface AuditEvent {
  action: AuditAction
  outcome: 'success' | 'failure'
  orgId?: string
  actor?: string
  recordingId?: string
  clientIp?: string
  requestId?: string
  /** Short machine-readable facts (reason, range); never secrets or recording bytes. */
  detail?: Record<string, unknown>
}

/**
 * Append-only record of who did what. `append` resolves once the entry is durable; when it
 * rejects, the caller must not carry out (or must not report) the action it describes.
 */
export interface AuditLog {
  append(event: AuditEvent): Promise<void>
}
