import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { testDatabaseUrl } from '../helpers/database.ts';
import { authorization } from '../helpers/sign.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';

/**
 * Faults under write load (issue 8 item 7; docs/reliability.md "Faults"). A bounded write load
 * (single creates and 20-record bulk creates, four clients, real HTTP on loopback) runs while
 *  (a) the app's PostgreSQL backends are killed with pg_terminate_backend, over and over;
 *  (b) the database is cut off (a TCP proxy between the pool and PostgreSQL closes every connection
 *      and refuses new ones) and then restored, the app process untouched.
 * Afterwards, read directly from PostgreSQL:
 *  - every write the API acknowledged (2xx) is there, under the IDs it returned, exactly once;
 *  - every write it did not acknowledge is absent or complete: a bulk is all 20 records or none;
 *  - every non-2xx answer was 503 ServiceUnavailable with Retry-After (never a 500, never a hang);
 *  - during the cut the API answers 503, and it recovers on its own when the database is back.
 * Only the app's own connections are killed (they carry an application_name of their own), so test
 * files running in parallel on the same database are unaffected. Graceful shutdown (draining
 * in-flight requests) is process.test.ts's.
 */

const url = testDatabaseUrl();
const V1 = '/crm-core/v1';
const BULK = 20;
const CLIENTS = 4;

interface Outcome {
  tag: string;
  /** Records in the write: 1, or BULK for a bulk create. */
  size: number;
  status: number | 'no answer';
  body: any;
  startedAt: number;
  ms: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('faults under write load: killed backends and a cut database (PostgreSQL)', {
  skip: url ? false : 'PostgreSQL only: it kills PostgreSQL backends and cuts a TCP connection, which PGlite (in process) does not have; set TEST_DATABASE_URL to run',
}, () => {
  const appName = `crm_faults_${randomBytes(4).toString('hex')}`;
  let proxy: TcpProxy;
  let database: Database;
  let t: TestApp;
  let account: TestAccount;
  let admin: pg.Client;
  let base: string;
  let entityId: string;
  let propertyId: string;
  const outcomes: Outcome[] = [];
  const crashes: unknown[] = [];
  const onCrash = (error: unknown) => { crashes.push(error); };
  let seq = 0;

  before(async () => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    const target = new URL(url!);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start(0);
    const proxied = new URL(url!);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    proxied.searchParams.set('application_name', appName);
    database = await openDatabase({ databaseUrl: proxied.toString(), poolMax: 8 });
    t = await startTestApp({ database });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    account = await t.newAccount('faults');
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const entity = await post('/entities', { name: 'Fault entity', slug: 'faults' });
    assert.equal(entity.status, 201, JSON.stringify(entity.body));
    entityId = entity.body.entityId;
    const property = await post('/properties', { entityId, name: 'Tag', fieldType: 'TEXT' });
    assert.equal(property.status, 201, JSON.stringify(property.body));
    propertyId = property.body.propertyId;
  });

  after(async () => {
    await t?.close();
    await database?.close();
    await proxy?.cut();
    await admin?.end();
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  });

  async function post(path: string, body: unknown): Promise<{ status: number | 'no answer'; body: any; headers?: Headers }> {
    try {
      const res = await fetch(`${base}${V1}${path}`, {
        method: 'POST',
        headers: { authorization: authorization(account), 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try { parsed = JSON.parse(text); } catch { /* kept as text */ }
      return { status: res.status, body: parsed, headers: res.headers };
    } catch (error) {
      return { status: 'no answer', body: String(error) };
    }
  }

  /** One write: a single create or a bulk create of BULK records, all named after a fresh tag. */
  async function write(phase: string): Promise<Outcome> {
    const tag = `${phase}-${++seq}`;
    const bulk = seq % 3 === 0;
    const startedAt = performance.now();
    const res = bulk
      ? await post('/records/bulk', { records: Array.from({ length: BULK }, (_, i) => ({ entityId, name: `${tag}#${i}`, data: { [propertyId]: tag } })) })
      : await post('/records', { entityId, name: `${tag}#0`, data: { [propertyId]: tag } });
    const outcome: Outcome = { tag, size: bulk ? BULK : 1, status: res.status, body: res.body, startedAt, ms: performance.now() - startedAt };
    if (res.status === 503) outcome.body = { ...res.body, retryAfter: res.headers?.get('retry-after') };
    outcomes.push(outcome);
    return outcome;
  }

  /** CLIENTS loops of writes until `stop` resolves; every write is awaited (bounded load). */
  async function load(phase: string, stop: Promise<void>): Promise<Outcome[]> {
    let stopped = false;
    void stop.then(() => { stopped = true; });
    const mine: Outcome[] = [];
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      while (!stopped) mine.push(await write(phase));
    }));
    return mine;
  }

  /** Kills every backend the app holds; returns how many. */
  async function killAppBackends(): Promise<number> {
    const res = await admin.query<{ n: number }>(
      'SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
      [appName],
    );
    return res.rows[0]!.n;
  }

  const non2xx = (list: Outcome[]) => list.filter((o) => typeof o.status !== 'number' || o.status >= 300);
  const describeOutcome = (o: Outcome) => `${o.tag} (${o.size}): ${o.status} ${JSON.stringify(o.body).slice(0, 300)}`;

  test('(a) backends killed with pg_terminate_backend, again and again, under load', async (ctx) => {
    let killed = 0;
    let rounds = 0;
    let release!: () => void;
    const stop = new Promise<void>((resolve) => { release = resolve; });
    const running = load('kill', stop);
    await sleep(300);
    for (const started = performance.now(); performance.now() - started < 3000; rounds++) {
      killed += await killAppBackends();
      await sleep(120 + (rounds % 5) * 40); // 120–280 ms apart: writes both die and complete between kills
    }
    await sleep(700); // writes go on with the database intact: they must succeed again
    release();
    const mine = await running;
    const failed = non2xx(mine);
    ctx.diagnostic(`${mine.length} writes, ${killed} backends killed in ${rounds} rounds, ${failed.length} answered 503`);
    assert.ok(killed >= 5, `${killed} backends killed`);
    for (const o of failed) assert.equal(o.status, 503, describeOutcome(o));
    assert.ok(failed.length >= 1, 'some writes were caught by a kill (else the test proved nothing)');
    const afterKills = mine.filter((o) => o.startedAt > performance.now() - 500);
    assert.ok(afterKills.some((o) => o.status === 200 || o.status === 201), 'writes succeed again once the kills stop');
  });

  test('(b) the database is cut under load: 503 while it is away, recovery without restart', async (ctx) => {
    let release!: () => void;
    const stop = new Promise<void>((resolve) => { release = resolve; });
    const running = load('cut', stop);
    await sleep(800);
    const port = proxy.port;
    const cutAt = performance.now();
    await proxy.cut();
    await sleep(2000);
    const restoredAt = performance.now();
    await proxy.start(port);
    // Keep writing until writes succeed again (bounded), then a little longer.
    const deadline = performance.now() + 15_000;
    while (performance.now() < deadline && !outcomes.some((o) => o.startedAt > restoredAt && (o.status === 200 || o.status === 201))) await sleep(50);
    await sleep(500);
    release();
    const mine = await running;

    const during = mine.filter((o) => o.startedAt > cutAt + 100 && o.startedAt + o.ms < restoredAt);
    ctx.diagnostic(`${mine.length} writes; ${during.length} started and ended during the cut`);
    assert.ok(during.length >= CLIENTS, `${during.length} writes during the cut`);
    for (const o of during) {
      assert.equal(o.status, 503, describeOutcome(o));
      assert.equal(o.body.errorCode, 'ServiceUnavailable', describeOutcome(o));
      assert.match(String(o.body.retryAfter), /^[1-9]\d*$/, 'Retry-After');
      assert.ok(o.ms < 6000, `answered in ${Math.round(o.ms)} ms, not hung`);
    }
    for (const o of non2xx(mine)) assert.equal(o.status, 503, describeOutcome(o));
    const recovered = mine.find((o) => o.startedAt > restoredAt && (o.status === 200 || o.status === 201));
    assert.ok(recovered, 'writes succeed again after the database is back, same process');
    ctx.diagnostic(`first success ${Math.round(recovered.startedAt + recovered.ms - restoredAt)} ms after the restore`);
  });

  test('every acknowledged write is stored exactly once; no unacknowledged bulk is partial', async (ctx) => {
    const rows = (await admin.query<{ record_id: string; name: string; tag: string }>(
      `SELECT record_id, name, data ->> (SELECT storage_key FROM properties WHERE account_id = $1 AND property_id = $3) AS tag
       FROM records WHERE account_id = $1 AND entity_id = $2`,
      [account.accountId, entityId, propertyId],
    )).rows;
    const byName = new Map<string, string[]>();
    for (const row of rows) byName.set(row.name, [...(byName.get(row.name) ?? []), row.record_id]);
    const duplicated = [...byName].filter(([, ids]) => ids.length > 1).map(([name]) => name);
    assert.deepEqual(duplicated, [], 'no write was stored twice');
    for (const row of rows) assert.equal(row.tag, row.name.split('#')[0], `${row.name} carries its own data`);

    let acknowledged = 0;
    let absent = 0;
    let completeUnacknowledged = 0;
    for (const o of outcomes) {
      const names = Array.from({ length: o.size }, (_, i) => `${o.tag}#${i}`);
      const present = names.filter((n) => byName.has(n));
      if (o.status === 200 || o.status === 201) {
        acknowledged++;
        assert.equal(present.length, o.size, `acknowledged ${describeOutcome(o)}: ${present.length}/${o.size} stored`);
        const returned: string[] = o.size === 1 ? [o.body.recordId] : o.body.recordIds;
        if (o.size > 1) assert.equal(o.body.succeeded, o.size, describeOutcome(o));
        assert.deepEqual(returned, names.map((n) => byName.get(n)![0]), `${o.tag}: the IDs returned are the IDs stored`);
      } else {
        assert.ok(present.length === 0 || present.length === o.size, `unacknowledged ${describeOutcome(o)}: ${present.length}/${o.size} stored (partial)`);
        if (present.length) completeUnacknowledged++;
        else absent++;
      }
    }
    const known = new Set(outcomes.flatMap((o) => Array.from({ length: o.size }, (_, i) => `${o.tag}#${i}`)));
    assert.deepEqual([...byName.keys()].filter((n) => !known.has(n)), [], 'nothing was written that nobody asked for');
    ctx.diagnostic(`${outcomes.length} writes: ${acknowledged} acknowledged and present, ${absent} unacknowledged and absent, ${completeUnacknowledged} unacknowledged but committed in full`);
    assert.ok(acknowledged > 20);
  });

  test('no crash; the app is healthy without a restart', async () => {
    assert.deepEqual(crashes, []);
    const res = await fetch(`${base}/readyz`);
    assert.equal(res.status, 200);
  });
});
