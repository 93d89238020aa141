import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { expectError, uniq } from '../helpers/assertions.ts';
import type { Credentials } from '../helpers/sign.ts';

const V1 = '/crm-core/v1';

/**
 * relationship.<typeId> conditions over HTTP (API.md §6 [X]): advanced search and GET /records
 * `filters`, both directions, the nested `where`, trash, and the checks around them. The
 * compiler/evaluator equivalence on random data is test/integration/query-compiler.test.ts.
 */
describe('relationship conditions in advanced search and filters', () => {
  let t: TestApp;
  let account: TestAccount;
  let member: Credentials & { memberId: string };
  let companies: string;
  let deals: string;
  let stage: string;
  let secret: string;
  let typeId: string;
  const co: Record<string, string> = {};
  const deal: Record<string, string> = {};

  async function ok(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, creds: Credentials = account) {
    const res = await t.call(creds, method, `${V1}${path}`, body);
    assert.ok(res.statusCode < 300, `${method} ${path}: ${res.statusCode} ${res.body}`);
    return res.json();
  }
  const rel = (operator: string, extra: Record<string, unknown> = {}) => ({ field: `relationship.${typeId}`, operator, ...extra });
  const inStage = (value: string) => ({ operator: 'AND', conditions: [{ field: `data.${stage}`, operator: 'eq', value }] });
  const search = (entityId: string, conditions: unknown[], creds: Credentials = account) =>
    t.call(creds, 'POST', `${V1}/records/search/advanced`, { entityId, conditionGroup: { operator: 'AND', conditions }, limit: 200 });
  /**
   * The names matching, from advanced search (probed in index order: the per-record SQL). The
   * whole-entity SQL must agree: a segment preview's count, and the same search sorted by a
   * property no index orders yet (the page's plain query).
   */
  async function names(entityId: string, conditions: unknown[]): Promise<string[]> {
    const res = await search(entityId, conditions);
    assert.equal(res.statusCode, 200, res.body);
    const found = res.json().data.map((r: { name: string }) => r.name).sort();
    const preview = await ok('POST', '/segments/preview', { entityId, conditions: { operator: 'AND', conditions } });
    assert.equal(preview.count, found.length, `preview count of ${JSON.stringify(conditions)}`);
    const sorted = await ok('POST', '/records/search/advanced', { entityId, conditionGroup: { operator: 'AND', conditions }, limit: 200, sortFields: [`-${rankOf[entityId]}`] });
    assert.deepEqual(sorted.data.map((r: { name: string }) => r.name).sort(), found, `sorted by a property: ${JSON.stringify(conditions)}`);
    return found;
  }
  const rankOf: Record<string, string> = {};

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
    member = await t.addMember(account, 'MEMBER');
    companies = (await ok('POST', '/entities', { name: 'Companies', slug: uniq('co') })).entityId;
    deals = (await ok('POST', '/entities', { name: 'Deals', slug: uniq('deal') })).entityId;
    stage = (await ok('POST', '/properties', { entityId: deals, name: 'Stage', fieldType: 'DROPDOWN', options: ['LEAD', 'NEGOTIATION', 'WON'].map((v) => ({ label: v, value: v })) })).propertyId;
    secret = (await ok('POST', '/properties', { entityId: deals, name: 'Secret', fieldType: 'TEXT', isMasked: true })).propertyId;
    for (const entityId of [companies, deals]) rankOf[entityId] = (await ok('POST', '/properties', { entityId, name: 'Rank', fieldType: 'NUMBER' })).propertyId;
    // Deals point at their company: the filtered companies are the type's TARGET side.
    typeId = (await ok('POST', '/relationships/types', { name: 'deal of', sourceEntityId: deals, targetEntityId: companies })).relationshipTypeId;
    for (const name of ['Acme', 'Beta', 'Gamma', 'Delta']) co[name] = (await ok('POST', '/records', { entityId: companies, name })).recordId;
    // Acme: 3 NEGOTIATION + 1 WON; Beta: 2 NEGOTIATION + 1 LEAD; Gamma: 1 WON; Delta: none.
    const plan: [string, string[]][] = [['Acme', ['NEGOTIATION', 'NEGOTIATION', 'NEGOTIATION', 'WON']], ['Beta', ['NEGOTIATION', 'NEGOTIATION', 'LEAD']], ['Gamma', ['WON']]];
    for (const [company, stages] of plan) {
      for (const [i, value] of stages.entries()) {
        const name = `${company}-${i}`;
        deal[name] = (await ok('POST', '/records', { entityId: deals, name, data: { [stage]: value, [secret]: 's' } })).recordId;
        await ok('POST', '/relationships', { relationshipTypeId: typeId, sourceEntityId: deals, sourceRecordId: deal[name], targetEntityId: companies, targetRecordId: co[company] });
      }
    }
  });
  after(() => t.close());

  test('companies with ≥3 related deals in stage NEGOTIATION (the example of issue 5)', async () => {
    assert.deepEqual(await names(companies, [rel('countGte', { value: 3, where: inStage('NEGOTIATION') })]), ['Acme']);
    assert.deepEqual(await names(companies, [rel('countGte', { value: 2, where: inStage('NEGOTIATION') })]), ['Acme', 'Beta']);
    assert.deepEqual(await names(companies, [rel('countGte', { value: 3 })]), ['Acme', 'Beta']);
  });

  test('exists, notExists, countLte, with and without where; combined with other conditions', async () => {
    assert.deepEqual(await names(companies, [rel('exists')]), ['Acme', 'Beta', 'Gamma']);
    assert.deepEqual(await names(companies, [rel('notExists')]), ['Delta']);
    assert.deepEqual(await names(companies, [rel('exists', { where: inStage('WON') })]), ['Acme', 'Gamma']);
    assert.deepEqual(await names(companies, [rel('notExists', { where: inStage('WON') })]), ['Beta', 'Delta']);
    assert.deepEqual(await names(companies, [rel('countLte', { value: 1 })]), ['Delta', 'Gamma']);
    assert.deepEqual(await names(companies, [rel('exists'), { field: 'name', operator: 'startsWith', value: 'b' }]), ['Beta']);
    const either = { operator: 'OR', conditions: [rel('countGte', { value: 3, where: inStage('NEGOTIATION') }), { field: 'name', operator: 'eq', value: 'Delta' }] };
    assert.deepEqual(await names(companies, [either]), ['Acme', 'Delta']);
  });

  test('the other direction: deals whose company is named Acme', async () => {
    const acme = { operator: 'AND', conditions: [{ field: 'name', operator: 'eq', value: 'acme' }] };
    assert.deepEqual(await names(deals, [rel('exists', { where: acme })]), ['Acme-0', 'Acme-1', 'Acme-2', 'Acme-3']);
  });

  test('GET /records filters take relationship conditions too (with where), ANDed with the rest', async () => {
    const filters = encodeURIComponent(JSON.stringify({ [`relationship.${typeId}`]: { op: 'countGte', value: 2, where: inStage('NEGOTIATION') }, name: { op: 'neq', value: 'Beta' } }));
    const res = await ok('GET', `/records?entityId=${companies}&filters=${filters}`);
    assert.deepEqual(res.data.map((r: { name: string }) => r.name), ['Acme']);
  });

  test('trashed related records do not count, and count again once restored', async () => {
    await ok('DELETE', `/records/${deal['Acme-0']}`);
    assert.deepEqual(await names(companies, [rel('countGte', { value: 3, where: inStage('NEGOTIATION') })]), []);
    await ok('POST', `/records/${deal['Acme-0']}/restore`);
    assert.deepEqual(await names(companies, [rel('countGte', { value: 3, where: inStage('NEGOTIATION') })]), ['Acme']);
  });

  test('400 naming the path for unknown types, types of other entities, bad operators and values; 403 for masked where', async () => {
    const other = (await ok('POST', '/entities', { name: 'Other', slug: uniq('o') })).entityId;
    const foreign = (await ok('POST', '/relationships/types', { name: 'x', sourceEntityId: other, targetEntityId: other })).relationshipTypeId;
    const res = await search(companies, [{ field: `relationship.${foreign}`, operator: 'exists' }]);
    expectError(res, 400, 'ValidationError', 'not a relationship type of this entity');
    assert.equal(res.json().details[0].path, 'conditionGroup.conditions[0].field');
    expectError(await search(companies, [{ field: 'relationship.CRMRT1260101000000000ABCDEFGHIJK', operator: 'exists' }]), 400, 'ValidationError', 'conditions[0].field');
    expectError(await search(companies, [rel('countGte', { value: 'three' })]), 400, 'ValidationError', 'conditions[0].value');
    expectError(await search(companies, [rel('exists', { where: { operator: 'AND', conditions: [{ field: `data.${stage}`, operator: 'eq', value: 'NOPE' }] } })]), 400, 'ValidationError', 'conditions[0].where.conditions[0].value');
    const filters = encodeURIComponent(JSON.stringify({ [`relationship.${typeId}`]: { op: 'between', value: [1, 2] } }));
    expectError(await t.call(account, 'GET', `${V1}/records?entityId=${companies}&filters=${filters}`), 400, 'ValidationError', `filters.relationship.${typeId}.operator`);
    const masked = { operator: 'AND', conditions: [{ field: `data.${secret}`, operator: 'eq', value: 's' }] };
    expectError(await search(companies, [rel('exists', { where: masked })], member), 403, 'Forbidden', secret);
    assert.equal((await search(companies, [rel('exists', { where: masked })])).statusCode, 200, 'the OWNER may');
  });

  test('a type whose other entity is in the trash is not usable in conditions', async () => {
    const temp = (await ok('POST', '/entities', { name: 'Temp', slug: uniq('t') })).entityId;
    const type = (await ok('POST', '/relationships/types', { name: 'temp', sourceEntityId: companies, targetEntityId: temp })).relationshipTypeId;
    assert.equal((await search(companies, [{ field: `relationship.${type}`, operator: 'notExists' }])).statusCode, 200);
    await ok('DELETE', `/entities/${temp}`);
    expectError(await search(companies, [{ field: `relationship.${type}`, operator: 'notExists' }]), 400, 'ValidationError', 'not a relationship type');
  });
});
