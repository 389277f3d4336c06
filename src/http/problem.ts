import type { FastifyReply, FastifyRequest } from 'fastify'

import { ERROR_SPECS, type AppError } from '../errors.js'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json'
const RETRY_AFTER_SECONDS = '5'

/** RFC 9457 problem details, plus our `code` (also as `error`) and the request id. */
export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  code: string
  error: string
  request_id: string
}

export function problemType(code: string): string {
  return `urn:wcr-recordings:problem:${code}`
}

/** Writes `error` as problem+json with the headers its status calls for. */
export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: AppError) {
  const spec = ERROR_SPECS[error.code]
  if (error.code === 'unauthorized') {
    reply.header('www-authenticate', 'Bearer realm="recordings"')
  } else if (error.code === 'invalid_token') {
    const description = error.details?.description
    reply.header(
      'www-authenticate',
      `Bearer realm="recordings", error="invalid_token"` +
        (typeof description === 'string' ? `, error_description="${description}"` : ''),
    )
  } else if (error.code === 'insufficient_scope') {
    reply.header('www-authenticate', 'Bearer realm="recordings", error="insufficient_scope"')
  } else if (spec.statusCode === 503 || spec.statusCode === 429) {
    reply.header('retry-after', RETRY_AFTER_SECONDS)
  } else if (error.code === 'range_not_satisfiable') {
    reply.header('content-range', `bytes */${String(error.details?.size ?? '*')}`)
  }
  const problem: Problem = {
    type: problemType(error.code),
    title: spec.title,
    status: spec.statusCode,
    detail: error.message,
    code: error.code,
    error: error.code,
    request_id: request.id,
  }
  return reply
    .code(spec.statusCode)
    .header('content-type', PROBLEM_CONTENT_TYPE)
    .header('cache-control', 'no-store')
    .send(JSON.stringify(problem))
}
