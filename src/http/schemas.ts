import { Type, type Static } from '@sinclair/typebox'

import { AUDIT_ACTIONS } from '../recordings/audit-log.js'

/** Schemas shared by routes: they validate requests, serialise replies and make /openapi.json. */

const Rfc3339 = Type.String({
  format: 'date-time',
  description: 'RFC 3339 instant with a zone, e.g. 2025-01-15T10:30:00Z',
})

export const RecordingSchema = Type.Object(
  {
    id: Type.String({
      pattern: '^rec_[0-9a-z]{26}$',
      examples: ['rec_01jfk3v2m8r7x0b6c9d4e5f6g7'],
    }),
    meeting_id: Type.String(),
    created_at: Type.String({ format: 'date-time', description: 'UTC, whole seconds' }),
    duration_seconds: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description: 'Rounded to the nearest second; null only when the media is damaged',
    }),
    url: Type.String({ format: 'uri', description: 'Download URL; needs the same Bearer token' }),
    size_bytes: Type.Integer({ minimum: 1 }),
    content_type: Type.String({ description: 'Sniffed from the bytes' }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    expires_at: Type.String({ format: 'date-time' }),
    legal_hold: Type.Boolean(),
  },
  { $id: 'Recording', additionalProperties: false },
)

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    error: Type.String({ description: 'Same as code' }),
    request_id: Type.String(),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' },
)

export const MAX_PAGE_LIMIT = 1000

export const ListQuerySchema = Type.Object(
  {
    meeting_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    created_after: Type.Optional(Rfc3339),
    created_before: Type.Optional(Rfc3339),
    limit: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_PAGE_LIMIT,
        description: 'Switches to pages of at most this many recordings',
      }),
    ),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 512, description: 'next_cursor of the last page' }),
    ),
  },
  { additionalProperties: false },
)
export type ListQuery = Static<typeof ListQuerySchema>

export const ListResponseSchema = Type.Object({
  recordings: Type.Array(Type.Ref(RecordingSchema)),
  next_cursor: Type.Optional(Type.Union([Type.String(), Type.Null()])),
})

export const UploadQuerySchema = Type.Object(
  {
    meeting_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    created_at: Type.Optional(Rfc3339),
    filename: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  },
  { additionalProperties: false },
)
export type UploadQuery = Static<typeof UploadQuerySchema>

export const IdParamsSchema = Type.Object({ id: Type.String() })
export const ContentParamsSchema = Type.Object({
  id: Type.String(),
  file: Type.String(),
})

export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, Type.Ref(ProblemSchema)]))

export const RetentionSchema = Type.Object(
  {
    org_id: Type.String(),
    retention: Type.String({ description: 'The duration, e.g. 90d, 12h, 90s', examples: ['90d'] }),
    retention_seconds: Type.Integer({ minimum: 1 }),
    source: Type.Union([Type.Literal('org'), Type.Literal('default')], {
      description: '`org` when the operator set a value for this org, else `default` (RETENTION)',
    }),
  },
  { additionalProperties: false },
)

export const AuditEventSchema = Type.Object(
  {
    id: Type.String({ description: 'Grows with insertion order' }),
    at: Type.String({ format: 'date-time', description: 'UTC, milliseconds' }),
    org_id: Type.Union([Type.String(), Type.Null()]),
    actor: Type.Union([Type.String(), Type.Null()], {
      description: 'The token `sub`, or `system:sweeper` for deletions by expiry',
    }),
    action: Type.String({ enum: [...AUDIT_ACTIONS] }),
    recording_id: Type.Union([Type.String(), Type.Null()]),
    outcome: Type.Union([Type.Literal('success'), Type.Literal('failure')]),
    client_ip: Type.Union([Type.String(), Type.Null()]),
    request_id: Type.Union([Type.String(), Type.Null()]),
    detail: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  },
  { additionalProperties: false },
)

export const AuditQuerySchema = Type.Object(
  {
    recording_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    action: Type.Optional(Type.String({ enum: [...AUDIT_ACTIONS] })),
    after: Type.Optional(Rfc3339),
    before: Type.Optional(Rfc3339),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_LIMIT, default: 100 })),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 512, description: 'next_cursor of the last page' }),
    ),
  },
  { additionalProperties: false },
)
export type AuditQueryString = Static<typeof AuditQuerySchema>

export const AuditPageSchema = Type.Object({
  events: Type.Array(AuditEventSchema),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
})
