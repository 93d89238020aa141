import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import type { Credentials } from '../helpers/sign.ts';
import { expectError, uniq } from '../helpers/assertions.ts';
import { mulberry32 } from '../../bench/lib/generate-records.ts';

/**
 * Insights (API.md §10): POST /records/aggregate, GET /entities/{id}/board (+ /board/cards) and
 * GET /entities/{id}/insights, checked against the same numbers computed here over the seeded
 * records.
 */

const V1 = '/crm-core/v1';
const STAGES = ['LEAD', 'QUALIFIED', 'PROPOSAL', 'WON', 'LOST', 'ON_HOLD'];
const INTERESTS = ['golf', 'wine', 'travel'];
const DAY = 86_400_000;

interface Seed {
  name: string;
  stage?: string;
  amount?: number;
  prob?: number;
  interests?: string[];
  flag?: boolean;
  secret?: number;
  tags: string[];
  byMember: boolean;
  /** Days before "now" the record was created (and last updated). */
  ageDays: number;
  recordId?: string;
}

function seeds(): Seed[] {
  const r = mulberry32(7);
  const out: Seed[] = [];
  for (let i = 0; i < 48; i++) {
    const s: Seed = { name: `deal ${i}`, tags: [], byMember: r() < 0.3, ageDays: Math.floor(r() * 20) };
    // ON_HOLD never gets a record: an empty group. Some records have no stage: the "none" group.
    if (r() < 0.9) s.stage = STAGES[Math.floor(r() * 5)];
    if (r() < 0.85) s.amount = Math.floor(r() * 2000) * 5 + (r() < 0.3 ? 0.25 : 0);
    if (r() < 0.8) s.prob = Math.floor(r() * 11) * 10;
    if (r() < 0.8) s.interests = INTERESTS.filter(() => r() < 0.5);
    if (r() < 0.9) s.flag = r() < 0.5;
    if (r() < 0.7) s.secret = Math.floor(r() * 100);
    if (r() < 0.3) s.tags.push('vip');
    if (r() < 0.2) s.tags.push('renewal');
    out.push(s);
  }
  return out;
}

type Stats = { count: number; sum: number; n: number; min: number | null; max: number | null };
const empty = (): Stats => ({ count: 0, sum: 0, n: 0, min: null, max: null });
function add(s: Stats, value: number | undefined) {
  s.count++;
  if (value === undefined) return;
  s.sum += value;
  s.n++;
  s.min = s.min === null ? value : Math.min(s.min, value);
  s.max = s.max === null ? value : Math.max(s.max, value);
}
/** Expected buckets keyed by group key (null: no value), for a key function giving 0..n keys per record. */
function expected(records: Seed[], keys: (s: Seed) => (string | null)[], value: (s: Seed) => number | undefined = (s) => s.amount) {
  const map = new Map<string | null, Stats>();
  const total = empty();
  for (const s of records) {
    add(total, value(s));
    for (const k of keys(s)) {
      if (!map.has(k)) map.set(k, empty());
      add(map.get(k)!, value(s));
    }
  }
  return { map, total };
}
/** [count, sum, avg, min, max] as the API answers for metrics count/sum/avg/min/max. */
const row = (s: Stats) => [s.count, s.sum, s.n ? s.sum / s.n : null, s.min, s.max];
const near = (actual: (number | null)[], wanted: (number | null)[], message: string) => {
  assert.equal(actual.length, wanted.length, message);
  actual.forEach((v, i) => {
    const w = wanted[i]!;
    if (w === null || v === null) assert.equal(v, w, message);
    else assert.ok(Math.abs(v - w) <= 1e-9 * Math.max(1, Math.abs(w)), `${message}: value ${i} ${v} ≠ ${w}`);
  });
};

describe('insights', () => {
  let t: TestApp;
  let a: TestAccount;
  let member: Credentials & { memberId: string };
  let admin: Credentials & { memberId: string };
  let entityId: string;
  const p: Record<string, string> = {};
  let records: Seed[];
  const now = Date.now();

  const call = (creds: Credentials, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) => t.call(creds, method, `${V1}${url}`, body);
  const ok = async (creds: Credentials, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown, status = 200) => {
    const res = await call(creds, method, url, body);
    assert.equal(res.statusCode, status, `${method} ${url}: ${res.body}`);
    return res.json();
  };
  const aggregate = (body: Record<string, unknown>, creds: Credentials = a) => ok(creds, 'POST', '/records/aggregate', { entityId, ...body });
  const ALL = () => [{ op: 'count' }, { op: 'sum', propertyId: p.amount }, { op: 'avg', propertyId: p.amount }, { op: 'min', propertyId: p.amount }, { op: 'max', propertyId: p.amount }];
  const live = () => records.filter((s) => s.recordId !== undefined);

  async function property(name: string, fieldType: string, extra: Record<string, unknown> = {}) {
    return (await ok(a, 'POST', '/properties', { entityId, name, fieldType, ...extra }, 201)).propertyId as string;
  }

  before(async () => {
    t = await startTestApp();
    a = await t.newAccount();
    member = await t.addMember(a, 'MEMBER');
    admin = await t.addMember(a, 'ADMIN');
    entityId = (await ok(a, 'POST', '/entities', { name: '딜', slug: uniq('deals') }, 201)).entityId;
    const options = (values: string[]) => values.map((value) => ({ label: `L-${value}`, value }));
    p.stage = await property('단계', 'DROPDOWN', { options: options(STAGES) });
    p.amount = await property('금액', 'NUMBER');
    p.prob = await property('확률', 'NUMBER');
    p.interests = await property('관심사', 'MULTI_CHECKBOX', { options: options(INTERESTS) });
    p.flag = await property('동의', 'CHECKBOX');
    p.secret = await property('비밀', 'NUMBER', { isMasked: true });
    p.title = await property('메모', 'TEXT');
    p.tier = await property('등급', 'DROPDOWN', { options: options(['A', 'B']), isMasked: true });
    records = seeds();
    // Created at their age (the app's clock), so dateUpdated drives rotting.
    for (const s of records) {
      t.clock.now = now - s.ageDays * DAY;
      const data: Record<string, unknown> = {};
      if (s.stage !== undefined) data[p.stage!] = s.stage;
      if (s.amount !== undefined) data[p.amount!] = s.amount;
      if (s.prob !== undefined) data[p.prob!] = s.prob;
      if (s.interests !== undefined) data[p.interests!] = s.interests;
      if (s.flag !== undefined) data[p.flag!] = s.flag;
      if (s.secret !== undefined) data[p.secret!] = s.secret;
      s.recordId = (await ok(a, 'POST', '/records', { entityId, name: s.name, data, tags: s.tags, ownerId: s.byMember ? member.memberId : a.memberId }, 201)).recordId;
    }
    t.clock.now = undefined;
  });
  after(() => t.close());

  test('grouped by a dropdown: every option in option order (empty ones too), then none; exact count/sum/avg/min/max', async () => {
    const res = await aggregate({ groupBy: p.stage, metrics: ALL() });
    const { map, total } = expected(live(), (s) => [s.stage ?? null]);
    assert.deepEqual(res.buckets.map((b: { key: string | null }) => b.key), [...STAGES, null]);
    assert.deepEqual(res.buckets.map((b: { label?: string }) => b.label), [...STAGES.map((s) => `L-${s}`), undefined]);
    for (const b of res.buckets) {
      const want = row(map.get(b.key) ?? empty());
      assert.equal(b.count, want[0]);
      near(b.values, want, `bucket ${b.key}`);
    }
    const onHold = res.buckets.find((b: { key: string }) => b.key === 'ON_HOLD');
    assert.deepEqual(onHold, { key: 'ON_HOLD', label: 'L-ON_HOLD', count: 0, values: [0, 0, null, null, null] });
    near(res.total.values, row(total), 'total');
    assert.equal(res.total.count, live().length);
    assert.deepEqual(res.metrics[1], { op: 'sum', propertyId: p.amount });
    assert.equal(res.groupBy, p.stage);
    assert.equal(res.dateBucket, null);
    assert.equal(res.timeZone, 'UTC');
  });

  test('no groupBy: one total, no buckets; default metric is count', async () => {
    const res = await aggregate({});
    assert.deepEqual(res.buckets, []);
    assert.deepEqual(res.total, { count: live().length, values: [live().length] });
  });

  test('MULTI_CHECKBOX counts a record in each of its options; tags and ownerId groups', async () => {
    const multi = await aggregate({ groupBy: p.interests, metrics: [{ op: 'count' }, { op: 'sum', propertyId: p.amount }] });
    const byInterest = expected(live(), (s) => (s.interests?.length ? s.interests : [null]));
    assert.deepEqual(multi.buckets.map((b: { key: string | null }) => b.key), [...INTERESTS, null]);
    for (const b of multi.buckets) near(b.values, row(byInterest.map.get(b.key) ?? empty()).slice(0, 2), `interest ${b.key}`);
    // The total counts each record once.
    near(multi.total.values, row(byInterest.total).slice(0, 2), 'interest total');

    const tags = await aggregate({ groupBy: 'tags' });
    const byTag = expected(live(), (s) => (s.tags.length ? s.tags : [null]));
    assert.deepEqual(new Map(tags.buckets.map((b: { key: string | null; count: number }) => [b.key, b.count])), new Map([...byTag.map].map(([k, v]) => [k, v.count])));
    assert.equal(tags.buckets.at(-1).key, null, 'no-tag bucket last');

    const owners = await aggregate({ groupBy: 'ownerId', metrics: [{ op: 'max', propertyId: p.amount }] });
    const byOwner = expected(live(), (s) => [s.byMember ? member.memberId : a.memberId]);
    for (const b of owners.buckets) assert.deepEqual(b.values, [byOwner.map.get(b.key)!.max]);
    assert.deepEqual(owners.buckets.map((b: { count: number }) => b.count), [...owners.buckets.map((b: { count: number }) => b.count)].sort((x, y) => y - x), 'largest first');

    const flags = await aggregate({ groupBy: p.flag });
    const byFlag = expected(live(), (s) => [s.flag === undefined ? null : String(s.flag)]);
    assert.deepEqual(flags.buckets.map((b: { key: string | null; count: number }) => [b.key, b.count]), [['true', byFlag.map.get('true')?.count ?? 0], ['false', byFlag.map.get('false')?.count ?? 0], [null, byFlag.map.get(null)?.count ?? 0]]);
  });

  test('conditionGroup filters (the §6 language) and segmentId selects; both ANDed', async () => {
    const conditionGroup = { operator: 'AND', conditions: [{ field: `data.${p.amount}`, operator: 'gte', value: 3000 }, { field: 'tags', operator: 'hasNoneOf', value: ['renewal'] }] };
    const matches = (s: Seed) => (s.amount ?? -1) >= 3000 && !s.tags.includes('renewal');
    const res = await aggregate({ groupBy: p.stage, metrics: ALL(), conditionGroup });
    const { map, total } = expected(live().filter(matches), (s) => [s.stage ?? null]);
    for (const b of res.buckets) near(b.values, row(map.get(b.key) ?? empty()), `filtered ${b.key}`);
    near(res.total.values, row(total), 'filtered total');

    const segment = await ok(a, 'POST', '/segments', { entityId, name: uniq('vip'), conditions: { operator: 'AND', conditions: [{ field: 'tags', operator: 'hasAnyOf', value: ['vip'] }] } }, 201);
    const inSegment = await aggregate({ groupBy: p.stage, metrics: ALL(), segmentId: segment.segmentId });
    const vip = expected(live().filter((s) => s.tags.includes('vip')), (s) => [s.stage ?? null]);
    for (const b of inSegment.buckets) near(b.values, row(vip.map.get(b.key) ?? empty()), `segment ${b.key}`);
    const both = await aggregate({ metrics: ALL(), segmentId: segment.segmentId, conditionGroup });
    near(both.total.values, row(expected(live().filter((s) => s.tags.includes('vip') && matches(s)), () => []).total), 'segment AND conditionGroup');
  });

  test('masked properties: MEMBERs may not group by, aggregate or filter on them (403); ADMINs may', async () => {
    expectError(await call(member, 'POST', '/records/aggregate', { entityId, metrics: [{ op: 'sum', propertyId: p.secret }] }), 403, 'Forbidden');
    expectError(await call(member, 'POST', '/records/aggregate', { entityId, groupBy: p.tier }), 403, 'Forbidden');
    assert.deepEqual((await aggregate({ groupBy: p.tier }, admin)).buckets.map((b: { key: string | null; count: number }) => [b.key, b.count]), [['A', 0], ['B', 0], [null, live().length]]);
    expectError(await call(member, 'POST', '/records/aggregate', {
      entityId, conditionGroup: { operator: 'AND', conditions: [{ field: `data.${p.secret}`, operator: 'gt', value: 10 }] },
    }), 403, 'Forbidden');
    const secretSum = live().reduce((acc, s) => acc + (s.secret ?? 0), 0);
    assert.deepEqual((await aggregate({ metrics: [{ op: 'sum', propertyId: p.secret }] }, admin)).total.values, [secretSum]);
    // Unmasked properties stay open to MEMBERs.
    assert.equal((await aggregate({ groupBy: p.stage }, member)).total.count, live().length);
  });

  test('bad input is a 400 naming the path', async () => {
    const bad = async (body: Record<string, unknown>, path: string) => {
      const res = await call(a, 'POST', '/records/aggregate', { entityId, ...body });
      expectError(res, 400, 'ValidationError');
      const json = res.json();
      assert.ok(json.errorMessage.includes(path) || (json.details ?? []).some((d: { path?: string }) => d.path?.includes(path)), `${path} not named in ${res.body}`);
    };
    await bad({ groupBy: p.title }, 'groupBy');
    await bad({ groupBy: p.amount }, 'groupBy');
    await bad({ groupBy: 'CRMPP1000000000000000unknownxxxx' }, 'groupBy');
    await bad({ groupBy: p.stage, dateBucket: 'day' }, 'dateBucket');
    await bad({ metrics: [{ op: 'sum' }] }, 'metrics[0].propertyId');
    await bad({ metrics: [{ op: 'count' }, { op: 'avg', propertyId: p.stage }] }, 'metrics[1].propertyId');
    await bad({ metrics: [{ op: 'count', propertyId: p.amount }] }, 'metrics[0].propertyId');
    await bad({ metrics: [{ op: 'median', propertyId: p.amount }] }, 'metrics');
    await bad({ groupBy: 'dateCreated', timeZone: 'Mars/Olympus_Mons' }, 'timeZone');
    await bad({ groupBy: 'dateCreated', timeZone: '+09:00' }, 'timeZone');
    await bad({ conditionGroup: { operator: 'AND', conditions: [{ field: `data.${p.amount}`, operator: 'contains', value: 'x' }] } }, 'conditionGroup');
    // An unknown segment is a 404, as for GET /records?segmentId=.
    expectError(await call(a, 'POST', '/records/aggregate', { entityId, segmentId: 'CRMSG1000000000000000nonexistent' }), 404, 'NotFound');
    expectError(await call(a, 'POST', '/records/aggregate', { entityId: 'CRMET1000000000000000nonexistent' }), 404, 'NotFound');
  });

  test('trashed records are excluded, and count again once restored', async () => {
    const victim = live().find((s) => s.stage === 'WON' && s.amount !== undefined)!;
    const before = await aggregate({ groupBy: p.stage, metrics: [{ op: 'count' }, { op: 'sum', propertyId: p.amount }] });
    await ok(a, 'DELETE', `/records/${victim.recordId}`);
    const after = await aggregate({ groupBy: p.stage, metrics: [{ op: 'count' }, { op: 'sum', propertyId: p.amount }] });
    const won = (r: { buckets: { key: string; values: number[] }[] }) => r.buckets.find((b) => b.key === 'WON')!.values;
    assert.equal(won(after)[0], won(before)[0]! - 1);
    assert.ok(Math.abs(won(after)[1]! - (won(before)[1]! - victim.amount!)) < 1e-9);
    await ok(a, 'POST', `/records/${victim.recordId}/restore`);
    assert.deepEqual(won(await aggregate({ groupBy: p.stage, metrics: [{ op: 'count' }, { op: 'sum', propertyId: p.amount }] })), won(before));
  });

  test('recordAccess: a MEMBER outside ADMIN_ONLY gets 403 from aggregate, board and insights', async () => {
    const closed = (await ok(a, 'POST', '/entities', { name: 'closed', slug: uniq('closed'), recordAccess: 'ADMIN_ONLY' }, 201)).entityId;
    expectError(await call(member, 'POST', '/records/aggregate', { entityId: closed }), 403, 'Forbidden');
    expectError(await call(member, 'GET', `/entities/${closed}/board`), 403, 'Forbidden');
    expectError(await call(member, 'GET', `/entities/${closed}/insights`), 403, 'Forbidden');
    assert.equal((await ok(admin, 'POST', '/records/aggregate', { entityId: closed })).total.count, 0);
  });

  describe('date buckets and time zones', () => {
    let tzEntity: string;
    let at: string;
    let on: string;

    before(async () => {
      tzEntity = (await ok(a, 'POST', '/entities', { name: 'tz', slug: uniq('tz') }, 201)).entityId;
      at = (await ok(a, 'POST', '/properties', { entityId: tzEntity, name: 'at', fieldType: 'DATETIME' }, 201)).propertyId;
      on = (await ok(a, 'POST', '/properties', { entityId: tzEntity, name: 'on', fieldType: 'DATE' }, 201)).propertyId;
      const instants = ['2026-03-01T15:30:00.000Z', '2026-03-01T14:59:59.999Z', '2026-02-28T15:00:00.000Z', '2026-01-10T00:00:00.000Z', null];
      for (const [i, instant] of instants.entries()) {
        // dateCreated: pinned by the app's clock to the same instants.
        if (instant) t.clock.now = Date.parse(instant);
        await ok(a, 'POST', '/records', { entityId: tzEntity, name: `r${i}`, data: instant ? { [at]: instant, [on]: instant.slice(0, 10) } : {} }, 201);
      }
      t.clock.now = undefined;
    });

    const buckets = async (body: Record<string, unknown>) =>
      (await ok(a, 'POST', '/records/aggregate', { entityId: tzEntity, ...body })).buckets.map((b: { key: string | null; count: number }) => [b.key, b.count]);

    test('a record at 2026-03-01T15:30Z is March 2 in Asia/Seoul, March 1 in UTC', async () => {
      assert.deepEqual((await buckets({ groupBy: at, dateBucket: 'day', timeZone: 'Asia/Seoul', conditionGroup: { operator: 'AND', conditions: [{ field: `data.${at}`, operator: 'gte', value: '2026-02-01T00:00:00Z' }] } })), [
        ['2026-03-01', 2], ['2026-03-02', 1],
      ]);
      assert.deepEqual((await buckets({ groupBy: at, dateBucket: 'day', conditionGroup: { operator: 'AND', conditions: [{ field: `data.${at}`, operator: 'gte', value: '2026-02-01T00:00:00Z' }] } })), [
        ['2026-02-28', 1], ['2026-03-01', 2],
      ]);
    });

    test('months in the zone, empty months between filled with 0, no value last; dateCreated too', async () => {
      assert.deepEqual(await buckets({ groupBy: at, dateBucket: 'month', timeZone: 'Asia/Seoul' }), [['2026-01', 1], ['2026-02', 0], ['2026-03', 3], [null, 1]]);
      assert.deepEqual(await buckets({ groupBy: at, timeZone: 'UTC' }), [['2026-01', 1], ['2026-02', 1], ['2026-03', 2], [null, 1]], 'month is the default');
      // dateCreated was pinned to the same instants (the last record took the clock of the one before).
      assert.deepEqual(await buckets({ groupBy: 'dateCreated', dateBucket: 'month', timeZone: 'Asia/Seoul' }), [['2026-01', 2], ['2026-02', 0], ['2026-03', 3]]);
      assert.deepEqual(await buckets({ groupBy: 'dateCreated', dateBucket: 'month' }), [['2026-01', 2], ['2026-02', 1], ['2026-03', 2]]);
    });

    test('weeks start on Monday in the zone; DATE values have no zone', async () => {
      // 2026-03-01 is a Sunday: in Seoul 15:30Z is Monday March 2 (a new week).
      assert.deepEqual(await buckets({ groupBy: at, dateBucket: 'week', timeZone: 'Asia/Seoul', conditionGroup: { operator: 'AND', conditions: [{ field: `data.${at}`, operator: 'gte', value: '2026-02-20T00:00:00Z' }] } }), [
        ['2026-02-23', 2], ['2026-03-02', 1],
      ]);
      assert.deepEqual(await buckets({ groupBy: on, dateBucket: 'day', timeZone: 'Asia/Seoul', conditionGroup: { operator: 'AND', conditions: [{ field: `data.${on}`, operator: 'gte', value: '2026-02-28' }] } }), [
        ['2026-02-28', 1], ['2026-03-01', 2],
      ]);
    });
  });

  describe('board', () => {
    before(async () => {
      await ok(a, 'PATCH', `/entities/${entityId}`, {
        viewSettings: {
          mode: 'BOARD',
          board: {
            groupByPropertyId: p.stage, sumPropertyId: p.amount, weightPropertyId: p.prob, aggregationType: 'AVG',
            sortByPropertyId: p.amount, sortOrder: 'DESC', closedWonValues: ['WON'], closedLostValues: ['LOST'],
            dealRotting: { enabled: true, days: 7 },
          },
        },
      });
    });

    test('columns per option in option order plus none: count, sum, weighted sum, aggregate, closed totals', async () => {
      const board = await ok(a, 'GET', `/entities/${entityId}/board?limit=3`);
      assert.deepEqual(board.columns.map((c: { value: string | null }) => c.value), [...STAGES, null]);
      const weighted = (s: Seed) => (s.amount ?? 0) * (s.prob ?? 0) / 100;
      const totals = (list: Seed[]) => ({
        count: list.length,
        sum: list.reduce((x, s) => x + (s.amount ?? 0), 0),
        weightedSum: list.reduce((x, s) => x + weighted(s), 0),
      });
      const close = (actual: { count: number; sum: number; weightedSum: number }, wanted: ReturnType<typeof totals>, message: string) => {
        assert.equal(actual.count, wanted.count, message);
        assert.ok(Math.abs(actual.sum - wanted.sum) < 1e-6, `${message}: sum ${actual.sum} ≠ ${wanted.sum}`);
        assert.ok(Math.abs(actual.weightedSum - wanted.weightedSum) < 1e-6, `${message}: weighted ${actual.weightedSum} ≠ ${wanted.weightedSum}`);
      };
      for (const column of board.columns) {
        const list = live().filter((s) => (s.stage ?? null) === column.value);
        close(column, totals(list), `column ${column.value}`);
        const amounts = list.flatMap((s) => (s.amount === undefined ? [] : [s.amount]));
        const avg = amounts.length ? amounts.reduce((x, y) => x + y, 0) / amounts.length : null;
        if (avg === null) assert.equal(column.aggregate, null);
        else assert.ok(Math.abs(column.aggregate - avg) < 1e-9, `column ${column.value} AVG`);
        assert.equal(column.label, column.value === null ? null : `L-${column.value}`);
        assert.equal(column.closed, column.value === 'WON' ? 'WON' : column.value === 'LOST' ? 'LOST' : null);
        assert.ok(column.cards.length <= 3);
        assert.equal(column.cards.length, Math.min(3, list.length));
        assert.equal(column.nextKey !== undefined, list.length > 3, `column ${column.value} nextKey`);
      }
      close(board.total, totals(live()), 'total');
      close(board.closedWon, totals(live().filter((s) => s.stage === 'WON')), 'closedWon');
      close(board.closedLost, totals(live().filter((s) => s.stage === 'LOST')), 'closedLost');
      assert.equal(board.columns.find((c: { value: string }) => c.value === 'ON_HOLD').count, 0);
    });

    test('each column pages through all its cards in the board\'s sort; isRotting from dealRotting', async () => {
      const board = await ok(a, 'GET', `/entities/${entityId}/board?limit=2`);
      for (const column of board.columns) {
        const cards = [...column.cards];
        let startKey = column.nextKey;
        while (startKey) {
          const page = await ok(a, 'GET', `/entities/${entityId}/board/cards?limit=2&startKey=${encodeURIComponent(startKey)}`);
          cards.push(...page.data);
          startKey = page.nextKey;
        }
        const list = live().filter((s) => (s.stage ?? null) === column.value);
        assert.deepEqual(cards.map((c: { recordId: string }) => c.recordId).sort(), list.map((s) => s.recordId).sort(), `column ${column.value} cards`);
        // Sorted by amount, descending (records without an amount last).
        const amounts = cards.map((c: { data: Record<string, number> }) => c.data[p.amount!] ?? -Infinity);
        assert.deepEqual(amounts, [...amounts].sort((x, y) => y - x), `column ${column.value} order`);
        for (const card of cards) {
          const s = records.find((r) => r.recordId === card.recordId)!;
          const closed = s.stage === 'WON' || s.stage === 'LOST';
          assert.equal(card.isRotting, !closed && s.ageDays > 7, `${s.name} (${s.ageDays} days, ${s.stage}) isRotting`);
        }
      }
    });

    test('board errors: no groupBy → 400; bad cursor → 400; masked sum property → 403 for MEMBERs', async () => {
      const plain = (await ok(a, 'POST', '/entities', { name: 'plain', slug: uniq('plain') }, 201)).entityId;
      expectError(await call(a, 'GET', `/entities/${plain}/board`), 400, 'ValidationError', 'groupByPropertyId');
      expectError(await call(a, 'GET', `/entities/${entityId}/board/cards?startKey=garbage`), 400, 'ValidationError', 'startKey');
      await ok(a, 'PATCH', `/entities/${entityId}`, { viewSettings: { board: { sumPropertyId: p.secret } } });
      try {
        expectError(await call(member, 'GET', `/entities/${entityId}/board`), 403, 'Forbidden');
        assert.equal((await ok(admin, 'GET', `/entities/${entityId}/board`)).total.sum, live().reduce((x, s) => x + (s.secret ?? 0), 0));
      } finally {
        await ok(a, 'PATCH', `/entities/${entityId}`, { viewSettings: { board: { sumPropertyId: p.amount } } });
      }
    });
  });

  describe('insight widgets', () => {
    let segmentId: string;
    before(async () => {
      segmentId = (await ok(a, 'POST', '/segments', { entityId, name: uniq('renewals'), conditions: { operator: 'AND', conditions: [{ field: 'tags', operator: 'hasAnyOf', value: ['renewal'] }] } }, 201)).segmentId;
      await ok(a, 'PATCH', `/entities/${entityId}`, {
        insightWidgets: [
          { widgetId: 'kpi', type: 'KPI', title: '딜 수', metric: { op: 'count' } },
          { widgetId: 'bar', type: 'BAR', title: '단계별 금액', metric: { op: 'sum', propertyId: p.amount }, groupBy: p.stage },
          { widgetId: 'funnel', type: 'FUNNEL', title: '퍼널', metric: { op: 'count' }, groupBy: p.stage, segmentId },
          { widgetId: 'secret', type: 'PIE', title: '비밀', metric: { op: 'avg', propertyId: p.secret }, groupBy: 'ownerId' },
        ],
      });
    });

    test('each widget\'s data is the aggregate it stands for', async () => {
      const res = await ok(a, 'GET', `/entities/${entityId}/insights?timeZone=Asia/Seoul`);
      assert.equal(res.timeZone, 'Asia/Seoul');
      assert.deepEqual(res.widgets.map((w: { widgetId: string }) => w.widgetId), ['kpi', 'bar', 'funnel', 'secret']);
      assert.deepEqual(res.widgets[0].data.total, { count: live().length, values: [live().length] });
      assert.deepEqual(res.widgets[1].data, await aggregate({ groupBy: p.stage, metrics: [{ op: 'sum', propertyId: p.amount }], timeZone: 'Asia/Seoul' }));
      const renewals = expected(live().filter((s) => s.tags.includes('renewal')), (s) => [s.stage ?? null]);
      assert.deepEqual(res.widgets[2].data.buckets.map((b: { key: string | null; count: number }) => [b.key, b.count]), [...STAGES, null].map((k) => [k, renewals.map.get(k)?.count ?? 0]));
      assert.ok(res.widgets[3].data, 'the OWNER sees the masked widget');
      assert.equal(res.widgets[3].error, undefined);
    });

    test('a MEMBER gets the masked widget as an error and the others computed', async () => {
      const res = await ok(member, 'GET', `/entities/${entityId}/insights`);
      assert.equal(res.widgets[3].error.errorCode, 'Forbidden');
      assert.equal(res.widgets[3].data, undefined);
      assert.deepEqual(res.widgets[0].data.total.count, live().length);
      expectError(await call(a, 'GET', `/entities/${entityId}/insights?timeZone=Nowhere/Land`), 400, 'ValidationError', 'timeZone');
    });
  });
});
