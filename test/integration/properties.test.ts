import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { maskValue, normalizeValue } from '../../src/modules/properties/field-values.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import type { Credentials } from '../helpers/sign.ts';
import { expectError, uniq } from '../helpers/assertions.ts';

const V1 = '/crm-core/v1';
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const PROPERTY_FIELDS = [
  'propertyId', 'accountId', 'workspaceId', 'entityId', 'name', 'fieldType', 'propertyGroupId', 'options', 'isMasked', 'key',
  'createdBy', 'updatedBy', 'dateCreated', 'dateUpdated',
];

const STAGES = [
  { label: '리드', value: 'LEAD', priority: 1, color: '#1E88E5' },
  { label: '진행 중', value: 'IN_PROGRESS', priority: 2 },
  { label: '계약완료', value: 'CLOSED_WON', priority: 3 },
  { label: '실패', value: 'CLOSED_LOST', priority: 4 },
];

describe('properties (API.md §4)', () => {
  let t: TestApp;
  let account: TestAccount;
  let admin: Credentials & { memberId: string };
  let member: Credentials & { memberId: string };

  async function entity(creds: Credentials = account, body: Record<string, unknown> = {}) {
    const res = await t.call(creds, 'POST', `${V1}/entities`, { name: 'Entity', slug: uniq('e'), ...body });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }
  const create = (creds: Credentials, body: Record<string, unknown>) => t.call(creds, 'POST', `${V1}/properties`, body);
  async function property(entityId: string, body: Record<string, unknown> = {}, creds: Credentials = account) {
    const res = await create(creds, { entityId, name: uniq('p'), fieldType: 'TEXT', ...body });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }
  const getEntity = async (id: string, creds: Credentials = account) => (await t.call(creds, 'GET', `${V1}/entities/${id}`)).json();

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
    admin = await t.addMember(account, 'ADMIN');
    member = await t.addMember(account, 'MEMBER');
  });
  after(() => t.close());

  describe('create', () => {
    test('returns the full object; description is omitted until set; options get priority and color', async () => {
      const e = await entity();
      const res = await create(account, { entityId: e.entityId, name: '계약 상태', fieldType: 'DROPDOWN', options: [
        { label: '진행 중', value: 'IN_PROGRESS', priority: 2 },
        { label: '계약완료', value: 'CLOSED_WON', priority: 1, color: '#fff' },
      ] });
      assert.equal(res.statusCode, 201, res.body);
      const p = res.json();
      assert.deepEqual(Object.keys(p).sort(), [...PROPERTY_FIELDS].sort());
      assert.match(p.propertyId, /^CRMPP1\d{15}[A-Za-z0-9]{11}$/);
      assert.equal(p.accountId, account.accountId);
      assert.equal(p.workspaceId, null);
      assert.equal(p.entityId, e.entityId);
      assert.equal(p.fieldType, 'DROPDOWN');
      assert.equal(p.propertyGroupId, null);
      assert.equal(p.key, null);
      assert.equal(p.isMasked, false);
      assert.equal(p.createdBy, account.memberId);
      assert.equal(p.updatedBy, account.memberId);
      assert.match(p.dateCreated, ISO_MS);
      assert.deepEqual(p.options, [
        { label: '계약완료', value: 'CLOSED_WON', priority: 1, color: '#fff' },
        { label: '진행 중', value: 'IN_PROGRESS', priority: 2, color: null },
      ]);
      const described = await property(e.entityId, { description: '설명', key: 'sample_key', propertyGroupId: 'GROUP1' });
      assert.equal(described.description, '설명');
      assert.equal(described.key, 'sample_key');
      assert.equal(described.propertyGroupId, 'GROUP1');
      assert.deepEqual((await t.call(account, 'GET', `${V1}/properties/${p.propertyId}`)).json(), p);
    });

    test('every one of the 12 field types is accepted; others are 400', async () => {
      const e = await entity();
      for (const fieldType of ['TEXT', 'TEXTAREA', 'NUMBER', 'PHONE', 'EMAIL', 'URL', 'CHECKBOX', 'MULTI_CHECKBOX', 'DATE', 'DATETIME', 'DROPDOWN', 'RADIO']) {
        assert.equal((await create(account, { entityId: e.entityId, name: fieldType, fieldType })).statusCode, 201, fieldType);
      }
      expectError(await create(account, { entityId: e.entityId, name: 'x', fieldType: 'CURRENCY' }), 400, 'ValidationError', 'fieldType');
      expectError(await create(account, { entityId: e.entityId, name: 'x', fieldType: 'text' }), 400, 'ValidationError', 'fieldType');
    });

    test('new properties are appended to the entity\'s propertyIds in creation order', async () => {
      const e = await entity();
      const a = await property(e.entityId);
      const b = await property(e.entityId);
      const c = await property(e.entityId);
      assert.deepEqual((await getEntity(e.entityId)).propertyIds, [a.propertyId, b.propertyId, c.propertyId]);
    });

    test('required fields, key pattern and reserved keys are 400 naming the field', async () => {
      const e = await entity();
      expectError(await create(account, { name: 'x', fieldType: 'TEXT' }), 400, 'ValidationError', 'entityId');
      expectError(await create(account, { entityId: e.entityId, fieldType: 'TEXT' }), 400, 'ValidationError', 'name');
      expectError(await create(account, { entityId: e.entityId, name: 'x' }), 400, 'ValidationError', 'fieldType');
      for (const key of ['1abc', '_abc', 'a-b', 'a b', '', `a${'b'.repeat(63)}`, '키']) {
        expectError(await create(account, { entityId: e.entityId, name: uniq('k'), fieldType: 'TEXT', key }), 400, 'ValidationError', 'key');
      }
      for (const key of ['name', 'tags', 'ownerId', 'recordId', 'OWNERID', 'Name', 'dateCreated']) {
        expectError(await create(account, { entityId: e.entityId, name: uniq('k'), fieldType: 'TEXT', key }), 400, 'ValidationError', 'key');
      }
      for (const key of ['contract_amount', 'Amount2', `a${'b'.repeat(62)}`, 'names']) {
        assert.equal((await create(account, { entityId: e.entityId, name: uniq('k'), fieldType: 'TEXT', key })).statusCode, 201, key);
      }
    });

    test('options: only for choice types, unique values and priorities, hex colors', async () => {
      const e = await entity();
      const opt = (o: Record<string, unknown>) => ({ label: 'L', value: 'V', ...o });
      expectError(await create(account, { entityId: e.entityId, name: uniq('o'), fieldType: 'TEXT', options: [opt({})] }), 400, 'ValidationError', 'options');
      expectError(await create(account, { entityId: e.entityId, name: uniq('o'), fieldType: 'DROPDOWN', options: [opt({}), opt({ label: 'M' })] }), 400, 'ValidationError', 'value');
      expectError(await create(account, { entityId: e.entityId, name: uniq('o'), fieldType: 'RADIO', options: [opt({ priority: 1 }), opt({ value: 'W', priority: 1 })] }), 400, 'ValidationError', 'priority');
      for (const color of ['red', '#12345', '#GGGGGG', '123456']) {
        expectError(await create(account, { entityId: e.entityId, name: uniq('o'), fieldType: 'DROPDOWN', options: [opt({ color })] }), 400, 'ValidationError', 'color');
      }
      expectError(await create(account, { entityId: e.entityId, name: uniq('o'), fieldType: 'DROPDOWN', options: [{ label: 'x' }] }), 400, 'ValidationError', 'value');
      expectError(await create(account, { entityId: e.entityId, name: uniq('o'), fieldType: 'DROPDOWN', options: [opt({ priority: -1 })] }), 400, 'ValidationError', 'priority');
      const ok = await property(e.entityId, { fieldType: 'MULTI_CHECKBOX', options: [opt({ color: '#abc' }), opt({ value: 'W', color: '#A1B2C3' })] });
      assert.deepEqual(ok.options.map((o: any) => o.priority), [1, 2]);
      assert.equal((await create(account, { entityId: e.entityId, name: uniq('o'), fieldType: 'DROPDOWN', options: [] })).statusCode, 201);
    });

    test('name and key are unique per entity (409 ConflictException); other entities and deleted ones do not count', async () => {
      const e = await entity();
      const other = await entity();
      const p = await property(e.entityId, { name: 'Stage', key: 'stage' });
      expectError(await create(account, { entityId: e.entityId, name: 'Stage', fieldType: 'NUMBER' }), 409, 'ConflictException', 'name');
      expectError(await create(account, { entityId: e.entityId, name: 'Stage 2', fieldType: 'TEXT', key: 'stage' }), 409, 'ConflictException', 'key');
      await property(other.entityId, { name: 'Stage', key: 'stage' });
      assert.equal((await t.call(account, 'DELETE', `${V1}/properties/${p.propertyId}`)).statusCode, 200);
      await property(e.entityId, { name: 'Stage', key: 'stage' });
    });

    test('concurrent creates of one name: one wins, the rest are 409', async () => {
      const e = await entity();
      const results = await Promise.all(Array.from({ length: 6 }, () => create(account, { entityId: e.entityId, name: 'Same', fieldType: 'TEXT' })));
      assert.equal(results.filter((r) => r.statusCode === 201).length, 1);
      for (const r of results.filter((r) => r.statusCode !== 201)) expectError(r, 409, 'ConflictException');
      assert.equal((await getEntity(e.entityId)).propertyIds.length, 1);
    });

    test('OWNER only; the entity must exist (404), be live (410) and visible', async () => {
      const e = await entity();
      expectError(await create(admin, { entityId: e.entityId, name: 'x', fieldType: 'TEXT' }), 403, 'Forbidden');
      expectError(await create(member, { entityId: e.entityId, name: 'x', fieldType: 'TEXT' }), 403, 'Forbidden');
      expectError(await create(account, { entityId: 'CRMET1260423081530123XYZ11122233', name: 'x', fieldType: 'TEXT' }), 404, 'NotFound', 'entityId');
      const other = await t.newAccount();
      const theirs = await entity(other);
      expectError(await create(account, { entityId: theirs.entityId, name: 'x', fieldType: 'TEXT' }), 404, 'NotFound');
      const trashed = await entity();
      await t.call(account, 'DELETE', `${V1}/entities/${trashed.entityId}`);
      expectError(await create(account, { entityId: trashed.entityId, name: 'x', fieldType: 'TEXT' }), 410, 'Gone');
    });
  });

  describe('bulk create', () => {
    test('creates items across entities in one go, answering Solapi\'s short shape', async () => {
      const a = await entity();
      const b = await entity();
      const res = await t.call(account, 'POST', `${V1}/properties/bulk`, { properties: [
        { entityId: a.entityId, name: '계약 금액', fieldType: 'NUMBER', key: 'contract_amount' },
        { entityId: a.entityId, name: '담당자', fieldType: 'TEXT' },
        { entityId: b.entityId, name: '단계', fieldType: 'DROPDOWN', propertyGroupId: 'G1', options: STAGES },
      ] });
      assert.equal(res.statusCode, 201, res.body);
      const items = res.json();
      assert.equal(items.length, 3);
      assert.deepEqual(Object.keys(items[0]).sort(), ['dateCreated', 'entityId', 'fieldType', 'key', 'name', 'propertyId']);
      assert.deepEqual(Object.keys(items[1]).sort(), ['dateCreated', 'entityId', 'fieldType', 'name', 'propertyId']);
      assert.deepEqual(Object.keys(items[2]).sort(), ['dateCreated', 'entityId', 'fieldType', 'name', 'propertyGroupId', 'propertyId']);
      assert.equal(items[0].key, 'contract_amount');
      assert.deepEqual((await getEntity(a.entityId)).propertyIds, [items[0].propertyId, items[1].propertyId]);
      assert.deepEqual((await getEntity(b.entityId)).propertyIds, [items[2].propertyId]);
      assert.equal((await t.call(account, 'GET', `${V1}/properties/${items[2].propertyId}`)).json().options.length, 4);
    });

    test('all or nothing: a collision, a bad item or an unknown entity leaves nothing behind', async () => {
      const a = await entity();
      const b = await entity();
      await property(a.entityId, { name: 'Existing' });
      const count = async () => (await t.call(account, 'GET', `${V1}/properties?entityId=${b.entityId}`)).json().length;
      const bulk = (properties: unknown[]) => t.call(account, 'POST', `${V1}/properties/bulk`, { properties });

      let res = await bulk([{ entityId: b.entityId, name: 'ok', fieldType: 'TEXT' }, { entityId: a.entityId, name: 'Existing', fieldType: 'TEXT' }]);
      expectError(res, 409, 'ConflictException', '/properties/1/name');
      assert.equal(res.json().details[0].index, 1);
      res = await bulk([{ entityId: b.entityId, name: 'x', fieldType: 'TEXT', key: 'k1' }, { entityId: b.entityId, name: 'y', fieldType: 'TEXT', key: 'k1' }]);
      expectError(res, 409, 'ConflictException', '/properties/1/key');
      res = await bulk([{ entityId: b.entityId, name: 'x', fieldType: 'TEXT' }, { entityId: b.entityId, name: 'x', fieldType: 'NUMBER' }]);
      expectError(res, 409, 'ConflictException', '/properties/1/name');
      res = await bulk([{ entityId: b.entityId, name: 'x', fieldType: 'TEXT' }, { entityId: b.entityId, name: 'y', fieldType: 'TEXT', key: 'tags' }]);
      expectError(res, 400, 'ValidationError', '/properties/1/key');
      res = await bulk([{ entityId: b.entityId, name: 'x', fieldType: 'TEXT' }, { entityId: b.entityId, name: 'y', fieldType: 'BOGUS' }]);
      expectError(res, 400, 'ValidationError', '/properties/1/fieldType');
      res = await bulk([{ entityId: b.entityId, name: 'x', fieldType: 'TEXT' }, { entityId: 'CRMET1260423081530123XYZ11122233', name: 'y', fieldType: 'TEXT' }]);
      expectError(res, 404, 'NotFound', '/properties/1/entityId');
      assert.equal(await count(), 0);
      assert.deepEqual((await getEntity(b.entityId)).propertyIds, []);
    });

    test('1 to 500 items; OWNER only', async () => {
      const e = await entity();
      expectError(await t.call(account, 'POST', `${V1}/properties/bulk`, { properties: [] }), 400, 'ValidationError', 'properties');
      const many = Array.from({ length: 501 }, (_, i) => ({ entityId: e.entityId, name: `p${i}`, fieldType: 'TEXT' }));
      expectError(await t.call(account, 'POST', `${V1}/properties/bulk`, { properties: many }), 400, 'ValidationError', 'properties');
      expectError(await t.call(admin, 'POST', `${V1}/properties/bulk`, { properties: many.slice(0, 1) }), 403, 'Forbidden');
    });

    test('bulk bodies may exceed the 1 MiB default (bulk limit 10 MiB)', async () => {
      const e = await entity();
      const options = Array.from({ length: 10 }, (_, i) => ({ label: `${i}`.padEnd(100, 'l'), value: `${i}`.padEnd(100, 'v') }));
      const properties = Array.from({ length: 500 }, (_, i) => ({ entityId: e.entityId, name: `big ${i}`, fieldType: 'DROPDOWN', options }));
      const body = { properties };
      assert.ok(JSON.stringify(body).length > 1024 * 1024);
      const res = await t.call(account, 'POST', `${V1}/properties/bulk`, body);
      assert.equal(res.statusCode, 201, res.body.slice(0, 500));
      assert.equal(res.json().length, 500);
      assert.equal((await getEntity(e.entityId)).propertyIds.length, 500);
      // The ordinary create keeps the 1 MiB default.
      const huge = await create(account, { entityId: e.entityId, name: 'huge', fieldType: 'TEXT', description: 'x'.repeat(1024 * 1024) });
      expectError(huge, 413, 'PayloadTooLarge');
    });
  });

  describe('list and get', () => {
    test('newest first, entityId and keyword filters, deleted ones hidden, capped at 500', async () => {
      const e = await entity();
      const other = await entity();
      const bulk = await t.call(account, 'POST', `${V1}/properties/bulk`, {
        properties: Array.from({ length: 500 }, (_, i) => ({ entityId: e.entityId, name: `Field ${i}`, fieldType: 'TEXT' })),
      });
      assert.equal(bulk.statusCode, 201, bulk.body);
      const newest = await property(e.entityId, { name: 'Newest Email', fieldType: 'EMAIL' });
      await property(other.entityId, { name: 'elsewhere' });

      const list = (await t.call(account, 'GET', `${V1}/properties?entityId=${e.entityId}`)).json();
      assert.equal(list.length, 500);
      assert.equal(list[0].propertyId, newest.propertyId);
      for (let i = 1; i < list.length; i += 1) assert.ok(list[i - 1].dateCreated >= list[i].dateCreated);
      assert.ok(list.every((p: any) => p.entityId === e.entityId));
      assert.equal((await t.call(account, 'GET', `${V1}/properties?entityId=${e.entityId}&limit=100`)).json().length, 100);
      expectError(await t.call(account, 'GET', `${V1}/properties?entityId=${e.entityId}&limit=501`), 400, 'ValidationError', 'limit');

      const found = (await t.call(account, 'GET', `${V1}/properties?entityId=${e.entityId}&keyword=newest%20EMAIL`)).json();
      assert.deepEqual(found.map((p: any) => p.propertyId), [newest.propertyId]);
      assert.equal((await t.call(account, 'GET', `${V1}/properties?keyword=Field%20499`)).json().length, 1);

      await t.call(account, 'DELETE', `${V1}/properties/${newest.propertyId}`);
      const after = (await t.call(account, 'GET', `${V1}/properties?entityId=${e.entityId}&keyword=newest`)).json();
      assert.deepEqual(after, []);
    });

    test('GET one: 404 unknown or other account, 410 deleted, 410 when the entity is trashed', async () => {
      const e = await entity();
      const p = await property(e.entityId);
      assert.equal((await t.call(member, 'GET', `${V1}/properties/${p.propertyId}`)).statusCode, 200);
      expectError(await t.call(account, 'GET', `${V1}/properties/CRMPP1260423091530123PPP11122233`), 404, 'NotFound');
      const other = await t.newAccount();
      const theirs = await property((await entity(other)).entityId, {}, other);
      expectError(await t.call(account, 'GET', `${V1}/properties/${theirs.propertyId}`), 404, 'NotFound');
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${theirs.propertyId}`, { name: 'x' }), 404, 'NotFound');
      expectError(await t.call(account, 'DELETE', `${V1}/properties/${theirs.propertyId}`), 404, 'NotFound');

      const q = await property(e.entityId);
      await t.call(account, 'DELETE', `${V1}/properties/${q.propertyId}`);
      expectError(await t.call(account, 'GET', `${V1}/properties/${q.propertyId}`), 410, 'Gone');
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${q.propertyId}`, { name: 'x' }), 410, 'Gone');
      expectError(await t.call(account, 'DELETE', `${V1}/properties/${q.propertyId}`), 410, 'Gone');

      await t.call(account, 'DELETE', `${V1}/entities/${e.entityId}`);
      expectError(await t.call(account, 'GET', `${V1}/properties/${p.propertyId}`), 410, 'Gone');
      expectError(await t.call(account, 'GET', `${V1}/properties?entityId=${e.entityId}`), 410, 'Gone');
      assert.ok(!(await t.call(account, 'GET', `${V1}/properties`)).json().some((x: any) => x.entityId === e.entityId));
      await t.call(account, 'POST', `${V1}/entities/${e.entityId}/restore`);
      assert.equal((await t.call(account, 'GET', `${V1}/properties/${p.propertyId}`)).statusCode, 200);
    });

    test('recordAccess governs the entity\'s properties: 403 for one, left out of lists', async () => {
      const restricted = await entity(account, { recordAccess: 'ADMIN_ONLY' });
      const p = await property(restricted.entityId, { name: 'secret field' });
      expectError(await t.call(member, 'GET', `${V1}/properties/${p.propertyId}`), 403, 'Forbidden');
      expectError(await t.call(member, 'GET', `${V1}/properties?entityId=${restricted.entityId}`), 403, 'Forbidden');
      assert.ok(!(await t.call(member, 'GET', `${V1}/properties?keyword=secret`)).json().length);
      assert.equal((await t.call(admin, 'GET', `${V1}/properties?keyword=secret%20field`)).json().length, 1);
      expectError(await t.call(member, 'GET', `${V1}/properties?entityId=CRMET1260423081530123XYZ11122233`), 404, 'NotFound');
    });
  });

  describe('masking (API.md §1.7)', () => {
    test('MEMBERs get options: [] for masked choice properties; ADMIN and OWNER see them', async () => {
      const e = await entity();
      const masked = await property(e.entityId, { fieldType: 'DROPDOWN', isMasked: true, options: STAGES });
      const open = await property(e.entityId, { fieldType: 'RADIO', options: STAGES });
      const maskedText = await property(e.entityId, { fieldType: 'PHONE', isMasked: true });
      assert.equal(masked.options.length, 4);
      const asMember = (await t.call(member, 'GET', `${V1}/properties/${masked.propertyId}`)).json();
      assert.deepEqual(asMember.options, []);
      assert.equal(asMember.isMasked, true);
      assert.equal((await t.call(admin, 'GET', `${V1}/properties/${masked.propertyId}`)).json().options.length, 4);
      assert.equal((await t.call(member, 'GET', `${V1}/properties/${open.propertyId}`)).json().options.length, 4);
      assert.equal((await t.call(member, 'GET', `${V1}/properties/${maskedText.propertyId}`)).json().isMasked, true);
      const listed = (await t.call(member, 'GET', `${V1}/properties?entityId=${e.entityId}`)).json();
      assert.deepEqual(listed.find((p: any) => p.propertyId === masked.propertyId).options, []);
      assert.equal(listed.find((p: any) => p.propertyId === open.propertyId).options.length, 4);
    });
  });

  describe('update', () => {
    test('partial: only what is sent changes; null/"" remove description, group and key', async () => {
      const e = await entity();
      const p = await property(e.entityId, { name: 'Old', description: 'd', key: 'old_key', propertyGroupId: 'G' });
      const res = await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { name: 'New' });
      assert.equal(res.statusCode, 200, res.body);
      const u = res.json();
      assert.equal(u.name, 'New');
      assert.equal(u.description, 'd');
      assert.equal(u.key, 'old_key');
      assert.equal(u.propertyGroupId, 'G');
      assert.equal(u.dateCreated, p.dateCreated);
      const cleared = (await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { description: null, propertyGroupId: null, key: '' })).json();
      assert.ok(!('description' in cleared));
      assert.equal(cleared.propertyGroupId, null);
      assert.equal(cleared.key, null);
      assert.equal((await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { key: 'again' })).json().key, 'again');
      assert.equal((await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { key: null })).json().key, null);
      assert.equal((await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { isMasked: true })).json().isMasked, true);
    });

    test('name/key collisions are 409; reserved and malformed keys 400; entityId cannot move', async () => {
      const e = await entity();
      await property(e.entityId, { name: 'Taken', key: 'taken' });
      const p = await property(e.entityId);
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { name: 'Taken' }), 409, 'ConflictException', 'name');
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { key: 'taken' }), 409, 'ConflictException', 'key');
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { key: 'recordId' }), 400, 'ValidationError', 'key');
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { key: '9lives' }), 400, 'ValidationError', 'key');
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { entityId: e.entityId }), 400, 'ValidationError', 'entityId');
    });

    test('options replace the whole list and are validated; leaving a choice type drops them', async () => {
      const e = await entity();
      const p = await property(e.entityId, { fieldType: 'DROPDOWN', options: STAGES });
      const replaced = (await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { options: [{ label: 'A', value: 'A' }] })).json();
      assert.deepEqual(replaced.options, [{ label: 'A', value: 'A', priority: 1, color: null }]);
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { options: [{ label: 'A', value: 'A' }, { label: 'B', value: 'A' }] }), 400, 'ValidationError', 'value');
      const text = (await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { fieldType: 'TEXT' })).json();
      assert.equal(text.fieldType, 'TEXT');
      assert.deepEqual(text.options, []);
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { options: [{ label: 'A', value: 'A' }] }), 400, 'ValidationError', 'options');
      const back = (await t.call(account, 'PATCH', `${V1}/properties/${p.propertyId}`, { fieldType: 'RADIO', options: STAGES })).json();
      assert.equal(back.options.length, 4);
    });

    test('writes are OWNER only', async () => {
      const e = await entity();
      const p = await property(e.entityId);
      expectError(await t.call(admin, 'PATCH', `${V1}/properties/${p.propertyId}`, { name: 'x' }), 403, 'Forbidden');
      expectError(await t.call(member, 'DELETE', `${V1}/properties/${p.propertyId}`), 403, 'Forbidden');
    });
  });

  describe('delete', () => {
    test('soft: leaves the entity\'s propertyIds, the list and GET (410)', async () => {
      const e = await entity();
      const a = await property(e.entityId);
      const b = await property(e.entityId);
      const res = await t.call(account, 'DELETE', `${V1}/properties/${a.propertyId}`);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { propertyId: a.propertyId, entityId: e.entityId });
      assert.deepEqual((await getEntity(e.entityId)).propertyIds, [b.propertyId]);
      assert.deepEqual((await t.call(account, 'GET', `${V1}/properties?entityId=${e.entityId}`)).json().map((p: any) => p.propertyId), [b.propertyId]);
    });
  });

  describe('entity propertyIds order', () => {
    test('PATCH propertyIds reorders; it must be a permutation of the live properties (400)', async () => {
      const e = await entity();
      const [a, b, c] = [await property(e.entityId), await property(e.entityId), await property(e.entityId)];
      const order = [c.propertyId, a.propertyId, b.propertyId];
      const res = await t.call(member, 'PATCH', `${V1}/entities/${e.entityId}`, { propertyIds: order });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json().propertyIds, order);
      const d = await property(e.entityId);
      assert.deepEqual((await getEntity(e.entityId)).propertyIds, [...order, d.propertyId]);

      const patch = (propertyIds: string[]) => t.call(account, 'PATCH', `${V1}/entities/${e.entityId}`, { propertyIds });
      expectError(await patch([a.propertyId, b.propertyId, c.propertyId]), 400, 'ValidationError', 'propertyIds');
      expectError(await patch([a.propertyId, b.propertyId, c.propertyId, d.propertyId, d.propertyId]), 400, 'ValidationError', 'propertyIds');
      expectError(await patch([a.propertyId, b.propertyId, c.propertyId, d.propertyId, 'CRMPP1260423091530123PPP11122233']), 400, 'ValidationError', 'propertyIds');
      const other = await property((await entity()).entityId);
      expectError(await patch([a.propertyId, b.propertyId, c.propertyId, other.propertyId]), 400, 'ValidationError', 'propertyIds');
      await t.call(account, 'DELETE', `${V1}/properties/${d.propertyId}`);
      expectError(await patch([a.propertyId, b.propertyId, c.propertyId, d.propertyId]), 400, 'ValidationError', 'propertyIds');
      assert.equal((await patch([b.propertyId, c.propertyId, a.propertyId])).statusCode, 200);
    });
  });

  describe('quota properties.maxPerEntity', () => {
    test('per entity; bulk counts every item; deleted properties keep their slot', async () => {
      const fresh = await t.newAccount();
      await t.services.quota.setLimits(fresh.tenant, { 'properties.maxPerEntity': 2 });
      const e = await entity(fresh);
      const other = await entity(fresh);
      const first = await property(e.entityId, {}, fresh);
      await property(e.entityId, {}, fresh);
      expectError(await create(fresh, { entityId: e.entityId, name: 'third', fieldType: 'TEXT' }), 403, 'PlanQuotaExceeded', 'properties.maxPerEntity: 2/2');
      await property(other.entityId, {}, fresh);
      const bulk = await t.call(fresh, 'POST', `${V1}/properties/bulk`, { properties: [
        { entityId: other.entityId, name: 'b1', fieldType: 'TEXT' },
        { entityId: other.entityId, name: 'b2', fieldType: 'TEXT' },
      ] });
      expectError(bulk, 403, 'PlanQuotaExceeded', 'properties.maxPerEntity: 1/2');
      assert.equal((await t.call(fresh, 'GET', `${V1}/properties?entityId=${other.entityId}`)).json().length, 1);
      await t.call(fresh, 'DELETE', `${V1}/properties/${first.propertyId}`);
      expectError(await create(fresh, { entityId: e.entityId, name: 'after delete', fieldType: 'TEXT' }), 403, 'PlanQuotaExceeded');
    });

    test('racing creates never overshoot', async () => {
      const fresh = await t.newAccount();
      await t.services.quota.setLimits(fresh.tenant, { 'properties.maxPerEntity': 3 });
      const e = await entity(fresh);
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => create(fresh, { entityId: e.entityId, name: `r${i}`, fieldType: 'TEXT' })));
      assert.equal(results.filter((r) => r.statusCode === 201).length, 3);
      for (const r of results.filter((r) => r.statusCode !== 201)) expectError(r, 403, 'PlanQuotaExceeded');
      assert.equal((await getEntity(e.entityId, fresh)).propertyIds.length, 3);
    });
  });

  describe('entity viewSettings against its properties (API.md §3)', () => {
    let e: any;
    let stage: any; let radio: any; let amount: any; let weight: any; let due: any; let at: any; let title: any; let tags: any;
    const patch = (body: Record<string, unknown>, creds: Credentials = account) => t.call(creds, 'PATCH', `${V1}/entities/${e.entityId}`, body);

    before(async () => {
      e = await entity();
      stage = await property(e.entityId, { name: 'Stage', fieldType: 'DROPDOWN', options: STAGES });
      radio = await property(e.entityId, { name: 'Tier', fieldType: 'RADIO', options: [{ label: 'Gold', value: 'GOLD', color: '#FFD700' }] });
      amount = await property(e.entityId, { name: 'Amount', fieldType: 'NUMBER' });
      weight = await property(e.entityId, { name: 'Probability', fieldType: 'NUMBER' });
      due = await property(e.entityId, { name: 'Due', fieldType: 'DATE' });
      at = await property(e.entityId, { name: 'Meeting', fieldType: 'DATETIME' });
      title = await property(e.entityId, { name: 'Title', fieldType: 'TEXT' });
      tags = await property(e.entityId, { name: 'Labels', fieldType: 'MULTI_CHECKBOX', options: [{ label: 'a', value: 'a' }] });
    });

    test('a complete board and calendar configuration is stored and merged field by field', async () => {
      const res = await patch({ viewSettings: {
        mode: 'BOARD',
        board: {
          groupByPropertyId: stage.propertyId, sumPropertyId: amount.propertyId, weightPropertyId: weight.propertyId,
          aggregationType: 'SUM', sortByPropertyId: title.propertyId, sortOrder: 'ASC',
          closedWonValues: ['CLOSED_WON'], closedLostValues: ['CLOSED_LOST'], dealRotting: { enabled: true, days: 30 },
        },
        calendar: { datePropertyId: due.propertyId, titlePropertyId: title.propertyId, colorPropertyId: radio.propertyId },
      } }, member);
      assert.equal(res.statusCode, 200, res.body);
      const v = res.json().viewSettings;
      assert.equal(v.mode, 'BOARD');
      assert.equal(v.board.groupByPropertyId, stage.propertyId);
      assert.deepEqual(v.board.closedWonValues, ['CLOSED_WON']);
      assert.equal(v.table.pageSize, 25);
      // A partial patch keeps the rest.
      const again = (await patch({ viewSettings: { calendar: { datePropertyId: at.propertyId }, board: { dealRotting: { days: 7 } } } })).json().viewSettings;
      assert.equal(again.calendar.datePropertyId, at.propertyId);
      assert.equal(again.calendar.titlePropertyId, title.propertyId);
      assert.deepEqual(again.board.dealRotting, { enabled: true, days: 7 });
      assert.equal(again.board.sumPropertyId, amount.propertyId);
      assert.deepEqual((await getEntity(e.entityId)).viewSettings, again);
    });

    test('referenced properties must belong to the entity and have a fitting type (400 naming the field)', async () => {
      const foreign = await property((await entity()).entityId, { fieldType: 'DROPDOWN', options: STAGES });
      const cases: [Record<string, unknown>, string][] = [
        [{ board: { groupByPropertyId: title.propertyId } }, 'groupByPropertyId'],
        [{ board: { groupByPropertyId: tags.propertyId } }, 'groupByPropertyId'],
        [{ board: { groupByPropertyId: foreign.propertyId } }, 'groupByPropertyId'],
        [{ board: { groupByPropertyId: 'CRMPP1260423091530123PPP11122233' } }, 'groupByPropertyId'],
        [{ board: { sumPropertyId: stage.propertyId } }, 'sumPropertyId'],
        [{ board: { weightPropertyId: due.propertyId } }, 'weightPropertyId'],
        [{ board: { sortByPropertyId: foreign.propertyId } }, 'sortByPropertyId'],
        [{ calendar: { datePropertyId: amount.propertyId } }, 'datePropertyId'],
        [{ calendar: { colorPropertyId: title.propertyId } }, 'colorPropertyId'],
        [{ calendar: { titlePropertyId: foreign.propertyId } }, 'titlePropertyId'],
        [{ board: { closedWonValues: ['NOPE'] } }, 'closedWonValues'],
        [{ board: { closedLostValues: ['CLOSED_WON'] } }, 'closedLostValues'],
        [{ board: { closedWonValues: ['LEAD', 'LEAD'] } }, 'closedWonValues'],
        [{ board: { groupByPropertyId: null } }, 'closedWonValues'],
        [{ mode: 'KANBAN' }, 'mode'],
        [{ table: { pageSize: 0 } }, 'pageSize'],
        [{ board: { aggregationType: 'MEDIAN' } }, 'aggregationType'],
        [{ board: { dealRotting: { days: 0 } } }, 'days'],
        [{ board: { bogus: 1 } }, 'bogus'],
      ];
      for (const [viewSettings, field] of cases) {
        expectError(await patch({ viewSettings }), 400, 'ValidationError', field);
      }
    });

    test('BOARD needs a group-by and CALENDAR a date property', async () => {
      const fresh = await entity();
      expectError(await t.call(account, 'PATCH', `${V1}/entities/${fresh.entityId}`, { viewSettings: { mode: 'BOARD' } }), 400, 'ValidationError', 'mode');
      expectError(await t.call(account, 'PATCH', `${V1}/entities/${fresh.entityId}`, { viewSettings: { mode: 'CALENDAR' } }), 400, 'ValidationError', 'mode');
      expectError(await t.call(account, 'POST', `${V1}/entities`, { name: 'x', slug: uniq('v'), viewSettings: { board: { sumPropertyId: amount.propertyId } } }), 400, 'ValidationError', 'sumPropertyId');
    });

    test('a property the settings use cannot be deleted or retyped, nor lose a closed option (409)', async () => {
      expectError(await t.call(account, 'DELETE', `${V1}/properties/${amount.propertyId}`), 409, 'ConflictException', 'sumPropertyId');
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${amount.propertyId}`, { fieldType: 'TEXT' }), 409, 'ConflictException', 'sumPropertyId');
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${stage.propertyId}`, { options: STAGES.slice(0, 3) }), 409, 'ConflictException', 'closedLostValues');
      // A change that still fits is fine: the calendar's DATETIME may become a DATE.
      assert.equal((await t.call(account, 'PATCH', `${V1}/properties/${at.propertyId}`, { fieldType: 'DATE' })).statusCode, 200);
      expectError(await t.call(account, 'PATCH', `${V1}/properties/${at.propertyId}`, { fieldType: 'TEXT' }), 409, 'ConflictException', 'datePropertyId');
      // Unused properties go freely; once the board stops using one, it can go too.
      assert.equal((await t.call(account, 'DELETE', `${V1}/properties/${tags.propertyId}`)).statusCode, 200);
      assert.equal((await patch({ viewSettings: { board: { weightPropertyId: null } } })).statusCode, 200);
      assert.equal((await t.call(account, 'DELETE', `${V1}/properties/${weight.propertyId}`)).statusCode, 200);
    });
  });

  describe('entity insightWidgets (our schema)', () => {
    let e: any;
    let stage: any; let amount: any; let due: any; let tags: any; let flag: any; let text: any;
    const widgets = (insightWidgets: unknown[]) => t.call(account, 'PATCH', `${V1}/entities/${e.entityId}`, { insightWidgets });
    const kpi = { widgetId: 'total', type: 'KPI', title: 'Total', metric: { op: 'count' } };

    before(async () => {
      e = await entity();
      stage = await property(e.entityId, { name: 'Stage', fieldType: 'DROPDOWN', options: STAGES });
      amount = await property(e.entityId, { name: 'Amount', fieldType: 'NUMBER' });
      due = await property(e.entityId, { name: 'Due', fieldType: 'DATE' });
      tags = await property(e.entityId, { name: 'Labels', fieldType: 'MULTI_CHECKBOX', options: [{ label: 'a', value: 'a' }] });
      flag = await property(e.entityId, { name: 'Flag', fieldType: 'CHECKBOX' });
      text = await property(e.entityId, { name: 'Text', fieldType: 'TEXT' });
    });

    test('valid widgets are stored with every optional field filled in', async () => {
      const res = await widgets([
        kpi,
        { widgetId: 'pipeline', type: 'FUNNEL', title: 'Pipeline', metric: { op: 'sum', propertyId: amount.propertyId }, groupBy: stage.propertyId },
        { widgetId: 'by-month', type: 'BAR', title: 'By month', metric: { op: 'avg', propertyId: amount.propertyId }, groupBy: due.propertyId },
        { widgetId: 'by-owner', type: 'PIE', title: 'Owners', metric: { op: 'count' }, groupBy: 'ownerId', segmentId: 'CRMSG1260423081530123SGM11122233' },
        { widgetId: 'by-tag', type: 'BAR', title: 'Tags', metric: { op: 'max', propertyId: amount.propertyId }, groupBy: 'tags' },
        { widgetId: 'labels', type: 'PIE', title: 'Labels', metric: { op: 'min', propertyId: amount.propertyId }, groupBy: tags.propertyId },
        { widgetId: 'weekly', type: 'BAR', title: 'Weekly', metric: { op: 'count' }, groupBy: due.propertyId, dateBucket: 'week' },
        { widgetId: 'flags', type: 'PIE', title: 'Flags', metric: { op: 'count' }, groupBy: flag.propertyId },
      ]);
      assert.equal(res.statusCode, 200, res.body);
      const list = res.json().insightWidgets;
      assert.equal(list.length, 8);
      assert.deepEqual(list[0], { ...kpi, metric: { op: 'count', propertyId: null }, groupBy: null, dateBucket: null, segmentId: null });
      assert.equal(list[2].dateBucket, 'month');
      assert.equal(list[6].dateBucket, 'week');
      assert.equal(list[3].segmentId, 'CRMSG1260423081530123SGM11122233');
      assert.deepEqual((await getEntity(e.entityId)).insightWidgets, list);
      // A used property is protected like view settings.
      expectError(await t.call(account, 'DELETE', `${V1}/properties/${amount.propertyId}`), 409, 'ConflictException', 'insightWidgets');
      assert.equal((await widgets([])).json().insightWidgets.length, 0);
    });

    test('invalid widgets are 400 naming the widget field', async () => {
      const cases: [unknown[], string][] = [
        [[kpi, kpi], '/insightWidgets/1/widgetId'],
        [[{ ...kpi, groupBy: stage.propertyId }], '/insightWidgets/0/groupBy'],
        [[{ ...kpi, type: 'BAR' }], '/insightWidgets/0/groupBy'],
        [[{ ...kpi, metric: { op: 'count', propertyId: amount.propertyId } }], '/insightWidgets/0/metric/propertyId'],
        [[{ ...kpi, metric: { op: 'sum' } }], '/insightWidgets/0/metric/propertyId'],
        [[{ ...kpi, metric: { op: 'sum', propertyId: text.propertyId } }], '/insightWidgets/0/metric/propertyId'],
        [[{ ...kpi, type: 'FUNNEL', groupBy: tags.propertyId }], '/insightWidgets/0/groupBy'],
        [[{ ...kpi, type: 'FUNNEL', groupBy: 'ownerId' }], '/insightWidgets/0/groupBy'],
        [[{ ...kpi, type: 'BAR', groupBy: text.propertyId }], '/insightWidgets/0/groupBy'],
        [[{ ...kpi, type: 'BAR', groupBy: amount.propertyId }], '/insightWidgets/0/groupBy'],
        [[{ ...kpi, type: 'BAR', groupBy: 'CRMPP1260423091530123PPP11122233' }], '/insightWidgets/0/groupBy'],
        [[{ ...kpi, type: 'BAR', groupBy: stage.propertyId, dateBucket: 'day' }], '/insightWidgets/0/dateBucket'],
        [[{ ...kpi, type: 'TABLE' }], 'type'],
        [[{ ...kpi, metric: { op: 'median' } }], 'op'],
        [[{ ...kpi, title: '' }], 'title'],
        [[{ ...kpi, segmentId: 'nope' }], 'segmentId'],
        [[{ ...kpi, extra: true }], 'extra'],
        [[{ type: 'KPI', title: 'x', metric: { op: 'count' } }], 'widgetId'],
        [Array.from({ length: 51 }, (_, i) => ({ ...kpi, widgetId: `w${i}` })), 'insightWidgets'],
      ];
      for (const [list, field] of cases) expectError(await widgets(list), 400, 'ValidationError', field);
    });

    test('on create only property-free widgets fit', async () => {
      const res = await t.call(account, 'POST', `${V1}/entities`, { name: 'w', slug: uniq('w'), insightWidgets: [kpi, { widgetId: 'o', type: 'BAR', title: 'o', metric: { op: 'count' }, groupBy: 'ownerId' }] });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().insightWidgets.length, 2);
      expectError(await t.call(account, 'POST', `${V1}/entities`, { name: 'w', slug: uniq('w'), insightWidgets: [{ ...kpi, metric: { op: 'sum', propertyId: amount.propertyId } }] }), 400, 'ValidationError', 'metric');
    });
  });

  describe('workspaces', () => {
    test('a property lives in its entity\'s workspace; other workspaces cannot see it', async () => {
      const fresh = await t.newAccount();
      const ws1 = await t.services.apiKeys.create(fresh.tenant, fresh.memberId, { workspaceId: 'ws1' });
      const ws2 = await t.services.apiKeys.create(fresh.tenant, fresh.memberId, { workspaceId: 'ws2' });
      const e = await entity(ws1);
      const p = await property(e.entityId, {}, ws1);
      assert.equal(p.workspaceId, 'ws1');
      expectError(await t.call(ws2, 'GET', `${V1}/properties/${p.propertyId}`), 404, 'NotFound');
      expectError(await create(ws2, { entityId: e.entityId, name: 'x', fieldType: 'TEXT' }), 404, 'NotFound');
      assert.deepEqual((await t.call(ws2, 'GET', `${V1}/properties`)).json(), []);
      assert.equal((await t.call(ws1, 'GET', `${V1}/properties`)).json().length, 1);
      assert.equal((await t.call(fresh, 'GET', `${V1}/properties/${p.propertyId}`)).statusCode, 200);
      const shared = await entity(fresh);
      assert.equal((await property(shared.entityId, {}, ws2)).workspaceId, null);
    });
  });

  describe('field value rules (shared with records, API.md §4)', () => {
    const good = (fieldType: any, value: unknown, expected: unknown = value, optionValues?: string[]) => {
      const r = normalizeValue({ fieldType, optionValues }, value);
      assert.deepEqual(r, { ok: true, value: expected }, `${fieldType} ${JSON.stringify(value)}`);
    };
    const bad = (fieldType: any, value: unknown, optionValues?: string[]) => {
      const r = normalizeValue({ fieldType, optionValues }, value);
      assert.equal(r.ok, false, `${fieldType} ${JSON.stringify(value)} should be refused`);
    };

    test('null clears every type', () => {
      for (const type of ['TEXT', 'NUMBER', 'DATE', 'DROPDOWN', 'MULTI_CHECKBOX', 'CHECKBOX']) good(type, null);
    });

    test('text types', () => {
      good('TEXT', 'hello');
      bad('TEXT', 5);
      bad('TEXT', 'x'.repeat(2001));
      good('TEXTAREA', 'x'.repeat(2001));
      good('EMAIL', ' Hong@Example.COM ', 'hong@example.com');
      for (const v of ['hong', 'a@b', 'a b@c.d', 3]) bad('EMAIL', v);
      good('URL', 'https://Example.com/a?b=1', 'https://example.com/a?b=1');
      for (const v of ['example.com', 'ftp://x.y/', 'javascript:alert(1)', '']) bad('URL', v);
      good('PHONE', '010-1234-5678', '01012345678');
      good('PHONE', '+82 (10) 1234.5678', '+821012345678');
      for (const v of ['123', 'call me', '+', 12345678]) bad('PHONE', v);
    });

    test('numbers, booleans, dates', () => {
      good('NUMBER', 0);
      good('NUMBER', -1.5);
      for (const v of ['1', Number.NaN, Infinity, true]) bad('NUMBER', v);
      good('CHECKBOX', false);
      bad('CHECKBOX', 'true');
      good('DATE', '2026-02-28');
      for (const v of ['2026-02-30', '2026-2-3', '2026-02-28T00:00:00Z', 20260228]) bad('DATE', v);
      good('DATETIME', '2026-04-20T19:00:00+09:00', '2026-04-20T10:00:00.000Z');
      good('DATETIME', '2026-04-20T10:00:00.5Z', '2026-04-20T10:00:00.500Z');
      for (const v of ['2026-04-20', '2026-04-20T10:00:00', '2026-02-30T10:00:00Z', 'yesterday']) bad('DATETIME', v);
    });

    test('choices', () => {
      const values = ['A', 'B'];
      good('DROPDOWN', 'A', 'A', values);
      bad('DROPDOWN', 'C', values);
      bad('RADIO', ['A'], values);
      good('MULTI_CHECKBOX', ['B', 'A'], ['B', 'A'], values);
      good('MULTI_CHECKBOX', [], [], values);
      bad('MULTI_CHECKBOX', ['A', 'A'], values);
      bad('MULTI_CHECKBOX', ['C'], values);
      bad('MULTI_CHECKBOX', 'A', values);
    });

    test('masking for MEMBERs', () => {
      assert.equal(maskValue('PHONE', '01012345678'), '010-****-5678');
      assert.equal(maskValue('PHONE', '010-1234-5678'), '010-****-5678');
      assert.equal(maskValue('EMAIL', 'hong@example.com'), 'h***@example.com');
      assert.equal(maskValue('TEXT', '서울시 강남구'), '***');
      assert.equal(maskValue('NUMBER', 42), '***');
      assert.equal(maskValue('TEXT', null), null);
    });

    test('masking keeps most of a phone number hidden whatever its length (docs/masking.md)', () => {
      assert.equal(maskValue('PHONE', '+821012345678'), '821-****-5678');
      assert.equal(maskValue('PHONE', '0212345678'), '021-****-5678');
      assert.equal(maskValue('PHONE', '123456789'), '****-6789');
      assert.equal(maskValue('PHONE', '1234567'), '****-4567');
      assert.equal(maskValue('PHONE', '12'), '***');
      assert.equal(maskValue('EMAIL', 'a@b.co'), 'a***@b.co');
      assert.equal(maskValue('EMAIL', 'not-an-address'), '***');
      assert.equal(maskValue('CHECKBOX', false), '***');
      assert.equal(maskValue('MULTI_CHECKBOX', ['A']), '***');
      assert.equal(maskValue('DATE', '2026-04-20'), '***');
    });
  });
});
