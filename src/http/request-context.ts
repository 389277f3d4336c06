import type { FastifyRequest } from 'fastify'

import type { RequestContext } from '../recordings/recordings-service.js'
import { principalOf } from './authenticate.js'

const HOST_HEADER = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/

export function contextOf(request: FastifyRequest): RequestContext {
  return { principal: principalOf(request), clientIp: request.ip, requestId: request.id }
}

/**
 * Absolute base for recording URLs: PUBLIC_URL when set, otherwise the scheme and Host the
 * client used (validated, so a hostile Host header cannot inject markup or paths).
 */
export function baseUrlOf(request: FastifyRequest, publicUrl: string | undefined): string {
  if (publicUrl) return publicUrl
  const host = HOST_HEADER.test(request.host) ? request.host : 'localhost'
  return `${request.protocol}://${host}`
}
