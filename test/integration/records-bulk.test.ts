import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InsertQueryNode, type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs, type QueryResult, type RootOperationNode, type UnknownRow } from 'kysely';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import type { Credentials } from '../helpers/sign.ts';
import { expectError, uniq, type Res } from '../helpers/assertions.ts';

/**
 * Bulk record endpoints (API.md §5): POST /records/bulk, /records/bulk/update, /records/bulk/delete,
 * /records/bulk/restore — per-item results, no half-writes, access and plan limits per item.
 */

const V1 = '/crm-core/v1';
/** The bulk answer, checked for shape: 200, counts add up, failures in request order. */
function bulkResult(res: Res, items: number): { succeeded: number; failed: any[]; recordIds?: string[] } {
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  assert.equal(typeof body.succeeded, 'number');
  assert.ok(Array.isArray(body.failed));
  assert.equal(body.succeeded + body.failed.length, items, res.body.slice(0, 2000));
  for (const f of body.failed) {
    assert.equal(typeof f.errorCode, 'string');
    assert.equal(typeof f.errorMessage, 'string');
  }
  return body;
}

/** failed[] as {key: errorCode} for compact assertions. */
const codes = (failed: any[], key: 'index' | 'recordId') => Object.fromEntries(failed.map((f) => [f[key], f.errorCode]));

/** Counts the rows the app's INSERT INTO records statements wrote (their affected rows). */
class RecordInserts implements KyselyPlugin {
  rows = 0;
  readonly #inserts = new WeakSet<object>();
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    if (InsertQueryNode.is(args.node) && args.node.into?.table.identifier.name === 'records') this.#inserts.add(args.queryId);
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    if (this.#inserts.has(args.queryId)) this.rows += Number(args.result.numAffectedRows ?? 0n);
    return args.result;
  }
}

describe('bulk records (API.md §5)', () => {
  let t: TestApp;
  let account: TestAccount;
  let admin: Credentials & { memberId: string };
  let member: Credentials & { memberId: string };
  let entityId: string;
  let lockedEntity: string; // ADMIN_ONLY
  const p: Record<string, string> = {};

  async function newEntity(creds: Credentials = account, body: Record<string, unknown> = {}) {
    const res = await t.call(creds, 'POST', `${V1}/entities`, { name: 'Customers', slug: uniq('c'), ...body });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().entityId as string;
  }
  async function newProperty(entity: string, fieldType: string, extra: Record<string, unknown> = {}, creds: Credentials = account) {
    const res = await t.call(creds, 'POST', `${V1}/properties`, { entityId: entity, name: uniq(fieldType), fieldType, ...extra });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().propertyId as string;
  }
  const bulk = (path: '' | '/update' | '/delete' | '/restore', body: unknown, creds: Credentials = account) =>
    t.call(creds, 'POST', `${V1}/records/bulk${path}`, body);
  async function createMany(items: Record<string, unknown>[], creds: Credentials = account, entity = entityId): Promise<string[]> {
    const res = bulkResult(await bulk('', { records: items.map((item) => ({ entityId: entity, ...item })) }, creds), items.length);
    assert.deepEqual(res.failed, []);
    return res.recordIds!;
  }
  const getRecord = (id: string, creds: Credentials = account) => t.call(creds, 'GET', `${V1}/records/${id}`);
  /** Rows of the account in the table, whatever their state (the ground truth behind records.max). */
  async function rowCount(acct: TestAccount = account): Promise<number> {
    const row = await acct.tenant.selectFrom('records').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }
  async function recordsUsed(acct: TestAccount = account): Promise<number> {
    const res = await t.call(acct, 'GET', `${V1}/usage`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json().limits.find((l: any) => l.key === 'records.max').used;
  }

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
    admin = await t.addMember(account, 'ADMIN');
    member = await t.addMember(account, 'MEMBER');
    entityId = await newEntity();
    lockedEntity = await newEntity(account, { recordAccess: 'ADMIN_ONLY' });
    p.email = await newProperty(entityId, 'EMAIL');
    p.phone = await newProperty(entityId, 'PHONE', { isMasked: true });
    p.score = await newProperty(entityId, 'NUMBER');
    p.stage = await newProperty(entityId, 'DROPDOWN', { options: [{ label: 'Lead', value: 'LEAD' }, { label: 'Won', value: 'WON' }] });
    p.notes = await newProperty(entityId, 'TEXTAREA');
  });
  after(() => t.close());

  describe('POST /records/bulk', () => {
    test('creates every item like POST /records would, and returns their IDs in request order', async () => {
      const res = bulkResult(await bulk('', {
        records: [
          { entityId, name: '김민준', data: { [p.email!]: '  Kim@Example.COM ', [p.score!]: 42, [p.stage!]: 'LEAD' }, tags: ['vip', 'vip', 'new'] },
          { entityId, name: 'Lee', ownerId: member.memberId },
          { entityId, ownerId: null },
        ],
      }), 3);
      assert.equal(res.succeeded, 3);
      assert.deepEqual(res.failed, []);
      assert.equal(res.recordIds!.length, 3);
      for (const id of res.recordIds!) assert.match(id, /^CRMRC1\d{15}[A-Za-z0-9]{11}$/);
      const [a, b, c] = await Promise.all(res.recordIds!.map(async (id) => (await getRecord(id)).json()));
      assert.equal(a.name, '김민준');
      assert.deepEqual(a.data, { [p.email!]: 'kim@example.com', [p.score!]: 42, [p.stage!]: 'LEAD' });
      assert.deepEqual(a.tags, ['vip', 'new']);
      assert.equal(a.ownerId, account.memberId);
      assert.equal(a.createdBy, account.memberId);
      assert.equal(a.updatedBy, account.memberId);
      assert.equal(a.isDeleted, false);
      assert.equal(b.name, 'Lee');
      assert.equal(b.ownerId, member.memberId);
      assert.equal(c.name, '');
      assert.equal(c.ownerId, null);
      // They are listed like any other record.
      const list = (await t.call(account, 'GET', `${V1}/records?entityId=${entityId}&limit=200`)).json();
      for (const id of res.recordIds!) assert.ok(list.data.some((r: any) => r.recordId === id));
    });

    test('bad items fail one by one with the error they would get alone; good items are created; nothing of a bad item is written', async () => {
      const trashedEntity = await newEntity();
      assert.equal((await t.call(account, 'DELETE', `${V1}/entities/${trashedEntity}`)).statusCode, 200);
      const before = await rowCount();
      const usedBefore = await recordsUsed();
      const items = [
        /* 0 ok   */ { entityId, name: 'good 0', data: { [p.score!]: 1 } },
        /* 1 400  */ { entityId, name: 'bad value', data: { [p.score!]: 2, [p.stage!]: 'NOPE' } },
        /* 2 400  */ { entityId, name: 'unknown property', data: { CRMPP1260101000000000ABCDEFGHIJK: 1 } },
        /* 3 404  */ { entityId: 'CRMET1260101000000000ABCDEFGHIJK', name: 'unknown entity' },
        /* 4 410  */ { entityId: trashedEntity, name: 'trashed entity' },
        /* 5 400  */ { entityId, name: 'unknown owner', ownerId: 'MEMzzzzzzzzzzz' },
        /* 6 ok   */ { entityId, name: 'good 6', data: { [p.email!]: 'six@example.com' } },
        /* 7 400  */ { entityId, name: 'two bad values', data: { [p.score!]: 'x', [p.email!]: 'nope' } },
        /* 8 ok   */ { entityId: lockedEntity, name: 'good 8 (OWNER may use ADMIN_ONLY)' },
      ];
      const res = bulkResult(await bulk('', { records: items }), items.length);
      assert.equal(res.succeeded, 3);
      assert.deepEqual(codes(res.failed, 'index'), { 1: 'ValidationError', 2: 'ValidationError', 3: 'NotFound', 4: 'Gone', 5: 'ValidationError', 7: 'ValidationError' });
      assert.deepEqual(res.failed.map((f) => f.index), [1, 2, 3, 4, 5, 7], 'failures in request order');
      assert.ok(res.failed[0].errorMessage.includes(p.stage!), res.failed[0].errorMessage);
      assert.ok(res.failed[1].errorMessage.includes('not a live property'));
      assert.ok(res.failed[4].errorMessage.includes('ownerId'));
      assert.equal(res.failed[5].details.length, 2, 'every bad value of an item is named');
      // Exactly the three good items exist, with their data; the bad ones wrote nothing (not even their valid fields).
      assert.equal(res.recordIds!.length, 3);
      assert.equal(await rowCount(), before + 3);
      assert.equal(await recordsUsed(), usedBefore + 3, 'only created records take records.max slots');
      const names = await Promise.all(res.recordIds!.map(async (id) => (await getRecord(id)).json().name));
      assert.deepEqual(names, ['good 0', 'good 6', 'good 8 (OWNER may use ADMIN_ONLY)']);
      const all = (await t.call(account, 'GET', `${V1}/records?entityId=${entityId}&limit=200`)).json().data;
      assert.ok(!all.some((r: any) => ['bad value', 'unknown property', 'unknown owner', 'two bad values'].includes(r.name)));
    });

    test('record access applies per item: a MEMBER gets 403 for an ADMIN_ONLY entity and its other items succeed', async () => {
      const ownerOnly = await newEntity(account, { recordAccess: 'ENTITY_OWNER_ONLY', ownerId: admin.memberId });
      const items = [
        { entityId, name: 'member ok' },
        { entityId: lockedEntity, name: 'member locked' },
        { entityId: ownerOnly, name: 'member owner-only' },
        { entityId, name: 'member ok 2', data: { [p.phone!]: '010-1234-5678' } },
      ];
      const res = bulkResult(await bulk('', { records: items }, member), 4);
      assert.equal(res.succeeded, 2);
      assert.deepEqual(codes(res.failed, 'index'), { 1: 'Forbidden', 2: 'Forbidden' });
      // Masking is about reads: the bulk answer carries no record data at all.
      assert.deepEqual(Object.keys(res).sort(), ['failed', 'recordIds', 'succeeded']);
      // The ADMIN may use ADMIN_ONLY entities, and this ENTITY_OWNER_ONLY one is theirs.
      const asAdmin = bulkResult(await bulk('', { records: items }, admin), 4);
      assert.equal(asAdmin.succeeded, 4);
      const other = bulkResult(await bulk('', { records: [{ entityId: ownerOnly, name: 'x' }] }, member), 1);
      assert.equal(other.failed[0].errorCode, 'Forbidden');
    });

    test('another account\'s entity is 404 per item', async () => {
      const other = await t.newAccount();
      const res = bulkResult(await bulk('', { records: [{ entityId, name: 'x' }] }, other), 1);
      assert.deepEqual(codes(res.failed, 'index'), { 0: 'NotFound' });
      assert.equal(await rowCount(other), 0);
    });

    test('1000 items are accepted; 1001 or none are a 400 for the whole request and write nothing', async () => {
      const entity = await newEntity();
      const ok = bulkResult(await bulk('', { records: Array.from({ length: 1000 }, (_, i) => ({ entityId: entity, name: `n${i}` })) }), 1000);
      assert.equal(ok.succeeded, 1000);
      assert.equal(new Set(ok.recordIds).size, 1000);
      const before = await rowCount();
      expectError(await bulk('', { records: Array.from({ length: 1001 }, (_, i) => ({ entityId: entity, name: `n${i}` })) }), 400, 'ValidationError', 'records');
      expectError(await bulk('', { records: [] }), 400, 'ValidationError');
      expectError(await bulk('', {}), 400, 'ValidationError');
      // A malformed item (wrong shape, not a bad value) is a schema violation of the request, named by path.
      expectError(await bulk('', { records: [{ entityId, name: 'fine' }, { entityId, name: 7 }] }), 400, 'ValidationError', '/records/1/name');
      expectError(await bulk('', { records: [{ entityId, extra: true }] }), 400, 'ValidationError', 'extra');
      assert.equal(await rowCount(), before);
    });

    test('bulk bodies may be up to 10 MiB (other routes keep 1 MiB); larger is 413', async () => {
      const text = 'ㄱ'.repeat(9_000); // ~27 KB of UTF-8 per item
      const items = Array.from({ length: 60 }, (_, i) => ({ entityId, name: `big ${i}`, data: { [p.notes!]: text } }));
      const body = { records: items };
      assert.ok(Buffer.byteLength(JSON.stringify(body)) > 1024 * 1024, 'over the default 1 MiB');
      expectError(await t.call(account, 'POST', `${V1}/records`, { entityId, name: 'x', data: { [p.notes!]: 'ㄱ'.repeat(400_000) } }), 413, 'PayloadTooLarge');
      assert.equal(bulkResult(await bulk('', body), 60).succeeded, 60);
      const huge = { records: Array.from({ length: 400 }, (_, i) => ({ entityId, name: `huge ${i}`, data: { [p.notes!]: text } })) };
      assert.ok(Buffer.byteLength(JSON.stringify(huge)) > 10 * 1024 * 1024);
      expectError(await bulk('', huge), 413, 'PayloadTooLarge');
      expectError(await bulk('/update', { records: huge.records.map((r) => ({ recordId: 'CRMRC1260101000000000ABCDEFGHIJK', name: r.name, data: r.data })) }), 413, 'PayloadTooLarge');
    });
  });

  describe('records.max', () => {
    test('bulk create fills the remaining slots exactly, in request order; the rest fail with PlanQuotaExceeded', async () => {
      const acct = await t.newAccount();
      const entity = await newEntity(acct);
      const prop = await newProperty(entity, 'NUMBER', {}, acct);
      await t.services.quota.setLimits(acct.tenant, { 'records.max': 10 });
      await createMany([{ name: 'a' }, { name: 'b' }, { name: 'c' }], acct, entity);
      assert.equal(await recordsUsed(acct), 3);

      // 7 slots left. Item 2 is invalid and takes none; valid items 0,1,3..7 (7 of them) fit; 8..11 do not.
      const items = Array.from({ length: 12 }, (_, i) => ({ entityId: entity, name: `q${i}`, data: { [prop]: i === 2 ? 'bad' : i } }));
      const res = bulkResult(await bulk('', { records: items }, acct), 12);
      assert.equal(res.succeeded, 7);
      assert.deepEqual(codes(res.failed, 'index'), { 2: 'ValidationError', 8: 'PlanQuotaExceeded', 9: 'PlanQuotaExceeded', 10: 'PlanQuotaExceeded', 11: 'PlanQuotaExceeded' });
      assert.equal(res.failed.find((f) => f.index === 8).errorMessage, 'records.max: 10/10');
      const created = await Promise.all(res.recordIds!.map(async (id) => (await getRecord(id, acct)).json().name));
      assert.deepEqual(created, ['q0', 'q1', 'q3', 'q4', 'q5', 'q6', 'q7']);
      assert.equal(await rowCount(acct), 10);
      assert.equal(await recordsUsed(acct), 10);

      // Full: everything fails, nothing is written; single create agrees.
      const full = bulkResult(await bulk('', { records: [{ entityId: entity, name: 'z' }, { entityId: entity, name: 'y' }] }, acct), 2);
      assert.deepEqual(codes(full.failed, 'index'), { 0: 'PlanQuotaExceeded', 1: 'PlanQuotaExceeded' });
      expectError(await t.call(acct, 'POST', `${V1}/records`, { entityId: entity }), 403, 'PlanQuotaExceeded', 'records.max: 10/10');
      assert.equal(await rowCount(acct), 10);

      // Soft delete keeps slots (trashed records count until purged): still full.
      const trashed = bulkResult(await bulk('/delete', { recordIds: res.recordIds!.slice(0, 2) }, acct), 2);
      assert.equal(trashed.succeeded, 2);
      assert.equal(await recordsUsed(acct), 10);
      assert.equal(bulkResult(await bulk('', { records: [{ entityId: entity }] }, acct), 1).failed[0].errorCode, 'PlanQuotaExceeded');
      // Restoring needs no slot.
      assert.equal(bulkResult(await bulk('/restore', { recordIds: res.recordIds!.slice(0, 1) }, acct), 1).succeeded, 1);

      // Permanent delete frees exactly its slots (one of them was in the trash).
      const gone = bulkResult(await bulk('/delete', { recordIds: res.recordIds!.slice(0, 3), permanent: true }, acct), 3);
      assert.equal(gone.succeeded, 3);
      assert.equal(await recordsUsed(acct), 7);
      assert.equal(await rowCount(acct), 7);
      const again = bulkResult(await bulk('', { records: Array.from({ length: 5 }, (_, i) => ({ entityId: entity, name: `r${i}` })) }, acct), 5);
      assert.equal(again.succeeded, 3);
      assert.deepEqual(codes(again.failed, 'index'), { 3: 'PlanQuotaExceeded', 4: 'PlanQuotaExceeded' });
      assert.equal(await rowCount(acct), 10);
      assert.equal(await recordsUsed(acct), 10);
    });

    test('at the limit, a bulk create writes no rows at all (nothing inserted to be taken out again)', async () => {
      // A second API node on the same database, whose statements are watched.
      const inserts = new RecordInserts();
      const watched = await startTestApp({ database: { ...t.database, db: t.database.db.withPlugin(inserts), close: async () => {} }, masterKey: t.masterKey });
      try {
        const acct = await watched.newAccount();
        const entity = await newEntity(acct);
        await watched.services.quota.setLimits(acct.tenant, { 'records.max': 3 });
        const send = async (n: number) => bulkResult(
          await watched.call(acct, 'POST', `${V1}/records/bulk`, { records: Array.from({ length: n }, (_, i) => ({ entityId: entity, name: `n${i}` })) }), n);
        const first = await send(5);
        assert.equal(first.succeeded, 3);
        assert.equal(inserts.rows, 3, 'only the items that fit were written');
        const full = await send(4);
        assert.deepEqual(codes(full.failed, 'index'), { 0: 'PlanQuotaExceeded', 1: 'PlanQuotaExceeded', 2: 'PlanQuotaExceeded', 3: 'PlanQuotaExceeded' });
        assert.equal(full.failed[0].errorMessage, 'records.max: 3/3');
        assert.equal(inserts.rows, 3, 'nothing written when full');
        assert.equal(await rowCount(acct), 3);
        assert.equal(await recordsUsed(acct), 3);
      } finally {
        await watched.close();
      }
    });

    test('concurrent bulk creates never exceed the limit together, and usage matches the rows', async () => {
      const acct = await t.newAccount();
      const entity = await newEntity(acct);
      await t.services.quota.setLimits(acct.tenant, { 'records.max': 250 });
      const batch = (tag: string) => bulk('', { records: Array.from({ length: 100 }, (_, i) => ({ entityId: entity, name: `${tag}${i}` })) }, acct);
      const results = (await Promise.all(['a', 'b', 'c', 'd'].map(batch))).map((res) => bulkResult(res, 100));
      assert.equal(results.reduce((sum, r) => sum + r.succeeded, 0), 250);
      for (const r of results) for (const f of r.failed) assert.equal(f.errorCode, 'PlanQuotaExceeded');
      assert.equal(await rowCount(acct), 250);
      assert.equal(await recordsUsed(acct), 250);
    });

    test('unlimited plans still count bulk creates and permanent deletes', async () => {
      const acct = await t.newAccount();
      const entity = await newEntity(acct);
      const ids = await createMany(Array.from({ length: 25 }, (_, i) => ({ name: `u${i}` })), acct, entity);
      assert.equal(await recordsUsed(acct), 25);
      bulkResult(await bulk('/delete', { recordIds: ids.slice(0, 5), permanent: true }, acct), 5);
      assert.equal(await recordsUsed(acct), 20);
      assert.equal(await rowCount(acct), 20);
    });
  });

  describe('POST /records/bulk/update', () => {
    test('patches like PATCH /records/{id}: data merged key by key, null clears, tags replaced, others kept', async () => {
      const [a, b] = await createMany([
        { name: 'A', data: { [p.score!]: 1, [p.stage!]: 'LEAD', [p.email!]: 'a@example.com' }, tags: ['x'] },
        { name: 'B', data: { [p.score!]: 2 }, tags: ['y'], ownerId: member.memberId },
      ]);
      t.clock.now = Date.now() + 1000; // dateUpdated moves
      const res = bulkResult(await bulk('/update', {
        records: [
          { recordId: a, data: { [p.score!]: 10, [p.stage!]: null }, tags: ['z', 'z'] },
          { recordId: b, name: 'B2', ownerId: null },
        ],
      }, admin), 2);
      t.clock.now = undefined;
      assert.equal(res.succeeded, 2);
      assert.equal(res.recordIds, undefined);
      const ra = (await getRecord(a!)).json();
      assert.deepEqual(ra.data, { [p.score!]: 10, [p.email!]: 'a@example.com' });
      assert.deepEqual(ra.tags, ['z']);
      assert.equal(ra.name, 'A');
      assert.equal(ra.ownerId, account.memberId);
      assert.equal(ra.updatedBy, admin.memberId);
      assert.equal(ra.createdBy, account.memberId);
      assert.ok(ra.dateUpdated > ra.dateCreated);
      const rb = (await getRecord(b!)).json();
      assert.equal(rb.name, 'B2');
      assert.equal(rb.ownerId, null);
      assert.deepEqual(rb.data, { [p.score!]: 2 });
      assert.deepEqual(rb.tags, ['y']);
    });

    test('bad items fail one by one; a bad item changes nothing, not even its valid fields; good items are applied', async () => {
      const [good, bad, trashed, owned, dup] = await createMany([
        { name: 'good', data: { [p.score!]: 1 } },
        { name: 'bad', data: { [p.score!]: 1 } },
        { name: 'trashed' },
        { name: 'owned' },
        { name: 'dup', data: { [p.score!]: 5 } },
      ]);
      const [adminOnly] = await createMany([{ name: 'locked' }], account, lockedEntity);
      assert.equal((await t.call(account, 'DELETE', `${V1}/records/${trashed}`)).statusCode, 200);
      const other = await t.newAccount();
      const otherEntity = await newEntity(other);
      const [foreign] = await createMany([{ name: 'foreign' }], other, otherEntity);
      const items = [
        /* 0 ok   */ { recordId: good, name: 'good!', data: { [p.score!]: 2 } },
        /* 1 400  */ { recordId: bad, name: 'renamed', data: { [p.score!]: 3, [p.stage!]: 'NOPE' } },
        /* 2 410  */ { recordId: trashed, name: 'x' },
        /* 3 404  */ { recordId: 'CRMRC1260101000000000ABCDEFGHIJK', name: 'x' },
        /* 4 404  */ { recordId: foreign, name: 'x' },
        /* 5 403  */ { recordId: adminOnly, name: 'x' },
        /* 6 400  */ { recordId: owned, ownerId: 'MEMzzzzzzzzzzz' },
        /* 7 ok   */ { recordId: dup, data: { [p.score!]: 6 } },
        /* 8 400  */ { recordId: dup, data: { [p.score!]: 7 } },
      ];
      const res = bulkResult(await bulk('/update', { records: items }, member), items.length);
      assert.equal(res.succeeded, 2);
      assert.deepEqual(codes(res.failed, 'index'), { 1: 'ValidationError', 2: 'Gone', 3: 'NotFound', 4: 'NotFound', 5: 'Forbidden', 6: 'ValidationError', 8: 'ValidationError' });
      for (const f of res.failed) assert.equal(f.recordId, items[f.index]!.recordId);
      assert.ok(res.failed.find((f) => f.index === 8).errorMessage.includes('item 7'));
      assert.equal((await getRecord(good!)).json().name, 'good!');
      assert.equal((await getRecord(good!)).json().data[p.score!], 2);
      const untouched = (await getRecord(bad!)).json();
      assert.equal(untouched.name, 'bad');
      assert.equal(untouched.data[p.score!], 1);
      assert.equal(untouched.updatedBy, account.memberId);
      assert.equal((await getRecord(dup!)).json().data[p.score!], 6);
      assert.equal((await getRecord(owned!)).json().ownerId, account.memberId);
      assert.equal((await getRecord(foreign!, other)).json().name, 'foreign');
      assert.equal((await getRecord(adminOnly!)).json().name, 'locked');
    });

    test('1001 patches are a 400; an item without a change is a 400', async () => {
      const [id] = await createMany([{ name: 'one' }]);
      expectError(await bulk('/update', { records: Array.from({ length: 1001 }, () => ({ recordId: id, name: 'x' })) }), 400, 'ValidationError', 'records');
      expectError(await bulk('/update', { records: [{ recordId: id }] }), 400, 'ValidationError');
      assert.equal((await getRecord(id!)).json().name, 'one');
      const ok = bulkResult(await bulk('/update', { records: Array.from({ length: 1000 }, (_, i) => ({ recordId: id, name: `x${i}` })) }), 1000);
      assert.equal(ok.succeeded, 1);
      assert.equal(ok.failed.length, 999);
      assert.equal((await getRecord(id!)).json().name, 'x0');
    });
  });

  describe('POST /records/bulk/delete and /records/bulk/restore', () => {
    test('soft delete moves records to the trash (410, listed in the trash); restore brings them back', async () => {
      const ids = await createMany(Array.from({ length: 5 }, (_, i) => ({ name: `t${i}` })));
      const used = await recordsUsed();
      const del = bulkResult(await bulk('/delete', { recordIds: [...ids.slice(0, 3), ids[0]] }, member), 3);
      assert.equal(del.succeeded, 3);
      for (const id of ids.slice(0, 3)) expectError(await getRecord(id), 410, 'Gone');
      assert.equal((await getRecord(ids[3]!)).statusCode, 200);
      const trash = (await t.call(account, 'GET', `${V1}/records/trash?entityId=${entityId}&limit=200`)).json().data.map((r: any) => r.recordId);
      for (const id of ids.slice(0, 3)) assert.ok(trash.includes(id));
      assert.equal(await recordsUsed(), used, 'trashed records keep their slots');

      const restore = bulkResult(await bulk('/restore', { recordIds: ids.slice(0, 4) }, member), 4);
      assert.equal(restore.succeeded, 4, 'a live record counts as restored, as POST /records/{id}/restore');
      for (const id of ids.slice(0, 4)) assert.equal((await getRecord(id)).json().isDeleted, false);
      assert.equal(await recordsUsed(), used);
    });

    test('per-item failures: unknown, other account, forbidden, already trashed; the others are applied', async () => {
      const [live, trashed, live2] = await createMany([{ name: 'live' }, { name: 'trashed' }, { name: 'live2' }]);
      const [adminOnly] = await createMany([{ name: 'locked' }], account, lockedEntity);
      await t.call(account, 'DELETE', `${V1}/records/${trashed}`);
      const other = await t.newAccount();
      const [foreign] = await createMany([{ name: 'foreign' }], other, await newEntity(other));
      const unknown = 'CRMRC1260101000000000ABCDEFGHIJK';

      const del = bulkResult(await bulk('/delete', { recordIds: [live, trashed, unknown, foreign, adminOnly] }, member), 5);
      assert.equal(del.succeeded, 1);
      assert.deepEqual(codes(del.failed, 'recordId'), { [trashed!]: 'Gone', [unknown]: 'NotFound', [foreign!]: 'NotFound', [adminOnly!]: 'Forbidden' });
      assert.deepEqual(del.failed.map((f) => f.recordId), [trashed, unknown, foreign, adminOnly], 'failures in request order');
      expectError(await getRecord(live!), 410, 'Gone');
      assert.equal((await getRecord(adminOnly!)).statusCode, 200);
      assert.equal((await getRecord(foreign!, other)).statusCode, 200);

      const restore = bulkResult(await bulk('/restore', { recordIds: [live, unknown, foreign, adminOnly, live2] }, member), 5);
      assert.equal(restore.succeeded, 2);
      assert.deepEqual(codes(restore.failed, 'recordId'), { [unknown]: 'NotFound', [foreign!]: 'NotFound', [adminOnly!]: 'Forbidden' });
      assert.equal((await getRecord(live!)).json().isDeleted, false);
      expectError(await getRecord(trashed!), 410, 'Gone');
    });

    test('records of a trashed entity are Gone for every bulk action', async () => {
      const entity = await newEntity();
      const [id] = await createMany([{ name: 'x' }], account, entity);
      await t.call(account, 'DELETE', `${V1}/entities/${entity}`);
      for (const [path, body] of [
        ['/update', { records: [{ recordId: id, name: 'y' }] }],
        ['/delete', { recordIds: [id] }],
        ['/delete', { recordIds: [id], permanent: true }],
        ['/restore', { recordIds: [id] }],
      ] as const) {
        const res = bulkResult(await bulk(path, body), 1);
        assert.equal(res.failed[0].errorCode, 'Gone', `${path} ${JSON.stringify(body)}`);
      }
    });

    test('permanent delete removes live and trashed records for good and frees their slots', async () => {
      const ids = await createMany(Array.from({ length: 4 }, (_, i) => ({ name: `p${i}` })));
      await t.call(account, 'DELETE', `${V1}/records/${ids[1]}`);
      const used = await recordsUsed();
      const rows = await rowCount();
      const res = bulkResult(await bulk('/delete', { recordIds: ids.slice(0, 3), permanent: true }), 3);
      assert.equal(res.succeeded, 3);
      for (const id of ids.slice(0, 3)) expectError(await getRecord(id), 404, 'NotFound');
      assert.equal((await getRecord(ids[3]!)).statusCode, 200);
      assert.equal(await recordsUsed(), used - 3);
      assert.equal(await rowCount(), rows - 3);
      const trash = (await t.call(account, 'GET', `${V1}/records/trash?entityId=${entityId}&limit=200`)).json().data.map((r: any) => r.recordId);
      assert.ok(!trash.includes(ids[1]));
      // Gone for good: a second permanent delete or a restore finds nothing.
      const again = bulkResult(await bulk('/restore', { recordIds: ids.slice(0, 1) }), 1);
      assert.equal(again.failed[0].errorCode, 'NotFound');
      assert.equal(await recordsUsed(), used - 3);
    });

    test('1001 IDs are a 400; an empty list is a 400; permanent must be a boolean', async () => {
      const ids = Array.from({ length: 1001 }, (_, i) => `CRMRC1260101000000000ABCDEF${String(i).padStart(5, '0')}`);
      expectError(await bulk('/delete', { recordIds: ids }), 400, 'ValidationError', 'recordIds');
      expectError(await bulk('/restore', { recordIds: ids }), 400, 'ValidationError', 'recordIds');
      expectError(await bulk('/delete', { recordIds: [] }), 400, 'ValidationError');
      expectError(await bulk('/delete', { recordIds: ['x'], permanent: 'yes' }), 400, 'ValidationError', 'permanent');
      const ok = bulkResult(await bulk('/delete', { recordIds: ids.slice(0, 1000) }), 1000);
      assert.equal(ok.failed.length, 1000);
      assert.ok(ok.failed.every((f) => f.errorCode === 'NotFound'));
    });
  });
});
