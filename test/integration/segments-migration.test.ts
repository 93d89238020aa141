import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { migrations } from '../../src/db/migrations/index.ts';
import { systemDb } from '../../src/db/scope.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { uniq } from '../helpers/assertions.ts';

/**
 * Migration 0015 (segment_members.record_created) on a database that already has CACHED members:
 * they are backfilled with their records' date_created, and default-sorted pages (driven from
 * that column) list them as before. Migrating down and up again needs a database of its own, so
 * this file always runs on a private in-memory PGlite, whichever engine the suite runs on.
 */

const V1 = '/crm-core/v1';

describe('migration 0015_segment_member_order', () => {
  let database: Database;
  let t: TestApp;
  let a: TestAccount;

  before(async () => {
    database = await openDatabase({ pgliteWorker: false });
    await migrateToLatest(database.db);
    t = await startTestApp({ database });
    a = await t.newAccount();
  });
  after(async () => {
    await t.close();
    await database.close();
  });

  test('existing members get their record\'s date_created; pages are unchanged', async () => {
    const ok = async (method: 'GET' | 'POST', url: string, body?: unknown) => {
      const res = await t.call(a, method, `${V1}${url}`, body);
      assert.ok(res.statusCode < 300, `${method} ${url} → ${res.statusCode} ${res.body}`);
      return res.json();
    };
    const entityId = (await ok('POST', '/entities', { name: 'm', slug: uniq('m') })).entityId;
    const score = (await ok('POST', '/properties', { entityId, name: 'score', fieldType: 'NUMBER' })).propertyId;
    for (let i = 0; i < 3; i++) {
      // Separate batches: three distinct creation times, ties inside each.
      await ok('POST', '/records/bulk', { records: Array.from({ length: 5 }, (_, k) => ({ entityId, name: `r${i}${k}`, data: { [score]: i * 5 + k } })) });
    }
    const segment = await ok('POST', '/segments', {
      entityId, name: 'high', mode: 'CACHED', conditions: { operator: 'AND', conditions: [{ field: `data.${score}`, operator: 'gte', value: 3 }] },
    });
    const pageIds = async (params = '') => (await ok('GET', `/segments/${segment.segmentId}/records?limit=50${params}`)).data.map((r: { recordId: string }) => r.recordId);
    const before = { desc: await pageIds(), asc: await pageIds('&sortDirection=asc') };
    assert.equal(before.desc.length, 12);

    // Back to 0014 (the column and its index dropped), then forward again: the backfill.
    const migrator = new Migrator({ db: systemDb(database.db), provider: { getMigrations: async () => migrations } });
    const down = await migrator.migrateTo('0014_row_level_security');
    assert.equal(down.error, undefined);
    const columns = await sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.columns
      WHERE table_name = 'segment_members' AND column_name = 'record_created'`.execute(systemDb(database.db));
    assert.equal(columns.rows[0]!.n, 0, 'migrated down: no record_created');
    assert.ok((await migrateToLatest(database.db)).includes('0015_segment_member_order'));

    const stored = await sql<{ members: number; matching: number }>`
      SELECT count(*)::int AS members, count(*) FILTER (WHERE m.record_created = r.date_created)::int AS matching
      FROM segment_members m JOIN records r ON r.account_id = m.account_id AND r.record_id = m.record_id
      WHERE m.segment_id = ${segment.segmentId}`.execute(systemDb(database.db));
    assert.deepEqual(stored.rows[0], { members: 12, matching: 12 });
    assert.deepEqual({ desc: await pageIds(), asc: await pageIds('&sortDirection=asc') }, before);
  });
});
