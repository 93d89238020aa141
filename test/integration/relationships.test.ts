import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { purgeExpiredTrash } from '../../src/modules/trash/trash.purge.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { systemDb } from '../../src/db/tenant.ts';
import { expectError, uniq } from '../helpers/assertions.ts';
import type { Credentials } from '../helpers/sign.ts';

const V1 = '/crm-core/v1';
const TYPE_FIELDS = ['relationshipTypeId', 'accountId', 'workspaceId', 'name', 'sourceEntityId', 'targetEntityId', 'sourceLabel', 'targetLabel', 'description', 'dateCreated', 'dateUpdated'];
const LINK_FIELDS = ['relationshipId', 'accountId', 'workspaceId', 'relationshipTypeId', 'sourceEntityId', 'sourceRecordId', 'targetEntityId', 'targetRecordId', 'metadata', 'dateCreated', 'dateUpdated'];

describe('relationship types and relationships (API.md §8)', () => {
  let t: TestApp;
  let account: TestAccount;
  let member: Credentials & { memberId: string };

  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, creds: Credentials = account) => t.call(creds, method, `${V1}${path}`, body);
  async function ok(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, creds: Credentials = account) {
    const res = await call(method, path, body, creds);
    assert.ok(res.statusCode === 200 || res.statusCode === 201, `${method} ${path}: ${res.statusCode} ${res.body}`);
    return res.json();
  }
  const entity = async (name = 'E') => (await ok('POST', '/entities', { name, slug: uniq('e') })).entityId as string;
  const record = async (entityId: string, name = uniq('r'), data: Record<string, unknown> = {}) => (await ok('POST', '/records', { entityId, name, data })).recordId as string;
  const newType = async (sourceEntityId: string, targetEntityId: string, extra: Record<string, unknown> = {}) =>
    ok('POST', '/relationships/types', { name: uniq('type'), sourceEntityId, targetEntityId, ...extra });
  const link = (typeId: string, s: [string, string], tg: [string, string], metadata?: unknown) =>
    call('POST', '/relationships', { relationshipTypeId: typeId, sourceEntityId: s[0], sourceRecordId: s[1], targetEntityId: tg[0], targetRecordId: tg[1], ...(metadata === undefined ? {} : { metadata }) });
  async function used(limit: string): Promise<number> {
    return (await ok('GET', '/usage')).limits.find((l: { key: string }) => l.key === limit).used;
  }

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
    member = await t.addMember(account, 'MEMBER');
  });
  after(() => t.close());

  describe('types', () => {
    test('create (MEMBER may) returns exactly the documented fields; labels are omitted when never set', async () => {
      const [emp, com] = [await entity('직원'), await entity('회사')];
      const res = await call('POST', '/relationships/types', { name: '소속사', sourceEntityId: emp, targetEntityId: com, sourceLabel: '직원', targetLabel: '회사', description: '직원과 소속 회사의 관계' }, member);
      assert.equal(res.statusCode, 201, res.body);
      const type = res.json();
      assert.deepEqual(Object.keys(type).sort(), [...TYPE_FIELDS].sort());
      assert.match(type.relationshipTypeId, /^CRMRT1\d{15}[A-Za-z0-9]{11}$/);
      assert.equal(type.accountId, account.accountId);
      assert.equal(type.workspaceId, null);
      assert.deepEqual((await ok('GET', `/relationships/types/${type.relationshipTypeId}`)), type);
      const bare = await newType(emp, com);
      assert.ok(!('sourceLabel' in bare) && !('description' in bare));
    });

    test('bad input: 400 for schema, 404 for unknown entities, 410 for trashed ones', async () => {
      const e = await entity();
      expectError(await call('POST', '/relationships/types', { sourceEntityId: e, targetEntityId: e }), 400, 'ValidationError', 'name');
      expectError(await call('POST', '/relationships/types', { name: 'x', sourceEntityId: e, targetEntityId: e, extra: 1 }), 400, 'ValidationError', 'extra');
      expectError(await call('POST', '/relationships/types', { name: 'x', sourceEntityId: e, targetEntityId: 'CRMET1260101000000000ABCDEFGHIJK' }), 404, 'NotFound');
      const trashed = await entity();
      await ok('DELETE', `/entities/${trashed}`);
      expectError(await call('POST', '/relationships/types', { name: 'x', sourceEntityId: e, targetEntityId: trashed }), 410, 'Gone');
    });

    test('(name, source, target) is unique → 409 ConflictException, also for concurrent creates; other directions are other types', async () => {
      const [a, b] = [await entity(), await entity()];
      const body = { name: 'works at', sourceEntityId: a, targetEntityId: b };
      const answers = await Promise.all(Array.from({ length: 6 }, () => call('POST', '/relationships/types', body)));
      const statuses = answers.map((r) => r.statusCode).sort();
      assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409], answers.map((r) => r.body).join('\n'));
      for (const r of answers.filter((x) => x.statusCode === 409)) expectError(r, 409, 'ConflictException');
      assert.equal((await call('POST', '/relationships/types', { ...body, sourceEntityId: b, targetEntityId: a })).statusCode, 201);
      assert.equal((await ok('GET', `/relationships/types?entityId=${a}`)).length, 2);
    });

    test('quota relationshipTypes.maxPerEntity counts per source entity → 403 PlanQuotaExceeded', async () => {
      const other = await t.newAccount();
      const calls = (path: string, body: unknown) => t.call(other, 'POST', `${V1}${path}`, body);
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) ids.push((await (await calls('/entities', { name: 'E', slug: uniq('q') })).json()).entityId);
      await t.services.quota.setLimits(other.tenant, { 'relationshipTypes.maxPerEntity': 2 });
      for (const name of ['a', 'b']) assert.equal((await calls('/relationships/types', { name, sourceEntityId: ids[0], targetEntityId: ids[1] })).statusCode, 201);
      expectError(await calls('/relationships/types', { name: 'c', sourceEntityId: ids[0], targetEntityId: ids[1] }), 403, 'PlanQuotaExceeded', 'relationshipTypes.maxPerEntity: 2/2');
      // Another source entity has its own allowance.
      assert.equal((await calls('/relationships/types', { name: 'c', sourceEntityId: ids[1], targetEntityId: ids[0] })).statusCode, 201);
    });

    test('list by entity (source or target), patch name/labels, entity IDs immutable', async () => {
      const [a, b, c] = [await entity(), await entity(), await entity()];
      const ab = await newType(a, b, { sourceLabel: 's' });
      const ca = await newType(c, a);
      await newType(b, c);
      assert.deepEqual((await ok('GET', `/relationships/types?entityId=${a}`)).map((x: any) => x.relationshipTypeId), [ab.relationshipTypeId, ca.relationshipTypeId]);
      expectError(await call('GET', '/relationships/types?entityId=CRMET1260101000000000ABCDEFGHIJK'), 404, 'NotFound');

      const patched = await ok('PATCH', `/relationships/types/${ab.relationshipTypeId}`, { name: 'renamed', targetLabel: 't', sourceLabel: null, sourceEntityId: a });
      assert.equal(patched.name, 'renamed');
      assert.equal(patched.targetLabel, 't');
      assert.ok(!('sourceLabel' in patched));
      assert.equal(patched.sourceEntityId, a);
      expectError(await call('PATCH', `/relationships/types/${ab.relationshipTypeId}`, { targetEntityId: c }), 400, 'ValidationError', 'targetEntityId');
      expectError(await call('PATCH', `/relationships/types/${ab.relationshipTypeId}`, {}), 400, 'ValidationError');
      expectError(await call('PATCH', '/relationships/types/CRMRT1260101000000000ABCDEFGHIJK', { name: 'x' }), 404, 'NotFound');
    });

    test('delete: 409 while relationships exist; cascade=true removes them and gives the slots back', async () => {
      const [a, b] = [await entity(), await entity()];
      const type = await newType(a, b);
      const [r1, r2, r3] = [await record(a), await record(b), await record(b)];
      for (const target of [r2, r3]) assert.equal((await link(type.relationshipTypeId, [a, r1], [b, target])).statusCode, 201);
      const before = await used('relationships.max');
      expectError(await call('DELETE', `/relationships/types/${type.relationshipTypeId}`), 409, 'ConflictException', '2 relationship');
      assert.deepEqual(await ok('DELETE', `/relationships/types/${type.relationshipTypeId}?cascade=true`), { relationshipTypeId: type.relationshipTypeId, deletedRelationships: 2 });
      assert.equal(await used('relationships.max'), before - 2);
      expectError(await call('GET', `/relationships/types/${type.relationshipTypeId}`), 404, 'NotFound');
      const unused = await newType(a, b);
      assert.deepEqual(await ok('DELETE', `/relationships/types/${unused.relationshipTypeId}`), { relationshipTypeId: unused.relationshipTypeId, deletedRelationships: 0 });
    });

    test('recordAccess of either entity governs the type', async () => {
      const [open, admins] = [await entity(), await entity()];
      await ok('PATCH', `/entities/${admins}`, { recordAccess: 'ADMIN_ONLY' });
      const type = await newType(open, admins);
      expectError(await call('GET', `/relationships/types/${type.relationshipTypeId}`, undefined, member), 403, 'Forbidden');
      assert.ok(!(await ok('GET', `/relationships/types?entityId=${open}`, undefined, member)).some((x: any) => x.relationshipTypeId === type.relationshipTypeId));
    });
  });

  describe('relationships', () => {
    let emp: string;
    let com: string;
    let typeId: string;

    before(async () => {
      [emp, com] = [await entity('People'), await entity('Companies')];
      typeId = (await newType(emp, com)).relationshipTypeId;
    });

    test('create: exactly the documented fields, metadata {} by default; reversed ends are normalised', async () => {
      const [p, c] = [await record(emp), await record(com)];
      const res = await link(typeId, [emp, p], [com, c]);
      assert.equal(res.statusCode, 201, res.body);
      const rel = res.json();
      assert.deepEqual(Object.keys(rel).sort(), [...LINK_FIELDS].sort());
      assert.match(rel.relationshipId, /^CRMRL1\d{15}[A-Za-z0-9]{11}$/);
      assert.deepEqual(rel.metadata, {});
      assert.deepEqual(await ok('GET', `/relationships/${rel.relationshipId}`), rel);

      const [p2, c2] = [await record(emp), await record(com)];
      const reversed = (await link(typeId, [com, c2], [emp, p2], { role: 'primary', isPrimary: true })).json();
      assert.equal(reversed.sourceEntityId, emp);
      assert.equal(reversed.sourceRecordId, p2);
      assert.equal(reversed.targetRecordId, c2);
      assert.deepEqual(reversed.metadata, { role: 'primary', isPrimary: true });
      // The same pair, either way round, is a duplicate.
      expectError(await link(typeId, [emp, p2], [com, c2]), 409, 'ConflictException');
      expectError(await link(typeId, [com, c2], [emp, p2]), 409, 'ConflictException');
    });

    test('concurrent duplicate creates: exactly one 201, the others 409', async () => {
      const [p, c] = [await record(emp), await record(com)];
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? link(typeId, [com, c], [emp, p]) : link(typeId, [emp, p], [com, c]))));
      assert.deepEqual(answers.map((r) => r.statusCode).sort(), [201, 409, 409, 409, 409, 409], answers.map((r) => r.body).join('\n'));
    });

    test('bad ends: self-link 400, wrong entity 400, unknown 404, trashed 410, entities not of the type 400', async () => {
      const self = await entity();
      const selfType = (await newType(self, self)).relationshipTypeId;
      const r = await record(self);
      expectError(await link(selfType, [self, r], [self, r]), 400, 'ValidationError', 'itself');
      const [p, c] = [await record(emp), await record(com)];
      expectError(await link(typeId, [emp, c], [com, p]), 400, 'ValidationError', 'belongs to entity');
      expectError(await link(typeId, [emp, p], [com, 'CRMRC1260101000000000ABCDEFGHIJK']), 404, 'NotFound');
      expectError(await link(typeId, [emp, p], [self, r]), 400, 'ValidationError', 'sourceEntityId/targetEntityId');
      const gone = await record(com);
      await ok('DELETE', `/records/${gone}`);
      expectError(await link(typeId, [emp, p], [com, gone]), 410, 'Gone');
      expectError(await link('CRMRT1260101000000000ABCDEFGHIJK', [emp, p], [com, c]), 404, 'NotFound');
      expectError(await link(typeId, [emp, p], [com, c], ['not', 'an', 'object']), 400, 'ValidationError', 'metadata');
      expectError(await link(typeId, [emp, p], [com, c], { blob: 'x'.repeat(17_000) }), 400, 'ValidationError', 'metadata');
    });

    test('patch replaces metadata wholesale (seed 003), records immutable; delete → {relationshipId}, then 404', async () => {
      const [p, c] = [await record(emp), await record(com)];
      const rel = (await link(typeId, [emp, p], [com, c], { role: 'primary', isPrimary: true, notes: 'x' })).json();
      const patched = await ok('PATCH', `/relationships/${rel.relationshipId}`, { metadata: { role: 'secondary', notes: '2차 담당' } });
      assert.deepEqual(patched.metadata, { role: 'secondary', notes: '2차 담당' });
      assert.ok(patched.dateUpdated >= rel.dateUpdated);
      assert.deepEqual((await ok('GET', `/relationships/${rel.relationshipId}`)).metadata, { role: 'secondary', notes: '2차 담당' });
      assert.deepEqual((await ok('PATCH', `/relationships/${rel.relationshipId}`, { metadata: { role: 'x' }, sourceRecordId: p })).metadata, { role: 'x' });
      expectError(await call('PATCH', `/relationships/${rel.relationshipId}`, { metadata: {}, targetRecordId: p }), 400, 'ValidationError', 'targetRecordId');
      expectError(await call('PATCH', `/relationships/${rel.relationshipId}`, {}), 400, 'ValidationError', 'metadata');

      const before = await used('relationships.max');
      assert.deepEqual(await ok('DELETE', `/relationships/${rel.relationshipId}`), { relationshipId: rel.relationshipId });
      assert.equal(await used('relationships.max'), before - 1);
      expectError(await call('DELETE', `/relationships/${rel.relationshipId}`), 404, 'NotFound');
      expectError(await call('GET', `/relationships/${rel.relationshipId}`), 404, 'NotFound');
      expectError(await call('PATCH', `/relationships/${rel.relationshipId}`, { metadata: {} }), 404, 'NotFound');
    });

    test('GET /relationships/list: names (ID when unnamed), filters, keyset pages that neither skip nor repeat', async () => {
      const [a, b] = [await entity(), await entity()];
      const type = (await newType(a, b)).relationshipTypeId;
      const source = await record(a, '김민준');
      const unnamed = (await ok('POST', '/records', { entityId: b })).recordId;
      const targets = [unnamed, ...(await Promise.all([1, 2, 3, 4].map((i) => record(b, `t${i}`))))];
      for (const target of targets) assert.equal((await link(type, [a, source], [b, target])).statusCode, 201);

      const first = await ok('GET', `/relationships/list?relationshipTypeId=${type}&limit=2`);
      assert.equal(first.data.length, 2);
      assert.ok(first.nextKey);
      // A link added between pages comes first in newest-first order: it never shifts later pages.
      const late = await record(b, 'late');
      await link(type, [a, source], [b, late]);
      const seen = [...first.data];
      for (let key = first.nextKey; key;) {
        const page = await ok('GET', `/relationships/list?relationshipTypeId=${type}&limit=2&startKey=${key}`);
        seen.push(...page.data);
        key = page.nextKey;
      }
      assert.deepEqual(seen.map((x: any) => x.targetRecordId).sort(), [...targets].sort());
      const byTarget = new Map(seen.map((x: any) => [x.targetRecordId, x]));
      assert.equal(byTarget.get(unnamed).targetRecordName, unnamed);
      assert.equal(byTarget.get(targets[1]).targetRecordName, 't1');
      assert.equal(byTarget.get(targets[1]).sourceRecordName, '김민준');

      assert.equal((await ok('GET', `/relationships/list?entityId=${b}`)).data.length, 6);
      assert.equal((await ok('GET', `/relationships/list?recordId=${late}`)).data.length, 1);
      assert.equal((await ok('GET', `/relationships/list?recordId=${source}&relationshipTypeId=${type}`)).data.length, 6);
      assert.equal((await ok('GET', `/relationships/type/${type}`)).length, 6);
      expectError(await call('GET', '/relationships/list?limit=101'), 400, 'ValidationError', 'limit');
      expectError(await call('GET', '/relationships/list?startKey=garbage'), 400, 'ValidationError', 'startKey');
      expectError(await call('GET', `/relationships/list?recordId=CRMRC1260101000000000ABCDEFGHIJK`), 404, 'NotFound');
      expectError(await call('GET', '/relationships/type/CRMRT1260101000000000ABCDEFGHIJK'), 404, 'NotFound');
    });

    test('quota relationships.max holds for single and bulk creates; a refused bulk writes nothing', async () => {
      const other = await t.newAccount();
      const as = (method: 'GET' | 'POST', path: string, body?: unknown) => t.call(other, method, `${V1}${path}`, body);
      const ent = async () => (await as('POST', '/entities', { name: 'E', slug: uniq('q') })).json().entityId;
      const [a, b] = [await ent(), await ent()];
      const type = (await as('POST', '/relationships/types', { name: 't', sourceEntityId: a, targetEntityId: b })).json().relationshipTypeId;
      const rec = async (entityId: string) => (await as('POST', '/records', { entityId })).json().recordId;
      const sources = [await rec(a), await rec(a)];
      const targets = [await rec(b), await rec(b)];
      await t.services.quota.setLimits(other.tenant, { 'relationships.max': 3 });
      const bulk = (s: string[]) => as('POST', '/relationships/bulk', { relationshipTypeId: type, sourceEntityId: a, targetEntityId: b, sourceRecordIds: s, targetRecordIds: targets });
      expectError(await bulk(sources), 403, 'PlanQuotaExceeded', 'relationships.max');
      assert.equal((await as('GET', `/relationships/list?relationshipTypeId=${type}`)).json().data.length, 0, 'nothing written');
      assert.deepEqual((await bulk([sources[0]])).json(), { created: 2, skipped: 0 });
      const one = (s: string, tg: string) => as('POST', '/relationships', { relationshipTypeId: type, sourceEntityId: a, sourceRecordId: s, targetEntityId: b, targetRecordId: tg });
      assert.equal((await one(sources[1], targets[0])).statusCode, 201);
      expectError(await one(sources[1], targets[1]), 403, 'PlanQuotaExceeded', 'relationships.max: 3/3');
    });
  });

  describe('bulk', () => {
    let a: string;
    let b: string;
    let typeId: string;
    let sources: string[];
    let targets: string[];
    const body = (extra: Record<string, unknown>) => ({ relationshipTypeId: typeId, sourceEntityId: a, targetEntityId: b, ...extra });

    before(async () => {
      [a, b] = [await entity(), await entity()];
      typeId = (await newType(a, b)).relationshipTypeId;
      sources = await Promise.all(['alpha', 'beta', 'gamma'].map((n) => record(a, n)));
      targets = await Promise.all(['x', 'y'].map((n) => record(b, n)));
    });

    test('sources × targets; repeats are skipped; reversed entities are normalised', async () => {
      assert.deepEqual(await ok('POST', '/relationships/bulk', body({ sourceRecordIds: sources.slice(0, 2), targetRecordIds: targets })), { created: 4, skipped: 0 });
      assert.deepEqual(await ok('POST', '/relationships/bulk', body({ sourceRecordIds: [...sources, sources[0]], targetRecordIds: targets })), { created: 2, skipped: 4 });
      const reversed = await ok('POST', '/relationships/bulk', { relationshipTypeId: typeId, sourceEntityId: b, targetEntityId: a, sourceRecordIds: targets, targetRecordIds: [sources[0]] });
      assert.deepEqual(reversed, { created: 0, skipped: 2 });
      const links = await ok('GET', `/relationships/type/${typeId}`);
      assert.equal(links.length, 6);
      assert.ok(links.every((l: any) => l.sourceEntityId === a && sources.includes(l.sourceRecordId)));
    });

    test('selectors: keyword, filters and segmentId pick the sources; exactly one of IDs or filter', async () => {
      const [p, q] = [await record(a, 'selected-1'), await record(a, 'selected-2')];
      const target = await record(b, 'z');
      assert.deepEqual(await ok('POST', '/relationships/bulk', body({ sourceFilter: { keyword: 'SELECTED' }, targetRecordIds: [target] })), { created: 2, skipped: 0 });
      assert.deepEqual((await ok('GET', `/relationships/list?recordId=${target}`)).data.map((l: any) => l.sourceRecordId).sort(), [p, q].sort());
      const filters = JSON.stringify({ name: { op: 'eq', value: 'alpha' } });
      assert.deepEqual(await ok('POST', '/relationships/bulk', body({ sourceFilter: { filters }, targetRecordIds: [target] })), { created: 1, skipped: 0 });
      const segment = await ok('POST', '/segments', { entityId: a, name: 'selected', conditions: { operator: 'AND', conditions: [{ field: 'name', operator: 'eq', value: 'selected-2' }] } });
      const other = await record(b, 'segment target');
      assert.deepEqual(await ok('POST', '/relationships/bulk', body({ sourceFilter: { segmentId: segment.segmentId }, targetRecordIds: [other] })), { created: 1, skipped: 0 });
      assert.deepEqual((await ok('GET', `/relationships/list?recordId=${other}`)).data.map((l: any) => l.sourceRecordId), [q]);
      // A relationship condition in the selector (evaluated over the whole entity): the sources linked to `other`.
      const third = await record(b, 'third target');
      const linkedToOther = JSON.stringify({ [`relationship.${typeId}`]: { op: 'exists', where: { operator: 'AND', conditions: [{ field: 'name', operator: 'eq', value: 'segment target' }] } } });
      assert.deepEqual(await ok('POST', '/relationships/bulk', body({ sourceFilter: { filters: linkedToOther }, targetRecordIds: [third] })), { created: 1, skipped: 0 });
      assert.deepEqual((await ok('GET', `/relationships/list?recordId=${third}`)).data.map((l: any) => l.sourceRecordId), [q]);
      expectError(await call('POST', '/relationships/bulk', body({ sourceFilter: { segmentId: 'CRMSG1260423081530123SGM11122233' }, targetRecordIds: [target] })), 404, 'NotFound');
      expectError(await call('POST', '/relationships/bulk', body({ sourceFilter: { filters: '{"nope":1}' }, targetRecordIds: [target] })), 400, 'ValidationError', 'filters.nope');
      expectError(await call('POST', '/relationships/bulk', body({ sourceRecordIds: [p], sourceFilter: {}, targetRecordIds: [target] })), 400, 'ValidationError', 'exactly one');
      expectError(await call('POST', '/relationships/bulk', body({ targetRecordIds: [target] })), 400, 'ValidationError', 'exactly one');
    });

    test('limits and bad records fail the whole request, writing nothing', async () => {
      const target = await record(b);
      const many = Array.from({ length: 5001 }, (_, i) => `CRMRC1260101000000${String(i).padStart(3, '0')}ABCDEFGHIJK`);
      expectError(await call('POST', '/relationships/bulk', body({ sourceRecordIds: many, targetRecordIds: [target, sources[0]] })), 400, 'ValidationError', 'more than 10000');
      const trashed = await record(a);
      await ok('DELETE', `/records/${trashed}`);
      const res = await call('POST', '/relationships/bulk', body({ sourceRecordIds: [sources[0], trashed, 'CRMRC1260101000000000ABCDEFGHIJK', target], targetRecordIds: [target] }));
      expectError(res, 400, 'ValidationError', 'sourceRecordIds');
      assert.equal(res.json().details.length, 3, res.body);
      assert.equal((await ok('GET', `/relationships/list?recordId=${target}`)).data.length, 0);
      expectError(await call('POST', '/relationships/bulk', body({ targetEntityId: a, sourceRecordIds: [sources[0]], targetRecordIds: [target] })), 400, 'ValidationError', 'targetEntityId');
    });

    test('bulk-match links by name or property value, FIRST or ALL', async () => {
      const [people, companies] = [await entity('People'), await entity('Companies')];
      const prop = async (entityId: string, name: string) => (await ok('POST', '/properties', { entityId, name, fieldType: 'TEXT' })).propertyId as string;
      const [workCode, code] = [await prop(people, 'companyCode'), await prop(companies, 'code')];
      const type = (await newType(people, companies)).relationshipTypeId;
      const acme1 = await record(companies, 'Acme', { [code]: 'ACME' });
      const acme2 = await record(companies, 'Acme 2', { [code]: ' acme ' });
      await record(companies, 'Initech', { [code]: 'INI' });
      const kim = await record(people, 'Kim', { [workCode]: 'acme' });
      const lee = await record(people, 'Lee', { [workCode]: 'ini' });
      const park = await record(people, 'Park', { [workCode]: 'none' });
      const empty = await record(people, 'Empty');
      const criteria = [{ myField: { type: 'property', propertyId: workCode }, counterField: { type: 'property', propertyId: code } }];
      const match = (extra: Record<string, unknown>) => ok('POST', '/relationships/bulk-match', { sourceEntityId: people, relationshipTypeId: type, criteria, ...extra });

      assert.deepEqual(await match({ matchMode: 'FIRST', sourceRecordIds: [kim, lee, park, empty] }), { matched: 2, created: 2, skipped: 2 });
      assert.deepEqual((await ok('GET', `/relationships/list?recordId=${kim}`)).data.map((l: any) => l.targetRecordId), [acme1], 'FIRST is the oldest counterpart');
      assert.deepEqual(await match({ matchMode: 'ALL', sourceFilter: { keyword: 'kim' } }), { matched: 1, created: 1, skipped: 1 });
      assert.deepEqual((await ok('GET', `/relationships/list?recordId=${kim}`)).data.map((l: any) => l.targetRecordId).sort(), [acme1, acme2].sort());
      // From the other side (companies as sources): stored in the type's direction, so acme1 ↔ kim is a duplicate.
      const reversed = await ok('POST', '/relationships/bulk-match', {
        sourceEntityId: companies, relationshipTypeId: type, matchMode: 'ALL', sourceRecordIds: [acme1],
        criteria: [{ myField: { type: 'property', propertyId: code }, counterField: { type: 'property', propertyId: workCode } }],
      });
      assert.deepEqual(reversed, { matched: 1, created: 0, skipped: 1 });
      // By name, trimmed and case-insensitive.
      const namesake = await record(people, '  initech ');
      const byName = await match({ matchMode: 'ALL', sourceRecordIds: [namesake, kim], criteria: [{ myField: { type: 'name' }, counterField: { type: 'name' } }] });
      assert.deepEqual(byName, { matched: 1, created: 1, skipped: 1 });
      assert.equal((await ok('GET', `/relationships/list?recordId=${namesake}`)).data[0].targetRecordName, 'Initech');
      expectError(await call('POST', '/relationships/bulk-match', { sourceEntityId: people, relationshipTypeId: type, matchMode: 'ALL', sourceRecordIds: [kim], criteria: [{ myField: { type: 'property', propertyId: code }, counterField: { type: 'name' } }] }), 400, 'ValidationError', 'criteria[0].myField');
      expectError(await call('POST', '/relationships/bulk-match', { sourceEntityId: people, relationshipTypeId: type, matchMode: 'SOME', sourceRecordIds: [kim], criteria }), 400, 'ValidationError', 'matchMode');
    });
  });

  describe('trash interplay and purge', () => {
    test('links of a trashed record or entity are hidden everywhere and come back on restore', async () => {
      const [a, b] = [await entity(), await entity()];
      const type = (await newType(a, b)).relationshipTypeId;
      const [s, tg] = [await record(a, 'S'), await record(b, 'T')];
      const rel = (await link(type, [a, s], [b, tg])).json();
      const visible = async () => (await ok('GET', `/relationships/list?relationshipTypeId=${type}`)).data.length;

      const ofRecord = async () => (await ok('GET', `/relationships/list?recordId=${s}`)).data.length;
      const onPage = async () => (await ok('GET', `/records/${s}/relationships`)).groups.reduce((n: number, g: any) => n + g.data.length, 0);
      assert.deepEqual([await ofRecord(), await onPage()], [1, 1]);
      await ok('DELETE', `/records/${tg}`);
      assert.equal(await visible(), 0);
      assert.deepEqual([await ofRecord(), await onPage()], [0, 0]);
      assert.equal((await ok('GET', `/relationships/type/${type}`)).length, 0);
      expectError(await call('GET', `/relationships/${rel.relationshipId}`), 404, 'NotFound');
      assert.equal((await ok('GET', `/records/${s}/relationships`)).groups[0].total, 0);
      await ok('POST', `/records/${tg}/restore`);
      assert.equal(await visible(), 1);
      assert.deepEqual(await ok('GET', `/relationships/${rel.relationshipId}`), rel);

      await ok('DELETE', `/entities/${b}`);
      expectError(await call('GET', `/relationships/types/${type}`), 410, 'Gone');
      expectError(await call('GET', `/relationships/${rel.relationshipId}`), 404, 'NotFound');
      assert.ok(!(await ok('GET', `/relationships/types?entityId=${a}`)).some((x: any) => x.relationshipTypeId === type));
      assert.equal((await ok('GET', `/relationships/list?entityId=${a}`)).data.length, 0);
      assert.equal(await ofRecord(), 0);
      await ok('POST', `/entities/${b}/restore`);
      assert.deepEqual([await ofRecord(), await onPage()], [1, 1]);
      assert.deepEqual(await ok('GET', `/relationships/${rel.relationshipId}`), rel);
    });

    test('permanent delete and the trash purge remove a record\'s links and give relationships.max back', async () => {
      const [a, b] = [await entity(), await entity()];
      const type = (await newType(a, b)).relationshipTypeId;
      const [s1, s2] = [await record(a), await record(a)];
      const [t1, t2] = [await record(b), await record(b)];
      assert.deepEqual(await ok('POST', '/relationships/bulk', { relationshipTypeId: type, sourceEntityId: a, targetEntityId: b, sourceRecordIds: [s1, s2], targetRecordIds: [t1, t2] }), { created: 4, skipped: 0 });
      const start = await used('relationships.max');
      assert.equal((await ok('POST', '/records/bulk/delete', { recordIds: [t1], permanent: true })).succeeded, 1);
      assert.equal(await used('relationships.max'), start - 2);
      assert.equal((await ok('GET', `/relationships/type/${type}`)).length, 2);

      await ok('DELETE', `/records/${s1}`);
      const report = await purgeExpiredTrash(t.database.db, Date.now() + 15 * 86_400_000, { hooks: t.services.segments, accountIds: [account.accountId] });
      assert.deepEqual(report.failures, []);
      assert.equal(await used('relationships.max'), start - 3);
      assert.deepEqual((await ok('GET', `/relationships/type/${type}`)).map((l: any) => [l.sourceRecordId, l.targetRecordId]), [[s2, t2]]);
      const left = await systemDb(t.database.db).selectFrom('relationships').select('relationship_id').where('account_id', '=', account.accountId).where('relationship_type_id', '=', type).execute();
      assert.equal(left.length, 1, 'the purged records\' links are deleted, not just hidden');
    });

    test('links created to records while they are deleted for good: each link lands or is a 404, never a deadlock', async () => {
      // A link create share-locks its two records and takes a relationships.max slot; a permanent
      // delete locks its records and gives their links' slots back. Opposite orders would deadlock.
      const [a, b] = [await entity(), await entity()];
      const type = (await newType(a, b)).relationshipTypeId;
      const keep = await Promise.all(Array.from({ length: 4 }, () => record(a)));
      const doomed = await Promise.all(Array.from({ length: 16 }, () => record(b)));
      assert.equal((await ok('POST', '/relationships/bulk', { relationshipTypeId: type, sourceEntityId: a, targetEntityId: b, sourceRecordIds: [keep[0]], targetRecordIds: doomed })).created, 16);
      const start = await used('relationships.max');
      const results = await Promise.all([
        ...doomed.flatMap((target) => keep.slice(1).map((source) => link(type, [a, source], [b, target]))),
        ...[0, 1, 2, 3].map((k) => call('POST', '/records/bulk/delete', { recordIds: doomed.slice(k * 4, k * 4 + 4), permanent: true })),
      ]);
      for (const res of results) assert.ok([200, 201, 404].includes(res.statusCode), `${res.statusCode} ${res.body}`);
      assert.equal(results.slice(-4).filter((res) => res.statusCode === 200).length, 4);
      const left = await systemDb(t.database.db).selectFrom('relationships').select('relationship_id').where('account_id', '=', account.accountId).where('relationship_type_id', '=', type).execute();
      assert.equal(left.length, 0, 'no link outlives its record');
      assert.equal(await used('relationships.max'), start - 16);
    });

    test('purging an entity removes its relationship types and their slots on the other entity', async () => {
      const other = await t.newAccount();
      const as = (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => t.call(other, method, `${V1}${path}`, body);
      const ent = async () => (await as('POST', '/entities', { name: 'E', slug: uniq('p') })).json().entityId;
      const [keep, doomed] = [await ent(), await ent()];
      await t.services.quota.setLimits(other.tenant, { 'relationshipTypes.maxPerEntity': 1 });
      const type = (await as('POST', '/relationships/types', { name: 't', sourceEntityId: keep, targetEntityId: doomed })).json().relationshipTypeId;
      const [s, tg] = [(await as('POST', '/records', { entityId: keep })).json().recordId, (await as('POST', '/records', { entityId: doomed })).json().recordId];
      assert.equal((await as('POST', '/relationships', { relationshipTypeId: type, sourceEntityId: keep, sourceRecordId: s, targetEntityId: doomed, targetRecordId: tg })).statusCode, 201);
      assert.equal((await as('DELETE', `/entities/${doomed}`)).statusCode, 200);
      const report = await purgeExpiredTrash(t.database.db, Date.now() + 31 * 86_400_000, { hooks: t.services.segments, accountIds: [other.accountId] });
      assert.deepEqual(report.failures, []);
      expectError(await as('GET', `/relationships/types/${type}`), 404, 'NotFound');
      const usage = (await as('GET', '/usage')).json().limits;
      assert.equal(usage.find((l: any) => l.key === 'relationships.max').used, 0);
      // The slot the type held on `keep` is free again.
      assert.equal((await as('POST', '/relationships/types', { name: 't2', sourceEntityId: keep, targetEntityId: keep })).statusCode, 201);
    });
  });

  describe('GET /records/{id}/relationships [X]', () => {
    test('groups by type and direction with names and totals; one group pages with its nextKey', async () => {
      const [com, emp] = [await entity('Companies'), await entity('People')];
      const worksAt = await newType(emp, com, { sourceLabel: '직원', targetLabel: '회사' });
      const parent = await newType(com, com, { name: 'parent of' });
      const acme = await record(com, 'Acme');
      const sub = await record(com, 'Acme Sub');
      const people = await Promise.all(['Kim', 'Lee', 'Park'].map((n) => record(emp, n)));
      await ok('POST', '/relationships/bulk', { relationshipTypeId: worksAt.relationshipTypeId, sourceEntityId: com, targetEntityId: emp, sourceRecordIds: [acme], targetRecordIds: people });
      assert.equal((await link(parent.relationshipTypeId, [com, acme], [com, sub])).statusCode, 201);

      const page = await ok('GET', `/records/${acme}/relationships?limit=2`);
      assert.equal(page.recordId, acme);
      assert.equal(page.entityId, com);
      const groups = new Map(page.groups.map((g: any) => [`${g.name}/${g.direction}`, g]));
      assert.deepEqual([...groups.keys()].sort(), [`${worksAt.name}/incoming`, 'parent of/incoming', 'parent of/outgoing'].sort());
      const staff: any = groups.get(`${worksAt.name}/incoming`);
      assert.equal(staff.label, '직원');
      assert.equal(staff.relatedEntityId, emp);
      assert.equal(staff.total, 3);
      assert.equal(staff.data.length, 2);
      const rest = await ok('GET', `/records/${acme}/relationships?relationshipTypeId=${worksAt.relationshipTypeId}&direction=incoming&limit=2&startKey=${staff.nextKey}`);
      assert.equal(rest.groups.length, 1);
      assert.ok(!rest.groups[0].nextKey);
      assert.deepEqual([...staff.data, ...rest.groups[0].data].map((r: any) => r.name).sort(), ['Kim', 'Lee', 'Park']);
      assert.deepEqual((groups.get('parent of/outgoing') as any).data.map((r: any) => [r.recordId, r.name]), [[sub, 'Acme Sub']]);
      assert.equal((groups.get('parent of/incoming') as any).total, 0);

      expectError(await call('GET', `/records/${acme}/relationships?startKey=${staff.nextKey}`), 400, 'ValidationError', 'startKey');
      expectError(await call('GET', `/records/${acme}/relationships?relationshipTypeId=${parent.relationshipTypeId}&direction=outgoing&startKey=${staff.nextKey}`), 400, 'ValidationError', 'startKey');
      expectError(await call('GET', '/records/CRMRC1260101000000000ABCDEFGHIJK/relationships'), 404, 'NotFound');
    });
  });

  describe('workspaces (API.md §1.9)', () => {
    test('a workspace key creates types and links in its workspace and sees only those plus account-wide ones', async () => {
      const fresh = await t.newAccount();
      const ws1 = await t.services.apiKeys.create(fresh.tenant, fresh.memberId, { workspaceId: 'ws1' });
      const ws2 = await t.services.apiKeys.create(fresh.tenant, fresh.memberId, { workspaceId: 'ws2' });
      const as = async (creds: Credentials, method: 'GET' | 'POST', path: string, body?: unknown) => {
        const res = await t.call(creds, method, `${V1}${path}`, body);
        assert.ok(res.statusCode === 200 || res.statusCode === 201, `${method} ${path}: ${res.statusCode} ${res.body}`);
        return res.json();
      };
      // Account-wide entities and records, usable from every workspace.
      const [emp, com] = [(await as(fresh, 'POST', '/entities', { name: 'People', slug: 'people' })).entityId, (await as(fresh, 'POST', '/entities', { name: 'Companies', slug: 'companies' })).entityId];
      const rec = async (entityId: string, name: string) => (await as(fresh, 'POST', '/records', { entityId, name })).recordId as string;
      const [kim, lee, park] = [await rec(emp, 'Kim'), await rec(emp, 'Lee'), await rec(emp, 'Park')];
      const acme = await rec(com, 'Acme');

      // Types: the same (name, source, target) may exist once per workspace and once account-wide.
      const shared = await as(fresh, 'POST', '/relationships/types', { name: 'works at', sourceEntityId: emp, targetEntityId: com });
      const mine = await as(ws1, 'POST', '/relationships/types', { name: 'works at', sourceEntityId: emp, targetEntityId: com });
      const theirs = await as(ws2, 'POST', '/relationships/types', { name: 'works at', sourceEntityId: emp, targetEntityId: com });
      assert.deepEqual([shared.workspaceId, mine.workspaceId, theirs.workspaceId], [null, 'ws1', 'ws2']);
      expectError(await t.call(ws1, 'POST', `${V1}/relationships/types`, { name: 'works at', sourceEntityId: emp, targetEntityId: com }), 409, 'ConflictException');
      const typeIds = async (creds: Credentials) => (await as(creds, 'GET', `/relationships/types?entityId=${emp}`)).map((x: any) => x.relationshipTypeId).sort();
      assert.deepEqual(await typeIds(fresh), [shared, mine, theirs].map((x) => x.relationshipTypeId).sort());
      assert.deepEqual(await typeIds(ws1), [shared, mine].map((x) => x.relationshipTypeId).sort());
      assert.deepEqual(await typeIds(ws2), [shared, theirs].map((x) => x.relationshipTypeId).sort());
      expectError(await t.call(ws2, 'GET', `${V1}/relationships/types/${mine.relationshipTypeId}`), 404, 'NotFound');
      expectError(await t.call(ws2, 'PATCH', `${V1}/relationships/types/${mine.relationshipTypeId}`, { name: 'x' }), 404, 'NotFound');
      expectError(await t.call(ws2, 'DELETE', `${V1}/relationships/types/${mine.relationshipTypeId}`), 404, 'NotFound');

      // Links: stamped with the creating key's workspace, along its own or an account-wide type.
      const linkBody = (typeId: string, person: string) => ({ relationshipTypeId: typeId, sourceEntityId: emp, sourceRecordId: person, targetEntityId: com, targetRecordId: acme });
      const own = await as(ws1, 'POST', '/relationships', linkBody(mine.relationshipTypeId, kim));
      const onShared = await as(ws1, 'POST', '/relationships', linkBody(shared.relationshipTypeId, kim));
      const accountWide = await as(fresh, 'POST', '/relationships', linkBody(shared.relationshipTypeId, lee));
      assert.deepEqual([own.workspaceId, onShared.workspaceId, accountWide.workspaceId], ['ws1', 'ws1', null]);
      assert.deepEqual(await as(ws1, 'POST', '/relationships/bulk', { relationshipTypeId: shared.relationshipTypeId, sourceEntityId: com, targetEntityId: emp, sourceRecordIds: [acme], targetRecordIds: [park] }), { created: 1, skipped: 0 });
      expectError(await t.call(ws2, 'POST', `${V1}/relationships`, linkBody(mine.relationshipTypeId, lee)), 404, 'NotFound');

      const listed = async (creds: Credentials, query = `recordId=${acme}`) => (await as(creds, 'GET', `/relationships/list?${query}`)).data;
      const ws1Links = await listed(ws1);
      assert.deepEqual(ws1Links.map((l: any) => l.sourceRecordName).sort(), ['Kim', 'Kim', 'Lee', 'Park']);
      assert.ok(ws1Links.every((l: any) => l.workspaceId === 'ws1' || l.workspaceId === null));
      assert.equal(ws1Links.find((l: any) => l.sourceRecordId === park).workspaceId, 'ws1');
      assert.deepEqual((await listed(ws2)).map((l: any) => l.relationshipId), [accountWide.relationshipId]);
      assert.deepEqual((await listed(ws2, `entityId=${emp}`)).map((l: any) => l.relationshipId), [accountWide.relationshipId]);
      assert.equal((await listed(fresh)).length, 4);
      expectError(await t.call(ws2, 'GET', `${V1}/relationships/${own.relationshipId}`), 404, 'NotFound');
      expectError(await t.call(ws2, 'PATCH', `${V1}/relationships/${onShared.relationshipId}`, { metadata: {} }), 404, 'NotFound');
      expectError(await t.call(ws2, 'DELETE', `${V1}/relationships/${onShared.relationshipId}`), 404, 'NotFound');
      assert.deepEqual((await as(ws2, 'GET', `/relationships/type/${shared.relationshipTypeId}`)).map((l: any) => l.relationshipId), [accountWide.relationshipId]);

      // The record page and relationship conditions see the same links as the lists.
      const groups = async (creds: Credentials) => (await as(creds, 'GET', `/records/${acme}/relationships`)).groups
        .map((g: any) => [g.relationshipTypeId, g.total]).sort((a: any, b: any) => (a[0] < b[0] ? -1 : 1));
      assert.deepEqual(await groups(ws1), [[shared.relationshipTypeId, 3], [mine.relationshipTypeId, 1]].sort((a: any, b: any) => (a[0] < b[0] ? -1 : 1)));
      assert.deepEqual(await groups(ws2), [[shared.relationshipTypeId, 1], [theirs.relationshipTypeId, 0]].sort((a: any, b: any) => (a[0] < b[0] ? -1 : 1)));
      const linkedPeople = async (creds: Credentials) => (await as(creds, 'POST', '/records/search/advanced', {
        entityId: emp, conditionGroup: { operator: 'AND', conditions: [{ field: `relationship.${shared.relationshipTypeId}`, operator: 'exists' }] },
      })).data.map((r: any) => r.name).sort();
      assert.deepEqual(await linkedPeople(fresh), ['Kim', 'Lee', 'Park']);
      assert.deepEqual(await linkedPeople(ws1), ['Kim', 'Lee', 'Park']);
      assert.deepEqual(await linkedPeople(ws2), ['Lee']);
      expectError(await t.call(ws2, 'POST', `${V1}/records/search/advanced`, {
        entityId: emp, conditionGroup: { operator: 'AND', conditions: [{ field: `relationship.${mine.relationshipTypeId}`, operator: 'exists' }] },
      }), 400, 'ValidationError');
    });
  });
});
