import { setTimeout as sleep } from 'node:timers/promises'

/** How long a statement keeps retrying a locked database before it gives up with 503. */
export const BUSY_RETRY_BUDGET_MS = 5000
const FIRST_BACKOFF_MS = 10
const MAX_BACKOFF_MS = 200 // short waits: another writer usually holds the lock briefly

/**
 * Runs `work` again while the database reports a lock held by someone else (another
 * process, or a long transaction), with growing, jittered pauses between the attempts.
 * The pauses are timers, so the event loop serves other requests meanwhile; only the short
 * busy_timeout inside each attempt blocks it. After `budgetMs` the last error is thrown.
 */
export async function retryWhileBusy<T>(
  work: () => Promise<T>,
  budgetMs = BUSY_RETRY_BUDGET_MS,
): Promise<T> {
  const startedMs = Date.now()
  let backoffMs = FIRST_BACKOFF_MS
  for (;;) {
    try {
      return await work()
    } catch (error) {
      const pauseMs = backoffMs / 2 + Math.random() * (backoffMs / 2)
      if (!isBusyError(error) || Date.now() - startedMs + pauseMs > budgetMs) throw error
      await sleep(pauseMs)
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS)
    }
  }
}

/** SQLITE_BUSY (and its _SNAPSHOT, _RECOVERY… variants) or SQLITE_LOCKED. */
export function isBusyError(error: unknown): boolean {
  const code = String((error as { code?: unknown } | undefined)?.code ?? '')
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')
}
