import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AppError } from '../../src/errors.ts';
import type { TenantDb } from '../../src/db/tenant.ts';
import { newId } from '../../src/lib/ids.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import type { Credentials } from '../helpers/sign.ts';

/** The plan limit keys of API.md §1.8, written out here so a key dropped from the code fails the test. */
const SPEC_COUNT_KEYS = ['records.max', 'properties.maxPerEntity', 'relationships.max', 'relationshipTypes.maxPerEntity', 'entities.max', 'segments.maxPerEntity', 'apiKeys.max'];
const SPEC_SETTING_KEYS = ['records.exportEnabled', 'rateLimit.perSecond'];
const SPEC_KEYS = [...SPEC_COUNT_KEYS, ...SPEC_SETTING_KEYS];

interface UsageEntry { key: string; max: number | boolean | null; used: number | null }

function isAppError(status: number, code: string, message?: string | RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof AppError, `expected AppError, got ${String(error)}`);
    assert.equal(error.status, status);
    assert.equal(error.code, code);
    if (typeof message === 'string') assert.equal(error.message, message);
    else if (message) assert.match(error.message, message);
    return true;
  };
}

describe('plans and quotas (API.md §1.8)', () => {
  let t: TestApp;

  before(async () => {
    t = await startTestApp();
  });
  after(() => t.close());

  /** GET /usage as `caller` (the account's OWNER unless another member's credentials are given). */
  async function usage(account: TestAccount, caller: Credentials = account): Promise<Map<string, UsageEntry>> {
    const res = await t.call(caller, 'GET', '/crm-core/v1/usage');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().accountId, account.accountId);
    return new Map((res.json().limits as UsageEntry[]).map((l) => [l.key, l]));
  }

  /** The counter behind a limit, read straight from the table (the sum over scopes). */
  async function counter(tenant: TenantDb, quota: string, scope = ''): Promise<number> {
    const row = await tenant.selectFrom('quota_usage').select('used').where('quota', '=', quota).where('scope', '=', scope).executeTakeFirst();
    return row?.used ?? 0;
  }

  const createKey = (account: TestAccount, body: unknown = {}) => t.call(account, 'POST', '/crm-core/v1/api-keys', body);

  describe('GET /usage', () => {
    test('lists every limit key of §1.8, unlimited (null) by default, with usage; the initial key counts', async () => {
      const account = await t.newAccount();
      const res = await t.call(account, 'GET', '/crm-core/v1/usage');
      assert.equal(res.statusCode, 200);
      const limits = res.json().limits as UsageEntry[];
      assert.deepEqual(limits.map((l) => l.key).sort(), [...SPEC_KEYS].sort(), 'exactly the spec keys, each once');
      for (const entry of limits) {
        assert.equal(entry.max, null, `${entry.key} is unlimited on the self-hosted default plan`);
        if (SPEC_COUNT_KEYS.includes(entry.key)) {
          assert.equal(entry.used, entry.key === 'apiKeys.max' ? 1 : 0, entry.key);
        } else {
          assert.equal(entry.used, null, `${entry.key} is a setting, not a count`);
        }
      }
    });

    test('reflects limits set by the operator; null makes a limit unlimited again; every role may read it', async () => {
      const account = await t.newAccount();
      await t.services.quota.setLimits(account.tenant, { 'records.max': 1000, 'records.exportEnabled': false, 'rateLimit.perSecond': 50, 'apiKeys.max': 3 });
      const member = await t.addMember(account, 'MEMBER'); // its key is the account's second
      let u = await usage(account, member);
      assert.deepEqual(u.get('records.max'), { key: 'records.max', max: 1000, used: 0 });
      assert.deepEqual(u.get('records.exportEnabled'), { key: 'records.exportEnabled', max: false, used: null });
      assert.deepEqual(u.get('rateLimit.perSecond'), { key: 'rateLimit.perSecond', max: 50, used: null });
      assert.deepEqual(u.get('apiKeys.max'), { key: 'apiKeys.max', max: 3, used: 2 });
      assert.equal(u.get('entities.max')!.max, null);

      await t.services.quota.setLimits(account.tenant, { 'records.max': null, 'records.exportEnabled': true });
      u = await usage(account);
      assert.equal(u.get('records.max')!.max, null);
      assert.equal(u.get('records.exportEnabled')!.max, true);
      assert.equal(u.get('rateLimit.perSecond')!.max, 50, 'limits not named are kept');
      assert.equal(u.get('apiKeys.max')!.max, 3);
    });

    test('usage is per account', async () => {
      const a = await t.newAccount();
      const b = await t.newAccount();
      await t.services.quota.setLimits(a.tenant, { 'apiKeys.max': 5 });
      assert.equal((await createKey(a)).statusCode, 201);
      assert.deepEqual((await usage(a)).get('apiKeys.max'), { key: 'apiKeys.max', max: 5, used: 2 });
      assert.deepEqual((await usage(b)).get('apiKeys.max'), { key: 'apiKeys.max', max: null, used: 1 });
    });
  });

  describe('setLimits validation', () => {
    test('rejects unknown keys, negative, fractional and mistyped values, and changes nothing then', async () => {
      const account = await t.newAccount();
      await t.services.quota.setLimits(account.tenant, { 'apiKeys.max': 4 });
      for (const changes of [
        { 'apiKeys.maximum': 3 },
        { 'records.max': -1 },
        { 'rateLimit.perSecond': -5 },
        { 'entities.max': 1.5 },
        { 'entities.max': Number.NaN },
        { 'entities.max': Number.POSITIVE_INFINITY },
        { 'records.max': true },
        { 'records.exportEnabled': 1 },
        { 'records.max': '10' },
        { 'apiKeys.max': 2, bogus: 1 }, // one bad key spoils the whole change
      ] as unknown as Record<string, number | boolean | null>[]) {
        await assert.rejects(t.services.quota.setLimits(account.tenant, changes), isAppError(400, 'ValidationError'), JSON.stringify(changes));
      }
      await assert.rejects(t.services.quota.setLimits(account.tenant, { nope: 1 }), isAppError(400, 'ValidationError', /unknown plan limit "nope"/));
      const u = await usage(account);
      assert.equal(u.get('apiKeys.max')!.max, 4);
      assert.equal(u.get('records.max')!.max, null);
      // Zero is a valid limit ("none allowed").
      await t.services.quota.setLimits(account.tenant, { 'entities.max': 0 });
      assert.equal((await usage(account)).get('entities.max')!.max, 0);
    });

    test('concurrent changes to different limits all land (one merge per statement, no lost update)', async () => {
      const account = await t.newAccount();
      const keys = ['records.max', 'entities.max', 'relationships.max', 'segments.maxPerEntity', 'rateLimit.perSecond'];
      await Promise.all(keys.map((key, i) => t.services.quota.setLimits(account.tenant, { [key]: 100 + i })));
      const u = await usage(account);
      keys.forEach((key, i) => assert.equal(u.get(key)!.max, 100 + i, key));
      await Promise.all([
        t.services.quota.setLimits(account.tenant, { 'records.max': null }),
        t.services.quota.setLimits(account.tenant, { 'entities.max': 7 }),
      ]);
      const after = await usage(account);
      assert.equal(after.get('records.max')!.max, null);
      assert.equal(after.get('entities.max')!.max, 7);
    });
  });

  describe('apiKeys.max over HTTP', () => {
    test('20 racing creates against apiKeys.max=10: the initial key holds 1 slot, so exactly 9 pass and 11 are refused', async () => {
      const account = await t.newAccount();
      await t.services.quota.setLimits(account.tenant, { 'apiKeys.max': 10 });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => createKey(account, { name: `race ${i}` })));
      const created = results.filter((r) => r.statusCode === 201);
      const refused = results.filter((r) => r.statusCode !== 201);
      assert.equal(created.length, 9, results.map((r) => r.statusCode).join(','));
      assert.equal(refused.length, 11);
      for (const r of refused) {
        assert.equal(r.statusCode, 403, r.body);
        assert.equal(r.json().errorCode, 'PlanQuotaExceeded');
        assert.equal(r.json().errorMessage, 'apiKeys.max: 10/10');
      }
      assert.deepEqual((await usage(account)).get('apiKeys.max'), { key: 'apiKeys.max', max: 10, used: 10 });
      const list = await t.call(account, 'GET', '/crm-core/v1/api-keys');
      assert.equal(list.json().length, 10, 'the counter matches the keys that exist');

      // Full: one more is refused; revoking a key frees exactly one slot.
      const more = await createKey(account);
      assert.equal(more.statusCode, 403);
      assert.equal(more.json().errorMessage, 'apiKeys.max: 10/10');
      assert.equal((await t.call(account, 'DELETE', `/crm-core/v1/api-keys/${created[0]!.json().apiKey}`)).statusCode, 200);
      assert.deepEqual((await usage(account)).get('apiKeys.max'), { key: 'apiKeys.max', max: 10, used: 9 });
      assert.equal((await createKey(account)).statusCode, 201);
      assert.equal((await createKey(account)).statusCode, 403);
      assert.equal((await usage(account)).get('apiKeys.max')!.used, 10);
    });

    test('20 racing creates against apiKeys.max=11: exactly 10 × 201 and 10 × 403', async () => {
      const account = await t.newAccount();
      await t.services.quota.setLimits(account.tenant, { 'apiKeys.max': 11 });
      const results = await Promise.all(Array.from({ length: 20 }, () => createKey(account)));
      assert.equal(results.filter((r) => r.statusCode === 201).length, 10);
      const refused = results.filter((r) => r.statusCode === 403);
      assert.equal(refused.length, 10);
      for (const r of refused) assert.deepEqual([r.json().errorCode, r.json().errorMessage], ['PlanQuotaExceeded', 'apiKeys.max: 11/11']);
      assert.equal((await usage(account)).get('apiKeys.max')!.used, 11);
      assert.equal(await counter(account.tenant, 'apiKeys.max'), 11);
    });

    test('lowering a limit below current usage refuses new keys and names used/max', async () => {
      const account = await t.newAccount();
      for (let i = 0; i < 3; i++) assert.equal((await createKey(account)).statusCode, 201);
      await t.services.quota.setLimits(account.tenant, { 'apiKeys.max': 2 });
      const res = await createKey(account);
      assert.equal(res.statusCode, 403);
      assert.equal(res.json().errorMessage, 'apiKeys.max: 4/2');
      await t.services.quota.setLimits(account.tenant, { 'apiKeys.max': null });
      assert.equal((await createKey(account)).statusCode, 201, 'unlimited again');
      assert.equal((await usage(account)).get('apiKeys.max')!.used, 5, 'unlimited creates are still counted');
    });

    test('a refused create leaves no key and no counter change behind', async () => {
      const account = await t.newAccount();
      await t.services.quota.setLimits(account.tenant, { 'apiKeys.max': 1 });
      const res = await createKey(account, { name: 'over' });
      assert.equal(res.statusCode, 403);
      assert.equal(res.json().errorMessage, 'apiKeys.max: 1/1');
      const keys = (await t.call(account, 'GET', '/crm-core/v1/api-keys')).json() as { name: string | null }[];
      assert.deepEqual(keys.map((k) => k.name), ['initial key']);
      assert.equal(await counter(account.tenant, 'apiKeys.max'), 1);
    });
  });

  describe('quota.reserve / release directly', () => {
    test('max=0 inside a transaction: refused with used/max, and the transaction leaves nothing behind', async () => {
      const account = await t.newAccount();
      const { quota } = t.services;
      await quota.setLimits(account.tenant, { 'entities.max': 0, 'records.max': 0 });
      await assert.rejects(
        account.tenant.transaction((tx) => quota.reserve(tx, 'entities.max')),
        isAppError(403, 'PlanQuotaExceeded', 'entities.max: 0/0'),
      );
      assert.equal(await counter(account.tenant, 'entities.max'), 0);
      // Outside a transaction too (a slip by a caller must not inflate the counter).
      await assert.rejects(quota.reserve(account.tenant, 'records.max', 3), isAppError(403, 'PlanQuotaExceeded', 'records.max: 0/0'));
      assert.equal(await counter(account.tenant, 'records.max'), 0);
      const u = await usage(account);
      assert.deepEqual(u.get('entities.max'), { key: 'entities.max', max: 0, used: 0 });
      assert.deepEqual(u.get('records.max'), { key: 'records.max', max: 0, used: 0 });
    });

    test('a rolled-back transaction gives its slots back', async () => {
      const account = await t.newAccount();
      const { quota } = t.services;
      await quota.setLimits(account.tenant, { 'records.max': 5 });
      const boom = new Error('write failed after reserving');
      await assert.rejects(account.tenant.transaction(async (tx) => {
        await quota.reserve(tx, 'records.max', 4);
        assert.equal(await counter(tx, 'records.max'), 4, 'visible inside the transaction');
        throw boom;
      }), (e) => e === boom);
      assert.equal(await counter(account.tenant, 'records.max'), 0);
      await account.tenant.transaction((tx) => quota.reserve(tx, 'records.max', 5));
      assert.equal(await counter(account.tenant, 'records.max'), 5);
      await assert.rejects(account.tenant.transaction((tx) => quota.reserve(tx, 'records.max')), isAppError(403, 'PlanQuotaExceeded', 'records.max: 5/5'));
      // A batch that does not fit entirely takes nothing.
      await quota.release(account.tenant, 'records.max', 2);
      await assert.rejects(account.tenant.transaction((tx) => quota.reserve(tx, 'records.max', 3)), isAppError(403, 'PlanQuotaExceeded', 'records.max: 3/5'));
      assert.equal(await counter(account.tenant, 'records.max'), 3);
      await account.tenant.transaction((tx) => quota.reserve(tx, 'records.max', 2));
      assert.equal(await counter(account.tenant, 'records.max'), 5);
    });

    test('per-entity limits count each entity separately and need a scope', async () => {
      const account = await t.newAccount();
      const { quota } = t.services;
      const entityA = newId('entity');
      const entityB = newId('entity');
      await quota.setLimits(account.tenant, { 'properties.maxPerEntity': 2 });
      await assert.rejects(account.tenant.transaction((tx) => quota.reserve(tx, 'properties.maxPerEntity')), /needs an entity scope/);
      await assert.rejects(quota.release(account.tenant, 'segments.maxPerEntity'), /needs an entity scope/);

      await account.tenant.transaction((tx) => quota.reserve(tx, 'properties.maxPerEntity', 1, entityA));
      await account.tenant.transaction((tx) => quota.reserve(tx, 'properties.maxPerEntity', 1, entityA));
      await assert.rejects(
        account.tenant.transaction((tx) => quota.reserve(tx, 'properties.maxPerEntity', 1, entityA)),
        isAppError(403, 'PlanQuotaExceeded', 'properties.maxPerEntity: 2/2'),
      );
      // Entity B has its own two slots.
      await account.tenant.transaction((tx) => quota.reserve(tx, 'properties.maxPerEntity', 1, entityB));
      assert.equal(await counter(account.tenant, 'properties.maxPerEntity', entityA), 2);
      assert.equal(await counter(account.tenant, 'properties.maxPerEntity', entityB), 1);
      assert.equal(await counter(account.tenant, 'properties.maxPerEntity'), 0, 'nothing is counted account-wide');
      // /usage reports the fullest entity.
      assert.deepEqual((await usage(account)).get('properties.maxPerEntity'), { key: 'properties.maxPerEntity', max: 2, used: 2 });

      await quota.release(account.tenant, 'properties.maxPerEntity', 1, entityA);
      await account.tenant.transaction((tx) => quota.reserve(tx, 'properties.maxPerEntity', 1, entityA));
      assert.equal(await counter(account.tenant, 'properties.maxPerEntity', entityA), 2);
      assert.equal(await counter(account.tenant, 'properties.maxPerEntity', entityB), 1);
    });

    test('release never goes below zero; counts must be non-negative integers', async () => {
      const account = await t.newAccount();
      const { quota } = t.services;
      await account.tenant.transaction((tx) => quota.reserve(tx, 'relationships.max', 2));
      await quota.release(account.tenant, 'relationships.max', 5);
      assert.equal(await counter(account.tenant, 'relationships.max'), 0);
      await quota.release(account.tenant, 'segments.maxPerEntity', 1, newId('entity')); // no row yet: a no-op
      await assert.rejects(quota.reserve(account.tenant, 'relationships.max', -1), /non-negative integer/);
      await assert.rejects(quota.release(account.tenant, 'relationships.max', -1), /non-negative integer/);
      await assert.rejects(quota.reserve(account.tenant, 'relationships.max', 0.5), /non-negative integer/);
      assert.equal(await counter(account.tenant, 'relationships.max'), 0);
    });

    test('racing transactions never overshoot; a rolled-back holder of the last slot hands it on', async () => {
      const account = await t.newAccount();
      const { quota } = t.services;
      await quota.setLimits(account.tenant, { 'segments.maxPerEntity': 5 });
      const entity = newId('entity');
      const outcomes = await Promise.allSettled(Array.from({ length: 12 }, () =>
        account.tenant.transaction((tx) => quota.reserve(tx, 'segments.maxPerEntity', 1, entity))));
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 5);
      for (const o of outcomes) if (o.status === 'rejected') isAppError(403, 'PlanQuotaExceeded', 'segments.maxPerEntity: 5/5')(o.reason);
      assert.equal(await counter(account.tenant, 'segments.maxPerEntity', entity), 5);

      // The last slot: A holds it (row locked, transaction open) while B asks; A rolls back, so B gets it.
      await quota.release(account.tenant, 'segments.maxPerEntity', 1, entity);
      let releaseA!: () => void;
      const aMayFinish = new Promise<void>((resolve) => { releaseA = resolve; });
      let aReserved!: () => void;
      const aHasReserved = new Promise<void>((resolve) => { aReserved = resolve; });
      const rollback = new Error('A rolls back');
      const a = account.tenant.transaction(async (tx) => {
        await quota.reserve(tx, 'segments.maxPerEntity', 1, entity);
        aReserved();
        await aMayFinish;
        throw rollback;
      });
      await aHasReserved;
      const b = account.tenant.transaction((tx) => quota.reserve(tx, 'segments.maxPerEntity', 1, entity));
      await new Promise((resolve) => setTimeout(resolve, 100));
      releaseA();
      await assert.rejects(a, (e) => e === rollback);
      await b;
      assert.equal(await counter(account.tenant, 'segments.maxPerEntity', entity), 5);
    });
  });
});
