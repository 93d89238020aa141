import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { purgeExpiredTrash } from '../../src/modules/trash/trash.purge.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import type { Credentials } from '../helpers/sign.ts';
import { expectError, uniq } from '../helpers/assertions.ts';

/** /crm-core/v1/segments (API.md §7): CRUD, reads, REALTIME and CACHED membership, events. */

const V1 = '/crm-core/v1';

describe('segments', () => {
  let t: TestApp;
  let a: TestAccount;
  let entityId: string;
  let stage: string;
  let score: string;

  const call = (creds: Credentials, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) => t.call(creds, method, `${V1}${url}`, body);
  const ok = async (creds: Credentials, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown, status = 200) => {
    const res = await call(creds, method, url, body);
    assert.equal(res.statusCode, status, `${method} ${url}: ${res.body}`);
    return res.json();
  };
  const cond = (field: string, operator: string, value?: unknown) => ({ field, operator, ...(value === undefined ? {} : { value }) });
  const and = (...conditions: unknown[]) => ({ operator: 'AND', conditions });
  const or = (...conditions: unknown[]) => ({ operator: 'OR', conditions });

  async function newRecord(name: string, data: Record<string, unknown>, tags: string[] = []) {
    return (await ok(a, 'POST', '/records', { entityId, name, data, tags }, 201)).recordId as string;
  }
  async function memberIds(segmentId: string): Promise<string[]> {
    const ids: string[] = [];
    let startKey: string | undefined;
    do {
      const page = await ok(a, 'GET', `/segments/${segmentId}/records?limit=200${startKey ? `&startKey=${encodeURIComponent(startKey)}` : ''}`);
      ids.push(...page.data.map((r: { recordId: string }) => r.recordId));
      startKey = page.nextKey;
    } while (startKey);
    return ids.sort();
  }

  before(async () => {
    t = await startTestApp();
    a = await t.newAccount();
    entityId = (await ok(a, 'POST', '/entities', { name: '딜', slug: uniq('deals') }, 201)).entityId;
    stage = (await ok(a, 'POST', '/properties', {
      entityId, name: '단계', fieldType: 'DROPDOWN', options: ['LEAD', 'NEGOTIATION', 'WON'].map((value) => ({ label: value, value })),
    }, 201)).propertyId;
    score = (await ok(a, 'POST', '/properties', { entityId, name: '점수', fieldType: 'NUMBER' }, 201)).propertyId;
  });
  after(() => t.close());

  test('CRUD: create, list by priority (bare array), get, patch, delete → {segmentId}; the shape', async () => {
    const body = { entityId, name: '협상 중', conditions: and(cond(`data.${stage}`, 'eq', 'NEGOTIATION')), color: '#1E88E5', priority: 5 };
    const created = await ok(a, 'POST', '/segments', body, 201);
    assert.match(created.segmentId, /^CRMSG1\d{15}[A-Za-z0-9]{11}$/);
    assert.deepEqual(
      Object.keys(created).sort(),
      ['accountId', 'color', 'conditions', 'createdBy', 'dateCreated', 'dateUpdated', 'description', 'entityId', 'isActive', 'isValid', 'mode', 'name', 'ownerId', 'priority', 'segmentId', 'updatedBy', 'workspaceId'],
    );
    assert.equal(created.mode, 'REALTIME');
    assert.equal(created.isActive, true);
    assert.equal(created.isValid, true);
    assert.equal(created.ownerId, a.memberId);
    assert.deepEqual(created.conditions, body.conditions);
    const first = await ok(a, 'POST', '/segments', { entityId, name: '먼저', conditions: and(), priority: 1 }, 201);

    const list = await ok(a, 'GET', `/segments?entityId=${entityId}`);
    assert.ok(Array.isArray(list));
    const order = list.map((s: { segmentId: string }) => s.segmentId);
    assert.ok(order.indexOf(first.segmentId) < order.indexOf(created.segmentId), 'priority ascending');

    assert.deepEqual(await ok(a, 'GET', `/segments/${created.segmentId}`), created);
    const patched = await ok(a, 'PATCH', `/segments/${created.segmentId}`, { name: '협상', description: '설명' });
    assert.equal(patched.name, '협상');
    assert.equal(patched.description, '설명');
    assert.deepEqual(patched.conditions, body.conditions, 'fields not sent are unchanged');

    assert.deepEqual(await ok(a, 'DELETE', `/segments/${created.segmentId}`), { segmentId: created.segmentId });
    expectError(await call(a, 'GET', `/segments/${created.segmentId}`), 404, 'NotFound');
    expectError(await call(a, 'DELETE', `/segments/${created.segmentId}`), 404, 'NotFound');
  });

  test('only the creator or an OWNER may change or delete a segment', async () => {
    const member = await t.addMember(a, 'MEMBER');
    const other = await t.addMember(a, 'MEMBER');
    const mine = await ok(member, 'POST', '/segments', { entityId, name: 'mine', conditions: and() }, 201);
    expectError(await call(other, 'PATCH', `/segments/${mine.segmentId}`, { name: 'x' }), 403, 'Forbidden');
    expectError(await call(other, 'DELETE', `/segments/${mine.segmentId}`), 403, 'Forbidden');
    assert.equal((await ok(other, 'GET', `/segments/${mine.segmentId}`)).name, 'mine', 'others may read it');
    await ok(member, 'PATCH', `/segments/${mine.segmentId}`, { name: 'still mine' });
    await ok(a, 'DELETE', `/segments/${mine.segmentId}`);
  });

  test('conditions are validated on write with the JSON path; CACHED refuses relative dates', async () => {
    const bad = await call(a, 'POST', '/segments', { entityId, name: 'bad', conditions: and(cond(`data.${score}`, 'contains', 'x')) });
    expectError(bad, 400, 'ValidationError');
    assert.match(bad.json().errorMessage, /conditions\.conditions\[0\]/);
    expectError(await call(a, 'POST', '/segments', { entityId, name: 'bad', conditions: and(cond('data.CRMPP1260423081530123AAA11122233', 'eq', 1)) }), 400, 'ValidationError');
    expectError(await call(a, 'POST', '/segments', {
      entityId, name: 'recent', mode: 'CACHED', conditions: and(cond('dateCreated', 'withinLastDays', 7)),
    }), 400, 'ValidationError');
    await ok(a, 'POST', '/segments', { entityId, name: 'recent', mode: 'REALTIME', conditions: and(cond('dateCreated', 'withinLastDays', 7)) }, 201);
    expectError(await call(a, 'POST', '/segments', { entityId: 'CRMET1260423081530123AAA11122233', name: 'x', conditions: and() }), 404, 'NotFound');
    await t.services.quota.setLimits(a.tenant, { 'segments.maxPerEntity': 0 });
    try {
      expectError(await call(a, 'POST', '/segments', { entityId, name: 'over', conditions: and() }), 403, 'PlanQuotaExceeded');
    } finally {
      await t.services.quota.setLimits(a.tenant, { 'segments.maxPerEntity': null });
    }
  });

  test('REALTIME: records, exact count, preview, explain, GET /records?segmentId', async () => {
    const hot = await newRecord('hot', { [stage]: 'NEGOTIATION', [score]: 90 });
    const cold = await newRecord('cold', { [stage]: 'LEAD', [score]: 10 });
    const conditions = or(and(cond(`data.${stage}`, 'eq', 'NEGOTIATION'), cond(`data.${score}`, 'gte', 50)), cond('name', 'eq', 'vip'));
    const segment = await ok(a, 'POST', '/segments', { entityId, name: 'hot deals', conditions }, 201);
    const ids = await memberIds(segment.segmentId);
    assert.ok(ids.includes(hot) && !ids.includes(cold));
    assert.deepEqual(await ok(a, 'GET', `/segments/${segment.segmentId}/count`), { count: ids.length });
    const viaRecords = await ok(a, 'GET', `/records?entityId=${entityId}&segmentId=${segment.segmentId}&limit=200`);
    assert.deepEqual(viaRecords.data.map((r: { recordId: string }) => r.recordId).sort(), ids);

    const preview = await ok(a, 'POST', '/segments/preview', { entityId, conditions });
    assert.equal(preview.count, ids.length);
    assert.ok(preview.sample.every((r: { recordId: string }) => ids.includes(r.recordId)));

    const explainHot = await ok(a, 'GET', `/segments/${segment.segmentId}/explain/${hot}`);
    assert.equal(explainHot.isMember, true);
    assert.equal(explainHot.tree.passed, true);
    assert.deepEqual(explainHot.tree.conditions.map((n: { passed: boolean }) => n.passed), [true, false]);
    assert.deepEqual(explainHot.tree.conditions[0].conditions.map((n: { passed: boolean }) => n.passed), [true, true]);
    const explainCold = await ok(a, 'GET', `/segments/${segment.segmentId}/explain/${cold}`);
    assert.equal(explainCold.isMember, false);
    assert.deepEqual(explainCold.tree.conditions[0].conditions.map((n: { passed: boolean }) => n.passed), [false, false]);

    // Another entity's segment cannot filter this entity's records.
    const otherEntity = (await ok(a, 'POST', '/entities', { name: 'o', slug: uniq('o') }, 201)).entityId;
    const otherSegment = await ok(a, 'POST', '/segments', { entityId: otherEntity, name: 'o', conditions: and() }, 201);
    expectError(await call(a, 'GET', `/records?entityId=${entityId}&segmentId=${otherSegment.segmentId}`), 400, 'ValidationError');
    expectError(await call(a, 'GET', `/records?entityId=${entityId}&segmentId=CRMSG1260423081530123AAA11122233`), 404, 'NotFound');
  });

  test('CACHED: members follow every write at once, with entered/exited events and an O(1) count', async () => {
    const before1 = await newRecord('c1', { [stage]: 'WON', [score]: 70 });
    const segment = await ok(a, 'POST', '/segments', {
      entityId, name: 'won', mode: 'CACHED', conditions: and(cond(`data.${stage}`, 'eq', 'WON')),
    }, 201);
    const wonNow = async () => (await ok(a, 'POST', '/records/search/advanced', {
      entityId, conditionGroup: and(cond(`data.${stage}`, 'eq', 'WON')), limit: 200,
    })).data.map((r: { recordId: string }) => r.recordId).sort();
    const check = async () => {
      const expected = await wonNow();
      assert.deepEqual(await memberIds(segment.segmentId), expected);
      assert.deepEqual(await ok(a, 'GET', `/segments/${segment.segmentId}/count`), { count: expected.length });
      assert.equal((await ok(a, 'GET', `/segments/${segment.segmentId}`)).memberCount, expected.length);
      return expected;
    };
    assert.ok((await check()).includes(before1), 'existing records are members from the start');

    const r = await newRecord('c2', { [stage]: 'WON' });
    assert.ok((await check()).includes(r), 'create enters');
    await ok(a, 'PATCH', `/records/${r}`, { data: { [stage]: 'LEAD' } });
    assert.ok(!(await check()).includes(r), 'update exits');
    await ok(a, 'PATCH', `/records/${r}`, { data: { [stage]: 'WON' } });
    await ok(a, 'DELETE', `/records/${r}`);
    assert.ok(!(await check()).includes(r), 'trash exits');
    await ok(a, 'POST', `/records/${r}/restore`);
    assert.ok((await check()).includes(r), 'restore enters');
    await ok(a, 'POST', '/records/bulk/update', { records: [{ recordId: r, data: { [stage]: 'LEAD' } }, { recordId: before1, tags: ['x'] }] });
    await check();
    await ok(a, 'POST', '/records/bulk/update', { records: [{ recordId: r, data: { [stage]: 'WON' } }] });
    await ok(a, 'POST', '/records/bulk/delete', { recordIds: [r], permanent: true });
    assert.ok(!(await check()).includes(r), 'permanent delete exits');

    const events = await ok(a, 'GET', `/segments/${segment.segmentId}/events?limit=200`);
    assert.deepEqual(events.data.filter((e: { recordId: string }) => e.recordId === r).map((e: { eventType: string }) => e.eventType), [
      'segment.entered', 'segment.exited', 'segment.entered', 'segment.exited', 'segment.entered', 'segment.exited', 'segment.entered', 'segment.exited',
    ]);
    assert.ok(!events.data.some((e: { recordId: string }) => e.recordId === before1), 'the initial members are not entries');

    const refreshed = await ok(a, 'POST', `/segments/${segment.segmentId}/refresh`);
    assert.equal(refreshed.memberCount, (await wonNow()).length);
    assert.ok(refreshed.lastEvaluatedAt);
  });

  test('CACHED: GET /records?segmentId= pages its members; events carry their time; preview saves nothing; a delete frees the quota slot', async () => {
    const startedAt = Date.now();
    for (const name of ['f0', 'f1', 'f2']) await newRecord(name, { [stage]: 'WON', [score]: 5 });
    const segment = await ok(a, 'POST', '/segments', { entityId, name: 'won, cached', mode: 'CACHED', conditions: and(cond(`data.${stage}`, 'eq', 'WON')) }, 201);
    const entering = await newRecord('f3', { [stage]: 'WON' });
    const viaRecords: string[] = [];
    let startKey: string | undefined;
    do {
      const page = await ok(a, 'GET', `/records?entityId=${entityId}&segmentId=${segment.segmentId}&limit=3${startKey ? `&startKey=${encodeURIComponent(startKey)}` : ''}`);
      viaRecords.push(...page.data.map((r: { recordId: string }) => r.recordId));
      startKey = page.nextKey;
    } while (startKey);
    const members = await memberIds(segment.segmentId);
    assert.ok(members.length > 3 && members.includes(entering), `members: ${members.length}`);
    assert.deepEqual(viaRecords.sort(), members);

    const events = await ok(a, 'GET', `/segments/${segment.segmentId}/events?limit=200`);
    const entered = events.data.find((e: { recordId: string; eventType: string }) => e.recordId === entering && e.eventType === 'segment.entered');
    assert.ok(entered, JSON.stringify(events.data));
    const at = Date.parse(entered.occurredAt);
    assert.ok(at >= startedAt - 1000 && at <= Date.now() + 1000, `occurredAt ${entered.occurredAt}`);

    const listed = async () => (await ok(a, 'GET', `/segments?entityId=${entityId}`)).map((x: { segmentId: string }) => x.segmentId).sort();
    const before = await listed();
    const preview = await ok(a, 'POST', '/segments/preview', { entityId, conditions: and(cond(`data.${stage}`, 'eq', 'WON')) });
    assert.equal(preview.count, members.length);
    assert.deepEqual(await listed(), before, 'a preview saves no segment');

    const quotaEntity = (await ok(a, 'POST', '/entities', { name: 'quota', slug: uniq('quota') }, 201)).entityId;
    await t.services.quota.setLimits(a.tenant, { 'segments.maxPerEntity': 1 });
    try {
      const only = await ok(a, 'POST', '/segments', { entityId: quotaEntity, name: 'one', conditions: and() }, 201);
      expectError(await call(a, 'POST', '/segments', { entityId: quotaEntity, name: 'two', conditions: and() }), 403, 'PlanQuotaExceeded');
      await ok(a, 'DELETE', `/segments/${only.segmentId}`);
      await ok(a, 'POST', '/segments', { entityId: quotaEntity, name: 'two', conditions: and() }, 201);
    } finally {
      await t.services.quota.setLimits(a.tenant, { 'segments.maxPerEntity': null });
    }
  });

  test('CACHED pages come from the stored members: every sort, direction, cursor and filter pages exactly as the rules do', async () => {
    // A separate entity: 300 records in two bulk batches (each batch shares one dateCreated, so
    // record IDs break the ties), every 7th without points (the NULL phase of a property sort).
    const pages = (await ok(a, 'POST', '/entities', { name: 'pages', slug: uniq('pages') }, 201)).entityId;
    const points = (await ok(a, 'POST', '/properties', { entityId: pages, name: 'points', fieldType: 'NUMBER' }, 201)).propertyId;
    const pad = (i: number) => String(i).padStart(3, '0');
    for (const from of [0, 150]) {
      const records = Array.from({ length: 150 }, (_, k) => from + k).map((i) => ({
        entityId: pages, name: i % 50 === 0 ? `z${pad(i)}` : `n${pad(i)}`, data: i % 7 === 0 ? {} : { [points]: i % 50 === 0 ? 5 : 1000 + i },
      }));
      assert.equal((await ok(a, 'POST', '/records/bulk', { records })).recordIds.length, 150);
    }
    // Members: n280…n299 but n294 (19, near the end of the name order) and z050…z250 (5, scattered
    // in creation order, last by name): an ascending name page finds no member among the first
    // 256 records by name, so the records' probes give up and the members are read and sorted.
    const rules = or(cond(`data.${points}`, 'gte', 1280), cond(`data.${points}`, 'eq', 5), and(cond('name', 'startsWith', 'n28')));
    const cached = await ok(a, 'POST', '/segments', { entityId: pages, name: 'cached', mode: 'CACHED', conditions: rules }, 201);
    const live = await ok(a, 'POST', '/segments', { entityId: pages, name: 'live', conditions: rules }, 201);
    assert.equal(cached.memberCount, 24);
    const walk = async (segmentId: string, params: string, limit: number) => {
      const ids: string[] = [];
      let startKey: string | undefined;
      for (let n = 0; n < 100; n++) {
        const page = await ok(a, 'GET', `/segments/${segmentId}/records?limit=${limit}${params}${startKey ? `&startKey=${encodeURIComponent(startKey)}` : ''}`);
        assert.ok(page.data.length <= limit);
        ids.push(...page.data.map((r: { recordId: string }) => r.recordId));
        startKey = page.nextKey;
        if (!startKey) return ids;
      }
      throw new Error('pages never ended');
    };
    // REALTIME pages (the records' own paths, filtered by the rules) are the reference.
    const expectSamePages = async (label: string, expectedCount: number) => {
      const params = label === 'default' ? '' : `&${label}`;
      for (const limit of [3, 200]) {
        const fromMembers = await walk(cached.segmentId, params, limit);
        assert.deepEqual(fromMembers, await walk(live.segmentId, params, limit), `${label}, limit ${limit}`);
        assert.equal(new Set(fromMembers).size, expectedCount, `${label}, limit ${limit}: every member once`);
      }
    };
    const sorts = ['default', 'sortField=dateCreated&sortDirection=asc', 'sortField=name&sortDirection=asc',
      'sortField=name&sortDirection=desc', `sortField=${points}&sortDirection=desc`, `sortField=${points}&sortDirection=asc`, 'sortField=dateUpdated'];
    for (const sort of sorts) await expectSamePages(sort, 24);
    // The page's own filters and keyword apply inside the segment, in either kind of sort.
    const filters = `filters=${encodeURIComponent(JSON.stringify({ [points]: { op: 'gte', value: 1285 } }))}`;
    await expectSamePages(filters, 13);
    await expectSamePages(`${filters}&sortField=name&sortDirection=asc`, 13);
    await expectSamePages('keyword=n28', 10);

    // Writes move the pages at once: a member trashed, a record entering.
    const [first] = (await ok(a, 'GET', `/segments/${cached.segmentId}/records?limit=1`)).data;
    await ok(a, 'DELETE', `/records/${first.recordId}`);
    const entering = (await ok(a, 'POST', '/records', { entityId: pages, name: 'late', data: { [points]: 5 } }, 201)).recordId;
    assert.equal((await ok(a, 'GET', `/segments/${cached.segmentId}/records?limit=1`)).data[0].recordId, entering, 'the newest member first');
    for (const sort of sorts) await expectSamePages(sort, 24);
  });

  test('concurrent writers moving the same CACHED segments keep exact counters (no deadlock, no lost update)', async () => {
    const crowd = (await ok(a, 'POST', '/entities', { name: 'crowd', slug: uniq('crowd') }, 201)).entityId;
    const level = (await ok(a, 'POST', '/properties', { entityId: crowd, name: 'level', fieldType: 'NUMBER' }, 201)).propertyId;
    const recordIds: string[] = (await ok(a, 'POST', '/records/bulk', {
      records: Array.from({ length: 16 }, (_, i) => ({ entityId: crowd, name: `c${i}`, data: { [level]: 0 } })),
    })).recordIds;
    // Every write below moves a record in or out of all three segments at once.
    const segmentIds: string[] = [];
    for (const bound of [1, 2, 3]) {
      segmentIds.push((await ok(a, 'POST', '/segments', { entityId: crowd, name: `≥${bound}`, mode: 'CACHED', conditions: and(cond(`data.${level}`, 'gte', bound)) }, 201)).segmentId);
    }
    for (let round = 0; round < 12; round++) {
      const results = await Promise.all([
        ...recordIds.map((recordId, i) => call(a, 'PATCH', `/records/${recordId}`, { data: { [level]: (i + round) % 2 === 0 ? 5 : 0 } })),
        call(a, 'POST', '/records/bulk/update', { records: recordIds.slice(0, 4).reverse().map((recordId) => ({ recordId, tags: [`r${round}`] })) }),
      ]);
      for (const res of results) assert.equal(res.statusCode, 200, res.body);
    }
    const expected = (await ok(a, 'POST', '/records/search/advanced', { entityId: crowd, conditionGroup: and(cond(`data.${level}`, 'gte', 1)), limit: 200 }))
      .data.map((r: { recordId: string }) => r.recordId).sort();
    assert.equal(expected.length, 8);
    for (const segmentId of segmentIds) {
      assert.deepEqual(await memberIds(segmentId), expected);
      assert.equal((await ok(a, 'GET', `/segments/${segmentId}`)).memberCount, expected.length);
    }
  });

  test('creates entering a CACHED segment and permanent deletes of its members, side by side: no deadlock, exact counts', async () => {
    // Both move the account's records.max counter and the segment's member count in one transaction:
    // unless every writer takes the two locks in the same order, two of them can wait on each other.
    const pool = (await ok(a, 'POST', '/entities', { name: 'pool', slug: uniq('pool') }, 201)).entityId;
    const level = (await ok(a, 'POST', '/properties', { entityId: pool, name: 'level', fieldType: 'NUMBER' }, 201)).propertyId;
    const segmentId = (await ok(a, 'POST', '/segments', { entityId: pool, name: 'in', mode: 'CACHED', conditions: and(cond(`data.${level}`, 'gte', 1)) }, 201)).segmentId;
    const doomed: string[] = (await ok(a, 'POST', '/records/bulk', {
      records: Array.from({ length: 24 }, (_, i) => ({ entityId: pool, name: `d${i}`, data: { [level]: 1 } })),
    })).recordIds;
    const usedBefore = (await ok(a, 'GET', '/usage')).limits.find((l: { key: string }) => l.key === 'records.max').used;
    for (let round = 0; round < 4; round++) {
      const results = await Promise.all([
        ...Array.from({ length: 6 }, (_, i) => call(a, 'POST', '/records', { entityId: pool, name: `n${round}.${i}`, data: { [level]: 2 } })),
        call(a, 'POST', '/records/bulk', { records: [{ entityId: pool, name: `b${round}`, data: { [level]: 3 } }] }),
        ...[0, 1, 2].map((k) => call(a, 'POST', '/records/bulk/delete', { recordIds: doomed.slice(round * 6 + k * 2, round * 6 + k * 2 + 2), permanent: true })),
      ]);
      for (const res of results) assert.ok(res.statusCode === 200 || res.statusCode === 201, res.body);
    }
    const expected = (await ok(a, 'POST', '/records/search/advanced', { entityId: pool, conditionGroup: and(cond(`data.${level}`, 'gte', 1)), limit: 200 }))
      .data.map((r: { recordId: string }) => r.recordId).sort();
    assert.equal(expected.length, 4 * 7);
    assert.deepEqual(await memberIds(segmentId), expected);
    assert.equal((await ok(a, 'GET', `/segments/${segmentId}`)).memberCount, expected.length);
    const usedAfter = (await ok(a, 'GET', '/usage')).limits.find((l: { key: string }) => l.key === 'records.max').used;
    assert.equal(usedAfter, usedBefore + 4 * 7 - 24);
  });

  test('a deleted or retyped property makes its segments invalid: no members, not an error', async () => {
    const temp = (await ok(a, 'POST', '/properties', { entityId, name: uniq('temp'), fieldType: 'NUMBER' }, 201)).propertyId;
    const rec = await newRecord('t', { [temp]: 5 });
    const realtime = await ok(a, 'POST', '/segments', { entityId, name: 'rt', conditions: and(cond(`data.${temp}`, 'gte', 1)) }, 201);
    const cached = await ok(a, 'POST', '/segments', { entityId, name: 'c', mode: 'CACHED', conditions: and(cond(`data.${temp}`, 'gte', 1)) }, 201);
    assert.deepEqual(await memberIds(cached.segmentId), [rec]);
    assert.deepEqual(await memberIds(realtime.segmentId), [rec]);
    await ok(a, 'PATCH', `/records/${rec}`, { data: { [temp]: 6 } }); // the CACHED rules are compiled (and kept) for the write

    await ok(a, 'PATCH', `/properties/${temp}?force=true`, { fieldType: 'TEXT' });
    // A write after the retype evaluates the rules against the new definitions, not the compiled ones kept from before.
    await ok(a, 'PATCH', `/records/${rec}`, { data: { [temp]: '7' } });
    for (const s of [realtime, cached]) {
      const got = await ok(a, 'GET', `/segments/${s.segmentId}`);
      assert.equal(got.isValid, false, 'retyped: gte no longer fits TEXT');
      assert.match(got.invalidReason, /conditions/);
      assert.deepEqual(await memberIds(s.segmentId), []);
      assert.deepEqual(await ok(a, 'GET', `/segments/${s.segmentId}/count`), { count: 0 });
      assert.equal((await ok(a, 'GET', `/segments/${s.segmentId}/explain/${rec}`)).tree, null);
    }
    await ok(a, 'DELETE', `/properties/${temp}`);
    assert.equal((await ok(a, 'GET', `/segments/${realtime.segmentId}`)).isValid, false);
  });

  test('MEMBERs may not filter on masked properties through segments (403), ADMINs may', async () => {
    const secret = (await ok(a, 'POST', '/properties', { entityId, name: uniq('secret'), fieldType: 'TEXT', isMasked: true }, 201)).propertyId;
    await newRecord('masked', { [secret]: '9001-xyz' });
    const conditions = and(cond(`data.${secret}`, 'startsWith', '9001'));
    const member = await t.addMember(a, 'MEMBER');
    expectError(await call(member, 'POST', '/segments/preview', { entityId, conditions }), 403, 'Forbidden');
    expectError(await call(member, 'POST', '/segments', { entityId, name: 'guess', conditions }), 403, 'Forbidden');
    const admin = await t.addMember(a, 'ADMIN');
    assert.equal((await ok(admin, 'POST', '/segments/preview', { entityId, conditions })).count, 1);
    const segment = await ok(admin, 'POST', '/segments', { entityId, name: 'admin made', conditions }, 201);
    const anyRecord = (await ok(a, 'GET', `/records?entityId=${entityId}&limit=1`)).data[0].recordId;
    expectError(await call(member, 'GET', `/segments/${segment.segmentId}/explain/${anyRecord}`), 403, 'Forbidden');
    // Across a relationship: the masked property of the related entity inside `where`.
    const companies = (await ok(a, 'POST', '/entities', { name: 'c', slug: uniq('companies') }, 201)).entityId;
    const type = await ok(a, 'POST', '/relationships/types', { name: 'deals', sourceEntityId: companies, targetEntityId: entityId }, 201);
    const across = and({ field: `relationship.${type.relationshipTypeId}`, operator: 'exists', where: conditions });
    expectError(await call(member, 'POST', '/segments/preview', { entityId: companies, conditions: across }), 403, 'Forbidden');
    expectError(await call(member, 'POST', '/segments', { entityId: companies, name: 'guess', mode: 'CACHED', conditions: across }), 403, 'Forbidden');
    assert.equal((await ok(admin, 'POST', '/segments/preview', { entityId: companies, conditions: across })).count, 0);
  });

  test('CACHED relationship conditions follow links, related records, entity trash and type deletion', async () => {
    const companies = (await ok(a, 'POST', '/entities', { name: 'c', slug: uniq('companies') }, 201)).entityId;
    const type = await ok(a, 'POST', '/relationships/types', { name: 'deals', sourceEntityId: companies, targetEntityId: entityId }, 201);
    const field = `relationship.${type.relationshipTypeId}`;
    const hot = await ok(a, 'POST', '/segments', {
      entityId: companies, name: 'with a WON deal', mode: 'CACHED',
      conditions: and({ field, operator: 'exists', where: and(cond(`data.${stage}`, 'eq', 'WON')) }),
    }, 201);
    const lonely = await ok(a, 'POST', '/segments', { entityId: companies, name: 'no deals', mode: 'CACHED', conditions: and({ field, operator: 'notExists' }) }, 201);
    const acme = (await ok(a, 'POST', '/records', { entityId: companies, name: 'acme' }, 201)).recordId;
    const deal = await newRecord('deal', { [stage]: 'LEAD' });
    const expectMembers = async (segmentId: string, ids: string[], step: string) => {
      assert.deepEqual(await memberIds(segmentId), ids, step);
      assert.equal((await ok(a, 'GET', `/segments/${segmentId}`)).memberCount, ids.length, step);
    };
    await expectMembers(hot.segmentId, [], 'start');
    await expectMembers(lonely.segmentId, [acme], 'start');

    const link = await ok(a, 'POST', '/relationships', { relationshipTypeId: type.relationshipTypeId, sourceEntityId: companies, sourceRecordId: acme, targetEntityId: entityId, targetRecordId: deal }, 201);
    await expectMembers(lonely.segmentId, [], 'linked');
    await expectMembers(hot.segmentId, [], 'linked, deal not WON');
    await ok(a, 'PATCH', `/records/${deal}`, { data: { [stage]: 'WON' } });
    await expectMembers(hot.segmentId, [acme], 'the related deal is WON');
    await ok(a, 'DELETE', `/records/${deal}`);
    await expectMembers(hot.segmentId, [], 'the related deal is trashed: its link is hidden');
    await expectMembers(lonely.segmentId, [acme], 'no visible deals');
    await ok(a, 'POST', `/records/${deal}/restore`);
    await expectMembers(hot.segmentId, [acme], 'restored');
    await ok(a, 'DELETE', `/relationships/${link.relationshipId}`);
    await expectMembers(hot.segmentId, [], 'unlinked');
    await expectMembers(lonely.segmentId, [acme], 'unlinked');
    assert.deepEqual(await ok(a, 'POST', '/relationships/bulk', { relationshipTypeId: type.relationshipTypeId, sourceEntityId: companies, targetEntityId: entityId, sourceRecordIds: [acme], targetRecordIds: [deal] }), { created: 1, skipped: 0 });
    await expectMembers(hot.segmentId, [acme], 'bulk linked');
    await ok(a, 'POST', '/records/bulk/delete', { recordIds: [deal], permanent: true });
    await expectMembers(hot.segmentId, [], 'the deal deleted for good');
    await expectMembers(lonely.segmentId, [acme], 'the deal deleted for good');

    // A type deleted with its links: rules naming it no longer fit; the segments empty.
    const other = await newRecord('other', { [stage]: 'WON' });
    await ok(a, 'POST', '/relationships', { relationshipTypeId: type.relationshipTypeId, sourceEntityId: companies, sourceRecordId: acme, targetEntityId: entityId, targetRecordId: other }, 201);
    await expectMembers(hot.segmentId, [acme], 'linked again');
    await ok(a, 'DELETE', `/relationships/types/${type.relationshipTypeId}?cascade=true`);
    for (const s of [hot, lonely]) {
      assert.equal((await ok(a, 'GET', `/segments/${s.segmentId}`)).isValid, false);
      await expectMembers(s.segmentId, [], 'type deleted');
    }
  });

  test('trashing the related entity hides its links from CACHED relationship conditions, restoring shows them', async () => {
    const people = (await ok(a, 'POST', '/entities', { name: 'p', slug: uniq('people') }, 201)).entityId;
    const type = await ok(a, 'POST', '/relationships/types', { name: 'contacts', sourceEntityId: entityId, targetEntityId: people }, 201);
    const segment = await ok(a, 'POST', '/segments', { entityId, name: 'has contact', mode: 'CACHED', conditions: and({ field: `relationship.${type.relationshipTypeId}`, operator: 'exists' }) }, 201);
    const deal = await newRecord('with contact', {});
    const person = (await ok(a, 'POST', '/records', { entityId: people, name: 'kim' }, 201)).recordId;
    await ok(a, 'POST', '/relationships', { relationshipTypeId: type.relationshipTypeId, sourceEntityId: entityId, sourceRecordId: deal, targetEntityId: people, targetRecordId: person }, 201);
    assert.deepEqual(await memberIds(segment.segmentId), [deal]);
    await ok(a, 'DELETE', `/entities/${people}`);
    assert.deepEqual(await memberIds(segment.segmentId), [], 'the related entity is in the trash');
    await ok(a, 'POST', `/entities/${people}/restore`);
    assert.deepEqual(await memberIds(segment.segmentId), [deal], 'restored');
  });

  test('a CACHED segment naming a type stays empty and invalid from its related entity\'s trash through its retention purge', async () => {
    const people = (await ok(a, 'POST', '/entities', { name: 'p', slug: uniq('people') }, 201)).entityId;
    const type = await ok(a, 'POST', '/relationships/types', { name: 'contacts', sourceEntityId: entityId, targetEntityId: people }, 201);
    const field = `relationship.${type.relationshipTypeId}`;
    const segment = await ok(a, 'POST', '/segments', { entityId, name: 'has contact', mode: 'CACHED', conditions: and(cond(field, 'exists')) }, 201);
    const deal = await newRecord('contact purged', {});
    const person = (await ok(a, 'POST', '/records', { entityId: people, name: 'lee' }, 201)).recordId;
    await ok(a, 'POST', '/relationships', { relationshipTypeId: type.relationshipTypeId, sourceEntityId: entityId, sourceRecordId: deal, targetEntityId: people, targetRecordId: person }, 201);
    assert.equal((await ok(a, 'GET', `/segments/${segment.segmentId}`)).memberCount, 1);

    const emptyAndInvalid = async (when: string) => {
      const read = await ok(a, 'GET', `/segments/${segment.segmentId}`);
      assert.equal(read.isValid, false, when);
      assert.equal(read.memberCount, 0, when);
      assert.equal((await ok(a, 'GET', `/segments/${segment.segmentId}/count`)).count, 0, when);
      assert.deepEqual(await memberIds(segment.segmentId), [], when);
      assert.equal((await ok(a, 'GET', `/segments/${segment.segmentId}/explain/${deal}`)).isMember, false, when);
    };
    // The trash makes the type unusable: the segment's rules no longer fit, and its rebuild empties it.
    await ok(a, 'DELETE', `/entities/${people}`);
    await emptyAndInvalid('related entity in the trash');
    const events = (await ok(a, 'GET', `/segments/${segment.segmentId}/events?limit=100`)).data as { eventType: string; recordId: string }[];
    assert.deepEqual(events.map((e) => [e.eventType, e.recordId]), [['segment.entered', deal], ['segment.exited', deal]]);

    const report = await purgeExpiredTrash(t.database.db, Date.now() + 31 * 86_400_000, { hooks: t.services.segments, accountIds: [a.accountId] });
    assert.deepEqual(report.failures, []);
    expectError(await call(a, 'GET', `/relationships/types/${type.relationshipTypeId}`), 404, 'NotFound');
    await emptyAndInvalid('type purged with its entity');
  });

  test('record access and workspaces apply to every segment read', async () => {
    const locked = (await ok(a, 'POST', '/entities', { name: 'locked', slug: uniq('locked'), recordAccess: 'ADMIN_ONLY' }, 201)).entityId;
    const segment = await ok(a, 'POST', '/segments', { entityId: locked, name: 's', conditions: and() }, 201);
    const member = await t.addMember(a, 'MEMBER');
    for (const url of [`/segments/${segment.segmentId}`, `/segments/${segment.segmentId}/records`, `/segments/${segment.segmentId}/count`,
      `/segments/${segment.segmentId}/events`, `/segments/${segment.segmentId}/explain/CRMRC1260423081530123AAA11122233`]) {
      expectError(await call(member, 'GET', url), 403, 'Forbidden');
    }
    expectError(await call(member, 'POST', `/segments/${segment.segmentId}/refresh`), 403, 'Forbidden');
    expectError(await call(member, 'POST', '/segments/preview', { entityId: locked, conditions: and() }), 403, 'Forbidden');
    const listed = await ok(member, 'GET', '/segments');
    assert.ok(!listed.some((s: { segmentId: string }) => s.segmentId === segment.segmentId));
    const b = await t.newAccount();
    expectError(await call(b, 'GET', `/segments/${segment.segmentId}`), 404, 'NotFound');
    expectError(await call(b, 'DELETE', `/segments/${segment.segmentId}`), 404, 'NotFound');
    await ok(a, 'DELETE', `/entities/${locked}`);
    expectError(await call(a, 'GET', `/segments/${segment.segmentId}`), 410, 'Gone');
  });
});
