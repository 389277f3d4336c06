import { PassThrough, type Readable } from 'node:stream'

import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import fastifyMultipart from '@fastify/multipart'

import { PERMISSIONS } from '../auth/principal.js'
import { errors, isAppError } from '../errors.js'
import type { AppDeps } from './app-deps.js'
import { requirePermission } from './authenticate.js'
import { toRecordingJson } from './recording-presenter.js'
import { parseInstant } from './recordings-routes.js'
import { baseUrlOf, contextOf } from './request-context.js'
import {
  problemResponses,
  RecordingSchema,
  UploadQuerySchema,
  type UploadQuery,
} from './schemas.js'

const CLOCK_SKEW_MS = 5 * 60 * 1000 // a recorder's clock may run a little ahead of ours
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/

/**
 * POST /recordings: the raw file as the body, or multipart/form-data with one `file` part.
 * Registered in its own scope so that only here bodies reach the handler unparsed.
 */
export const uploadRoute: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const inFlight = new InFlightCounter(deps.config.maxConcurrentUploadsPerSubject)
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))
  await app.register(fastifyMultipart, {
    limits: { files: 1, fields: 10, fieldSize: 4096, parts: 20, headerPairs: 100 },
  })

  app.post(
    '/recordings',
    {
      onRequest: requirePermission(deps, PERMISSIONS.recorder, PERMISSIONS.orgAdmin),
      schema: {
        summary: 'Upload one recording',
        description:
          'Send the file as the raw body (any Content-Type) or as multipart/form-data with one ' +
          '`file` part. The type and duration are read from the bytes. 201 for a new ' +
          'recording; 200 with the earlier one when the `Idempotency-Key` (or the same ' +
          'meeting and bytes) was already uploaded. An optional `Content-Digest: ' +
          'sha-256=:…:` is verified.',
        tags: ['recordings'],
        security: [{ bearer: [] }],
        querystring: UploadQuerySchema,
        headers: Type.Object({
          'idempotency-key': Type.Optional(Type.String({ maxLength: 255 })),
          'content-digest': Type.Optional(Type.String({ maxLength: 1024 })),
        }),
        response: {
          200: Type.Ref(RecordingSchema),
          201: Type.Ref(RecordingSchema),
          ...problemResponses(400, 401, 403, 409, 413, 415, 429, 503, 507),
        },
      },
    },
    async (request, reply) => {
      const query = request.query as UploadQuery
      const declared = declaredLength(request)
      if (declared !== undefined && declared > deps.config.maxUploadBytes) {
        throw errors.payloadTooLarge(deps.config.maxUploadBytes)
      }
      const { orgId, subject } = contextOf(request).principal
      // Subjects are only unique within their issuer's org: key the cap by both.
      const caller = JSON.stringify([orgId, subject])
      if (!inFlight.tryAcquire(caller)) throw errors.tooManyRequests()
      try {
        const idempotencyKey = readIdempotencyKey(request)
        const expectedSha256 = readContentDigest(request.headers['content-digest'])
        const createdAt = readCreatedAt(query.created_at, Date.now())

        // Only now, with the caller and the request checked, ask for the body.
        if (/100-continue/i.test(request.headers.expect ?? '')) reply.raw.writeContinue()
        const upload = request.isMultipart()
          ? await readMultipart(request, query, deps.config.maxUploadBytes)
          : rawBody(request, query)
        if (!upload.meetingId) {
          upload.body.resume()
          throw errors.missingMeetingId()
        }

        const result = await deps.ingest
          .ingest({
            principal: contextOf(request).principal,
            meetingId: upload.meetingId,
            createdAt,
            fileName: upload.fileName,
            idempotencyKey,
            expectedSha256,
            body: upload.body,
            clientIp: request.ip,
            requestId: request.id,
            declaredSizeBytes: upload.declaredSizeBytes,
          })
          .catch((error: unknown) => {
            throw clientSideError(error, request.isMultipart())
          })
        const base = baseUrlOf(request, deps.config.publicUrl)
        return reply
          .code(result.created ? 201 : 200)
          .header('location', `${base}/recordings/${result.recording.id}`)
          .header('cache-control', 'no-store')
          .send(toRecordingJson(result.recording, base))
      } finally {
        inFlight.release(caller)
      }
    },
  )
}

interface UploadBody {
  body: Readable
  meetingId: string | undefined
  fileName: string | undefined
  /** Content-Length of a raw body: the recording's exact size. */
  declaredSizeBytes?: number
}

/**
 * Failures that are the client's doing — the connection dropped mid-upload, a malformed
 * multipart body — are 400s logged at info, not 500s with a stack trace.
 */
function clientSideError(error: unknown, multipart: boolean): unknown {
  if (isAppError(error)) return error
  const e = error as { aborted?: boolean; code?: string; message?: string }
  if (e?.code === 'FST_REQ_FILE_TOO_LARGE') return error
  if (e?.aborted || e?.code === 'ECONNRESET' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return errors.invalidRequest('The upload was interrupted before its end.')
  }
  const fromParser =
    (e?.code ?? '').startsWith('FST_') ||
    /multipart|boundary|part header|end of form|malformed/i.test(e?.message ?? '')
  if (multipart && fromParser) {
    return errors.invalidRequest('The multipart/form-data body is malformed.')
  }
  return error
}

/**
 * The request body as a stream the ingest pipeline may destroy without destroying the
 * socket (so an error response can still be sent); a client abort still fails it.
 */
function rawBody(request: FastifyRequest, query: UploadQuery): UploadBody {
  const raw = request.raw
  const body = new PassThrough({ highWaterMark: 1024 * 1024 })
  // Until the ingest pipeline is attached nobody else listens: an abort in that gap must not
  // become an uncaught 'error' (which ends the process). The pipeline still sees the stream
  // as destroyed and rejects at once.
  body.on('error', () => undefined)
  const abort = () => body.destroy(Object.assign(new Error('upload aborted'), { aborted: true }))
  if (raw.destroyed && !raw.complete) {
    abort() // the client left before the handler ran
  } else {
    raw.pipe(body)
    raw.on('error', (error) => body.destroy(error))
    raw.on('close', () => {
      if (!raw.complete) abort()
    })
  }
  const declared = declaredLength(request)
  return {
    body,
    meetingId: query.meeting_id,
    fileName: query.filename ?? fileNameFromDisposition(request.headers['content-disposition']),
    declaredSizeBytes: declared !== undefined && declared > 0 ? declared : undefined,
  }
}

async function readMultipart(
  request: FastifyRequest,
  query: UploadQuery,
  maxUploadBytes: number,
): Promise<UploadBody> {
  // One byte past the limit, so the upload meter (not busboy) reports the overflow.
  const part = await request
    .file({ limits: { fileSize: maxUploadBytes + 1 } })
    .catch((error: unknown) => {
      throw clientSideError(error, true)
    })
  if (!part || part.fieldname !== 'file') {
    part?.file.resume()
    throw errors.invalidRequest('multipart/form-data needs one part named file.')
  }
  const field = part.fields.meeting_id
  const fieldValue =
    field && !Array.isArray(field) && field.type === 'field' ? String(field.value) : undefined
  return {
    body: part.file,
    meetingId: query.meeting_id ?? (fieldValue || undefined),
    fileName: query.filename ?? part.filename,
  }
}

/** The request's Content-Length as a number, when it has a valid one. */
function declaredLength(request: FastifyRequest): number | undefined {
  const declared = Number(request.headers['content-length'])
  return Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined
}

function readIdempotencyKey(request: FastifyRequest): string | undefined {
  const key = request.headers['idempotency-key']
  if (key === undefined) return undefined
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key)) {
    throw errors.invalidRequest('Idempotency-Key must be 1 to 255 visible ASCII characters.')
  }
  return key
}

/** The sha-256 member of an RFC 9530 Content-Digest, if the client sent one. */
function readContentDigest(header: string | string[] | undefined): Buffer | undefined {
  if (typeof header !== 'string') return undefined
  for (const member of header.split(',')) {
    const match = /^\s*sha-256\s*=\s*:([A-Za-z0-9+/]+={0,2}):\s*$/i.exec(member)
    if (match?.[1]) {
      const digest = Buffer.from(match[1], 'base64')
      if (digest.length !== 32) break
      return digest
    }
  }
  if (/sha-256/i.test(header)) throw errors.invalidRequest('Content-Digest sha-256 is malformed.')
  return undefined
}

function readCreatedAt(text: string | undefined, nowMs: number): number | undefined {
  if (text === undefined) return undefined
  const ms = parseInstant(text)
  if (ms > nowMs + CLOCK_SKEW_MS) throw errors.invalidRequest('created_at is in the future.')
  if (ms < 0) throw errors.invalidRequest('created_at is before 1970.')
  return ms
}

function fileNameFromDisposition(header: string | undefined): string | undefined {
  if (!header) return undefined
  const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header)
  if (extended?.[1]) {
    try {
      return decodeURIComponent(extended[1].trim())
    } catch {
      return undefined
    }
  }
  return (
    /filename\s*=\s*"([^"]*)"/i.exec(header)?.[1] ?? /filename\s*=\s*([^;\s]+)/i.exec(header)?.[1]
  )
}

/** Counts uploads in progress per subject, so one runaway recorder cannot take every slot. */
class InFlightCounter {
  readonly #counts = new Map<string, number>()

  constructor(private readonly limit: number) {}

  tryAcquire(subject: string): boolean {
    const count = this.#counts.get(subject) ?? 0
    if (count >= this.limit) return false
    this.#counts.set(subject, count + 1)
    return true
  }

  release(subject: string): void {
    const count = (this.#counts.get(subject) ?? 1) - 1
    if (count <= 0) this.#counts.delete(subject)
    else this.#counts.set(subject, count)
  }
}
