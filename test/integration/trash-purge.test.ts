import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { ConfigError, loadConfig } from '../../src/config.ts';
import type { DB } from '../../src/db/schema.ts';
import { purgeExpiredTrash, startTrashPurger, type PurgeHooks } from '../../src/modules/trash/trash.purge.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import type { Credentials } from '../helpers/sign.ts';
import { uniq, type Res } from '../helpers/assertions.ts';

/**
 * Trash retention (API.md §3, §5): purgeExpiredTrash(db, now, …) with an injected `now`. Records are
 * trashed through the API at chosen times (the app's clock); entities are trashed through the API
 * and then back-dated, since the entities service stamps its trash time with the wall clock.
 */

const V1 = '/crm-core/v1';
const DAY = 86_400_000;
function expectStatus(res: Res, status: number, code?: string) {
  assert.equal(res.statusCode, status, res.body);
  if (code) assert.equal(res.json().errorCode, code, res.body);
}

describe('trash purge', () => {
  let t: TestApp;
  let db: Kysely<DB>;
  let hooks: PurgeHooks;

  const call = (creds: Credentials, method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown) => t.call(creds, method, `${V1}${url}`, body);
  async function newEntity(acct: TestAccount) {
    const res = await call(acct, 'POST', '/entities', { name: 'E', slug: uniq('e') });
    expectStatus(res, 201);
    return res.json().entityId as string;
  }
  async function newProperty(acct: TestAccount, entityId: string) {
    const res = await call(acct, 'POST', '/properties', { entityId, name: uniq('p'), fieldType: 'NUMBER' });
    expectStatus(res, 201);
    return res.json().propertyId as string;
  }
  async function createRecords(acct: TestAccount, entityId: string, n: number, data: Record<string, unknown> = {}): Promise<string[]> {
    const res = await call(acct, 'POST', '/records/bulk', { records: Array.from({ length: n }, (_, i) => ({ entityId, name: `r${i}`, data })) });
    expectStatus(res, 200);
    assert.equal(res.json().succeeded, n, res.body);
    return res.json().recordIds;
  }
  /** Trashes records as if at `at` (ms): the records service stamps date_deleted with the app's clock. */
  async function trashAt(acct: TestAccount, recordIds: string[], at: number | undefined) {
    t.clock.now = at;
    try {
      const res = await call(acct, 'POST', '/records/bulk/delete', { recordIds });
      expectStatus(res, 200);
      assert.equal(res.json().succeeded, recordIds.length, res.body);
    } finally {
      t.clock.now = undefined;
    }
  }
  /** Trashes an entity through the API, then moves its trash time to `at`. */
  async function trashEntityAt(acct: TestAccount, entityId: string, at: number) {
    expectStatus(await call(acct, 'DELETE', `/entities/${entityId}`), 200);
    await acct.tenant.updateTable('entities').set({ date_deleted: new Date(at) }).where('entity_id', '=', entityId).execute();
  }
  async function used(acct: TestAccount, quota: string, scope = ''): Promise<number | undefined> {
    const row = await acct.tenant.selectFrom('quota_usage').select('used').where('quota', '=', quota).where('scope', '=', scope).executeTakeFirst();
    return row?.used;
  }
  async function count(acct: TestAccount, table: 'records' | 'properties' | 'entities', entityId?: string): Promise<number> {
    let q = acct.tenant.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n'));
    if (entityId) q = q.where('entity_id', '=', entityId);
    return Number((await q.executeTakeFirstOrThrow()).n);
  }
  const recordStatus = async (acct: TestAccount, id: string) => (await call(acct, 'GET', `/records/${id}`)).statusCode;

  before(async () => {
    t = await startTestApp();
    db = t.database.db;
    hooks = t.services.segments;
  });
  after(() => t.close());

  test('records: exactly the records trashed longer than 14 days are purged, in every account; records.max is released', async () => {
    const T = Date.now();
    const a = await t.newAccount();
    const b = await t.newAccount();
    const c = await t.newAccount();
    await t.services.quota.setLimits(a.tenant, { 'records.max': 10 });
    const ea = await newEntity(a);
    const ids = await createRecords(a, ea, 10);
    await trashAt(a, ids.slice(0, 3), T - 20 * DAY); //   expired
    const edge = T - 14 * DAY + 60_000;
    await trashAt(a, ids.slice(3, 4), edge); //            14 days minus a minute: kept
    await trashAt(a, ids.slice(4, 5), undefined); //       just now: kept
    await trashAt(a, ids.slice(5, 6), T - 30 * DAY); //    expired, but restored below: kept
    expectStatus(await call(a, 'POST', '/records/bulk/restore', { recordIds: ids.slice(5, 6) }), 200);
    const idsB = await createRecords(b, await newEntity(b), 4);
    await trashAt(b, idsB.slice(0, 4), T - 15 * DAY);
    const idsC = await createRecords(c, await newEntity(c), 2);
    await trashAt(c, idsC.slice(0, 1), T - 13 * DAY);
    assert.equal(await used(a, 'records.max'), 10);

    const report = await purgeExpiredTrash(db, new Date(T), { hooks });
    assert.deepEqual(report.failures, []);
    assert.ok(report.records >= 7, JSON.stringify(report)); // other tests' accounts may add theirs

    for (const id of ids.slice(0, 3)) assert.equal(await recordStatus(a, id), 404, 'expired: purged');
    assert.equal(await recordStatus(a, ids[3]!), 410, 'not yet expired: still in the trash');
    assert.equal(await recordStatus(a, ids[4]!), 410);
    for (const id of ids.slice(5)) assert.equal(await recordStatus(a, id), 200);
    assert.equal(await count(a, 'records'), 7);
    assert.equal(await used(a, 'records.max'), 7, 'records.max released by exactly the purged records');
    assert.equal(await count(b, 'records'), 0);
    assert.equal(await used(b, 'records.max'), 0);
    assert.equal(await count(c, 'records'), 2);
    assert.equal(await used(c, 'records.max'), 2);
    // The freed slots are usable again.
    const more = await call(a, 'POST', '/records/bulk', { records: Array.from({ length: 4 }, () => ({ entityId: ea })) });
    assert.equal(more.json().succeeded, 3, more.body);

    // The boundary: exactly 14 days after trashing is not yet expired; a millisecond later it is.
    const trashedAt = edge;
    const atEdge = await purgeExpiredTrash(db, trashedAt + 14 * DAY, { hooks });
    assert.equal(await recordStatus(a, ids[3]!), 410, JSON.stringify(atEdge));
    await purgeExpiredTrash(db, trashedAt + 14 * DAY + 1, { hooks });
    assert.equal(await recordStatus(a, ids[3]!), 404);
    assert.equal(await recordStatus(a, ids[4]!), 410);
    assert.equal(await used(a, 'records.max'), 9);

    // Nothing left to do: a second run at the same time purges nothing of this account.
    await purgeExpiredTrash(db, trashedAt + 14 * DAY + 1, { hooks });
    assert.equal(await count(a, 'records'), 9);
  });

  test('accountIds limits a purge to those accounts', async () => {
    const [a, b] = [await t.newAccount(), await t.newAccount()];
    const [inA, inB] = [await createRecords(a, await newEntity(a), 1), await createRecords(b, await newEntity(b), 1)];
    await trashAt(a, inA, Date.now() - 15 * DAY);
    await trashAt(b, inB, Date.now() - 15 * DAY);
    const report = await purgeExpiredTrash(db, Date.now(), { hooks, accountIds: [b.accountId] });
    assert.deepEqual([report.accounts, report.records], [1, 1]);
    assert.equal(await recordStatus(a, inA[0]!), 410, 'another account\'s trash is left alone');
    assert.equal(await recordStatus(b, inB[0]!), 404);
    assert.deepEqual(await purgeExpiredTrash(db, Date.now(), { hooks, accountIds: [] }), { accounts: 0, records: 0, entities: 0, failures: [] });
  });

  test('retention is configurable, and read from RECORDS_TRASH_RETENTION_DAYS / ENTITIES_TRASH_RETENTION_DAYS', async () => {
    const a = await t.newAccount();
    const ids = await createRecords(a, await newEntity(a), 2);
    const T = Date.now();
    await trashAt(a, ids.slice(0, 1), T - 2 * DAY);
    await trashAt(a, ids.slice(1, 2), T - 12 * 3_600_000);
    await purgeExpiredTrash(db, T, { hooks, recordsRetentionDays: 1 });
    assert.equal(await recordStatus(a, ids[0]!), 404);
    assert.equal(await recordStatus(a, ids[1]!), 410);

    assert.equal(loadConfig({}).recordsTrashRetentionDays, 14);
    assert.equal(loadConfig({}).entitiesTrashRetentionDays, 30);
    const config = loadConfig({ RECORDS_TRASH_RETENTION_DAYS: '7', ENTITIES_TRASH_RETENTION_DAYS: '90' });
    assert.equal(config.recordsTrashRetentionDays, 7);
    assert.equal(config.entitiesTrashRetentionDays, 90);
    for (const bad of ['0', '-1', '1.5', 'two', '99999']) {
      assert.throws(() => loadConfig({ RECORDS_TRASH_RETENTION_DAYS: bad }), ConfigError, bad);
      assert.throws(() => loadConfig({ ENTITIES_TRASH_RETENTION_DAYS: bad }), ConfigError, bad);
    }
  });

  test('entities: an entity trashed over 30 days ago goes with its records and properties; quotas are released', async () => {
    const T = Date.now();
    const a = await t.newAccount();
    await t.services.quota.setLimits(a.tenant, { 'entities.max': 4, 'properties.maxPerEntity': 3, 'records.max': 100 });
    const expired = await newEntity(a);
    const recent = await newEntity(a);
    const restored = await newEntity(a);
    const live = await newEntity(a);
    const [p1, p2] = [await newProperty(a, expired), await newProperty(a, expired)];
    const pRecent = await newProperty(a, recent);
    const pLive = await newProperty(a, live);
    // 7 records in the expired entity: 5 live, 2 trashed just now (the entity's retention governs them).
    const expiredRecords = await createRecords(a, expired, 7, { [p1]: 1 });
    await trashAt(a, expiredRecords.slice(5), undefined);
    const recentRecords = await createRecords(a, recent, 3, { [pRecent]: 2 });
    const liveRecords = await createRecords(a, live, 2, { [pLive]: 3 });
    await trashEntityAt(a, expired, T - 31 * DAY);
    await trashEntityAt(a, recent, T - 29 * DAY);
    await trashEntityAt(a, restored, T - 40 * DAY);
    expectStatus(await call(a, 'POST', `/entities/${restored}/restore`), 200);
    expectStatus(await call(a, 'POST', '/entities', { name: 'E', slug: uniq('full') }), 403, 'PlanQuotaExceeded');
    assert.equal(await used(a, 'records.max'), 12);
    assert.equal(await used(a, 'properties.maxPerEntity', expired), 2);

    // Small batches: the expired entity's 7 records take three transactions.
    const report = await purgeExpiredTrash(db, T, { hooks, batchSize: 3 });
    assert.deepEqual(report.failures, []);
    assert.ok(report.entities >= 1 && report.records >= 7, JSON.stringify(report));

    // The expired entity and everything hanging off it are gone…
    expectStatus(await call(a, 'GET', `/entities/${expired}`), 404, 'NotFound');
    for (const id of expiredRecords) assert.equal(await recordStatus(a, id), 404);
    for (const id of [p1!, p2!]) expectStatus(await call(a, 'GET', `/properties/${id}`), 404, 'NotFound');
    assert.equal(await count(a, 'records', expired), 0);
    assert.equal(await count(a, 'properties', expired), 0);
    assert.equal(await count(a, 'entities', expired), 0);
    assert.equal(await used(a, 'properties.maxPerEntity', expired), undefined, 'its per-entity counters are deleted');
    // …and released their slots, exactly.
    assert.equal(await used(a, 'entities.max'), 3);
    assert.equal(await used(a, 'records.max'), 5);
    assert.equal(await used(a, 'properties.maxPerEntity', recent), 1);
    assert.equal(await used(a, 'properties.maxPerEntity', live), 1);
    expectStatus(await call(a, 'POST', '/entities', { name: 'E', slug: uniq('again') }), 201);

    // Not expired, restored or live entities are untouched.
    const trash = (await call(a, 'GET', '/entities/trash')).json().map((e: any) => e.entityId);
    assert.deepEqual(trash, [recent]);
    assert.equal(await count(a, 'records', recent), 3);
    assert.equal(await recordStatus(a, recentRecords[0]!), 410, 'a trashed entity\'s records stay unreachable');
    expectStatus(await call(a, 'GET', `/entities/${restored}`), 200);
    for (const id of liveRecords) assert.equal(await recordStatus(a, id), 200);
    expectStatus(await call(a, 'GET', `/properties/${pLive}`), 200);

    // A day later the second entity expires too, its records' slots come back.
    await purgeExpiredTrash(db, T + 2 * DAY, { hooks });
    expectStatus(await call(a, 'GET', `/entities/${recent}`), 404, 'NotFound');
    assert.equal(await count(a, 'records', recent), 0);
    assert.equal(await used(a, 'records.max'), 2);
    assert.equal(await used(a, 'entities.max'), 3);
  });

  test('an entity whose purge has begun cannot be restored (410), so it never returns with part of its records', async () => {
    const a = await t.newAccount();
    const entity = await newEntity(a);
    await createRecords(a, entity, 5);
    await trashEntityAt(a, entity, Date.now() - 31 * DAY);
    // Stop the purge after its first batch, as a shutdown would: 2 of 5 records gone.
    const controller = new AbortController();
    const quota = { ...t.services.quota, release: async (...args: Parameters<typeof t.services.quota.release>) => {
      await t.services.quota.release(...args);
      if (args[2] !== 0) controller.abort();
    } };
    await purgeExpiredTrash(db, Date.now(), { hooks, batchSize: 2, signal: controller.signal, quota });
    assert.equal(await count(a, 'records', entity), 3, 'the purge stopped between batches');
    expectStatus(await call(a, 'POST', `/entities/${entity}/restore`), 410, 'Gone');
    expectStatus(await call(a, 'GET', `/entities/${entity}`), 410, 'Gone');
    // The next run finishes the job.
    await purgeExpiredTrash(db, Date.now(), { hooks });
    expectStatus(await call(a, 'GET', `/entities/${entity}`), 404, 'NotFound');
    assert.equal(await count(a, 'records', entity), 0);
  });

  test('large backlogs go in bounded batches; the result is exact', async () => {
    const a = await t.newAccount();
    const entity = await newEntity(a);
    const ids = await createRecords(a, entity, 25);
    await trashAt(a, ids.slice(0, 23), Date.now() - 15 * DAY);
    await purgeExpiredTrash(db, Date.now(), { hooks, batchSize: 4 });
    assert.equal(await count(a, 'records'), 2);
    assert.equal(await used(a, 'records.max'), 2);
  });

  test('two purges at once (two server processes) delete and release each record once', async () => {
    const a = await t.newAccount();
    const entity = await newEntity(a);
    const gone = await newEntity(a);
    const ids = await createRecords(a, entity, 30);
    await createRecords(a, gone, 9);
    await trashAt(a, ids.slice(0, 24), Date.now() - 20 * DAY);
    await trashEntityAt(a, gone, Date.now() - 40 * DAY);
    assert.equal(await used(a, 'records.max'), 39);
    const reports = await Promise.all([
      purgeExpiredTrash(db, Date.now(), { hooks, batchSize: 5 }),
      purgeExpiredTrash(db, Date.now(), { hooks, batchSize: 5 }),
    ]);
    for (const r of reports) assert.deepEqual(r.failures, []);
    assert.equal(await count(a, 'records'), 6);
    assert.equal(await used(a, 'records.max'), 6);
    assert.equal(await count(a, 'entities'), 1);
    assert.equal(await used(a, 'entities.max'), 1);
  });

  test('the server\'s purger runs on its timer, never overlaps, logs its work and its errors, and stops', async () => {
    const a = await t.newAccount();
    const ids = await createRecords(a, await newEntity(a), 3);
    await trashAt(a, ids, Date.now() - 15 * DAY);
    const logs: { level: string; obj: any; msg: string }[] = [];
    const logger = {
      info: (obj: object, msg: string) => logs.push({ level: 'info', obj, msg }),
      error: (obj: object, msg: string) => logs.push({ level: 'error', obj, msg }),
    };
    const purger = startTrashPurger({ db, hooks, clock: Date.now, logger, recordsRetentionDays: 14, entitiesRetentionDays: 30, intervalMs: 20 });
    try {
      for (let i = 0; i < 200 && (await count(a, 'records')) > 0; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(await count(a, 'records'), 0);
      assert.equal(await used(a, 'records.max'), 0);
    } finally {
      await purger.stop();
    }
    assert.ok(logs.some((l) => l.level === 'info' && l.msg === 'purged expired trash' && l.obj.records >= 3), JSON.stringify(logs));

    // A failing purge is logged, not thrown; runNow never rejects.
    const broken = { selectFrom: () => { throw new Error('database is on fire'); } } as unknown as Kysely<DB>;
    const failing = startTrashPurger({ db: broken, hooks, clock: Date.now, logger, recordsRetentionDays: 14, entitiesRetentionDays: 30 });
    const [first, second] = [failing.runNow(), failing.runNow()];
    assert.equal(first, second, 'a run in progress is joined, not overlapped');
    await first;
    await failing.stop();
    const failure = logs.find((l) => l.level === 'error');
    assert.equal(failure?.msg, 'trash purge failed');
    assert.match(String(failure?.obj.err), /database is on fire/);
  });
});
