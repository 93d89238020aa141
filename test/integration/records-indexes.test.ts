import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { nullIndexName, sortIndexName } from '../../src/modules/records/property-indexes.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { uniq } from '../helpers/assertions.ts';

const V1 = '/crm-core/v1';

/**
 * Property sort indexes (built on demand) and the probing page query (records.repository.ts):
 * with the indexes in place, keyset pages over a filtered, property-sorted list return exactly
 * what the plain query would, in order, NULLs last, for common and rare filters alike.
 */
describe('records: property sort indexes and probed pages', () => {
  let t: TestApp;
  let account: TestAccount;
  let entityId: string;
  const p: Record<string, string> = {};
  const all: any[] = [];

  before(async () => {
    t = await startTestApp({ propertyIndexMinRecords: 50 });
    account = await t.newAccount();
    entityId = (await t.call(account, 'POST', `${V1}/entities`, { name: 'Big', slug: uniq('big') })).json().entityId;
    const prop = async (fieldType: string, extra: Record<string, unknown> = {}) =>
      (await t.call(account, 'POST', `${V1}/properties`, { entityId, name: uniq(fieldType), fieldType, ...extra })).json().propertyId as string;
    p.joined = await prop('DATE');
    p.score = await prop('NUMBER');
    p.stage = await prop('DROPDOWN', { options: ['A', 'B', 'C'].map((v) => ({ label: v, value: v })) });
    p.flag = await prop('CHECKBOX');
    const records = Array.from({ length: 400 }, (_, i) => ({
      entityId,
      name: `r${i}`,
      data: {
        // Distinct dates (so the expected order needs no tie-break), every 9th missing.
        ...(i % 9 === 0 ? {} : { [p.joined!]: new Date(Date.UTC(2024, 0, 1) + ((i * 7919) % 400) * 86_400_000).toISOString().slice(0, 10) }),
        [p.score!]: (i * 37) % 100,
        [p.stage!]: ['A', 'A', 'B', 'C'][i % 4],
        ...(i % 5 === 0 ? {} : { [p.flag!]: i % 3 === 0 }),
      },
    }));
    const res = await t.call(account, 'POST', `${V1}/records/bulk`, { records });
    assert.equal(res.statusCode, 200, res.body);
    for (const id of res.json().recordIds) all.push((await t.call(account, 'GET', `${V1}/records/${id}`)).json());
  });
  after(() => t.close());

  async function walk(query: string, limit: number): Promise<any[]> {
    const seen: any[] = [];
    let startKey: string | undefined;
    for (let i = 0; i < 500; i++) {
      const res = await t.call(account, 'GET', `${V1}/records?entityId=${entityId}&limit=${limit}${query}${startKey ? `&startKey=${encodeURIComponent(startKey)}` : ''}`);
      assert.equal(res.statusCode, 200, res.body);
      seen.push(...res.json().data);
      startKey = res.json().nextKey;
      if (!startKey) return seen;
    }
    throw new Error('pagination did not end');
  }

  test('the first sort by a property builds its two partial indexes', async () => {
    await walk(`&sortField=${p.joined}`, 50);
    await t.services.propertyIndexes.idle();
    assert.ok(t.services.propertyIndexes.ready(p.joined!));
    const names = [sortIndexName(p.joined!), nullIndexName(p.joined!)];
    const valid = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE c.relname IN (${sql.join(names)}) AND i.indisvalid`.execute(t.database.db);
    assert.equal(valid.rows[0]!.n, 2);
  });

  const cases = [
    {
      label: 'a common filter',
      limit: 7,
      filter: () => ({ [p.stage!]: { op: 'in', value: ['A', 'B'] }, [p.score!]: { op: 'between', value: [10, 90] } }),
      keep: (r: any) => ['A', 'B'].includes(r.data[p.stage!]) && r.data[p.score!] >= 10 && r.data[p.score!] <= 90,
    },
    {
      // 4 of 400 records; pages of 1, so probes of 16 and 128 candidates often come up short.
      label: 'a rare filter (the probe falls back to the plain query)',
      limit: 1,
      filter: () => ({ [p.score!]: { op: 'eq', value: 37 }, [p.stage!]: { op: 'eq', value: 'A' } }),
      keep: (r: any) => r.data[p.score!] === 37 && r.data[p.stage!] === 'A',
    },
  ];
  for (const { label, limit, filter, keep } of cases) {
    test(`pages sorted by a property with ${label}: exact order, NULLs last, each record once`, async () => {
      await t.services.propertyIndexes.idle();
      const expected = all.filter(keep);
      assert.ok(expected.length > 0);
      for (const direction of ['asc', 'desc'] as const) {
        const rows = await walk(`&sortField=${p.joined}&sortDirection=${direction}&filters=${encodeURIComponent(JSON.stringify(filter()))}`, limit);
        assert.equal(new Set(rows.map((r) => r.recordId)).size, rows.length, 'no repeats');
        assert.deepEqual(rows.map((r) => r.recordId).sort(), expected.map((r) => r.recordId).sort());
        const valued = rows.filter((r) => r.data[p.joined!] !== undefined).map((r) => r.data[p.joined!]);
        const sorted = [...valued].sort();
        assert.deepEqual(valued, direction === 'asc' ? sorted : sorted.reverse());
        assert.ok(rows.slice(valued.length).every((r) => r.data[p.joined!] === undefined), 'missing values come last');
      }
    });
  }

  test('sorting by a number or checkbox property through its index: jsonb order, cursors round-trip', async () => {
    for (const field of [p.score!, p.flag!]) {
      await walk(`&sortField=${field}`, 200);
      await t.services.propertyIndexes.idle();
      assert.ok(t.services.propertyIndexes.ready(field));
      const filter = encodeURIComponent(JSON.stringify({ [p.stage!]: { op: 'in', value: ['A', 'C'] } }));
      const rows = await walk(`&sortField=${field}&sortDirection=asc&filters=${filter}`, 9);
      const expected = all.filter((r) => ['A', 'C'].includes(r.data[p.stage!]));
      assert.deepEqual(rows.map((r) => r.recordId).sort(), expected.map((r) => r.recordId).sort());
      const valued = rows.filter((r) => r.data[field] !== undefined).map((r) => r.data[field]);
      assert.deepEqual(valued, [...valued].sort((a, b) => Number(a) - Number(b)), 'numbers numerically, false before true');
    }
  });

  test('the sort indexes of a deleted property are swept; a live property\'s stay', async () => {
    const doomed = (await t.call(account, 'POST', `${V1}/properties`, { entityId, name: uniq('doomed'), fieldType: 'NUMBER' })).json().propertyId as string;
    await walk(`&sortField=${doomed}`, 200);
    await walk(`&sortField=${p.score}`, 200);
    await t.services.propertyIndexes.idle();
    assert.ok(t.services.propertyIndexes.ready(doomed) && t.services.propertyIndexes.ready(p.score!));
    const present = async (propertyId: string) => (await sql<{ name: string }>`
      SELECT c.relname AS name FROM pg_class c WHERE c.relname IN (${sortIndexName(propertyId)}, ${nullIndexName(propertyId)})`
      .execute(t.database.db)).rows.length;
    assert.equal(await present(doomed), 2);

    // On PostgreSQL other test files share the database: the sweep may drop their orphans too.
    const ours = [sortIndexName(doomed), nullIndexName(doomed), sortIndexName(p.score!), nullIndexName(p.score!)];
    assert.deepEqual((await t.services.propertyIndexes.sweepOrphans()).filter((name) => ours.includes(name)), [], 'nothing of ours while the properties live');
    assert.equal((await t.call(account, 'DELETE', `${V1}/properties/${doomed}`)).statusCode, 200);
    const dropped = await t.services.propertyIndexes.sweepOrphans();
    assert.deepEqual(dropped.filter((name) => ours.includes(name)).sort(), [nullIndexName(doomed), sortIndexName(doomed)].sort());
    assert.equal(await present(doomed), 0);
    assert.equal(await present(p.score!), 2);
    assert.ok(!t.services.propertyIndexes.ready(doomed));
  });

  test('a tampered property cursor is a 400, not a database error', async () => {
    const bad = Buffer.from(JSON.stringify([p.joined, '{not json', 'CRMRC1000000000000000AAAAAAAAAAA'])).toString('base64url');
    const res = await t.call(account, 'GET', `${V1}/records?entityId=${entityId}&sortField=${p.joined}&startKey=${bad}`);
    assert.equal(res.statusCode, 400, res.body);
  });
});
