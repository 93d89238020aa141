import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql, type RawBuilder, type SqlBool } from 'kysely';
import { INDEX_ORDER_SETTINGS, namePrefixQuery, probeStatement, type PageQuery } from '../../src/modules/records/records.repository.ts';
import { afterNull, afterValued, orderNull, orderValued, resolveSort, type Cursor } from '../../src/modules/records/record-sort.ts';
import { sortIndexName, nullIndexName } from '../../src/modules/records/property-indexes.ts';
import { compileConditionGroup } from '../../src/query/compile.ts';
import { catalogOf, validateConditionGroup } from '../../src/query/validate.ts';
import type { RecordField } from '../../src/modules/properties/properties.service.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { uniq } from '../helpers/assertions.ts';

const V1 = '/crm-core/v1';

/**
 * The probing page query (records.repository.ts, pageRecords): a filtered page is looked for
 * among the next N rows of the sort index before the plain query runs.
 * - Its plan walks the sort index and nothing else, even on a table that was never analyzed
 *   (PGlite always; PostgreSQL without autovacuum): the shape that joined the candidates back to
 *   records walked the whole entity and re-sorted the candidates per row (90–200 ms a probe at
 *   13–25 k records in the load soak, docs/reliability.md).
 * - A fulltext name prefix reads a range of the name index, likewise.
 * - Pages of an advanced search, followed by nextKey, are exactly the plain query's order for
 *   common, medium and rare filters (probe found, second probe found, fallback) in every sort.
 */
describe('records: probed pages', () => {
  let t: TestApp;
  let account: TestAccount;
  let entityId: string;
  const p: Record<string, string> = {};
  let fields: RecordField[];
  let catalog: ReturnType<typeof catalogOf>;

  before(async () => {
    t = await startTestApp({ propertyIndexMinRecords: 50 });
    account = await t.newAccount();
    entityId = (await t.call(account, 'POST', `${V1}/entities`, { name: 'Probed', slug: uniq('probed') })).json().entityId;
    const prop = async (fieldType: string, extra: Record<string, unknown> = {}) =>
      (await t.call(account, 'POST', `${V1}/properties`, { entityId, name: uniq(fieldType), fieldType, ...extra })).json().propertyId as string;
    p.stage = await prop('DROPDOWN', { options: ['A', 'B', 'C'].map((v) => ({ label: v, value: v })) });
    p.score = await prop('NUMBER');
    p.joined = await prop('DATE');
    // Two bulk requests: within one, every record has the same date_created (record_id breaks the tie).
    for (const part of [0, 1]) {
      const records = Array.from({ length: 300 }, (_, k) => {
        const i = part * 300 + k;
        return {
          entityId,
          name: `${['kim', 'Lee', 'PARK', '김', 'Choi'][i % 5]} ${(i * 7919) % 600}`,
          data: {
            [p.stage!]: ['A', 'A', 'B', 'C'][i % 4],
            [p.score!]: (i * 37) % 100,
            ...(i % 7 === 0 ? {} : { [p.joined!]: new Date(Date.UTC(2024, 0, 1) + ((i * 31) % 90) * 86_400_000).toISOString().slice(0, 10) }),
          },
        };
      });
      const res = await t.call(account, 'POST', `${V1}/records/bulk`, { records });
      assert.equal(res.statusCode, 200, res.body);
    }
    fields = await t.services.properties.recordFields(account.tenant, entityId);
    catalog = catalogOf(fields);
    // The property's sort indexes: the first sort by it queues them.
    await t.call(account, 'GET', `${V1}/records?entityId=${entityId}&sortField=${p.joined}`);
    await t.services.propertyIndexes.idle();
    assert.ok(t.services.propertyIndexes.ready(p.joined!));
  });
  after(() => t.close());

  const filters = () => ({
    // ~50 % of the records: the probe stops after a few dozen rows.
    common: { operator: 'AND', conditions: [{ field: `data.${p.stage}`, operator: 'in', value: ['A', 'C'] }] },
    // 2.5 %: a few hundred rows.
    medium: { operator: 'AND', conditions: [{ field: `data.${p.stage}`, operator: 'eq', value: 'B' }, { field: `data.${p.score}`, operator: 'lt', value: 10 }] },
    // 1 record in 100 (the probe reads to the end of the entity: fewer rows than PROBE_MAX).
    rare: { operator: 'AND', conditions: [{ field: `data.${p.score}`, operator: 'eq', value: 74 }] },
    none: { operator: 'AND', conditions: [{ field: `data.${p.score}`, operator: 'gt', value: 1000 }] },
  });

  function where(group: unknown): RawBuilder<SqlBool> {
    return compileConditionGroup(validateConditionGroup(group, catalog), catalog, { now: Date.now() });
  }

  /** The plan's nodes, depth first, from EXPLAIN (FORMAT JSON). */
  function nodes(plan: any): any[] {
    return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
  }

  const sorts = () => [
    { field: 'dateCreated', direction: 'desc' as const, index: 'records_by_created' },
    { field: 'dateCreated', direction: 'asc' as const, index: 'records_by_created' },
    { field: 'name', direction: 'asc' as const, index: 'records_by_name_c' },
    { field: p.joined!, direction: 'desc' as const, index: sortIndexName(p.joined!) },
  ];

  /** A cursor in the middle of each sort's order, valued or in the NULL phase. */
  function middleCursor(field: string, valued: boolean): Cursor {
    const recordId = 'CRMRC0000000000000000000000000000';
    if (!valued) return { value: null, recordId };
    if (field === 'dateCreated') return { value: new Date().toISOString(), recordId };
    if (field === 'name') return { value: 'lee 300', recordId };
    return { value: '"2024-02-15"', recordId };
  }

  test('a probe reads the sort index only: no sort, no join, no other scan (statistics or not); a cursor positions it', async () => {
    for (const s of sorts()) {
      const sort = resolveSort(s.field, s.direction, fields);
      const phases = [{ valued: true, index: s.index }, ...(sort.nullable ? [{ valued: false, index: nullIndexName(p.joined!) }] : [])];
      for (const phase of phases) {
        for (const cursor of [undefined, middleCursor(s.field, phase.valued)]) {
          const q: PageQuery = { entityId, where: where(filters().medium), sort, cursor, limit: 20, ordered: true };
          const plan = await account.tenant.transaction(async (tx) => {
            await tx.executeRaw(INDEX_ORDER_SETTINGS);
            const statement = probeStatement(tx, q, {
              where: q.where,
              after: phase.valued ? afterValued(sort, entityId, cursor) : afterNull(sort, entityId, cursor),
              order: phase.valued ? orderValued(sort) : orderNull(sort),
              key: phase.valued ? sort.expr : undefined,
              direction: s.direction,
              size: 168,
              want: 21,
            });
            return (await tx.executeRaw(sql<any>`EXPLAIN (FORMAT JSON) ${statement}`)).rows[0]['QUERY PLAN'];
          });
          const all = nodes((typeof plan === 'string' ? JSON.parse(plan) : plan)[0].Plan);
          const label = `${s.field} ${s.direction}${phase.valued ? '' : ' (NULL phase)'}${cursor ? ', after a cursor' : ''}: ${all.map((n) => n['Node Type']).join(' > ')}`;
          const scans = all.filter((n) => /Scan$/.test(n['Node Type']) && n['Node Type'] !== 'Subquery Scan');
          assert.deepEqual(scans.map((n) => n['Index Name']), [phase.index], label);
          assert.ok(!all.some((n) => ['Sort', 'Incremental Sort', 'Nested Loop', 'Hash Join', 'Merge Join'].includes(n['Node Type'])), label);
          if (cursor) {
            // The comparison must cover the index's columns from the entity on: the partial
            // property indexes' predicate absorbs `entity_id = …`, and a comparison starting
            // after an unbound column cannot position the scan (every entry before the cursor read).
            assert.match(String(scans[0]['Index Cond']), /ROW\(entity_id, /, `${label}: ${scans[0]['Index Cond']}`);
          }
        }
      }
    }
  });

  test('a fulltext name prefix is a range of the name index: no sort, no other scan (statistics or not)', async () => {
    const plan = await account.tenant.transaction(async (tx) => {
      await tx.executeRaw(INDEX_ORDER_SETTINGS);
      return (await tx.executeRaw(sql<any>`EXPLAIN (FORMAT JSON) ${namePrefixQuery(tx, entityId, 'kim', 20)}`)).rows[0]['QUERY PLAN'];
    });
    const all = nodes((typeof plan === 'string' ? JSON.parse(plan) : plan)[0].Plan);
    const label = all.map((n) => n['Node Type']).join(' > ');
    assert.deepEqual(all.filter((n) => /Scan$/.test(n['Node Type'])).map((n) => n['Index Name']), ['records_by_name_c'], label);
    assert.ok(!all.some((n) => n['Node Type'] === 'Sort'), label);
    const res = await t.call(account, 'GET', `${V1}/records/search/fulltext/${entityId}?q=KIM&limit=20`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().length, 20);
    assert.ok(res.json().every((r: any) => r.name.toLowerCase().startsWith('kim')), 'prefix matches first');
  });

  test('a probe returns the first matches among its `size` rows, and the size-th row when the rows did not run out', async () => {
    const sort = resolveSort('dateCreated', 'desc', fields);
    const order = await expected({ operator: 'AND', conditions: [] }, 'dateCreated', 'desc');
    for (const [label, group] of Object.entries(filters())) {
      const matching = new Set(await expected(group, 'dateCreated', 'desc'));
      for (const size of [10, 50, 200, 600, 601]) {
        for (const want of [1, 6, 21]) {
          const q: PageQuery = { entityId, where: where(group), sort, cursor: undefined, limit: want - 1, ordered: true };
          const { rows } = await account.tenant.transaction(async (tx) => {
            await tx.executeRaw(INDEX_ORDER_SETTINGS);
            return tx.executeRaw(probeStatement(tx, q, { where: q.where, after: afterValued(sort, entityId, undefined), order: orderValued(sort), key: sort.expr, direction: 'desc', size, want }));
          });
          const read = order.slice(0, size);
          const hits = read.filter((id) => matching.has(id)).slice(0, want);
          const context = `${label}, size ${size}, want ${want}`;
          assert.deepEqual(rows.filter((r) => r.probe_hit === true).map((r) => r.record_id), hits, context);
          // The size-th row comes back unless the page filled before it (or there is none).
          const marker = rows.filter((r) => Number(r.probe_rank) === size).map((r) => r.record_id);
          const pageFilledFirst = hits.length === want && order.indexOf(hits[want - 1]!) < size - 1;
          assert.deepEqual(marker, order.length >= size && !pageFilledFirst ? [read[size - 1]] : [], context);
        }
      }
    }
  });

  /** Every page of an advanced search, following nextKey. */
  async function walk(group: unknown, sortFields: string[], limit: number): Promise<string[]> {
    const ids: string[] = [];
    let startKey: string | undefined;
    for (let i = 0; i < 700; i++) {
      const res = await t.call(account, 'POST', `${V1}/records/search/advanced`, { entityId, conditionGroup: group, sortFields, limit, ...(startKey ? { startKey } : {}) });
      assert.equal(res.statusCode, 200, res.body);
      ids.push(...res.json().data.map((r: any) => r.recordId));
      startKey = res.json().nextKey;
      if (!startKey) return ids;
    }
    throw new Error('pagination did not end');
  }

  /** The same records in the same order from one plain statement (NULLs last, then by record_id). */
  async function expected(group: unknown, field: string, direction: 'asc' | 'desc'): Promise<string[]> {
    const sort = resolveSort(field, direction, fields);
    const dir = sql.raw(direction === 'asc' ? 'ASC' : 'DESC');
    const rows = await account.tenant.selectFrom('records').select('record_id')
      .where('entity_id', '=', entityId).where('is_deleted', '=', false).where(where(group))
      .orderBy(sql`(${sort.expr}) IS NULL, ${sort.expr} ${dir}, records.record_id ${dir}`)
      .execute();
    return rows.map((r) => r.record_id);
  }

  test('pages followed by nextKey are the plain query\'s order, for every filter and sort', async () => {
    for (const [label, group] of Object.entries(filters())) {
      for (const s of sorts()) {
        const want = await expected(group, s.field, s.direction);
        for (const limit of [5, 20]) {
          const got = await walk(group, [`${s.direction === 'desc' ? '-' : ''}${s.field}`], limit);
          assert.deepEqual(got, want, `${label} filter, ${s.direction} ${s.field}, pages of ${limit}`);
        }
      }
    }
  });
});
