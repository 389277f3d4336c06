import autocannon from 'autocannon'

import { readCpuSeconds } from './processes.js'

/** The list load: autocannon connections and timing, the same for every list comparison. */
export interface Load {
  connections: number
  durationSeconds: number
  warmupSeconds: number
  rounds: number
}

/** Requests per second that `url` answers under `load.connections` for `durationSeconds`. */
export async function pageRate(
  url: string,
  headers: Record<string, string>,
  durationSeconds: number,
  load: Load,
): Promise<number> {
  const result = await autocannon({
    url,
    headers,
    connections: load.connections,
    duration: durationSeconds,
  })
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(`load on ${url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  }
  return result.requests.total / durationSeconds
}

/** Runs `work` and tells how much CPU `pid` used meanwhile: robust where wall time is not. */
export async function withCpu<T>(pid: number, work: () => Promise<T>): Promise<[T, number]> {
  const before = readCpuSeconds(pid)
  const result = await work()
  return [result, readCpuSeconds(pid) - before]
}

/** Both servers must answer the same 100 recordings, or the comparison means nothing. */
export async function checkSamePage(
  ours: { url: string; authorization: string },
  referenceUrl: string,
): Promise<void> {
  const [ourPage, theirPage] = await Promise.all([
    fetch(ours.url, { headers: { authorization: ours.authorization } }),
    fetch(referenceUrl),
  ])
  type Page = { recordings: { id: string }[] }
  const ourIds = ((await ourPage.json()) as Page).recordings.map((r) => r.id)
  const theirIds = ((await theirPage.json()) as Page).recordings.map((r) => r.id)
  if (ourIds.length !== 100 || ourIds.join() !== theirIds.join()) {
    throw new Error('the reference list server does not answer the same page')
  }
}
