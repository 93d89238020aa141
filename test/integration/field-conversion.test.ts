/**
 * Changing a property's fieldType or options with values stored (API.md §4): stored values are
 * converted where a lossless conversion exists (src/modules/properties/field-conversion.ts),
 * otherwise the PATCH is a 400 with the count of records that would lose data, unless
 * ?force=true. Live and trashed records alike. Runs on PGlite and (with TEST_DATABASE_URL) on
 * PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tenantDb } from '../../src/db/tenant.ts';
import type { Caller } from '../../src/modules/api-keys/api-keys.service.ts';
import { convertValue, hasConversion, isValuePreserving } from '../../src/modules/properties/field-conversion.ts';
import { FIELD_TYPES } from '../../src/modules/properties/field-types.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { expectError, uniq, type Res } from '../helpers/assertions.ts';

const V1 = '/crm-core/v1';
const opts = (...values: string[]) => values.map((value) => ({ label: `L-${value}`, value }));

describe('fieldType and options changes with stored values (API.md §4)', () => {
  let t: TestApp;
  let account: TestAccount;

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
  });
  after(() => t.close());

  async function newEntity(): Promise<string> {
    const res = await t.call(account, 'POST', `${V1}/entities`, { name: 'Conversions', slug: uniq('conv') });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().entityId;
  }
  async function newProperty(entityId: string, fieldType: string, extra: Record<string, unknown> = {}): Promise<string> {
    const res = await t.call(account, 'POST', `${V1}/properties`, { entityId, name: uniq(fieldType), fieldType, ...extra });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().propertyId;
  }
  async function newRecord(entityId: string, data: Record<string, unknown>, trashed = false): Promise<string> {
    const res = await t.call(account, 'POST', `${V1}/records`, { entityId, name: uniq('r'), data });
    assert.equal(res.statusCode, 201, res.body);
    const id = res.json().recordId;
    if (trashed) assert.equal((await t.call(account, 'DELETE', `${V1}/records/${id}`)).statusCode, 200);
    return id;
  }
  /** Every record of the entity (live and trashed) by ID, as the API shows it. */
  async function records(entityId: string): Promise<Map<string, any>> {
    const out = new Map<string, any>();
    for (const path of [`${V1}/records?entityId=${entityId}&limit=200`, `${V1}/records/trash?entityId=${entityId}&limit=200`]) {
      const res = await t.call(account, 'GET', path);
      assert.equal(res.statusCode, 200, res.body);
      for (const r of res.json().data) out.set(r.recordId, r);
    }
    return out;
  }
  const patch = (propertyId: string, body: Record<string, unknown>, query = '') =>
    t.call(account, 'PATCH', `${V1}/properties/${propertyId}${query}`, body);

  /**
   * A property of type `from` with one record per value (the first one trashed), then a PATCH to
   * `to`: returns the response and each record's value afterwards (undefined = no value).
   */
  async function convert(from: string, values: unknown[], change: Record<string, unknown>, extra: Record<string, unknown> = {}, query = '') {
    const entityId = await newEntity();
    const propertyId = await newProperty(entityId, from, extra);
    const other = await newProperty(entityId, 'TEXT');
    const ids: string[] = [];
    for (const [i, value] of values.entries()) ids.push(await newRecord(entityId, { [propertyId]: value, [other]: `keep-${i}` }, i === 0));
    const res = await patch(propertyId, change, query);
    const all = await records(entityId);
    for (const [i, id] of ids.entries()) assert.equal(all.get(id)?.data[other], `keep-${i}`, 'other values are untouched');
    return { res, propertyId, entityId, ids, after: ids.map((id) => all.get(id)!.data[propertyId]), all };
  }

  describe('lossless conversions rewrite every value, trashed records included', () => {
    const cases: { name: string; from: string; to: string; values: unknown[]; expected: unknown[]; extra?: Record<string, unknown>; change?: Record<string, unknown> }[] = [
      { name: 'TEXT → NUMBER when every value parses', from: 'TEXT', to: 'NUMBER', values: ['12', ' -3.50 ', '1e3', '0.1'], expected: [12, -3.5, 1000, 0.1] },
      { name: 'NUMBER → TEXT', from: 'NUMBER', to: 'TEXT', values: [42, -1.5, 1e21], expected: ['42', '-1.5', '1e+21'] },
      { name: 'NUMBER → TEXTAREA', from: 'NUMBER', to: 'TEXTAREA', values: [7], expected: ['7'] },
      { name: 'CHECKBOX → TEXT', from: 'CHECKBOX', to: 'TEXT', values: [true, false], expected: ['true', 'false'] },
      { name: 'TEXT → CHECKBOX', from: 'TEXT', to: 'CHECKBOX', values: ['true', ' FALSE '], expected: [true, false] },
      { name: 'TEXTAREA → TEXT within 2,000 characters', from: 'TEXTAREA', to: 'TEXT', values: ['x'.repeat(2000), 'line1\nline2'], expected: ['x'.repeat(2000), 'line1\nline2'] },
      { name: 'DATE → DATETIME at midnight UTC', from: 'DATE', to: 'DATETIME', values: ['2026-04-20', '2024-02-29'], expected: ['2026-04-20T00:00:00.000Z', '2024-02-29T00:00:00.000Z'] },
      { name: 'DATETIME → DATE when the time is midnight UTC', from: 'DATETIME', to: 'DATE', values: ['2026-04-20T00:00:00Z', '2026-04-21T09:00:00+09:00'], expected: ['2026-04-20', '2026-04-21'] },
      { name: 'DATE → TEXT', from: 'DATE', to: 'TEXT', values: ['2026-04-20'], expected: ['2026-04-20'] },
      { name: 'DATETIME → TEXT', from: 'DATETIME', to: 'TEXT', values: ['2026-04-20T10:00:00+09:00'], expected: ['2026-04-20T01:00:00.000Z'] },
      { name: 'TEXT → DATE', from: 'TEXT', to: 'DATE', values: ['2026-04-20', ' 2026-12-31 '], expected: ['2026-04-20', '2026-12-31'] },
      { name: 'TEXT → DATETIME (normalised to UTC; a bare date is midnight UTC)', from: 'TEXT', to: 'DATETIME', values: ['2026-04-20T19:00:00+09:00', '2026-04-21'], expected: ['2026-04-20T10:00:00.000Z', '2026-04-21T00:00:00.000Z'] },
      { name: 'TEXT → EMAIL (normalised)', from: 'TEXT', to: 'EMAIL', values: [' Hong@Example.COM '], expected: ['hong@example.com'] },
      { name: 'TEXT → URL (normalised)', from: 'TEXT', to: 'URL', values: ['https://Example.com/a?b=1'], expected: ['https://example.com/a?b=1'] },
      { name: 'TEXT → PHONE (normalised)', from: 'TEXT', to: 'PHONE', values: ['010-1234-5678', '+82 10 1234 5678'], expected: ['01012345678', '+821012345678'] },
      { name: 'EMAIL → TEXT', from: 'EMAIL', to: 'TEXT', values: ['hong@example.com'], expected: ['hong@example.com'] },
      { name: 'PHONE → TEXTAREA', from: 'PHONE', to: 'TEXTAREA', values: ['010-1234-5678'], expected: ['01012345678'] },
      { name: 'URL → TEXT', from: 'URL', to: 'TEXT', values: ['https://example.com/'], expected: ['https://example.com/'] },
      {
        name: 'DROPDOWN → TEXT (the option value)', from: 'DROPDOWN', to: 'TEXT', values: ['A', 'B'], expected: ['A', 'B'],
        extra: { options: opts('A', 'B') },
      },
      {
        name: 'RADIO → MULTI_CHECKBOX wraps', from: 'RADIO', to: 'MULTI_CHECKBOX', values: ['A', 'B'], expected: [['A'], ['B']],
        extra: { options: opts('A', 'B') },
      },
      {
        name: 'DROPDOWN → MULTI_CHECKBOX wraps', from: 'DROPDOWN', to: 'MULTI_CHECKBOX', values: ['B'], expected: [['B']],
        extra: { options: opts('A', 'B') },
      },
      {
        name: 'MULTI_CHECKBOX → DROPDOWN with at most one value', from: 'MULTI_CHECKBOX', to: 'DROPDOWN', values: [['A'], [], ['B']], expected: ['A', undefined, 'B'],
        extra: { options: opts('A', 'B') },
      },
      {
        name: 'MULTI_CHECKBOX → TEXT joins with ", "', from: 'MULTI_CHECKBOX', to: 'TEXT', values: [['B', 'A'], []], expected: ['B, A', ''],
        extra: { options: opts('A', 'B') },
      },
      {
        name: 'TEXT → MULTI_CHECKBOX splits on "," (the inverse)', from: 'TEXT', to: 'MULTI_CHECKBOX', values: ['B, A', 'A', ''], expected: [['B', 'A'], ['A'], []],
        change: { fieldType: 'MULTI_CHECKBOX', options: opts('A', 'B') },
      },
      {
        name: 'TEXT → DROPDOWN when the text is an option value', from: 'TEXT', to: 'DROPDOWN', values: ['LEAD', 'WON'], expected: ['LEAD', 'WON'],
        change: { fieldType: 'DROPDOWN', options: opts('LEAD', 'WON') },
      },
      {
        name: 'DROPDOWN → RADIO with a new option list that keeps the used values', from: 'DROPDOWN', to: 'RADIO', values: ['A'], expected: ['A'],
        extra: { options: opts('A', 'B') }, change: { fieldType: 'RADIO', options: opts('A', 'C') },
      },
      { name: 'empty text → NUMBER leaves no value (nothing is lost)', from: 'TEXT', to: 'NUMBER', values: ['', '5'], expected: [undefined, 5] },
    ];
    for (const c of cases) {
      test(c.name, async () => {
        const { res, after: values } = await convert(c.from, c.values, c.change ?? { fieldType: c.to }, c.extra);
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json();
        assert.equal(body.fieldType, c.to);
        assert.deepEqual(values, c.expected);
        assert.equal(body.conversion.fromType, c.from);
        assert.equal(body.conversion.toType, c.to);
        assert.equal(body.conversion.records, c.values.length);
        assert.equal(body.conversion.cleared, 0);
        assert.equal(body.conversion.converted + body.conversion.unchanged, c.values.length);
      });
    }

    test('value-preserving changes do not read records: TEXT → TEXTAREA, DROPDOWN ↔ RADIO, options added', async () => {
      const text = await convert('TEXT', ['a'], { fieldType: 'TEXTAREA' });
      assert.equal(text.res.statusCode, 200, text.res.body);
      assert.equal(text.res.json().conversion, undefined);
      assert.deepEqual(text.after, ['a']);
      const choice = await convert('DROPDOWN', ['A'], { fieldType: 'RADIO' }, { options: opts('A', 'B') });
      assert.equal(choice.res.statusCode, 200, choice.res.body);
      assert.equal(choice.res.json().conversion, undefined);
      assert.deepEqual(choice.after, ['A']);
      const added = await patch(choice.propertyId, { options: opts('A', 'B', 'C') });
      assert.equal(added.statusCode, 200, added.body);
      assert.equal(added.json().conversion, undefined);
    });

    test('records keep their dateUpdated and updatedBy; the property records the change', async () => {
      const { res, entityId, ids } = await convert('NUMBER', [1, 2], { fieldType: 'TEXT' });
      assert.equal(res.statusCode, 200, res.body);
      const all = await records(entityId);
      for (const id of ids) assert.equal(all.get(id).dateUpdated, all.get(id).dateCreated);
      assert.ok(res.json().dateUpdated > res.json().dateCreated);
    });
  });

  describe('lossy changes: 400 with the count, or ?force=true', () => {
    test('TEXT → NUMBER: the message counts the records that would lose data (trashed ones too); nothing changes', async () => {
      const { res, propertyId, ids, after: values } = await convert('TEXT', ['abc', '12', 'n/a', '7'], { fieldType: 'NUMBER' });
      expectError(res, 400, 'ValidationError',
        '2 records (1 of them in the trash) have values that cannot be converted from TEXT to NUMBER; send ?force=true to clear them');
      const { details } = res.json();
      assert.equal(details[0].path, '/fieldType');
      assert.equal(details[0].records, 2);
      assert.deepEqual(details.slice(1).map((d: any) => d.recordId).sort(), [ids[0], ids[2]].sort());
      assert.ok(details.some((d: any) => d.message.includes('"abc" is not a decimal number')), JSON.stringify(details));
      assert.deepEqual(values, ['abc', '12', 'n/a', '7'], 'a refused change leaves every value as it was');
      const property = (await t.call(account, 'GET', `${V1}/properties/${propertyId}`)).json();
      assert.equal(property.fieldType, 'TEXT');
    });

    test('one record: singular message', async () => {
      const { res } = await convert('TEXT', ['12', 'twelve'], { fieldType: 'NUMBER' });
      expectError(res, 400, 'ValidationError', '1 record has a value that cannot be converted from TEXT to NUMBER; send ?force=true to clear it');
    });

    test('?force=true converts what it can and clears the rest, and says how many', async () => {
      const { res, after: values } = await convert('TEXT', ['abc', '12', 'n/a', '7'], { fieldType: 'NUMBER' }, {}, '?force=true');
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(values, [undefined, 12, undefined, 7]);
      assert.deepEqual(res.json().conversion, { fromType: 'TEXT', toType: 'NUMBER', records: 4, converted: 2, unchanged: 0, cleared: 2 });
    });

    test('?force=false is the default behaviour', async () => {
      const { res } = await convert('TEXT', ['abc'], { fieldType: 'NUMBER' }, {}, '?force=false');
      expectError(res, 400, 'ValidationError', 'send ?force=true');
      expectError(await t.call(account, 'PATCH', `${V1}/properties/CRMPP1260423081530123AAA11122233?force=maybe`, { name: 'x' }), 400, 'ValidationError', 'force');
    });

    const lossy: { name: string; from: string; to: string; values: unknown[]; lost: number; extra?: Record<string, unknown>; change?: Record<string, unknown>; reason?: string }[] = [
      { name: 'TEXT → NUMBER refuses a number that would lose digits', from: 'TEXT', to: 'NUMBER', values: ['12345678901234567890', '1'], lost: 1, reason: 'more digits' },
      { name: 'TEXTAREA → TEXT refuses more than 2,000 characters', from: 'TEXTAREA', to: 'TEXT', values: ['x'.repeat(2001), 'ok'], lost: 1 },
      { name: 'DATETIME → DATE refuses a time of day', from: 'DATETIME', to: 'DATE', values: ['2026-04-20T10:00:00Z', '2026-04-20T00:00:00Z'], lost: 1, reason: 'midnight' },
      { name: 'TEXT → EMAIL refuses what is not an address', from: 'TEXT', to: 'EMAIL', values: ['hong', 'a@b.co'], lost: 1 },
      { name: 'TEXT → URL refuses what is not an http(s) URL', from: 'TEXT', to: 'URL', values: ['example.com'], lost: 1 },
      { name: 'TEXT → PHONE refuses what is not a phone number', from: 'TEXT', to: 'PHONE', values: ['call me', '01012345678'], lost: 1 },
      { name: 'TEXT → CHECKBOX refuses other words', from: 'TEXT', to: 'CHECKBOX', values: ['yes'], lost: 1 },
      {
        name: 'MULTI_CHECKBOX → DROPDOWN refuses two values', from: 'MULTI_CHECKBOX', to: 'DROPDOWN', values: [['A', 'B'], ['A']], lost: 1,
        extra: { options: opts('A', 'B') }, reason: 'has 2 values',
      },
      {
        name: 'TEXT → DROPDOWN refuses text that is no option', from: 'TEXT', to: 'DROPDOWN', values: ['LEAD', 'Maybe'], lost: 1,
        change: { fieldType: 'DROPDOWN', options: opts('LEAD') },
      },
      {
        name: 'DROPDOWN → RADIO with an option list missing a used value', from: 'DROPDOWN', to: 'RADIO', values: ['A', 'B'], lost: 1,
        extra: { options: opts('A', 'B') }, change: { fieldType: 'RADIO', options: opts('A') },
      },
      { name: 'NUMBER → DATE has no conversion', from: 'NUMBER', to: 'DATE', values: [20260420], lost: 1, reason: 'NUMBER values cannot become DATE' },
      { name: 'CHECKBOX → NUMBER has no conversion', from: 'CHECKBOX', to: 'NUMBER', values: [true, false], lost: 2 },
      { name: 'PHONE → NUMBER has no conversion', from: 'PHONE', to: 'NUMBER', values: ['01012345678'], lost: 1 },
    ];
    for (const c of lossy) {
      test(c.name, async () => {
        const change = c.change ?? { fieldType: c.to };
        const { res } = await convert(c.from, c.values, change, c.extra);
        expectError(res, 400, 'ValidationError', `${c.lost} record${c.lost === 1 ? '' : 's'}`);
        assert.ok(res.json().errorMessage.includes(`from ${c.from} to ${c.to}`), res.body);
        if (c.reason) assert.ok(res.json().details.some((d: any) => String(d.message).includes(c.reason!)), res.body);
        const forced = await convert(c.from, c.values, change, c.extra, '?force=true');
        assert.equal(forced.res.statusCode, 200, forced.res.body);
        assert.equal(forced.res.json().conversion.cleared, c.lost);
        assert.equal(forced.after.filter((v) => v === undefined).length, c.lost);
      });
    }

    test('a type without a conversion is free while no record holds a value', async () => {
      const entityId = await newEntity();
      const propertyId = await newProperty(entityId, 'NUMBER');
      await newRecord(entityId, {});
      const res = await patch(propertyId, { fieldType: 'DATE' });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json().conversion, { fromType: 'NUMBER', toType: 'DATE', records: 0, converted: 0, unchanged: 0, cleared: 0 });
    });
  });

  describe('removing options that records use', () => {
    test('DROPDOWN: 400 with the count and the removed values; unused options go freely; force clears', async () => {
      const entityId = await newEntity();
      const stage = await newProperty(entityId, 'DROPDOWN', { options: opts('LEAD', 'WON', 'LOST', 'SPARE') });
      const lead = await newRecord(entityId, { [stage]: 'LEAD' });
      const won = await newRecord(entityId, { [stage]: 'WON' }, true);
      const lost = await newRecord(entityId, { [stage]: 'LOST' });

      const unused = await patch(stage, { options: opts('LEAD', 'WON', 'LOST') });
      assert.equal(unused.statusCode, 200, unused.body);
      assert.equal(unused.json().conversion.cleared, 0);

      const refused = await patch(stage, { options: opts('LEAD') });
      expectError(refused, 400, 'ValidationError',
        '2 records (1 of them in the trash) use option values that the new option list removes (WON, LOST); send ?force=true to clear them');
      assert.equal(refused.json().details[0].path, '/options');
      assert.equal((await t.call(account, 'GET', `${V1}/properties/${stage}`)).json().options.length, 3);

      const forced = await patch(stage, { options: opts('LEAD') }, '?force=true');
      assert.equal(forced.statusCode, 200, forced.body);
      assert.equal(forced.json().conversion.cleared, 2);
      const all = await records(entityId);
      assert.equal(all.get(lead).data[stage], 'LEAD');
      assert.equal(all.get(won).data[stage], undefined);
      assert.equal(all.get(lost).data[stage], undefined);
    });

    test('MULTI_CHECKBOX: force drops only the removed options', async () => {
      const entityId = await newEntity();
      const tags = await newProperty(entityId, 'MULTI_CHECKBOX', { options: opts('A', 'B', 'C') });
      const ab = await newRecord(entityId, { [tags]: ['A', 'B'] });
      const b = await newRecord(entityId, { [tags]: ['B'] });
      const c = await newRecord(entityId, { [tags]: ['C'] });
      expectError(await patch(tags, { options: opts('A', 'C') }), 400, 'ValidationError', '2 records use option values that the new option list removes (B)');
      const forced = await patch(tags, { options: opts('A', 'C') }, '?force=true');
      assert.equal(forced.statusCode, 200, forced.body);
      assert.deepEqual(forced.json().conversion, { fromType: 'MULTI_CHECKBOX', toType: 'MULTI_CHECKBOX', records: 3, converted: 0, unchanged: 1, cleared: 2 });
      const all = await records(entityId);
      assert.deepEqual(all.get(ab).data[tags], ['A']);
      assert.equal(all.get(b).data[tags], undefined);
      assert.deepEqual(all.get(c).data[tags], ['C']);
    });

    test('a converted value is what a record write of the new type stores: writes and filters agree', async () => {
      const { res, entityId, propertyId } = await convert('TEXT', ['10', '20', '3'], { fieldType: 'NUMBER' });
      assert.equal(res.statusCode, 200, res.body);
      const filters = encodeURIComponent(JSON.stringify({ [propertyId]: { op: 'gte', value: 10 } }));
      const list = await t.call(account, 'GET', `${V1}/records?entityId=${entityId}&filters=${filters}&sortField=${propertyId}&sortDirection=asc`);
      assert.equal(list.statusCode, 200, list.body);
      assert.deepEqual(list.json().data.map((r: any) => r.data[propertyId]), [20]); // the trashed record held '10'
      const write = await t.call(account, 'POST', `${V1}/records`, { entityId, data: { [propertyId]: 'abc' } });
      expectError(write, 400, 'ValidationError', 'NUMBER');
    });
  });

  describe('record writes and a conversion of the same entity do not interleave', () => {
    const caller = (): Caller => ({ accountId: account.accountId, memberId: account.memberId, role: 'OWNER', apiKey: account.apiKey, workspaceId: null });

    /** Runs `write` in a transaction; `patch()` is sent while it is open, after `first` ran in it. */
    async function race(first: (tx: ReturnType<typeof tenantDb>) => Promise<unknown>, then: (tx: ReturnType<typeof tenantDb>) => Promise<unknown>, send: () => Promise<Res>) {
      let patched: Promise<Res> | undefined;
      let settledEarly = false;
      await t.database.db.transaction().execute(async (trx) => {
        const tx = tenantDb(trx, account.accountId);
        await first(tx);
        patched = send();
        void patched.then(() => { settledEarly = true; });
        await new Promise((resolve) => setTimeout(resolve, 300));
        await then(tx);
      });
      assert.equal(settledEarly, false, 'the PATCH waited for the record write');
      return patched!;
    }

    test('a record created against the old type while the PATCH runs is counted, not slipped in', async () => {
      const entityId = await newEntity();
      const propertyId = await newProperty(entityId, 'TEXT');
      await newRecord(entityId, { [propertyId]: '1' });
      const res = await race(
        // The write has read the definitions (TEXT) before the PATCH starts, and inserts after.
        (tx) => t.services.properties.recordFields(tx, entityId),
        (tx) => t.services.records.create(tx, caller(), { entityId, name: 'racer', data: { [propertyId]: 'not a number' } }),
        () => patch(propertyId, { fieldType: 'NUMBER' }),
      );
      expectError(res, 400, 'ValidationError', '1 record has a value that cannot be converted from TEXT to NUMBER');
    });

    test('a record update that holds its row before the PATCH finishes first (no deadlock) and is converted', async () => {
      const entityId = await newEntity();
      const propertyId = await newProperty(entityId, 'TEXT');
      const recordId = await newRecord(entityId, { [propertyId]: '1' });
      const res = await race(
        // records.update locks its row first, then reads the definitions.
        (tx) => tx.selectFrom('records').select('record_id').where('record_id', '=', recordId).forUpdate().execute(),
        (tx) => t.services.records.update(tx, caller(), recordId, { data: { [propertyId]: '2' } }),
        () => patch(propertyId, { fieldType: 'NUMBER' }),
      );
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((await records(entityId)).get(recordId).data[propertyId], 2);
    });
  });
});

describe('conversion table (field-conversion.ts)', () => {
  test('every pair is either convertible for some values or refuses every non-empty value', () => {
    const texts = ['12', 'true', '2026-04-20', '2026-04-20T10:00:00Z', 'a@b.co', 'https://x.y/', '01012345678', 'A', 'A, B'];
    const samples: Record<string, unknown[]> = {
      TEXT: texts,
      TEXTAREA: texts,
      NUMBER: [12],
      PHONE: ['01012345678'],
      EMAIL: ['a@b.co'],
      URL: ['https://x.y/'],
      CHECKBOX: [true],
      MULTI_CHECKBOX: [['A']],
      DATE: ['2026-04-20'],
      DATETIME: ['2026-04-20T00:00:00.000Z'],
      DROPDOWN: ['A'],
      RADIO: ['A'],
    };
    for (const from of FIELD_TYPES) {
      for (const to of FIELD_TYPES) {
        const results = samples[from]!.map((v) => convertValue(from, to, v, ['A', 'B']));
        const any = results.some((r) => r.ok);
        assert.equal(any, hasConversion(from, to), `${from} → ${to}: ${JSON.stringify(results)}`);
      }
    }
  });

  test('empty values are never lost', () => {
    for (const from of FIELD_TYPES) {
      for (const to of FIELD_TYPES) {
        for (const empty of ['', []]) assert.equal(convertValue(from, to, empty, []).ok, true, `${from} → ${to} ${JSON.stringify(empty)}`);
      }
    }
  });

  test('numbers round-trip through text exactly', () => {
    for (const n of [0, -0.5, 0.1, 1 / 3, 1e21, 1e-7, 123456789012345, Number.MAX_SAFE_INTEGER]) {
      const text = convertValue('NUMBER', 'TEXT', n, []);
      assert.ok(text.ok);
      const back = convertValue('TEXT', 'NUMBER', text.value, []);
      assert.deepEqual(back, { ok: true, value: n === 0 ? 0 : n });
    }
    assert.equal(convertValue('TEXT', 'NUMBER', '1e400', []).ok, false);
    assert.equal(convertValue('TEXT', 'NUMBER', '1e-400', []).ok, false);
    assert.equal(convertValue('TEXT', 'NUMBER', '0x10', []).ok, false);
    assert.equal(convertValue('TEXT', 'NUMBER', '1,000', []).ok, false);
    assert.deepEqual(convertValue('TEXT', 'NUMBER', '007.50', []), { ok: true, value: 7.5 });
  });

  test('value-preserving changes', () => {
    assert.equal(isValuePreserving('TEXT', 'TEXTAREA', [], []), true);
    assert.equal(isValuePreserving('TEXTAREA', 'TEXT', [], []), false);
    assert.equal(isValuePreserving('DROPDOWN', 'RADIO', ['A'], ['A', 'B']), true);
    assert.equal(isValuePreserving('DROPDOWN', 'RADIO', ['A', 'B'], ['A']), false);
    assert.equal(isValuePreserving('MULTI_CHECKBOX', 'MULTI_CHECKBOX', ['A'], ['B', 'A']), true);
    assert.equal(isValuePreserving('DROPDOWN', 'MULTI_CHECKBOX', ['A'], ['A']), false);
  });
});
