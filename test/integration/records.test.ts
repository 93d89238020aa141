import assert from 'node:assert/strict';
import fc from 'fast-check';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import type { Credentials } from '../helpers/sign.ts';
import { expectError, uniq } from '../helpers/assertions.ts';

const V1 = '/crm-core/v1';
const RECORD_FIELDS = ['recordId', 'accountId', 'entityId', 'name', 'data', 'tags', 'ownerId', 'isDeleted', 'createdBy', 'updatedBy', 'dateCreated', 'dateUpdated'];
describe('records (API.md §5)', () => {
  let t: TestApp;
  let account: TestAccount;
  let member: Credentials & { memberId: string };
  let entityId: string;
  const p: Record<string, string> = {};

  async function newEntity(creds: Credentials = account, body: Record<string, unknown> = {}) {
    const res = await t.call(creds, 'POST', `${V1}/entities`, { name: 'Customers', slug: uniq('c'), ...body });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().entityId as string;
  }
  async function newProperty(entity: string, fieldType: string, extra: Record<string, unknown> = {}) {
    const res = await t.call(account, 'POST', `${V1}/properties`, { entityId: entity, name: uniq(fieldType), fieldType, ...extra });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().propertyId as string;
  }
  const create = (body: Record<string, unknown>, creds: Credentials = account) => t.call(creds, 'POST', `${V1}/records`, { entityId, ...body });
  async function record(body: Record<string, unknown>, creds: Credentials = account) {
    const res = await create(body, creds);
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
    member = await t.addMember(account, 'MEMBER');
    entityId = await newEntity();
    p.email = await newProperty(entityId, 'EMAIL');
    p.phone = await newProperty(entityId, 'PHONE', { isMasked: true });
    p.score = await newProperty(entityId, 'NUMBER');
    p.signed = await newProperty(entityId, 'DATE');
    p.stage = await newProperty(entityId, 'DROPDOWN', { options: [{ label: 'Lead', value: 'LEAD' }, { label: 'Won', value: 'WON' }] });
    p.vip = await newProperty(entityId, 'CHECKBOX');
  });
  after(() => t.close());

  test('create validates and normalises data; the object has exactly the documented fields', async () => {
    const r = await record({ name: '김민준', data: { [p.email!]: '  Kim@Example.COM ', [p.score!]: 42, [p.stage!]: 'LEAD' }, tags: ['vip', 'vip', 'new'] });
    assert.deepEqual(Object.keys(r).sort(), [...RECORD_FIELDS].sort());
    assert.match(r.recordId, /^CRMRC1\d{15}[A-Za-z0-9]{11}$/);
    assert.equal(r.data[p.email!], 'kim@example.com');
    assert.deepEqual(r.tags, ['vip', 'new']);
    assert.equal(r.ownerId, account.memberId);
    assert.equal(r.createdBy, account.memberId);
    assert.equal(r.isDeleted, false);
    assert.deepEqual((await t.call(account, 'GET', `${V1}/records/${r.recordId}`)).json(), r);
  });

  test('bad values and unknown properties are 400 naming the property and the reason', async () => {
    expectError(await create({ data: { [p.score!]: 'many' } }), 400, 'ValidationError', p.score);
    expectError(await create({ data: { [p.stage!]: 'NOPE' } }), 400, 'ValidationError', p.stage);
    expectError(await create({ data: { [p.signed!]: '2026-02-30' } }), 400, 'ValidationError', p.signed);
    expectError(await create({ data: { CRMPP1260101000000000ABCDEFGHIJK: 1 } }), 400, 'ValidationError', 'not a live property');
    const res = await create({ data: { [p.score!]: 'x', [p.email!]: 'nope' } });
    expectError(res, 400, 'ValidationError');
    assert.equal(res.json().details.length, 2);
    expectError(await create({ ownerId: 'MEMzzzzzzzzzzz' }), 400, 'ValidationError', 'ownerId');
    expectError(await t.call(account, 'POST', `${V1}/records`, { entityId: 'CRMET1260101000000000ABCDEFGHIJK' }), 404, 'NotFound');
  });

  test('patch merges data key by key, null clears, tags are replaced; delete → trash → 410 → restore', async () => {
    const r = await record({ name: 'A', data: { [p.score!]: 1, [p.stage!]: 'LEAD' }, tags: ['x'] });
    const patched = await t.call(account, 'PATCH', `${V1}/records/${r.recordId}`, { data: { [p.score!]: 2, [p.stage!]: null }, tags: ['y'] });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.deepEqual(patched.json().data, { [p.score!]: 2 });
    assert.deepEqual(patched.json().tags, ['y']);
    assert.equal(patched.json().name, 'A');

    const del = await t.call(account, 'DELETE', `${V1}/records/${r.recordId}`);
    assert.deepEqual(del.json(), { recordId: r.recordId, entityId });
    expectError(await t.call(account, 'GET', `${V1}/records/${r.recordId}`), 410, 'Gone');
    expectError(await t.call(account, 'PATCH', `${V1}/records/${r.recordId}`, { name: 'B' }), 410, 'Gone');
    const trash = (await t.call(account, 'GET', `${V1}/records/trash?entityId=${entityId}`)).json();
    assert.ok(trash.data.some((x: any) => x.recordId === r.recordId && x.isDeleted));
    const restored = await t.call(account, 'POST', `${V1}/records/${r.recordId}/restore`);
    assert.equal(restored.statusCode, 200, restored.body);
    assert.equal(restored.json().isDeleted, false);
    assert.equal((await t.call(account, 'GET', `${V1}/records/${r.recordId}`)).statusCode, 200);
  });

  test('other accounts\' records are 404', async () => {
    const other = await t.newAccount();
    const r = await record({ name: 'mine' });
    expectError(await t.call(other, 'GET', `${V1}/records/${r.recordId}`), 404, 'NotFound');
    expectError(await t.call(other, 'PATCH', `${V1}/records/${r.recordId}`, { name: 'x' }), 404, 'NotFound');
    expectError(await t.call(other, 'DELETE', `${V1}/records/${r.recordId}`), 404, 'NotFound');
    expectError(await t.call(other, 'GET', `${V1}/records?entityId=${entityId}`), 404, 'NotFound');
  });

  test('masked values for MEMBERs; no filtering on masked properties for them', async () => {
    const r = await record({ name: 'masked', data: { [p.phone!]: '010-1234-5678' } });
    assert.equal(r.data[p.phone!], '01012345678');
    const seen = (await t.call(member, 'GET', `${V1}/records/${r.recordId}`)).json();
    assert.equal(seen.data[p.phone!], '010-****-5678');
    const filters = encodeURIComponent(JSON.stringify({ [p.phone!]: { op: 'startsWith', value: '010' } }));
    expectError(await t.call(member, 'GET', `${V1}/records?entityId=${entityId}&filters=${filters}`), 403, 'Forbidden');
    assert.equal((await t.call(account, 'GET', `${V1}/records?entityId=${entityId}&filters=${filters}`)).statusCode, 200);
  });

  test('a MEMBER sending masked values back unchanged keeps the stored values; a new value is written', async () => {
    const secret = await newProperty(entityId, 'TEXT', { isMasked: true });
    const r = await record({ name: 'echo', data: { [p.phone!]: '010-1234-5678', [secret]: 'classified', [p.score!]: 1 } });
    const seen = (await t.call(member, 'GET', `${V1}/records/${r.recordId}`)).json();
    assert.equal(seen.data[secret], '***');
    // The whole record back, as a form would send it, with one real change.
    const patched = await t.call(member, 'PATCH', `${V1}/records/${r.recordId}`, { data: { ...seen.data, [p.score!]: 2 } });
    assert.equal(patched.statusCode, 200, patched.body);
    const bulk = await t.call(member, 'POST', `${V1}/records/bulk/update`, { records: [{ recordId: r.recordId, data: seen.data }] });
    assert.equal(bulk.json().succeeded, 1, bulk.body);
    const stored = (await t.call(account, 'GET', `${V1}/records/${r.recordId}`)).json();
    assert.equal(stored.data[p.phone!], '01012345678');
    assert.equal(stored.data[secret], 'classified');
    assert.equal(stored.data[p.score!], 1, 'the bulk echo set score back to what the MEMBER saw');
    // Writing a masked property with a new value is allowed (it is not an echo).
    assert.equal((await t.call(member, 'PATCH', `${V1}/records/${r.recordId}`, { data: { [secret]: 'new secret' } })).statusCode, 200);
    assert.equal((await t.call(account, 'GET', `${V1}/records/${r.recordId}`)).json().data[secret], 'new secret');
  });

  test('recordAccess ADMIN_ONLY keeps MEMBERs out of its records', async () => {
    const locked = await newEntity(account, { recordAccess: 'ADMIN_ONLY' });
    const r = await t.call(account, 'POST', `${V1}/records`, { entityId: locked, name: 'secret' });
    assert.equal(r.statusCode, 201, r.body);
    expectError(await t.call(member, 'GET', `${V1}/records/${r.json().recordId}`), 403, 'Forbidden');
    expectError(await t.call(member, 'GET', `${V1}/records?entityId=${locked}`), 403, 'Forbidden');
    expectError(await t.call(member, 'POST', `${V1}/records`, { entityId: locked }), 403, 'Forbidden');
  });

  describe('lists, filters, sort and keyset pages', () => {
    let listEntity: string;
    let score: string;
    let stage: string;
    const all: any[] = [];

    before(async () => {
      listEntity = await newEntity();
      score = await newProperty(listEntity, 'NUMBER');
      stage = await newProperty(listEntity, 'RADIO', { options: [{ label: 'A', value: 'A' }, { label: 'B', value: 'B' }] });
      for (let i = 0; i < 30; i++) {
        const res = await t.call(account, 'POST', `${V1}/records`, {
          entityId: listEntity,
          name: i % 3 === 0 ? `Kim ${i}` : `Lee ${i}`,
          data: { ...(i % 4 === 0 ? {} : { [score]: i % 7 }), [stage]: i % 2 ? 'A' : 'B' },
          tags: i % 5 === 0 ? ['vip'] : [],
        });
        assert.equal(res.statusCode, 201, res.body);
        all.push(res.json());
      }
    });

    async function walk(query: string, limit: number): Promise<any[]> {
      const seen: any[] = [];
      let startKey: string | undefined;
      for (let i = 0; i < 100; i++) {
        const res = await t.call(account, 'GET', `${V1}/records?entityId=${listEntity}&limit=${limit}${query}${startKey ? `&startKey=${encodeURIComponent(startKey)}` : ''}`);
        assert.equal(res.statusCode, 200, res.body);
        seen.push(...res.json().data);
        startKey = res.json().nextKey;
        if (!startKey) return seen;
      }
      throw new Error('pagination did not end');
    }

    test('default order is newest first; pages cover every record exactly once', async () => {
      const rows = await walk('', 7);
      assert.deepEqual(rows.map((r) => r.recordId), [...all].reverse().map((r) => r.recordId));
    });

    test('sorting by a number property: ascending and descending, records without a value last', async () => {
      for (const direction of ['asc', 'desc'] as const) {
        const rows = await walk(`&sortField=${score}&sortDirection=${direction}`, 4);
        assert.equal(rows.length, 30);
        const valued = rows.filter((r) => r.data[score] !== undefined);
        const missing = rows.filter((r) => r.data[score] === undefined);
        assert.deepEqual(rows.slice(valued.length), missing, 'missing values come last');
        const values = valued.map((r) => r.data[score]);
        const sorted = [...values].sort((a, b) => (direction === 'asc' ? a - b : b - a));
        assert.deepEqual(values, sorted);
        assert.equal(new Set(rows.map((r) => r.recordId)).size, 30);
      }
    });

    test('no row is skipped or repeated while rows are inserted and updated between pages', async () => {
      const seen: string[] = [];
      let startKey: string | undefined;
      let inserted = 0;
      do {
        const res = await t.call(account, 'GET', `${V1}/records?entityId=${listEntity}&limit=5&sortField=${score}&sortDirection=asc${startKey ? `&startKey=${encodeURIComponent(startKey)}` : ''}`);
        seen.push(...res.json().data.map((r: any) => r.recordId));
        startKey = res.json().nextKey;
        // Between pages: a new record, and a change to one already seen.
        await t.call(account, 'POST', `${V1}/records`, { entityId: listEntity, name: `late ${inserted++}`, data: { [score]: 100 + inserted } });
        await t.call(account, 'PATCH', `${V1}/records/${seen[0]}`, { name: 'touched' });
      } while (startKey);
      assert.equal(new Set(seen).size, seen.length, 'no repeats');
      for (const r of all) assert.ok(seen.includes(r.recordId), `${r.recordId} was skipped`);
    });

    test('filters, keyword, tags and owner are ANDed', async () => {
      const filters = encodeURIComponent(JSON.stringify({ [stage]: { op: 'eq', value: 'A' }, [score]: { op: 'gte', value: 3 } }));
      const rows = await walk(`&filters=${filters}&keyword=kim`, 50);
      const expected = all.filter((r) => r.data[stage] === 'A' && (r.data[score] ?? -1) >= 3 && r.name.toLowerCase().includes('kim'));
      assert.deepEqual(rows.map((r) => r.recordId).sort(), expected.map((r) => r.recordId).sort());
      assert.ok(expected.length > 0);
      const vip = await walk('&tags=vip', 50);
      assert.deepEqual(vip.map((r) => r.recordId).sort(), all.filter((r) => r.tags.includes('vip')).map((r) => r.recordId).sort());
    });

    test('bad filters, sort fields and cursors are 400', async () => {
      const bad = async (q: string, path: string) => {
        const res = await t.call(account, 'GET', `${V1}/records?entityId=${listEntity}${q}`);
        expectError(res, 400, 'ValidationError', path);
      };
      await bad('&filters=notjson', 'filters');
      await bad(`&filters=${encodeURIComponent(JSON.stringify({ [score]: { op: 'contains', value: 'x' } }))}`, `filters.${score}`);
      await bad('&sortField=nope', 'sortField');
      await bad('&startKey=garbage', 'startKey');
      const first = (await t.call(account, 'GET', `${V1}/records?entityId=${listEntity}&limit=2`)).json();
      await bad(`&sortField=name&startKey=${encodeURIComponent(first.nextKey)}`, 'startKey');
    });

    test('advanced search: nested AND/OR, sortFields, paths in errors', async () => {
      const body = {
        entityId: listEntity,
        conditionGroup: { operator: 'OR', conditions: [
          { operator: 'AND', conditions: [{ field: `data.${stage}`, operator: 'eq', value: 'B' }, { field: 'name', operator: 'startsWith', value: 'kim' }] },
          { field: 'tags', operator: 'hasAnyOf', value: ['vip'] },
        ] },
        sortFields: ['name'],
        limit: 100,
      };
      const res = await t.call(account, 'POST', `${V1}/records/search/advanced`, body);
      assert.equal(res.statusCode, 200, res.body);
      const expected = all.filter((r) => (r.data[stage] === 'B' && r.name.toLowerCase().startsWith('kim')) || r.tags.includes('vip'));
      assert.deepEqual(res.json().data.map((r: any) => r.recordId).sort(), expected.map((r) => r.recordId).sort());
      const names = res.json().data.map((r: any) => r.name.toLowerCase());
      assert.deepEqual(names, [...names].sort());
      const wrong = await t.call(account, 'POST', `${V1}/records/search/advanced`, { entityId: listEntity, conditionGroup: { operator: 'AND', conditions: [{ field: `data.${score}`, operator: 'gt', value: 'x' }] } });
      expectError(wrong, 400, 'ValidationError', 'conditionGroup.conditions[0].value');
    });

    test('fulltext: case-insensitive name match, prefix matches first', async () => {
      const e = await newEntity();
      for (const name of ['Alpha Kim', 'kimchi', 'KIM Jisoo', 'Lee']) await t.call(account, 'POST', `${V1}/records`, { entityId: e, name });
      const res = await t.call(account, 'GET', `${V1}/records/search/fulltext/${e}?q=kim`);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json().map((r: any) => r.name), ['kimchi', 'KIM Jisoo', 'Alpha Kim'].sort((a, b) => {
        const pa = a.toLowerCase().startsWith('kim') ? 0 : 1;
        const pb = b.toLowerCase().startsWith('kim') ? 0 : 1;
        return pa - pb || a.toLowerCase().localeCompare(b.toLowerCase());
      }));
      const wild = await t.call(account, 'GET', `${V1}/records/search/fulltext/${e}?q=${encodeURIComponent('%')}`);
      assert.deepEqual(wild.json(), []);
    });
  });

  test('fulltext of 1–2 characters finds exactly the names holding them, prefixes first (random names and searches)', async () => {
    // A small alphabet so that short substrings repeat, miss, sit mid-name or at the start; no
    // character whose lower case differs between JavaScript and PostgreSQL (the oracle's lower()).
    const alphabet = ['김', '민', '준', '서', '연', 'a', 'A', 'b', 'B', 'z', ' ', '%', '_', '1'];
    const e = await newEntity();
    const names = fc.sample(fc.array(fc.constantFrom(...alphabet), { minLength: 0, maxLength: 6 }).map((c) => c.join('')), { numRuns: 60, seed: 20261124 });
    const created = await t.call(account, 'POST', `${V1}/records/bulk`, { records: names.map((name) => ({ entityId: e, name })) });
    assert.equal(created.statusCode, 200, created.body);
    const ids: string[] = created.json().recordIds;
    const rows = names.map((name, i) => ({ name, id: ids[i]!, key: name.toLowerCase() }));
    // lower(name) COLLATE "C" is code point order (all BMP here), then the record ID.
    const byKey = (x: { key: string; id: string }, y: { key: string; id: string }) => (x.key < y.key ? -1 : x.key > y.key ? 1 : x.id < y.id ? -1 : x.id > y.id ? 1 : 0);
    await fc.assert(fc.asyncProperty(
      fc.array(fc.constantFrom(...alphabet, '쀍'), { minLength: 1, maxLength: 2 }).map((c) => c.join('')),
      fc.integer({ min: 1, max: 8 }),
      async (q, limit) => {
        const needle = q.toLowerCase();
        const prefix = rows.filter((r) => r.key.startsWith(needle)).sort(byKey);
        const inside = rows.filter((r) => !r.key.startsWith(needle) && r.key.includes(needle)).sort(byKey);
        const expected = [...prefix, ...inside].slice(0, limit).map((r) => r.id);
        const res = await t.call(account, 'GET', `${V1}/records/search/fulltext/${e}?q=${encodeURIComponent(q)}&limit=${limit}`);
        assert.equal(res.statusCode, 200, res.body);
        assert.deepEqual(res.json().map((r: { recordId: string }) => r.recordId), expected, `q=${JSON.stringify(q)} limit=${limit}`);
      }), { numRuns: 120, seed: 20261124 });
  });

  test('records.max holds', async () => {
    const a = await t.newAccount();
    const e = (await t.call(a, 'POST', `${V1}/entities`, { name: 'E', slug: uniq('q') })).json().entityId;
    await t.services.quota.setLimits(a.tenant, { 'records.max': 3 });
    const results = await Promise.all(Array.from({ length: 6 }, () => t.call(a, 'POST', `${V1}/records`, { entityId: e })));
    assert.equal(results.filter((r) => r.statusCode === 201).length, 3);
    for (const r of results.filter((x) => x.statusCode !== 201)) expectError(r, 403, 'PlanQuotaExceeded', 'records.max: 3/3');
  });
});
