/** The statement Kysely compiles for a first list page; bench/run.ts checks they still agree. */
export const PAGE_SQL =
  'select * from "recordings" where "org_id" = ? and "state" = ? and ' +
  '("expires_at" > ? or "legal_hold" = ?) order by "created_at" desc, "id" desc limit ?'
