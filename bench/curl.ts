import { run } from './processes.js'

const TRANSFER_TIMEOUT_MS = 180_000

export interface Transfer {
  status: number
  bytes: number
  seconds: number
}

/** GET `url` into /dev/null with curl; fails unless the whole `expectedBytes` arrived. */
export async function download(
  url: string,
  expectedBytes: number,
  headers: string[] = [],
): Promise<Transfer> {
  const result = await run(
    'curl',
    [
      '-s',
      '-o',
      '/dev/null',
      '--max-time',
      String(TRANSFER_TIMEOUT_MS / 1000),
      ...headers.flatMap((h) => ['-H', h]),
      '-w',
      '%{http_code} %{size_download} %{time_total}',
      url,
    ],
    { timeoutMs: TRANSFER_TIMEOUT_MS + 5000 },
  )
  const transfer = parseTransfer(result.stdout)
  if (transfer.status !== 200 || transfer.bytes !== expectedBytes) {
    throw new Error(`download of ${url} failed: ${result.stdout} ${result.stderr}`)
  }
  return transfer
}

/** Downloads `count` copies at once; the rate is all bytes over the wall time of the lot. */
export async function downloadConcurrently(
  url: string,
  expectedBytes: number,
  count: number,
  headers: string[] = [],
): Promise<{ bytesPerSecond: number }> {
  const started = process.hrtime.bigint()
  const transfers = await Promise.all(
    Array.from({ length: count }, () => download(url, expectedBytes, headers)),
  )
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const bytes = transfers.reduce((sum, t) => sum + t.bytes, 0)
  return { bytesPerSecond: bytes / seconds }
}

/**
 * POSTs `file` as the raw body, streamed from disk (`-T`, not `--data-binary`, which would
 * read the whole file into curl's memory first). Returns the transfer and the JSON answer.
 */
export async function upload(
  url: string,
  file: string,
  headers: string[],
): Promise<Transfer & { body: unknown }> {
  const result = await run(
    'curl',
    [
      '-s',
      '-X',
      'POST',
      '-T',
      file,
      '--max-time',
      String(TRANSFER_TIMEOUT_MS / 1000),
      '-H',
      'Content-Type: application/octet-stream',
      ...headers.flatMap((h) => ['-H', h]),
      '-w',
      '\n%{http_code} %{size_upload} %{time_total}',
      url,
    ],
    { timeoutMs: TRANSFER_TIMEOUT_MS + 5000 },
  )
  const newline = result.stdout.lastIndexOf('\n')
  const transfer = parseTransfer(result.stdout.slice(newline + 1))
  if (transfer.status !== 201) {
    throw new Error(`upload to ${url} answered ${result.stdout} ${result.stderr}`)
  }
  return { ...transfer, body: JSON.parse(result.stdout.slice(0, newline)) }
}

function parseTransfer(text: string): Transfer {
  const [status, bytes, seconds] = text.trim().split(' ').map(Number)
  return { status: status ?? 0, bytes: bytes ?? 0, seconds: seconds ?? 0 }
}
