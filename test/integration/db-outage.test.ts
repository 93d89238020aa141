import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { testDatabaseUrl } from '../helpers/database.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';

/**
 * The database goes away under a running app (API.md §1.3: 503 ServiceUnavailable with
 * Retry-After; §11: /healthz vs /readyz) and comes back. A TCP proxy sits between the app's pg
 * pool and PostgreSQL so the test can cut every connection, real ones, without mocking.
 */

const url = testDatabaseUrl();

describe('database outage: 503 + Retry-After, no hang, no crash, recovery without restart (API.md §1.3, §11)', { skip: url ? false : 'PostgreSQL only: set TEST_DATABASE_URL (CRM_TEST_PG_URL) to run' }, () => {
  let proxy: TcpProxy;
  let database: Database;
  let t: TestApp;
  let account: TestAccount;
  const crashes: unknown[] = [];
  const onCrash = (error: unknown) => { crashes.push(error); };

  before(async () => {
    // A crash would otherwise kill the runner silently; record it and fail the test instead.
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    const target = new URL(url!);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start(0);
    const proxied = new URL(url!);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    database = await openDatabase({ databaseUrl: proxied.toString(), poolMax: 5 });
    t = await startTestApp({ database });
    account = await t.newAccount('outage');
  });

  after(async () => {
    await t?.close();
    await database?.close();
    await proxy?.cut();
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  });

  async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
    const started = performance.now();
    const value = await work();
    return { value, ms: performance.now() - started };
  }

  function expectUnavailable(res: { statusCode: number; headers: Record<string, unknown>; body: string; json(): any }, what: string) {
    assert.equal(res.statusCode, 503, `${what}: ${res.body}`);
    assert.equal(res.json().errorCode, 'ServiceUnavailable', what);
    assert.equal(typeof res.json().errorMessage, 'string');
    assert.doesNotMatch(res.body, /ECONNREFUSED|terminated|127\.0\.0\.1|at .*\.ts/, `${what}: no internals leak`);
    const retryAfter = res.headers['retry-after'];
    assert.ok(retryAfter !== undefined, `${what}: Retry-After header`);
    assert.match(String(retryAfter), /^[1-9]\d*$/, `${what}: Retry-After is delay-seconds`);
  }

  const readyz = () => t.app.inject({ method: 'GET', url: '/readyz' });
  const healthz = () => t.app.inject({ method: 'GET', url: '/healthz' });

  test('with the proxy up, signed requests and /readyz work through it', async () => {
    const res = await t.call(account, 'GET', '/crm-core/v1/usage');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().accountId, account.accountId);
    // Several signed requests at once so the pool holds several idle clients for the cut to kill.
    const many = await Promise.all(Array.from({ length: 5 }, () => t.call(account, 'GET', '/crm-core/v1/members')));
    for (const r of many) assert.equal(r.statusCode, 200, r.body);
    assert.equal((await readyz()).statusCode, 200);
    assert.ok(proxy.connections > 0, 'the pool keeps its connections open through the proxy');
  });

  test('cut: signed requests and /readyz answer 503 quickly; /healthz stays 200; the process survives', async () => {
    // One query is in flight when the connection dies: it must fail, not hang or crash.
    const inFlight = sql`select pg_sleep(5)`.execute(database.db).then(() => 'finished', (error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await proxy.cut();
    // Let the killed idle clients report their errors to the pool.
    await new Promise((resolve) => setTimeout(resolve, 100));

    const { value: interrupted, ms: interruptedMs } = await timed(() => inFlight);
    assert.notEqual(interrupted, 'finished', 'the in-flight query cannot finish without its connection');
    assert.ok(interruptedMs < 2_000, `the in-flight query failed promptly (${interruptedMs} ms)`);

    for (const [label, send] of [
      ['GET /usage', () => t.call(account, 'GET', '/crm-core/v1/usage')],
      ['GET /members', () => t.call(account, 'GET', '/crm-core/v1/members')],
      ['POST /members', () => t.call(account, 'POST', '/crm-core/v1/members', { name: 'during outage' })],
      ['GET /readyz', readyz],
    ] as const) {
      const { value: res, ms } = await timed(send);
      expectUnavailable(res, label);
      assert.ok(ms < 5_000, `${label} answered in ${Math.round(ms)} ms (no hang)`);
    }

    // Concurrent requests during the outage, more than the pool size: none may hang.
    const { value: burst, ms: burstMs } = await timed(() =>
      Promise.all(Array.from({ length: 12 }, () => t.call(account, 'GET', '/crm-core/v1/usage'))));
    for (const res of burst) expectUnavailable(res, 'burst');
    assert.ok(burstMs < 5_000, `a burst of 12 answered in ${Math.round(burstMs)} ms`);

    const health = await healthz();
    assert.equal(health.statusCode, 200);
    assert.equal(health.json().status, 'ok');
    assert.deepEqual(crashes, [], 'no uncaught exception or unhandled rejection');
  });

  test('the proxy comes back on the same port: requests succeed again without restarting the app', async () => {
    const port = proxy.port;
    await proxy.start(port);
    assert.equal(proxy.port, port);

    const res = await t.call(account, 'GET', '/crm-core/v1/usage');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await readyz()).statusCode, 200);
    const created = await t.call(account, 'POST', '/crm-core/v1/members', { name: 'after outage' });
    assert.equal(created.statusCode, 201, created.body);
    const list = await t.call(account, 'GET', '/crm-core/v1/members');
    assert.equal(list.statusCode, 200);
    const names = list.json().map((m: { name: string }) => m.name);
    assert.ok(names.includes('after outage'));
    assert.ok(!names.includes('during outage'), 'nothing was written during the outage');
    assert.deepEqual(crashes, []);
  });

  test('a second outage while requests are in flight, then recovery again', async () => {
    const pending = Promise.all(Array.from({ length: 8 }, () => t.call(account, 'GET', '/crm-core/v1/usage')));
    await proxy.cut();
    const { value: results, ms } = await timed(() => pending);
    assert.ok(ms < 5_000, `in-flight requests settled in ${Math.round(ms)} ms`);
    for (const r of results) {
      assert.ok(r.statusCode === 200 || r.statusCode === 503, `${r.statusCode} ${r.body}`);
      if (r.statusCode === 503) expectUnavailable(r, 'in flight');
    }
    expectUnavailable(await t.call(account, 'GET', '/crm-core/v1/usage'), 'after the second cut');
    await proxy.start();
    assert.equal((await t.call(account, 'GET', '/crm-core/v1/usage')).statusCode, 200);
    assert.deepEqual(crashes, []);
  });

  test('a database that accepts connections but never answers: 503 after the connect timeout, not a hang', async () => {
    await proxy.cut();
    await proxy.start(proxy.port, 'blackhole');
    try {
      // More requests than pool slots: the queued ones must time out too.
      const { value: results, ms } = await timed(() =>
        Promise.all([readyz(), ...Array.from({ length: 7 }, () => t.call(account, 'GET', '/crm-core/v1/usage'))]));
      for (const r of results) expectUnavailable(r, 'blackhole');
      assert.ok(ms < 9_000, `answered in ${Math.round(ms)} ms`);
      assert.equal((await healthz()).statusCode, 200);
    } finally {
      await proxy.cut();
      await proxy.start();
    }
    assert.equal((await t.call(account, 'GET', '/crm-core/v1/usage')).statusCode, 200);
    assert.equal((await readyz()).statusCode, 200);
    assert.deepEqual(crashes, []);
  });
});
