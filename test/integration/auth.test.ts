import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openDatabase } from '../../src/db/database.ts';
import { sign } from '../../src/lib/hmac-signature.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { testDatabaseUrl } from '../helpers/database.ts';
import { authorization } from '../helpers/sign.ts';

const FIFTEEN_MIN = 15 * 60 * 1000;

describe('HMAC authentication (API.md §1.2)', () => {
  let t: TestApp;
  let account: TestAccount;

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
  });
  after(() => t.close());

  const usage = (auth: string | undefined) =>
    t.app.inject({ method: 'GET', url: '/crm-core/v1/usage', headers: auth === undefined ? {} : { authorization: auth } });

  function expectError(res: { statusCode: number; json(): any }, status: number, code: string) {
    assert.equal(res.statusCode, status, JSON.stringify(res.json()));
    assert.equal(res.json().errorCode, code);
    assert.equal(typeof res.json().errorMessage, 'string');
  }

  test('accepts the four date forms real clients send', async () => {
    const now = Date.now();
    const utc = new Date(now).toISOString(); // 2026-11-22T10:00:00.123Z
    const kst = new Date(now + 9 * 3600_000).toISOString().replace('Z', '+09:00');
    for (const date of [utc, utc.replace(/\.\d{3}Z$/, 'Z'), kst, kst.replace(/\.\d{3}\+/, '+')]) {
      const res = await usage(authorization(account, { date }));
      assert.equal(res.statusCode, 200, `${date}: ${res.body}`);
      assert.equal(res.json().accountId, account.accountId);
    }
  });

  test('accepts a negative offset and upper-case hex signature', async () => {
    const now = Date.now();
    const date = new Date(now - 5 * 3600_000).toISOString().replace('Z', '-05:00');
    const salt = 'abcdefabcdef0123';
    const res = await usage(authorization(account, { date, salt, signature: sign(account.apiSecret, date, salt).toUpperCase() }));
    assert.equal(res.statusCode, 200, res.body);
  });

  test('missing or garbled headers are 401 Unauthorized', async () => {
    const good = authorization(account);
    for (const header of [
      undefined,
      '',
      'Bearer abc',
      'HMAC-SHA256',
      'HMAC-SHA256 apiKey=x',
      good.replace('HMAC-SHA256', 'HMAC-SHA1'),
      good.replace(/salt=[^,]+, /, ''),
      `${good}, extra=1`,
      good.replace('apiKey=', 'apiKey=x, apiKey='),
      good.replace(/date=[^,]+/, 'date=yesterday'),
      good.replace(/date=[^,]+/, 'date=2026-02-30T10:00:00Z'),
      good.replace(/date=[^,]+/, 'date=2026-11-22 10:00:00'),
      'x'.repeat(5000),
    ]) {
      expectError(await usage(header), 401, 'Unauthorized');
    }
  });

  test('salts outside 12–64 characters are refused; the edges pass', async () => {
    expectError(await usage(authorization(account, { salt: 'a'.repeat(11) })), 401, 'Unauthorized');
    expectError(await usage(authorization(account, { salt: 'a'.repeat(65) })), 401, 'Unauthorized');
    assert.equal((await usage(authorization(account, { salt: 'b'.repeat(12) }))).statusCode, 200);
    assert.equal((await usage(authorization(account, { salt: 'c'.repeat(64) }))).statusCode, 200);
  });

  test('unknown key → InvalidApiKey; wrong secret or tampered signature → SignatureDoesNotMatch', async () => {
    expectError(await usage(authorization({ apiKey: 'NCSNOTAREALKEY00', apiSecret: account.apiSecret })), 401, 'InvalidApiKey');
    expectError(await usage(authorization({ apiKey: account.apiKey, apiSecret: 'wrong-secret' })), 401, 'SignatureDoesNotMatch');
    expectError(await usage(authorization(account, { signature: 'abc' })), 401, 'SignatureDoesNotMatch');
    expectError(await usage(authorization(account, { signature: '0'.repeat(64) })), 401, 'SignatureDoesNotMatch');
  });

  test('a signature is good once: the replay is DuplicatedSignature', async () => {
    const header = authorization(account);
    assert.equal((await usage(header)).statusCode, 200);
    expectError(await usage(header), 401, 'DuplicatedSignature');
    // Same date, another salt: a new signature, accepted.
    const date = /date=([^,]+)/.exec(header)![1]!;
    assert.equal((await usage(authorization(account, { date }))).statusCode, 200);
  });

  test('a refused signature does not burn its nonce (only verified requests are remembered)', async () => {
    const date = new Date().toISOString();
    const salt = 'saltsaltsalt1234';
    expectError(await usage(authorization({ apiKey: account.apiKey, apiSecret: 'nope' }, { date, salt })), 401, 'SignatureDoesNotMatch');
    assert.equal((await usage(authorization(account, { date, salt }))).statusCode, 200);
  });

  describe('clock skew, with the server clock pinned', () => {
    const serverNow = Date.parse('2026-06-01T12:00:00.000Z');
    before(() => { t.clock.now = serverNow; });
    after(() => { t.clock.now = undefined; });

    for (const [label, offset, ok] of [
      ['exactly 15 minutes behind', -FIFTEEN_MIN, true],
      ['exactly 15 minutes ahead', FIFTEEN_MIN, true],
      ['15 minutes and 1 ms behind', -FIFTEEN_MIN - 1, false],
      ['15 minutes and 1 ms ahead', FIFTEEN_MIN + 1, false],
      ['a day behind', -86_400_000, false],
    ] as const) {
      test(label, async () => {
        const res = await usage(authorization(account, { date: new Date(serverNow + offset).toISOString() }));
        if (ok) assert.equal(res.statusCode, 200, res.body);
        else expectError(res, 401, 'RequestTimeTooSkewed');
      });
    }

    test('the window is judged on the instant, whatever the offset notation', async () => {
      const date = new Date(serverNow + 9 * 3600_000 - FIFTEEN_MIN - 1000).toISOString().replace('Z', '+09:00');
      expectError(await usage(authorization(account, { date })), 401, 'RequestTimeTooSkewed');
    });
  });

  test('a revoked key stops working at once', async () => {
    const created = await t.call(account, 'POST', '/crm-core/v1/api-keys', { name: 'short-lived' });
    assert.equal(created.statusCode, 201);
    const key = { apiKey: created.json().apiKey, apiSecret: created.json().apiSecret };
    assert.equal((await usage(authorization(key))).statusCode, 200);
    assert.equal((await t.call(account, 'DELETE', `/crm-core/v1/api-keys/${key.apiKey}`)).statusCode, 200);
    expectError(await usage(authorization(key)), 401, 'InvalidApiKey');
  });

  test('replays are refused across two server instances sharing one database', async () => {
    // A second app with its own connections to the same database and the same master key: another API node.
    const url = testDatabaseUrl();
    const secondDb = url ? await openDatabase({ databaseUrl: url }) : undefined;
    const second = await startTestApp({ database: secondDb ?? t.database, masterKey: t.masterKey });
    try {
      const header = authorization(account);
      const results = await Promise.all([t, second, t, second, t, second].map((node) =>
        node.app.inject({ method: 'GET', url: '/crm-core/v1/usage', headers: { authorization: header } })));
      assert.equal(results.filter((r) => r.statusCode === 200).length, 1);
      for (const r of results.filter((r) => r.statusCode !== 200)) expectError(r, 401, 'DuplicatedSignature');
    } finally {
      await second.close();
      await secondDb?.close();
    }
  });
});
