import assert from 'node:assert/strict'
import { test } from 'node:test'

import { CamelCasePlugin, Kysely, SqliteDialect, type KyselyPlugin } from 'kysely'

import { migrateToLatest, openSqlite } from './database.js'
import { KyselyAuditLog } from './kysely-audit-log.js'
import type { Database } from './schema.js'

async function memoryDb(plugins: KyselyPlugin[] = []) {
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: openSqlite(':memory:') }),
    plugins: [new CamelCasePlugin(), ...plugins],
  })
  await migrateToLatest(db, 'sqlite')
  return db
}

test('appends arriving together are committed in one multi-row insert', async () => {
  let inserts = 0
  const db = await memoryDb([
    {
      transformQuery: (args) => {
        if (args.node.kind === 'InsertQueryNode') inserts++
        return args.node
      },
      transformResult: async (args) => args.result,
    },
  ])
  inserts = 0 // the migrations' own bookkeeping does not count
  const log = new KyselyAuditLog(db, () => 1_700_000_000_000)
  await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      log.append({ action: 'list', outcome: 'success', orgId: 'o', actor: `u${i}` }),
    ),
  )
  assert.equal(inserts, 1)
  const rows = await db.selectFrom('auditEvents').selectAll().execute()
  assert.equal(rows.length, 50)
  assert.ok(rows.every((row) => row.at === 1_700_000_000_000))
  await db.destroy()
})

test('every caller of a failed batch is rejected, and later batches still commit', async () => {
  const db = await memoryDb()
  const log = new KyselyAuditLog(db, () => Date.now())
  await db.schema.alterTable('audit_events').renameTo('away').execute()
  const results = await Promise.allSettled(
    Array.from({ length: 5 }, () => log.append({ action: 'download', outcome: 'success' })),
  )
  assert.ok(results.every((r) => r.status === 'rejected'))
  assert.equal((results[0] as PromiseRejectedResult).reason.code, 'service_unavailable')

  await db.schema.alterTable('away').renameTo('audit_events').execute()
  await log.append({ action: 'download', outcome: 'success' })
  await log.appendMany([
    { action: 'expire', outcome: 'success' },
    { action: 'expire', outcome: 'success' },
  ])
  const rows = await db.selectFrom('auditEvents').select('action').execute()
  assert.deepEqual(
    rows.map((r) => r.action),
    ['download', 'expire', 'expire'],
  )
  await db.destroy()
})

test('listEvents pages by id in either direction with filters', async () => {
  const db = await memoryDb()
  let now = 1000
  const log = new KyselyAuditLog(db, () => now++)
  for (let i = 0; i < 6; i++) {
    await log.append({ action: i % 2 ? 'list' : 'download', outcome: 'success', orgId: 'o' })
  }
  const newest = await log.listEvents({ orgId: 'o', order: 'newest_first', limit: 2 })
  assert.deepEqual(
    newest.map((e) => e.id),
    [6, 5],
  )
  const next = await log.listEvents({ orgId: 'o', order: 'newest_first', limit: 2, afterId: 5 })
  assert.deepEqual(
    next.map((e) => e.id),
    [4, 3],
  )
  const lists = await log.listEvents({ action: 'list', order: 'oldest_first', limit: 10 })
  assert.deepEqual(
    lists.map((e) => e.id),
    [2, 4, 6],
  )
  const window = await log.listEvents({
    order: 'oldest_first',
    limit: 10,
    atOrAfterMs: 1001,
    beforeMs: 1003,
  })
  assert.deepEqual(
    window.map((e) => e.at),
    [1001, 1002],
  )
  await db.destroy()
})
