/** The statement Kysely compiles for a first list page; bench/run.ts checks they still agree. */
export const PAGE_SQL =
  'select * from "recordings" where "org_id" = ? and "state" = ? and ' +
  '("expires_at" > ? or "legal_hold" = ?) order by "created_at" desc, "id" desc limit ?'

/** The same statement as Kysely compiles it for PostgreSQL. */
export const PG_PAGE_SQL =
  'select * from "recordings" where "org_id" = $1 and "state" = $2 and ' +
  '("expires_at" > $3 or "legal_hold" = $4) order by "created_at" desc, "id" desc limit $5'
