/**
 * The one error type the services throw. The HTTP layer turns it into RFC 9457 problem
 * details; `message` is always safe to show a client, `cause` only ever goes to the log.
 */
export type ErrorCode =
  | 'unauthorized'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'not_found'
  | 'invalid_request'
  | 'invalid_cursor'
  | 'missing_meeting_id'
  | 'empty_upload'
  | 'digest_mismatch'
  | 'idempotency_key_reused'
  | 'legal_hold'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'range_not_satisfiable'
  | 'precondition_failed'
  | 'too_many_requests'
  | 'insufficient_storage'
  | 'service_unavailable'
  | 'internal_error'

interface ErrorSpec {
  statusCode: number
  title: string
}

/** Status and title of every code; the OpenAPI document and the error tests read this table. */
export const ERROR_SPECS: Readonly<Record<ErrorCode, ErrorSpec>> = {
  unauthorized: { statusCode: 401, title: 'Unauthorized' },
  invalid_token: { statusCode: 401, title: 'Unauthorized' },
  insufficient_scope: { statusCode: 403, title: 'Forbidden' },
  not_found: { statusCode: 404, title: 'Not Found' },
  invalid_request: { statusCode: 400, title: 'Bad Request' },
  invalid_cursor: { statusCode: 400, title: 'Bad Request' },
  missing_meeting_id: { statusCode: 400, title: 'Bad Request' },
  empty_upload: { statusCode: 400, title: 'Bad Request' },
  digest_mismatch: { statusCode: 400, title: 'Bad Request' },
  idempotency_key_reused: { statusCode: 409, title: 'Conflict' },
  legal_hold: { statusCode: 409, title: 'Conflict' },
  payload_too_large: { statusCode: 413, title: 'Content Too Large' },
  unsupported_media_type: { statusCode: 415, title: 'Unsupported Media Type' },
  range_not_satisfiable: { statusCode: 416, title: 'Range Not Satisfiable' },
  precondition_failed: { statusCode: 412, title: 'Precondition Failed' },
  too_many_requests: { statusCode: 429, title: 'Too Many Requests' },
  insufficient_storage: { statusCode: 507, title: 'Insufficient Storage' },
  service_unavailable: { statusCode: 503, title: 'Service Unavailable' },
  internal_error: { statusCode: 500, title: 'Internal Server Error' },
}

export class AppError extends Error {
  readonly statusCode: number

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: options.cause })
    this.name = 'AppError'
    this.statusCode = ERROR_SPECS[code].statusCode
    this.details = options.details
  }

  readonly details: Record<string, unknown> | undefined
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError

export const errors = {
  unauthorized: () => new AppError('unauthorized', 'A Bearer token is required.'),
  invalidToken: (cause?: unknown, description?: string) =>
    new AppError('invalid_token', 'The Bearer token is invalid.', {
      cause,
      details: description ? { description } : undefined,
    }),
  insufficientScope: (permission: string) =>
    new AppError('insufficient_scope', `This action needs the ${permission} permission.`, {
      details: { permission },
    }),
  notFound: () => new AppError('not_found', 'The requested recording does not exist.'),
  routeNotFound: () => new AppError('not_found', 'No such route.'),
  invalidRequest: (message: string) => new AppError('invalid_request', message),
  invalidCursor: () => new AppError('invalid_cursor', 'The cursor is not valid for this list.'),
  missingMeetingId: () =>
    new AppError('missing_meeting_id', 'The meeting_id query parameter is required.'),
  emptyUpload: () => new AppError('empty_upload', 'The upload body is empty.'),
  digestMismatch: () =>
    new AppError('digest_mismatch', 'The body does not match its Content-Digest.'),
  idempotencyKeyReused: () =>
    new AppError(
      'idempotency_key_reused',
      'This Idempotency-Key was already used for a different upload.',
    ),
  legalHold: () =>
    new AppError(
      'legal_hold',
      'This recording is under legal hold; release the hold before deleting it.',
    ),
  payloadTooLarge: (maxBytes: number) =>
    new AppError('payload_too_large', `The upload exceeds the limit of ${maxBytes} bytes.`, {
      details: { max_bytes: maxBytes },
    }),
  unsupportedMediaType: () =>
    new AppError(
      'unsupported_media_type',
      'The upload is not a recognised media container (MP4, MOV, WebM, Matroska or Ogg).',
    ),
  rangeNotSatisfiable: (size: number) =>
    new AppError('range_not_satisfiable', 'The requested range is not satisfiable.', {
      details: { size },
    }),
  preconditionFailed: () =>
    new AppError('precondition_failed', 'A precondition in the request headers failed.'),
  tooManyRequests: () =>
    new AppError('too_many_requests', 'Too many uploads at once for this caller; retry later.'),
  insufficientStorage: (cause?: unknown) =>
    new AppError('insufficient_storage', 'There is no space left to store this upload.', {
      cause,
    }),
  serviceUnavailable: (cause?: unknown) =>
    new AppError('service_unavailable', 'A backing service is unavailable; retry later.', {
      cause,
    }),
  internal: (cause?: unknown) => new AppError('internal_error', 'internal error', { cause }),
} as const
