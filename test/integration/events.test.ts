import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { purgeExpiredTrash } from '../../src/modules/trash/trash.purge.ts';
import { apiOf, startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { systemDb } from '../../src/db/tenant.ts';
import { expectError, uniq } from '../helpers/assertions.ts';
import type { Credentials } from '../helpers/sign.ts';

const UNKNOWN_RECORD = 'CRMRC1260101000000000ABCDEFGHIJK';
const EVENT_FIELDS = ['eventId', 'accountId', 'entityId', 'recordId', 'eventType', 'category', 'label', 'value', 'properties', 'occurredAt', 'dateCreated'];


describe('events (API.md §9)', () => {
  let t: TestApp;
  let account: TestAccount;
  let member: Credentials & { memberId: string };
  let entityId: string;
  let recordId: string;

  const { call, ok } = apiOf(() => t, () => account);
  const entity = async (extra: Record<string, unknown> = {}) => (await ok('POST', '/entities', { name: 'E', slug: uniq('e'), ...extra })).entityId as string;
  const record = async (entity: string = entityId) => (await ok('POST', '/records', { entityId: entity, name: uniq('r') })).recordId as string;
  const event = (body: Record<string, unknown>, creds: Credentials = account) => ok('POST', '/events', { entityId, recordId, eventType: 'purchase', ...body }, creds);
  const rowsOf = (record: string) => systemDb(t.database.db).selectFrom('events').select('event_id').where('account_id', '=', account.accountId).where('record_id', '=', record).execute();

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
    member = await t.addMember(account, 'MEMBER');
    entityId = await entity();
    recordId = await record();
  });
  after(() => t.close());

  test('create: the documented fields; optional ones omitted when unset; occurredAt defaults to now', async () => {
    const res = await call('POST', '/events', {
      entityId, recordId, eventType: 'purchase', category: 'online', label: '여름 세일 주문', value: 12900.5,
      properties: { orderId: 'A-1', items: [1, 2] }, occurredAt: '2026-04-20T19:00:00+09:00',
    }, member);
    assert.equal(res.statusCode, 201, res.body);
    const e = res.json();
    assert.match(e.eventId, /^CRMEV1\d{15}[A-Za-z0-9]{11}$/);
    assert.deepEqual(Object.keys(e).sort(), [...EVENT_FIELDS].sort());
    assert.equal(e.accountId, account.accountId);
    assert.equal(e.occurredAt, '2026-04-20T10:00:00.000Z');
    assert.equal(e.value, 12900.5);
    assert.deepEqual(e.properties, { orderId: 'A-1', items: [1, 2] });
    const before = Date.now();
    const bare = await event({ eventType: 'visit' });
    assert.deepEqual(Object.keys(bare).sort(), EVENT_FIELDS.filter((f) => !['category', 'label', 'value'].includes(f)).sort());
    assert.deepEqual(bare.properties, {});
    assert.ok(Math.abs(Date.parse(bare.occurredAt) - before) < 60_000);
  });

  test('length limits (128 / 512 characters) and other validation → 400', async () => {
    const bad = async (body: Record<string, unknown>, mention: string) =>
      expectError(await call('POST', '/events', { entityId, recordId, eventType: 'x', ...body }), 400, 'ValidationError', mention);
    await bad({ eventType: 'x'.repeat(129) }, 'eventType');
    await bad({ eventType: '' }, 'eventType');
    await bad({ category: 'c'.repeat(129) }, 'category');
    await bad({ label: 'l'.repeat(513) }, 'label');
    await bad({ entityId: 'E'.repeat(129) }, 'entityId');
    await bad({ recordId: 'R'.repeat(129) }, 'recordId');
    await bad({ value: 'ten' }, 'value');
    await bad({ occurredAt: '2026-13-01T00:00:00Z' }, 'occurredAt');
    await bad({ properties: { big: 'x'.repeat(17_000) } }, 'properties');
    await bad({ properties: [1] }, 'properties');
    await bad({ extra: true }, 'extra');
    expectError(await call('POST', '/events', { entityId, recordId }), 400, 'ValidationError', 'eventType');
    // At the limits: fine.
    const edge = await event({ eventType: 't'.repeat(128), category: 'c'.repeat(128), label: 'l'.repeat(512) });
    assert.equal(edge.label.length, 512);
  });

  test('the record: 404 unknown, 410 trashed, 400 another entity\'s, 403 recordAccess', async () => {
    expectError(await call('POST', '/events', { entityId, recordId: UNKNOWN_RECORD, eventType: 'x' }), 404, 'NotFound');
    const trashed = await record();
    await ok('DELETE', `/records/${trashed}`);
    expectError(await call('POST', '/events', { entityId, recordId: trashed, eventType: 'x' }), 410, 'Gone');
    const otherEntity = await entity();
    expectError(await call('POST', '/events', { entityId: otherEntity, recordId, eventType: 'x' }), 400, 'ValidationError', 'entityId');
    const locked = await entity({ recordAccess: 'ADMIN_ONLY' });
    const lockedRecord = await record(locked);
    expectError(await call('POST', '/events', { entityId: locked, recordId: lockedRecord, eventType: 'x' }, member), 403, 'Forbidden');
    expectError(await call('POST', '/events/bulk', { events: [{ entityId: locked, recordId: lockedRecord, eventType: 'x' }] }, member), 403, 'Forbidden');
    expectError(await call('GET', `/events?entityId=${locked}`, undefined, member), 403, 'Forbidden');
    expectError(await call('GET', `/events?recordId=${lockedRecord}`, undefined, member), 403, 'Forbidden');
    expectError(await call('GET', `/events/summaries?entityId=${locked}`, undefined, member), 403, 'Forbidden');
    const gone = await entity();
    const goneRecord = await record(gone);
    await ok('DELETE', `/entities/${gone}`);
    expectError(await call('POST', '/events', { entityId: gone, recordId: goneRecord, eventType: 'x' }), 410, 'Gone');
    expectError(await call('GET', `/events?entityId=${gone}`), 410, 'Gone');
  });

  test('bulk: ≤100 → {created}; all or nothing, details name each bad item', async () => {
    const r = await record();
    const item = (i: number) => ({ entityId, recordId: r, eventType: 'page_view', category: i % 2 ? 'web' : 'app', value: i, occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() });
    assert.deepEqual(await ok('POST', '/events/bulk', { events: Array.from({ length: 100 }, (_, i) => item(i)) }), { created: 100 });
    assert.equal((await rowsOf(r)).length, 100);
    expectError(await call('POST', '/events/bulk', { events: Array.from({ length: 101 }, (_, i) => item(i)) }), 400, 'ValidationError', 'events');
    expectError(await call('POST', '/events/bulk', { events: [] }), 400, 'ValidationError', 'events');
    const trashed = await record();
    await ok('DELETE', `/records/${trashed}`);
    const other = await entity();
    const foreign = await record(other);
    const res = await call('POST', '/events/bulk', {
      events: [item(1), { ...item(2), recordId: UNKNOWN_RECORD }, { ...item(3), recordId: trashed }, { ...item(4), recordId: foreign }],
    });
    expectError(res, 400, 'ValidationError');
    assert.deepEqual(res.json().details.map((d: any) => d.index), [1, 2, 3]);
    expectError(await call('POST', '/events/bulk', { events: [item(1), { ...item(2), label: 'l'.repeat(513) }] }), 400, 'ValidationError', 'events/1/label');
    expectError(await call('POST', '/events/bulk', { events: [item(1), { ...item(2), occurredAt: 'now' }] }), 400, 'ValidationError', 'events/1/occurredAt');
    assert.equal((await rowsOf(r)).length, 100, 'nothing written by the failed batches');
  });

  test('list: entityId or recordId required; latest occurredAt first; filters; bad cursor 400', async () => {
    const e = await entity();
    const [r1, r2] = [await record(e), await record(e)];
    const at = (day: number) => `2026-02-${String(day).padStart(2, '0')}T00:00:00.000Z`;
    await ok('POST', '/events/bulk', { events: [
      { entityId: e, recordId: r1, eventType: 'purchase', category: 'online', value: 100, occurredAt: at(3) },
      { entityId: e, recordId: r1, eventType: 'purchase', category: 'store', value: 50, occurredAt: at(1) },
      { entityId: e, recordId: r2, eventType: 'visit', occurredAt: at(2) },
    ] });
    const occurred = (page: any) => page.data.map((x: any) => x.occurredAt);
    assert.deepEqual(occurred(await ok('GET', `/events?entityId=${e}`)), [at(3), at(2), at(1)]);
    assert.deepEqual(occurred(await ok('GET', `/events?recordId=${r1}`)), [at(3), at(1)]);
    assert.deepEqual(occurred(await ok('GET', `/events?entityId=${e}&recordId=${r2}`)), [at(2)]);
    assert.deepEqual(occurred(await ok('GET', `/events?entityId=${e}&eventType=purchase&category=store`)), [at(1)]);
    assert.deepEqual(occurred(await ok('GET', `/events?entityId=${e}&from=${at(2)}&to=${at(3)}`)), [at(2)]);
    expectError(await call('GET', '/events'), 400, 'ValidationError', 'entityId');
    expectError(await call('GET', `/events?entityId=${await entity()}&recordId=${r1}`), 400, 'ValidationError', 'entityId');
    expectError(await call('GET', `/events?entityId=${e}&limit=201`), 400, 'ValidationError', 'limit');
    expectError(await call('GET', `/events?entityId=${e}&startKey=nope`), 400, 'ValidationError', 'startKey');
    expectError(await call('GET', `/events?recordId=${UNKNOWN_RECORD}`), 404, 'NotFound');
  });

  test('keyset pages never skip or repeat an event while others are inserted (including at the same instant)', async () => {
    const e = await entity();
    const r = await record(e);
    const same = '2026-03-01T00:00:00.000Z';
    await ok('POST', '/events/bulk', { events: Array.from({ length: 30 }, (_, i) => ({
      entityId: e, recordId: r, eventType: 'tick', value: i, occurredAt: i % 3 === 0 ? same : new Date(Date.UTC(2026, 2, 1, 0, 0, i)).toISOString(),
    })) });
    const existing = new Set((await rowsOf(r)).map((x) => x.event_id));
    const seen: string[] = [];
    let startKey: string | undefined;
    let n = 0;
    do {
      const page = await ok('GET', `/events?entityId=${e}&limit=7${startKey ? `&startKey=${encodeURIComponent(startKey)}` : ''}`);
      seen.push(...page.data.map((x: any) => x.eventId));
      startKey = page.nextKey;
      // New events before, after and at the cursor's instant.
      await ok('POST', '/events/bulk', { events: [same, '2025-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'].map((occurredAt) => ({ entityId: e, recordId: r, eventType: 'tick', occurredAt, label: `during ${n}` })) });
      n++;
    } while (startKey);
    assert.equal(new Set(seen).size, seen.length, 'no event repeated');
    for (const id of existing) assert.ok(seen.includes(id), `${id} was skipped`);
  });

  test('summaries: totalCount, totalValue, lastOccurredAt per (eventType, category), scoped like the list', async () => {
    const e = await entity();
    const [r1, r2] = [await record(e), await record(e)];
    await ok('POST', '/events/bulk', { events: [
      { entityId: e, recordId: r1, eventType: 'purchase', category: 'online', value: 100, occurredAt: '2026-01-01T00:00:00Z' },
      { entityId: e, recordId: r1, eventType: 'purchase', category: 'online', value: 20.5, occurredAt: '2026-01-05T00:00:00Z' },
      { entityId: e, recordId: r2, eventType: 'purchase', category: 'store', value: 7, occurredAt: '2026-01-03T00:00:00Z' },
      { entityId: e, recordId: r2, eventType: 'visit', occurredAt: '2026-01-04T00:00:00Z' },
      { entityId: e, recordId: r2, eventType: 'visit', occurredAt: '2026-01-02T00:00:00Z' },
    ] });
    const all = await ok('GET', `/events/summaries?entityId=${e}`);
    assert.deepEqual(all, { summaries: [
      { eventType: 'purchase', category: 'online', totalCount: 2, totalValue: 120.5, lastOccurredAt: '2026-01-05T00:00:00.000Z' },
      { eventType: 'purchase', category: 'store', totalCount: 1, totalValue: 7, lastOccurredAt: '2026-01-03T00:00:00.000Z' },
      { eventType: 'visit', category: null, totalCount: 2, totalValue: 0, lastOccurredAt: '2026-01-04T00:00:00.000Z' },
    ] });
    assert.deepEqual((await ok('GET', `/events/summaries?recordId=${r2}&eventType=purchase`)).summaries,
      [{ eventType: 'purchase', category: 'store', totalCount: 1, totalValue: 7, lastOccurredAt: '2026-01-03T00:00:00.000Z' }]);
    assert.deepEqual((await ok('GET', `/events/summaries?entityId=${e}&category=online`)).summaries.map((s: any) => s.totalCount), [2]);
    assert.deepEqual((await ok('GET', `/events/summaries?entityId=${e}&from=2026-01-04T00:00:00Z`)).summaries.map((s: any) => [s.eventType, s.totalCount]), [['purchase', 1], ['visit', 1]]);
    assert.deepEqual(await ok('GET', `/events/summaries?entityId=${await entity()}`), { summaries: [] });
    expectError(await call('GET', '/events/summaries'), 400, 'ValidationError', 'entityId');
  });

  test('hidden with their trashed record or entity, back on restore, removed on purge', async () => {
    const e = await entity();
    const [r, keep] = [await record(e), await record(e)];
    const body = (rec: string) => ({ events: [{ entityId: e, recordId: rec, eventType: 'purchase', value: 10 }] });
    await ok('POST', '/events/bulk', body(r));
    await ok('POST', '/events/bulk', body(keep));
    const count = async () => (await ok('GET', `/events?entityId=${e}`)).data.length;
    const total = async () => (await ok('GET', `/events/summaries?entityId=${e}`)).summaries[0].totalValue;
    assert.equal(await count(), 2);

    await ok('DELETE', `/records/${r}`);
    assert.equal(await count(), 1);
    assert.equal(await total(), 10);
    expectError(await call('GET', `/events?recordId=${r}`), 410, 'Gone');
    expectError(await call('GET', `/events/summaries?recordId=${r}`), 410, 'Gone');
    await ok('POST', `/records/${r}/restore`);
    assert.equal(await count(), 2);
    assert.equal(await total(), 20);

    await ok('DELETE', `/entities/${e}`);
    expectError(await call('GET', `/events?recordId=${keep}`), 410, 'Gone');
    expectError(await call('GET', `/events/summaries?entityId=${e}`), 410, 'Gone');
    await ok('POST', `/entities/${e}/restore`);
    assert.equal(await count(), 2);

    await ok('DELETE', `/records/${r}`);
    const report = await purgeExpiredTrash(t.database.db, Date.now() + 15 * 86_400_000, { hooks: t.services.segments, accountIds: [account.accountId] });
    assert.deepEqual(report.failures, []);
    assert.equal((await rowsOf(r)).length, 0, 'purged with the record');
    assert.equal((await rowsOf(keep)).length, 1);
    await ok('POST', '/records/bulk/delete', { recordIds: [keep], permanent: true });
    assert.equal((await rowsOf(keep)).length, 0, 'a permanent delete removes them too');
  });

  test('workspaces and tenants: an entity outside the key\'s workspace or account is 404', async () => {
    const keyA = await ok('POST', '/api-keys', { workspaceId: 'ws_a' });
    const keyB = await ok('POST', '/api-keys', { workspaceId: 'ws_b' });
    const wsA = { apiKey: keyA.apiKey, apiSecret: keyA.apiSecret };
    const wsB = { apiKey: keyB.apiKey, apiSecret: keyB.apiSecret };
    const e = (await ok('POST', '/entities', { name: 'A', slug: uniq('wa') }, wsA)).entityId;
    const r = (await ok('POST', '/records', { entityId: e }, wsA)).recordId;
    await ok('POST', '/events', { entityId: e, recordId: r, eventType: 'x' }, wsA);
    expectError(await call('POST', '/events', { entityId: e, recordId: r, eventType: 'x' }, wsB), 404, 'NotFound');
    expectError(await call('POST', '/events/bulk', { events: [{ entityId: e, recordId: r, eventType: 'x' }] }, wsB), 404, 'NotFound');
    expectError(await call('GET', `/events?entityId=${e}`, undefined, wsB), 404, 'NotFound');
    expectError(await call('GET', `/events/summaries?recordId=${r}`, undefined, wsB), 404, 'NotFound');
    assert.equal((await ok('GET', `/events?entityId=${e}`, undefined, wsA)).data.length, 1);

    const stranger = await t.newAccount();
    expectError(await call('POST', `/events`, { entityId, recordId, eventType: 'x' }, stranger), 404, 'NotFound');
    expectError(await call('GET', `/events?recordId=${recordId}`, undefined, stranger), 404, 'NotFound');
  });
});
