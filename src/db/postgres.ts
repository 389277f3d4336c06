import pg from 'pg'
import { PostgresDialect } from 'kysely'

const INT8_OID = 20
const NUMERIC_OID = 1700
const POOL_SIZE = 10
const CONNECT_TIMEOUT_MS = 5000 // pg waits for ever by default
const STATEMENT_TIMEOUT_MS = 30_000

/**
 * Kysely's PostgreSQL dialect over a `pg` pool with the settings a server needs: bounded
 * connect and statement times, no crash when an idle connection dies (the pool's `error`
 * event), and int8 columns read as numbers (every int8 we store — epoch milliseconds,
 * sizes, durations — is below 2^53).
 */
export function createPostgresDialect(
  url: string,
  onIdleError: (error: Error) => void,
): { dialect: PostgresDialect; pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: url,
    max: POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: STATEMENT_TIMEOUT_MS + 1000,
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
