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
})

export const migrationProvider = (dialect: SqlDialect): MigrationProvider => ({
  getMigrations: async () => migrationsFor(dialect),
})
