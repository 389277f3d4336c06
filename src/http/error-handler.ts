import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

import { AppError, errors, isAppError } from '../errors.js'
import { sendProblem } from './problem.js'

/**
 * The one place errors become responses. AppErrors carry their own safe message; Fastify's
 * validation and body errors become 400/413/415; anything else is a generic 500 whose
 * details go to the log only.
 */
export function registerErrorHandler(app: FastifyInstance) {
  app.setErrorHandler((raw: FastifyError | AppError | Error, request, reply) => {
    const error = toAppError(raw)
    if (error.statusCode >= 500) {
      request.log.error({ err: raw, code: error.code }, 'request failed')
    }
    if (error.statusCode === 413 || !request.raw.complete) {
      // The rest of the body is never read: close rather than parse it as a next request.
      reply.header('connection', 'close')
    }
    if (error.statusCode < 500) request.log.info({ code: error.code }, 'request refused')
    return sendProblem(request, reply, error)
  })

  app.setNotFoundHandler((request, reply) => sendProblem(request, reply, errors.routeNotFound()))
}

/**
 * For Fastify's `frameworkErrors` option. Errors found before routing (a path parameter over
 * `maxParamLength`, a malformed percent-encoding) otherwise get Fastify's own body, which
 * echoes the path and names a library code. An over-long id is simply unknown (404); a URL
 * that cannot be decoded is a bad request.
 */
export function handleFrameworkError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const appError =
    error.code === 'FST_ERR_BAD_URL'
      ? errors.invalidRequest('The request URL is malformed.')
      : errors.routeNotFound()
  request.log.info({ code: appError.code, cause: error.code }, 'request refused')
  // Hooks do not run for these requests, so the id header is set here.
  reply.header('x-request-id', request.id)
  return sendProblem(request, reply, appError)
}

function toAppError(error: FastifyError | AppError | Error): AppError {
  if (isAppError(error)) return error
  const fastifyError = error as FastifyError
  if (fastifyError.validation) {
    return errors.invalidRequest(describeValidation(fastifyError))
  }
  const status = fastifyError.statusCode
  if (status === 413 || fastifyError.code === 'FST_REQ_FILE_TOO_LARGE') {
    return new AppError('payload_too_large', 'The request body is too large.')
  }
  if (status === 415) return errors.unsupportedMediaType()
  if (status !== undefined && status >= 400 && status < 500) {
    return errors.invalidRequest('The request could not be read.')
  }
  return errors.internal(error)
}

function describeValidation(error: FastifyError): string {
  const first = error.validation?.[0]
  if (!first) return 'The request is not valid.'
  const where = error.validationContext ?? 'request'
  const field =
    (first.params as { missingProperty?: string; additionalProperty?: string })?.missingProperty ??
    (first.params as { additionalProperty?: string })?.additionalProperty ??
    first.instancePath.replace(/^\//, '')
  return `Invalid ${where}${field ? ` parameter ${field}` : ''}: ${first.message ?? 'not valid'}.`
}
