import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAccountsService } from '../../src/modules/accounts/accounts.service.ts';
import { newAccountId } from '../../src/lib/ids.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import type { Credentials } from '../helpers/sign.ts';

/** /crm-core/v1/members (API.md §2, §1.7: OWNER only). */

const BASE = '/crm-core/v1';
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface Res { statusCode: number; body: string; json(): any }

function expectError(res: Res, status: number, code: string) {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.json().errorCode, code, res.body);
  assert.equal(typeof res.json().errorMessage, 'string');
}

function expectMember(value: any, expected: { accountId: string; name?: string; email?: string | null; role?: string }) {
  assert.deepEqual(Object.keys(value).sort(), ['accountId', 'dateCreated', 'dateUpdated', 'email', 'memberId', 'name', 'role']);
  assert.match(value.memberId, /^MEM[A-Za-z0-9]{11}$/);
  assert.equal(value.accountId, expected.accountId);
  if (expected.name !== undefined) assert.equal(value.name, expected.name);
  if (expected.email !== undefined) assert.equal(value.email, expected.email);
  if (expected.role !== undefined) assert.equal(value.role, expected.role);
  assert.match(value.dateCreated, ISO_MS);
  assert.match(value.dateUpdated, ISO_MS);
}

describe('members (OWNER-only administration)', () => {
  let t: TestApp;

  before(async () => {
    t = await startTestApp();
  });
  after(() => t.close());

  const call = (creds: Credentials, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown) => t.call(creds, method, `${BASE}${path}`, body);

  async function memberIds(account: TestAccount): Promise<string[]> {
    const res = await call(account, 'GET', '/members');
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { memberId: string }[]).map((m) => m.memberId);
  }

  test('CRUD: list, create, get, patch, delete', async () => {
    const account = await t.newAccount();
    let list = await call(account, 'GET', '/members');
    assert.equal(list.statusCode, 200);
    assert.equal(list.json().length, 1);
    expectMember(list.json()[0], { accountId: account.accountId, name: 'Owner', email: null, role: 'OWNER' });
    assert.equal(list.json()[0].memberId, account.memberId);

    const created = await call(account, 'POST', '/members', { name: 'Kim Minji', email: 'minji@example.com' });
    assert.equal(created.statusCode, 201, created.body);
    expectMember(created.json(), { accountId: account.accountId, name: 'Kim Minji', email: 'minji@example.com', role: 'MEMBER' });
    const id = created.json().memberId as string;
    assert.equal(created.json().dateCreated, created.json().dateUpdated);

    const admin = await call(account, 'POST', '/members', { name: 'Admin', role: 'ADMIN', email: null });
    assert.equal(admin.statusCode, 201);
    expectMember(admin.json(), { accountId: account.accountId, email: null, role: 'ADMIN' });

    const got = await call(account, 'GET', `/members/${id}`);
    assert.equal(got.statusCode, 200);
    assert.deepEqual(got.json(), created.json());

    list = await call(account, 'GET', '/members');
    assert.deepEqual(list.json().map((m: any) => m.memberId), [account.memberId, id, admin.json().memberId], 'in creation order');

    await new Promise((resolve) => setTimeout(resolve, 5));
    const patched = await call(account, 'PATCH', `/members/${id}`, { name: 'Kim Min-ji', role: 'ADMIN' });
    assert.equal(patched.statusCode, 200, patched.body);
    expectMember(patched.json(), { accountId: account.accountId, name: 'Kim Min-ji', email: 'minji@example.com', role: 'ADMIN' });
    assert.equal(patched.json().dateCreated, created.json().dateCreated);
    assert.ok(patched.json().dateUpdated > created.json().dateUpdated, 'dateUpdated moves');

    const cleared = await call(account, 'PATCH', `/members/${id}`, { email: null });
    assert.equal(cleared.statusCode, 200);
    assert.equal(cleared.json().email, null);
    assert.equal(cleared.json().name, 'Kim Min-ji', 'fields not sent are kept');

    const removed = await call(account, 'DELETE', `/members/${id}`);
    assert.equal(removed.statusCode, 200);
    assert.deepEqual(removed.json(), { memberId: id });
    expectError(await call(account, 'GET', `/members/${id}`), 404, 'NotFound');
    expectError(await call(account, 'PATCH', `/members/${id}`, { name: 'ghost' }), 404, 'NotFound');
    expectError(await call(account, 'DELETE', `/members/${id}`), 404, 'NotFound');
    assert.deepEqual(await memberIds(account), [account.memberId, admin.json().memberId]);
  });

  test('bodies are validated (400 ValidationError)', async () => {
    const account = await t.newAccount();
    const id = (await call(account, 'POST', '/members', { name: 'Valid' })).json().memberId;
    for (const body of [
      {},
      { name: '' },
      { name: 'x'.repeat(101) },
      { name: 42 },
      { name: 'A', email: 'not-an-email' },
      { name: 'A', role: 'SUPERUSER' },
      { name: 'A', role: 'owner' },
      { name: 'A', memberId: 'MEMAAAAAAAAAAAA' },
      { name: 'A', accountId: '12345678901234' },
    ]) {
      expectError(await call(account, 'POST', '/members', body), 400, 'ValidationError');
    }
    for (const body of [{}, { role: 'ROOT' }, { email: 'nope' }, { name: '' }, { unknown: 1 }]) {
      expectError(await call(account, 'PATCH', `/members/${id}`, body), 400, 'ValidationError');
    }
    assert.equal((await memberIds(account)).length, 2, 'nothing was created');
  });

  test('MEMBER and ADMIN get 403 Forbidden on every member route, with no effect', async () => {
    const account = await t.newAccount();
    const target = (await call(account, 'POST', '/members', { name: 'Target', email: 'target@example.com' })).json().memberId;
    for (const role of ['MEMBER', 'ADMIN'] as const) {
      const caller = await t.addMember(account, role);
      for (const [method, path, body] of [
        ['GET', '/members', undefined],
        ['POST', '/members', { name: 'Sneaky', role: 'OWNER' }],
        ['GET', `/members/${target}`, undefined],
        ['GET', `/members/${caller.memberId}`, undefined],
        ['PATCH', `/members/${target}`, { role: 'OWNER' }],
        ['PATCH', `/members/${caller.memberId}`, { role: 'OWNER' }],
        ['DELETE', `/members/${target}`, undefined],
        ['DELETE', `/members/${account.memberId}`, undefined],
        ['GET', '/members/MEMdoesNotExist1', undefined],
      ] as const) {
        expectError(await call(caller, method, path, body), 403, 'Forbidden');
      }
    }
    const members = (await call(account, 'GET', '/members')).json() as { memberId: string; name: string; role: string }[];
    assert.equal(members.length, 4, 'owner, target, the MEMBER and the ADMIN; nothing added or removed');
    assert.equal(members.find((m) => m.memberId === target)!.role, 'MEMBER');
    assert.deepEqual(members.filter((m) => m.role === 'OWNER').map((m) => m.memberId), [account.memberId], 'nobody promoted themselves');
  });

  test('another account\'s member IDs are 404 NotFound, and stay untouched', async () => {
    const mine = await t.newAccount();
    const theirs = await t.newAccount();
    const theirMember = (await call(theirs, 'POST', '/members', { name: 'Theirs', email: 'theirs@example.com' })).json();
    for (const id of [theirs.memberId, theirMember.memberId]) {
      expectError(await call(mine, 'GET', `/members/${id}`), 404, 'NotFound');
      expectError(await call(mine, 'PATCH', `/members/${id}`, { name: 'hijacked', role: 'MEMBER' }), 404, 'NotFound');
      expectError(await call(mine, 'DELETE', `/members/${id}`), 404, 'NotFound');
    }
    // Unknown IDs look exactly the same: the response does not reveal that the ID exists elsewhere.
    const unknown = await call(mine, 'GET', '/members/MEMzzzzzzzzzzzz');
    const foreign = await call(mine, 'GET', `/members/${theirMember.memberId}`);
    assert.equal(unknown.body, foreign.body);
    assert.ok(!(await memberIds(mine)).includes(theirs.memberId));
    const still = await call(theirs, 'GET', `/members/${theirMember.memberId}`);
    assert.deepEqual(still.json(), theirMember);
    const owner = await call(theirs, 'GET', `/members/${theirs.memberId}`);
    assert.equal(owner.json().role, 'OWNER');
    assert.equal(owner.json().name, 'Owner');
    // Their owner's key still works.
    assert.equal((await call(theirs, 'GET', '/usage')).statusCode, 200);
  });

  test('the last OWNER can be neither demoted nor deleted (409); with two, one may go', async () => {
    const account = await t.newAccount();
    for (const role of ['ADMIN', 'MEMBER']) {
      expectError(await call(account, 'PATCH', `/members/${account.memberId}`, { role }), 409, 'ConflictException');
    }
    expectError(await call(account, 'DELETE', `/members/${account.memberId}`), 409, 'ConflictException');
    // Changing the last OWNER's other fields, or re-stating the role, is fine.
    const renamed = await call(account, 'PATCH', `/members/${account.memberId}`, { name: 'Boss', role: 'OWNER' });
    assert.equal(renamed.statusCode, 200, renamed.body);
    assert.equal(renamed.json().role, 'OWNER');

    const second = await t.addMember(account, 'ADMIN');
    const promoted = await call(account, 'PATCH', `/members/${second.memberId}`, { role: 'OWNER' });
    assert.equal(promoted.json().role, 'OWNER');
    // Now the first OWNER can step down…
    assert.equal((await call(account, 'PATCH', `/members/${account.memberId}`, { role: 'ADMIN' })).statusCode, 200);
    // …but then the second is the last one.
    expectError(await call(second, 'PATCH', `/members/${second.memberId}`, { role: 'MEMBER' }), 409, 'ConflictException');
    expectError(await call(second, 'DELETE', `/members/${second.memberId}`), 409, 'ConflictException');
    // The demoted first OWNER has lost OWNER rights.
    expectError(await call(account, 'GET', '/members'), 403, 'Forbidden');
    // An OWNER may remove another OWNER as long as one remains, even themselves.
    assert.equal((await call(second, 'PATCH', `/members/${account.memberId}`, { role: 'OWNER' })).statusCode, 200);
    assert.equal((await call(account, 'DELETE', `/members/${account.memberId}`)).statusCode, 200);
    expectError(await call(account, 'GET', '/usage'), 401, 'InvalidApiKey');
    const left = (await call(second, 'GET', '/members')).json() as { memberId: string; role: string }[];
    assert.deepEqual(left.map((m) => [m.memberId, m.role]), [[second.memberId, 'OWNER']]);
  });

  test('two OWNERs demoting each other at once: exactly one succeeds, an OWNER remains', async () => {
    for (let round = 0; round < 3; round++) {
      const account = await t.newAccount();
      const other = await t.addMember(account, 'OWNER');
      const [a, b] = await Promise.all([
        call(account, 'PATCH', `/members/${other.memberId}`, { role: 'MEMBER' }),
        call(other, 'DELETE', `/members/${account.memberId}`),
      ]);
      // The loser is refused by the last-OWNER rule (409) when both run together, or, when the
      // winner committed before the loser was even authenticated, for what the winner did to it:
      // demoted (403) or removed with its keys (401).
      const statuses = [a.statusCode, b.statusCode].sort();
      assert.equal(statuses.filter((s) => s === 200).length, 1, `${a.body} / ${b.body}`);
      assert.ok([401, 403, 409].includes(statuses.find((s) => s !== 200)!), `${a.body} / ${b.body}`);
      const owners = (await t.services.members.list(account.tenant)).filter((m) => m.role === 'OWNER');
      assert.equal(owners.length, 1);
    }
  });

  test('email is unique per account (case-insensitive, 409) but may repeat across accounts', async () => {
    const a = await t.newAccount();
    const b = await t.newAccount();
    assert.equal((await call(a, 'POST', '/members', { name: 'One', email: 'same@example.com' })).statusCode, 201);
    expectError(await call(a, 'POST', '/members', { name: 'Two', email: 'same@example.com' }), 409, 'ConflictException');
    expectError(await call(a, 'POST', '/members', { name: 'Two', email: 'SAME@Example.COM' }), 409, 'ConflictException');
    const other = await call(a, 'POST', '/members', { name: 'Two', email: 'other@example.com' });
    assert.equal(other.statusCode, 201);
    expectError(await call(a, 'PATCH', `/members/${other.json().memberId}`, { email: 'Same@example.com' }), 409, 'ConflictException');
    assert.equal((await call(a, 'GET', `/members/${other.json().memberId}`)).json().email, 'other@example.com', 'unchanged after the conflict');
    // Members without email do not collide.
    for (let i = 0; i < 2; i++) assert.equal((await call(a, 'POST', '/members', { name: `No mail ${i}` })).statusCode, 201);
    // Another account may use the same address.
    const inB = await call(b, 'POST', '/members', { name: 'One in B', email: 'same@example.com' });
    assert.equal(inB.statusCode, 201, inB.body);
    // A freed address can be taken again.
    const holder = (await call(a, 'GET', '/members')).json().find((m: any) => m.email === 'same@example.com');
    assert.equal((await call(a, 'DELETE', `/members/${holder.memberId}`)).statusCode, 200);
    assert.equal((await call(a, 'POST', '/members', { name: 'New', email: 'same@example.com' })).statusCode, 201);
  });

  test('deleting a member revokes their keys (401 InvalidApiKey) and frees their apiKeys slots', async () => {
    const account = await t.newAccount();
    const member = await t.addMember(account, 'ADMIN');
    const second = await call(account, 'POST', '/api-keys', { memberId: member.memberId, name: 'second' });
    assert.equal(second.statusCode, 201);
    const secondCreds = { apiKey: second.json().apiKey, apiSecret: second.json().apiSecret };
    assert.equal((await call(member, 'GET', '/usage')).statusCode, 200);
    assert.equal((await call(secondCreds, 'GET', '/usage')).statusCode, 200);

    const usedKeys = async () => ((await call(account, 'GET', '/usage')).json().limits as any[]).find((l) => l.key === 'apiKeys.max');
    assert.deepEqual(await usedKeys(), { key: 'apiKeys.max', max: null, used: 3 });
    await t.services.quota.setLimits(account.tenant, { 'apiKeys.max': 3 });
    expectError(await call(account, 'POST', '/api-keys', {}), 403, 'PlanQuotaExceeded');

    assert.equal((await call(account, 'DELETE', `/members/${member.memberId}`)).statusCode, 200);
    expectError(await call(member, 'GET', '/usage'), 401, 'InvalidApiKey');
    expectError(await call(secondCreds, 'GET', '/usage'), 401, 'InvalidApiKey');
    const keys = (await call(account, 'GET', '/api-keys')).json() as { memberId: string }[];
    assert.deepEqual(keys.map((k) => k.memberId), [account.memberId]);
    assert.deepEqual(await usedKeys(), { key: 'apiKeys.max', max: 3, used: 1 });
    assert.equal((await call(account, 'POST', '/api-keys', {})).statusCode, 201, 'the freed slots can be used');
    assert.equal((await call(account, 'POST', '/api-keys', {})).statusCode, 201);
    expectError(await call(account, 'POST', '/api-keys', {}), 403, 'PlanQuotaExceeded');
  });

  test('a role change applies to the member\'s existing keys at their next request', async () => {
    const account = await t.newAccount();
    const member = await t.addMember(account, 'MEMBER');
    expectError(await call(member, 'GET', '/members'), 403, 'Forbidden');
    assert.equal((await call(account, 'PATCH', `/members/${member.memberId}`, { role: 'OWNER' })).statusCode, 200);
    assert.equal((await call(member, 'GET', '/members')).statusCode, 200, 'promoted: the same key is now an OWNER');
    assert.equal((await call(account, 'PATCH', `/members/${member.memberId}`, { role: 'ADMIN' })).statusCode, 200);
    expectError(await call(member, 'GET', '/members'), 403, 'Forbidden');
  });

  test('a key created while its member is promoted authenticates with the new role', async () => {
    const account = await t.newAccount();
    for (let round = 0; round < 12; round++) {
      const member = await t.addMember(account, 'MEMBER');
      const [promoted, created] = await Promise.all([
        call(account, 'PATCH', `/members/${member.memberId}`, { role: 'OWNER' }),
        call(account, 'POST', '/api-keys', { memberId: member.memberId }),
      ]);
      assert.equal(promoted.statusCode, 200, promoted.body);
      assert.equal(created.statusCode, 201, created.body);
      const key = { apiKey: created.json().apiKey, apiSecret: created.json().apiSecret };
      assert.equal((await call(key, 'GET', '/members')).statusCode, 200, `round ${round}: the new key is an OWNER's`);
    }
  });

  test('a new account gets exactly one OWNER (its first member) with one key; a taken account ID is drawn again', async () => {
    const existing = await t.newAccount('existing');
    const drawn: string[] = [];
    const fresh = newAccountId();
    const sequence = [existing.accountId, existing.accountId, fresh];
    const accounts = createAccountsService({
      db: t.database.db,
      members: t.services.members,
      apiKeys: t.services.apiKeys,
      newAccountId: () => { const id = sequence.shift()!; drawn.push(id); return id; },
    });
    const created = await accounts.create({ name: 'second try', ownerName: 'Founder', ownerEmail: 'founder@example.com' });
    assert.deepEqual(drawn, [existing.accountId, existing.accountId, fresh]);
    assert.equal(created.accountId, fresh);
    const creds = { apiKey: created.key.apiKey, apiSecret: created.key.apiSecret };
    const members = (await call(creds, 'GET', '/members')).json();
    assert.equal(members.length, 1);
    expectMember(members[0], { accountId: fresh, name: 'Founder', email: 'founder@example.com', role: 'OWNER' });
    // The account whose ID was drawn first is untouched.
    assert.equal((await t.services.accounts.get(existing.tenant)).name, 'existing');
    assert.deepEqual(await memberIds(existing), [existing.memberId]);
    // A generator that only ever collides gives up instead of looping.
    const stuck = createAccountsService({ db: t.database.db, members: t.services.members, apiKeys: t.services.apiKeys, newAccountId: () => existing.accountId });
    await assert.rejects(stuck.create({ name: 'never', ownerName: 'Nobody' }), /no free account ID/);
    assert.deepEqual(await memberIds(existing), [existing.memberId]);
  });

  test('deleting a member while a key is being created for them leaves no orphan key and no 500', async () => {
    const account = await t.newAccount();
    for (let round = 0; round < 8; round++) {
      const member = await t.addMember(account, 'MEMBER');
      const [removed, created] = await Promise.all([
        call(account, 'DELETE', `/members/${member.memberId}`),
        call(account, 'POST', '/api-keys', { memberId: member.memberId }),
      ]);
      assert.equal(removed.statusCode, 200, removed.body);
      assert.ok([201, 400].includes(created.statusCode), `${created.statusCode} ${created.body}`);
      if (created.statusCode === 400) assert.equal(created.json().errorCode, 'ValidationError');
    }
    const keys = (await call(account, 'GET', '/api-keys')).json() as { memberId: string }[];
    assert.deepEqual(keys.map((k) => k.memberId), [account.memberId], 'every removed member\'s keys are gone');
    const used = ((await call(account, 'GET', '/usage')).json().limits as any[]).find((l) => l.key === 'apiKeys.max').used;
    assert.equal(used, keys.length, 'the counter matches the keys that exist');
  });
});
