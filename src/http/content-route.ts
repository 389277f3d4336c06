import type { FastifyPluginAsync, FastifyReply } from 'fastify'

import { PERMISSIONS } from '../auth/principal.js'
import type { RecordingRecord } from '../db/recording-repository.js'
import { errors } from '../errors.js'
import type { AuditLog } from '../recordings/audit-log.js'
import type { RequestContext } from '../recordings/recordings-service.js'
import type { ByteRange } from '../storage/blob-store.js'
import type { AppDeps, DownloadLinks } from './app-deps.js'
import { requirePermission } from './authenticate.js'
import { evaluateConditionals } from './conditional.js'
import { contentDisposition } from './content-disposition.js'
import { decideRange } from './range.js'
import { getRecording } from './recordings-routes.js'
import { contextOf } from './request-context.js'
import { ContentParamsSchema, problemResponses } from './schemas.js'

const CONTENT_FILE = /^content(\.[a-z0-9]{1,8})?$/

/**
 * GET and HEAD of a recording's bytes, at the `url` of the recording object. Declared for
 * both methods by hand: Fastify's automatic HEAD would run GET and open the blob.
 */
export const contentRoute: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.route({
    method: ['GET', 'HEAD'],
    url: '/recordings/:id/:file',
    onRequest: requirePermission(deps, PERMISSIONS.orgAdmin),
    schema: {
      summary: 'Download the recording (Range, If-Range, If-None-Match and HEAD supported)',
      description:
        'Streams the bytes with `Content-Length`, a strong `ETag` (the SHA-256), ' +
        '`Last-Modified`, `Accept-Ranges: bytes` and `Content-Disposition: attachment`. A ' +
        'single byte range answers 206; an unsatisfiable one 416 with `Content-Range: ' +
        'bytes */size`; several ranges are answered with the whole file (200). With ' +
        '`DOWNLOAD_MODE=redirect`, a GET answers 302 to a presigned storage URL valid for ' +
        '`PRESIGN_TTL_SECONDS` instead (follow it without the Authorization header).',
      tags: ['recordings'],
      security: [{ bearer: [] }],
      params: ContentParamsSchema,
      response: {
        200: { description: 'The whole recording', type: 'string', format: 'binary' },
        206: { description: 'One byte range (Content-Range)', type: 'string', format: 'binary' },
        302: { description: 'DOWNLOAD_MODE=redirect: a short-lived presigned URL', type: 'null' },
        304: { description: 'Not modified (If-None-Match / If-Modified-Since)', type: 'null' },
        ...problemResponses(401, 403, 404, 412, 416, 503),
      },
    },
    handler: async (request, reply) => {
      const { file } = request.params as { file: string }
      if (!CONTENT_FILE.test(file)) throw errors.notFound()
      const context = contextOf(request)
      const record = await getRecording(deps.recordings, context, request.params)
      // `content` or `content.<its own extension>`: one URL per recording, nothing else.
      if (file !== 'content' && file !== `content.${record.extension}`) throw errors.notFound()

      setValidatorHeaders(reply, record)
      const conditional = evaluateConditionals(request.headers, etagOf(record), record.uploadedAt)
      if (conditional === 'precondition-failed') throw errors.preconditionFailed()
      if (conditional === 'not-modified') return reply.code(304).send()

      // RFC 9110 defines Range for GET only; HEAD describes the whole representation.
      const rangeHeader =
        request.method === 'GET' && conditional !== 'ignore-range'
          ? request.headers.range
          : undefined
      const decision = decideRange(rangeHeader, record.sizeBytes)
      if (decision.kind === 'unsatisfiable') throw errors.rangeNotSatisfiable(record.sizeBytes)

      const range = decision.kind === 'partial' ? decision.range : undefined
      if (request.method === 'GET' && deps.downloadLinks) {
        const links = deps.downloadLinks
        return redirectToStorage({ links, audit: deps.audit, context, record, range, reply })
      }

      const disposition = contentDisposition(record.fileName)
      // Opened before any content header is set, so a blob gone missing is a clean 404 (not a
      // 404 with a Content-Range), and nothing can throw between opening and handing it over.
      const stream =
        request.method === 'GET'
          ? await deps.recordings.openContent(context, record, range)
          : undefined

      // Only a response that carries the bytes names them: a 304, 412 or 416 is no attachment.
      reply.header('content-type', record.contentType)
      reply.header('content-disposition', disposition)
      if (range) {
        reply.code(206)
        reply.header('content-range', `bytes ${range.start}-${range.end}/${record.sizeBytes}`)
      }
      const length = range ? range.end - range.start + 1 : record.sizeBytes
      reply.header('content-length', String(length))
      return reply.send(stream)
    },
  })
}

/**
 * DOWNLOAD_MODE=redirect: audited like a streamed download, then a 302 to a presigned URL.
 * The client sends its Range header again to the storage, which answers 206 itself. The link
 * expires soon, but the recording's `url` (ours) stays valid: each GET gets a fresh one (B05).
 */
async function redirectToStorage(options: {
  links: DownloadLinks
  audit: AuditLog
  context: RequestContext
  record: RecordingRecord
  range: ByteRange | undefined
  reply: FastifyReply
}) {
  const { links, audit, context, record, range, reply } = options
  await audit.append({
    action: 'download',
    outcome: 'success',
    orgId: context.principal.orgId,
    actor: context.principal.subject,
    recordingId: record.id,
    clientIp: context.clientIp,
    requestId: context.requestId,
    detail: { mode: 'redirect', ...(range && { range }) },
  })
  const location = await links.presign(record)

  // The validators describe the recording, not this redirect; a cache must not keep either.
  reply.removeHeader('etag')
  reply.removeHeader('last-modified')
  reply.removeHeader('accept-ranges')
  return reply.code(302).header('location', location).send()
}

/** Validators and caching rules: sent with every answer about the recording, 304 included. */
function setValidatorHeaders(reply: FastifyReply, record: RecordingRecord) {
  reply.header('accept-ranges', 'bytes')
  reply.header('etag', etagOf(record))
  reply.header('last-modified', new Date(record.uploadedAt).toUTCString())
  reply.header('cache-control', 'no-store')
  reply.header('x-content-type-options', 'nosniff')
}

/** The bytes never change, so their hash is a strong validator. */
export function etagOf(record: RecordingRecord): string {
  return `"${record.sha256}"`
}
