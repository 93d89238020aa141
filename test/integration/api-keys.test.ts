import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { authorization, type Credentials } from '../helpers/sign.ts';

/** /crm-core/v1/api-keys (API.md §2: OWNER only; the secret is shown once). */

const BASE = '/crm-core/v1';
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const KEY_FIELDS = ['accountId', 'apiKey', 'createdBy', 'dateCreated', 'lastUsedAt', 'memberId', 'name', 'workspaceId'];

interface Res { statusCode: number; body: string; json(): any }

function expectError(res: Res, status: number, code: string) {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.json().errorCode, code, res.body);
  assert.equal(typeof res.json().errorMessage, 'string');
}

describe('API keys (OWNER-only administration)', () => {
  let t: TestApp;

  before(async () => {
    t = await startTestApp();
  });
  after(() => t.close());

  const call = (creds: Credentials, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => t.call(creds, method, `${BASE}${path}`, body);

  async function listKeys(account: TestAccount): Promise<any[]> {
    const res = await call(account, 'GET', '/api-keys');
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  }

  test('the account starts with its initial key, listed without a secret', async () => {
    const account = await t.newAccount();
    const res = await call(account, 'GET', '/api-keys');
    assert.equal(res.statusCode, 200);
    const [key, ...rest] = res.json();
    assert.equal(rest.length, 0);
    assert.deepEqual(Object.keys(key).sort(), KEY_FIELDS);
    assert.equal(key.apiKey, account.apiKey);
    assert.equal(key.accountId, account.accountId);
    assert.equal(key.memberId, account.memberId);
    assert.equal(key.name, 'initial key');
    assert.equal(key.workspaceId, null);
    assert.match(key.dateCreated, ISO_MS);
    assert.ok(!res.body.includes(account.apiSecret), 'the secret is not in the list');
  });

  test('CRUD: create (secret once), use, list (no secret, lastUsedAt), revoke', async () => {
    const account = await t.newAccount();
    const created = await call(account, 'POST', '/api-keys', { name: 'CI deploys' });
    assert.equal(created.statusCode, 201, created.body);
    const key = created.json();
    assert.deepEqual(Object.keys(key).sort(), [...KEY_FIELDS, 'apiSecret'].sort());
    assert.match(key.apiKey, /^NCS[A-Z0-9]{13}$/);
    assert.match(key.apiSecret, /^[A-Za-z0-9]{32}$/);
    assert.equal(key.accountId, account.accountId);
    assert.equal(key.memberId, account.memberId, 'without memberId the key is the caller\'s');
    assert.equal(key.createdBy, account.memberId);
    assert.equal(key.name, 'CI deploys');
    assert.equal(key.workspaceId, null);
    assert.equal(key.lastUsedAt, null);
    assert.match(key.dateCreated, ISO_MS);

    // The new key signs requests as the same member.
    const creds = { apiKey: key.apiKey, apiSecret: key.apiSecret };
    const used = await call(creds, 'GET', '/api-keys');
    assert.equal(used.statusCode, 200);
    const listed = used.json().find((k: any) => k.apiKey === key.apiKey);
    const { apiSecret: _secret, ...withoutSecret } = key;
    assert.deepEqual({ ...listed, lastUsedAt: null }, withoutSecret, 'the list shows the same key, minus the secret');
    assert.match(listed.lastUsedAt, ISO_MS, 'lastUsedAt is set once the key is used');

    // The secret never appears again: not in lists, not by any field.
    const list = await call(account, 'GET', '/api-keys');
    assert.ok(!list.body.includes(key.apiSecret));
    assert.ok(list.json().every((k: any) => !('apiSecret' in k) && !('sealedSecret' in k) && !('sealed_secret' in k)));
    // Nor is it stored in clear.
    const row = await account.tenant.selectFrom('api_keys').select('sealed_secret').where('api_key', '=', key.apiKey).executeTakeFirstOrThrow();
    assert.ok(!row.sealed_secret.includes(key.apiSecret));

    const revoked = await call(account, 'DELETE', `/api-keys/${key.apiKey}`);
    assert.equal(revoked.statusCode, 200);
    assert.deepEqual(revoked.json(), { apiKey: key.apiKey });
    expectError(await call(creds, 'GET', '/usage'), 401, 'InvalidApiKey');
    expectError(await call(account, 'DELETE', `/api-keys/${key.apiKey}`), 404, 'NotFound');
    assert.deepEqual((await listKeys(account)).map((k) => k.apiKey), [account.apiKey]);
    expectError(await call(account, 'DELETE', '/api-keys/NCSNOSUCHKEY0000'), 404, 'NotFound');
  });

  test('POST with Content-Type: application/json and no body at all creates a key for the caller', async () => {
    const account = await t.newAccount();
    const res = await t.app.inject({
      method: 'POST',
      url: `${BASE}/api-keys`,
      headers: { authorization: authorization(account), 'content-type': 'application/json' },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().memberId, account.memberId);
  });

  test('a key for another member acts with that member\'s role; createdBy is the OWNER who made it', async () => {
    const account = await t.newAccount();
    const member = (await call(account, 'POST', '/members', { name: 'Plain member' })).json();
    const created = await call(account, 'POST', '/api-keys', { memberId: member.memberId, name: 'for member' });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().memberId, member.memberId);
    assert.equal(created.json().createdBy, account.memberId);
    const creds = { apiKey: created.json().apiKey, apiSecret: created.json().apiSecret };
    assert.equal((await call(creds, 'GET', '/usage')).statusCode, 200);
    expectError(await call(creds, 'GET', '/api-keys'), 403, 'Forbidden');
  });

  test('a key bound to a workspace reports its workspaceId', async () => {
    const account = await t.newAccount();
    const bound = await call(account, 'POST', '/api-keys', { workspaceId: 'ws_seoul-1', name: 'Seoul team' });
    assert.equal(bound.statusCode, 201, bound.body);
    assert.equal(bound.json().workspaceId, 'ws_seoul-1');
    const unbound = await call(account, 'POST', '/api-keys', { workspaceId: null });
    assert.equal(unbound.statusCode, 201);
    assert.equal(unbound.json().workspaceId, null);
    const byKey = new Map((await listKeys(account)).map((k) => [k.apiKey, k.workspaceId]));
    assert.equal(byKey.get(bound.json().apiKey), 'ws_seoul-1');
    assert.equal(byKey.get(unbound.json().apiKey), null);
    // The workspace-bound key authenticates (and the caller carries its workspace).
    const creds = { apiKey: bound.json().apiKey, apiSecret: bound.json().apiSecret };
    assert.equal((await call(creds, 'GET', '/usage')).statusCode, 200);
    const caller = await t.services.apiKeys.authenticate(authorization(creds));
    assert.equal(caller.workspaceId, 'ws_seoul-1');
  });

  test('bodies are validated; a memberId of another account or unknown → 400', async () => {
    const account = await t.newAccount();
    const other = await t.newAccount();
    for (const body of [
      { memberId: other.memberId },
      { memberId: 'MEMdoesNotExist' },
      { memberId: 'MEM123' },
      { memberId: 'not-a-member' },
      { memberId: 42 },
      { workspaceId: '' },
      { workspaceId: 'has space' },
      { workspaceId: 'x'.repeat(65) },
      { name: '' },
      { name: 'x'.repeat(101) },
      { apiSecret: 'chosen-by-me' },
      { apiKey: 'NCSCHOSENBYME000' },
      { accountId: other.accountId },
    ]) {
      const res = await call(account, 'POST', '/api-keys', body);
      expectError(res, 400, 'ValidationError');
    }
    const foreign = await call(account, 'POST', '/api-keys', { memberId: other.memberId });
    assert.match(foreign.json().errorMessage, /not a member of this account/);
    assert.deepEqual((await listKeys(account)).map((k) => k.apiKey), [account.apiKey], 'nothing was created');
    assert.deepEqual((await listKeys(other)).map((k) => k.apiKey), [other.apiKey], 'nothing was created in the other account');
    const apiKeysUsed = ((await call(account, 'GET', '/usage')).json().limits as any[]).find((l) => l.key === 'apiKeys.max').used;
    assert.equal(apiKeysUsed, 1, 'failed creates take no quota');
  });

  test('another account\'s keys: not listed, not revocable (404), still working', async () => {
    const mine = await t.newAccount();
    const theirs = await t.newAccount();
    const extra = (await call(theirs, 'POST', '/api-keys', { name: 'theirs' })).json();
    for (const key of [theirs.apiKey, extra.apiKey]) {
      expectError(await call(mine, 'DELETE', `/api-keys/${key}`), 404, 'NotFound');
    }
    assert.equal(
      (await call(mine, 'DELETE', `/api-keys/${extra.apiKey}`)).body,
      (await call(mine, 'DELETE', '/api-keys/NCSNOSUCHKEY0000')).body,
      'an existing foreign key and an unknown one look the same',
    );
    const mineListed = await listKeys(mine);
    assert.ok(mineListed.every((k) => k.accountId === mine.accountId));
    assert.deepEqual(mineListed.map((k) => k.apiKey), [mine.apiKey]);
    assert.deepEqual((await listKeys(theirs)).map((k) => k.apiKey).sort(), [theirs.apiKey, extra.apiKey].sort());
    assert.equal((await call(theirs, 'GET', '/usage')).statusCode, 200);
    assert.equal((await call({ apiKey: extra.apiKey, apiSecret: extra.apiSecret }, 'GET', '/usage')).statusCode, 200);
  });

  test('MEMBER and ADMIN get 403 Forbidden on every API key route, with no effect', async () => {
    const account = await t.newAccount();
    const other = await t.newAccount();
    for (const role of ['MEMBER', 'ADMIN'] as const) {
      const caller = await t.addMember(account, role);
      for (const [method, path, body] of [
        ['GET', '/api-keys', undefined],
        ['POST', '/api-keys', {}],
        ['POST', '/api-keys', { memberId: caller.memberId }],
        ['POST', '/api-keys', { memberId: account.memberId }],
        ['DELETE', `/api-keys/${account.apiKey}`, undefined],
        ['DELETE', `/api-keys/${caller.apiKey}`, undefined],
        ['DELETE', `/api-keys/${other.apiKey}`, undefined],
        ['DELETE', '/api-keys/NCSNOSUCHKEY0000', undefined],
      ] as const) {
        expectError(await call(caller, method, path, body), 403, 'Forbidden');
      }
    }
    const keys = await listKeys(account);
    assert.equal(keys.length, 3, 'the initial key plus the MEMBER\'s and the ADMIN\'s');
    assert.equal((await call(account, 'GET', '/usage')).statusCode, 200, 'the OWNER key was not revoked');
    assert.equal((await call(other, 'GET', '/usage')).statusCode, 200);
  });

  test('an OWNER may revoke their own key; it stops working at once', async () => {
    const account = await t.newAccount();
    const spare = (await call(account, 'POST', '/api-keys', {})).json();
    const spareCreds = { apiKey: spare.apiKey, apiSecret: spare.apiSecret };
    assert.equal((await call(account, 'DELETE', `/api-keys/${account.apiKey}`)).statusCode, 200);
    expectError(await call(account, 'GET', '/api-keys'), 401, 'InvalidApiKey');
    assert.deepEqual((await listKeys(spareCreds as TestAccount)).map((k) => k.apiKey), [spare.apiKey]);
  });
});
