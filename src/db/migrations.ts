import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely'

/**
 * Migrations live in code (not files found at run time) so the compiled server and the
 * tests run the same list. Each one must work on SQLite and PostgreSQL.
 */
export type SqlDialect = 'sqlite' | 'postgres'

const migrationsFor = (dialect: SqlDialect): Record<string, Migration> => ({
  '001_recordings': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('recordings')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('meeting_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('uploaded_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('duration_ms', 'bigint')
        .addColumn('size_bytes', 'bigint', (c) => c.notNull())
        .addColumn('content_type', 'text', (c) => c.notNull())
        .addColumn('extension', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('blob_key', 'text', (c) => c.notNull().unique())
        .addColumn('file_name', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull().defaultTo('active'))
        .addColumn('legal_hold', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('idempotency_key', 'text')
        .addColumn('uploaded_by', 'text', (c) => c.notNull())
        .execute()
      // The list: one org, newest first, keyset (created_at, id).
      await db.schema
        .createIndex('recordings_org_created')
        .on('recordings')
        .columns(['org_id', 'created_at desc', 'id desc'])
        .execute()
      await db.schema
        .createIndex('recordings_org_idempotency')
        .on('recordings')
        .columns(['org_id', 'idempotency_key'])
        .unique()
        .where(sql.ref('idempotency_key'), 'is not', null)
        .execute()
      // The sweeper reads expiry through an index, never the whole table.
      await db.schema
        .createIndex('recordings_expiry')
        .on('recordings')
        .columns(['expires_at'])
        .where(sql.ref('legal_hold'), '=', 0)
        .execute()
      await db.schema
        .createIndex('recordings_org_meeting_sha')
        .on('recordings')
        .columns(['org_id', 'meeting_id', 'sha256'])
        .execute()

      await db.schema
        .createTable('audit_events')
        .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('org_id', 'text')
        .addColumn('actor', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('recording_id', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('client_ip', 'text')
        .addColumn('request_id', 'text')
        .addColumn('detail', 'text')
        .execute()
      await db.schema
        .createIndex('audit_events_org_at')
        .on('audit_events')
        .columns(['org_id', 'at'])
        .execute()
    },
  },
  '002_recordings_unique_content': {
    async up(db: Kysely<unknown>) {
      // One live recording per meeting and content: two concurrent retries of the same upload
      // (with no Idempotency-Key) cannot both commit, whichever node they reach.
      await db.schema
        .createIndex('recordings_org_meeting_sha_active')
        .on('recordings')
        .columns(['org_id', 'meeting_id', 'sha256'])
        .unique()
        .where(sql.ref('state'), '=', 'active')
        .execute()
    },
  },
  '003_retention_sweep_audit': {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('recordings').addColumn('claimed_until', 'bigint').execute()
      // The sweeper's claim reads only active, unheld rows in expiry order. The predicate is
      // spelled with literals, and the claim query uses the same literals, so SQLite can prove
      // that the partial index covers it.
      await db.schema.dropIndex('recordings_expiry').execute()
      await sql`create index recordings_sweep on recordings (expires_at)
        where state = 'active' and legal_hold = 0`.execute(db)
      await sql`create index recordings_deleting on recordings (claimed_until)
        where state = 'deleting'`.execute(db)

      await db.schema
        .createTable('org_settings')
        .addColumn('org_id', 'text', (c) => c.primaryKey())
        .addColumn('retention_seconds', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute()

      // The audit API pages one org newest first by id, optionally for one recording.
      await db.schema
        .createIndex('audit_events_org_id')
        .on('audit_events')
        .columns(['org_id', 'id'])
        .execute()
      await db.schema
        .createIndex('audit_events_org_recording_id')
        .on('audit_events')
        .columns(['org_id', 'recording_id', 'id'])
        .execute()
    },
  },
})

export const migrationProvider = (dialect: SqlDialect): MigrationProvider => ({
  getMigrations: async () => migrationsFor(dialect),
})
