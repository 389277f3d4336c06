import pg from 'pg'
import { PostgresDialect } from 'kysely'

const INT8_OID = 20
const NUMERIC_OID = 1700
const POOL_SIZE = 10
const CONNECT_TIMEOUT_MS = 5000 // pg waits for ever by default
// A request must fail with 503 within ~10 s when the database hangs (S47), so serving
// statements are short; migrations pass 0 (no limit) since an index build may take minutes.
export const SERVING_STATEMENT_TIMEOUT_MS = 8000

/**
 * Kysely's PostgreSQL dialect over a `pg` pool with the settings a server needs: bounded
 * connect and statement times, no crash when an idle connection dies (the pool's `error`
 * event), and int8 columns read as numbers (every int8 we store — epoch milliseconds,
 * sizes, durations — is below 2^53).
 */
export function createPostgresDialect(
  url: string,
  onIdleError: (error: Error) => void,
  statementTimeoutMs = SERVING_STATEMENT_TIMEOUT_MS,
): { dialect: PostgresDialect; pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: url,
    max: POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeoutMs || undefined,
    query_timeout: statementTimeoutMs ? statementTimeoutMs + 1000 : undefined,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID || oid === NUMERIC_OID
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  })
  pool.on('error', onIdleError)
  return { dialect: new PostgresDialect({ pool }), pool }
}
