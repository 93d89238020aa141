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

const V1 = '/crm-core/v1';

type Ok = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) => Promise<any>;

function client(t: TestApp, a: TestAccount): Ok {
  return async (method, url, body) => {
    const res = await t.call(a, method, `${V1}${url}`, body);
    assert.ok(res.statusCode < 300, `${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };
}

/** Stored `data` of a record, as the table holds it (keys are storage keys). */
async function storedData(a: TestAccount, recordId: string): Promise<Record<string, unknown>> {
  const row = await a.tenant.selectFrom('records').select('data').where('record_id', '=', recordId).executeTakeFirstOrThrow();
  return row.data as Record<string, unknown>;
}

async function storageKeys(a: TestAccount, entityId: string): Promise<Map<string, string>> {
  const rows = await a.tenant.selectFrom('properties').select(['property_id', 'storage_key']).where('entity_id', '=', entityId).execute();
  return new Map(rows.map((r) => [r.property_id, r.storage_key]));
}

/**
 * What the API does over an entity with a TEXT, a NUMBER and a DROPDOWN property: every read and
 * write path that touches `records.data` (get, list, filter, sort, aggregate, update, bulk
 * update, a fieldType conversion, an upsert lookup), answered in property IDs.
 */
async function exercise(ok: Ok, entityId: string, p: { city: string; score: string; stage: string }): Promise<void> {
  const ids = (page: { data: { recordId: string }[] }) => page.data.map((r) => r.recordId);
  const records = (await ok('GET', `/records?entityId=${entityId}&limit=100&sortField=${p.score}&sortDirection=asc`)).data;
  assert.deepEqual(records.map((r: any) => r.data[p.score]), [10, 20, 30]);
  assert.deepEqual(records.map((r: any) => r.data[p.city]), ['Seoul', 'Busan', 'Seoul']);
  const [first, second, third] = records.map((r: any) => r.recordId as string);

  const search = (conditions: unknown[]) => ok('POST', '/records/search/advanced', { entityId, conditionGroup: { operator: 'AND', conditions }, limit: 100 });
  assert.deepEqual(ids(await search([{ field: `data.${p.city}`, operator: 'eq', value: 'seoul' }])).sort(), [first, third].sort());
  assert.deepEqual(ids(await search([{ field: `data.${p.score}`, operator: 'gte', value: 20 }, { field: `data.${p.stage}`, operator: 'eq', value: 'WON' }])), [third]);

  const byStage = await ok('POST', '/records/aggregate', { entityId, groupBy: p.stage, metrics: [{ op: 'count' }, { op: 'sum', propertyId: p.score }] });
  const won = byStage.buckets.find((b: any) => b.key === 'WON');
  assert.deepEqual(won.values.map(Number), [2, 40], JSON.stringify(won));

  await ok('PATCH', `/records/${second}`, { data: { [p.city]: 'Incheon', [p.score]: null } });
  const patched = await ok('GET', `/records/${second}`);
  assert.equal(patched.data[p.city], 'Incheon');
  assert.equal(patched.data[p.score], undefined);
  assert.equal(patched.data[p.stage], 'LEAD');

  await ok('POST', '/records/bulk/update', { records: [{ recordId: first, data: { [p.stage]: 'LEAD' } }] });
  assert.equal((await ok('GET', `/records/${first}`)).data[p.stage], 'LEAD');

  // NUMBER → TEXT rewrites the stored values in place.
  await ok('PATCH', `/properties/${p.score}`, { fieldType: 'TEXT' });
  assert.equal((await ok('GET', `/records/${third}`)).data[p.score], '30');
  assert.deepEqual(ids(await search([{ field: `data.${p.score}`, operator: 'eq', value: '30' }])), [third]);
}

/** An entity with a TEXT, a NUMBER and a DROPDOWN property and three records. */
async function entityWithRecords(ok: Ok) {
  const entityId = (await ok('POST', '/entities', { name: 'keys', slug: uniq('keys') })).entityId as string;
  const p = {
    city: (await ok('POST', '/properties', { entityId, name: 'city', fieldType: 'TEXT' })).propertyId as string,
    score: (await ok('POST', '/properties', { entityId, name: 'score', fieldType: 'NUMBER' })).propertyId as string,
    stage: (await ok('POST', '/properties', { entityId, name: 'stage', fieldType: 'DROPDOWN', options: ['LEAD', 'WON'].map((v) => ({ label: v, value: v })) })).propertyId as string,
  };
  await ok('POST', '/records/bulk', { records: [
    { entityId, name: 'a', data: { [p.city]: 'Seoul', [p.score]: 10, [p.stage]: 'WON' } },
    { entityId, name: 'b', data: { [p.city]: 'Busan', [p.score]: 20, [p.stage]: 'LEAD' } },
    { entityId, name: 'c', data: { [p.city]: 'Seoul', [p.score]: 30, [p.stage]: 'WON' } },
  ] });
  return { entityId, p };
}

describe('property storage keys', () => {
  let t: TestApp;
  let a: TestAccount;
  let ok: Ok;

  before(async () => {
    t = await startTestApp();
    a = await t.newAccount();
    ok = client(t, a);
  });
  after(() => t.close());

  test('new properties get short keys, and records store their values under them', async () => {
    const { entityId, p } = await entityWithRecords(ok);
    const keys = await storageKeys(a, entityId);
    assert.deepEqual([keys.get(p.city), keys.get(p.score), keys.get(p.stage)], ['1', '2', '3']);
    const [record] = (await ok('GET', `/records?entityId=${entityId}&limit=1&sortField=name&sortDirection=asc`)).data;
    assert.deepEqual(await storedData(a, record.recordId), { 1: 'Seoul', 2: 10, 3: 'WON' });
    assert.deepEqual(record.data, { [p.city]: 'Seoul', [p.score]: 10, [p.stage]: 'WON' });
    await exercise(ok, entityId, p);
  });

  test('a key is never given twice in an entity: a deleted property\'s values stay its own', async () => {
    const { entityId, p } = await entityWithRecords(ok);
    await ok('DELETE', `/properties/${p.stage}`);
    const next = (await ok('POST', '/properties', { entityId, name: 'stage2', fieldType: 'TEXT' })).propertyId as string;
    const keys = await storageKeys(a, entityId);
    assert.equal(keys.get(next), '4');
    const records = (await ok('GET', `/records?entityId=${entityId}&limit=100`)).data;
    assert.ok(records.every((r: any) => r.data[next] === undefined && r.data[p.stage] === undefined), JSON.stringify(records));
    // The deleted property's values are still stored (restorable), under its own key.
    assert.equal((await storedData(a, records[0].recordId))['3'] !== undefined, true);
  });

  test('properties created at once in one entity get distinct keys, and each keeps its own values', async () => {
    const entityId = (await ok('POST', '/entities', { name: 'parallel', slug: uniq('parallel') })).entityId as string;
    const created = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => ok('POST', '/properties', { entityId, name: `p${i}`, fieldType: 'NUMBER' })),
      ok('POST', '/properties/bulk', { properties: [0, 1].map((i) => ({ entityId, name: `bulk${i}`, fieldType: 'NUMBER' })) }),
    ]);
    // Six single creates and one bulk create (a bare array).
    const ids = created.flatMap((c: any) => (Array.isArray(c) ? c : [c]).map((x: any) => x.propertyId as string));
    assert.equal(ids.length, 8);
    const keys = await storageKeys(a, entityId);
    assert.deepEqual([...keys.values()].sort(), ['1', '2', '3', '4', '5', '6', '7', '8']);
    const data = Object.fromEntries(ids.map((id: string, i: number) => [id, i]));
    const record = await ok('POST', '/records', { entityId, name: 'r', data });
    assert.deepEqual((await ok('GET', `/records/${record.recordId}`)).data, data);
  });

  test('the same short key in two entities keeps their records apart', async () => {
    const one = await entityWithRecords(ok);
    const two = await entityWithRecords(ok);
    const page = await ok('POST', '/records/search/advanced', {
      entityId: two.entityId, conditionGroup: { operator: 'AND', conditions: [{ field: `data.${two.p.city}`, operator: 'eq', value: 'Seoul' }] }, limit: 100,
    });
    assert.equal(page.data.length, 2);
    assert.ok(page.data.every((r: any) => r.entityId === two.entityId));
    const counted = await ok('POST', '/records/aggregate', { entityId: one.entityId, groupBy: one.p.stage });
    assert.equal(counted.buckets.reduce((n: number, b: any) => n + Number(b.values[0]), 0), 3);
  });
});

/**
 * Properties created before migration 0018 keep their property ID as their storage key, and
 * their records are not rewritten: the same API answers over them, and over an entity that mixes
 * both kinds. Migrating down and up needs a database of its own: a private in-memory PGlite.
 */
describe('migration 0018_property_storage_keys', () => {
  let database: Database;
  let t: TestApp;
  let a: TestAccount;
  let ok: Ok;

  before(async () => {
    database = await openDatabase({ pgliteWorker: false });
    await migrateToLatest(database.db);
    t = await startTestApp({ database });
    a = await t.newAccount();
    ok = client(t, a);
  });
  after(async () => {
    await t.close();
    await database.close();
  });

  test('values stored under property IDs (before 0018) answer the same; new properties get short keys', async () => {
    const { entityId, p } = await entityWithRecords(ok);

    // Down to 0017 (values renamed back to property IDs), then up: the state of a database from before 0018.
    const migrator = new Migrator({ db: systemDb(database.db), provider: { getMigrations: async () => migrations } });
    assert.equal((await migrator.migrateTo('0017_tenant_policy_settings_once')).error, undefined);
    const [row] = (await sql<{ data: Record<string, unknown> }>`SELECT data FROM records WHERE entity_id = ${entityId} AND name = 'a'`.execute(systemDb(database.db))).rows;
    assert.deepEqual(row!.data, { [p.city]: 'Seoul', [p.score]: 10, [p.stage]: 'WON' });
    assert.ok((await migrateToLatest(database.db)).includes('0018_property_storage_keys'));

    const keys = await storageKeys(a, entityId);
    assert.deepEqual([...keys.entries()].filter(([id, key]) => id !== key), [], 'existing properties keep their ID as key');
    const added = (await ok('POST', '/properties', { entityId, name: 'grade', fieldType: 'TEXT' })).propertyId as string;
    assert.equal((await storageKeys(a, entityId)).get(added), '1');

    await exercise(ok, entityId, p);
    // A new property next to the old ones: written, stored under its short key, and filterable with them.
    const recordId = (await ok('POST', '/records/search/advanced', { entityId, conditionGroup: { operator: 'AND', conditions: [{ field: `data.${p.city}`, operator: 'eq', value: 'Incheon' }] } })).data[0].recordId;
    await ok('PATCH', `/records/${recordId}`, { data: { [added]: 'VIP' } });
    assert.equal((await storedData(a, recordId))['1'], 'VIP');
    const both = await ok('POST', '/records/search/advanced', { entityId, conditionGroup: { operator: 'AND', conditions: [
      { field: `data.${added}`, operator: 'eq', value: 'VIP' }, { field: `data.${p.city}`, operator: 'eq', value: 'Incheon' },
    ] } });
    assert.deepEqual(both.data.map((r: any) => r.recordId), [recordId]);
  });
});
