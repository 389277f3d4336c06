import { errors, isAppError } from '../errors.js'
import { isBusyError } from './busy-retry.js'

// SQLSTATE classes and codes that mean "retry later": 08 connection exceptions, 57P0x
// shutdown/crash/cannot connect now, 57014 statement timeout, 55P03 lock not available,
// 40001/40P01 serialization failure/deadlock, 53300 too many connections.
const UNAVAILABLE_SQLSTATE = /^(08|57P0|57014|55P03|40001|40P01|53300)/
const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])
// node-postgres reports these without a code.
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error/

/**
 * Translates a driver error: an unreachable or overloaded database is 503 (the caller may
 * retry), a full disk 507; anything else stays itself and ends as a logged 500.
 */
export function translateDatabaseError(error: unknown): unknown {
  if (isAppError(error)) return error
  if (isBusyError(error)) return errors.serviceUnavailable(error)
  const code = String((error as { code?: unknown } | undefined)?.code ?? '')
  if (code === 'SQLITE_FULL' || code === '53100') return errors.insufficientStorage(error)
  if (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code)) {
    return errors.serviceUnavailable(error)
  }
  if (UNAVAILABLE_MESSAGE.test(String((error as Error | undefined)?.message ?? ''))) {
    return errors.serviceUnavailable(error)
  }
  return error
}
