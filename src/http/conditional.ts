import type { IncomingHttpHeaders } from 'node:http'

export type ConditionalOutcome = 'proceed' | 'ignore-range' | 'not-modified' | 'precondition-failed'

/**
 * RFC 9110 §13.2.2 evaluation order for a representation with a strong `etag` and a
 * last-modified instant: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since,
 * then If-Range (which only decides whether a Range header is honoured).
 */
export function evaluateConditionals(
  headers: IncomingHttpHeaders,
  etag: string,
  lastModifiedMs: number,
): ConditionalOutcome {
  const lastModifiedSeconds = Math.floor(lastModifiedMs / 1000)
  const ifMatch = headers['if-match']
  if (ifMatch !== undefined) {
    if (!matchesAny(ifMatch, etag, true)) return 'precondition-failed'
  } else {
    const since = parseHttpDate(headers['if-unmodified-since'])
    if (since !== undefined && lastModifiedSeconds > since) return 'precondition-failed'
  }

  const ifNoneMatch = headers['if-none-match']
  if (ifNoneMatch !== undefined) {
    if (matchesAny(ifNoneMatch, etag, false)) return 'not-modified'
  } else {
    const since = parseHttpDate(headers['if-modified-since'])
    if (since !== undefined && lastModifiedSeconds <= since) return 'not-modified'
  }

  const ifRange = headers['if-range']
  if (ifRange !== undefined && headers.range !== undefined) {
    const value = String(ifRange).trim()
    if (value.startsWith('"') || value.startsWith('W/')) {
      // If-Range needs a strong match; a weak tag never matches.
      if (value !== etag) return 'ignore-range'
    } else if (parseHttpDate(value) !== lastModifiedSeconds) {
      return 'ignore-range'
    }
  }
  return 'proceed'
}

function matchesAny(header: string, etag: string, strong: boolean): boolean {
  const value = header.trim()
  if (value === '*') return true
  const opaque = etag.replace(/^W\//, '')
  return value.split(',').some((candidate) => {
    const tag = candidate.trim()
    if (strong) return tag === etag && !tag.startsWith('W/')
    return tag.replace(/^W\//, '') === opaque
  })
}

/** Seconds since the epoch of an HTTP-date, or undefined when it is not one. */
function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined
}
