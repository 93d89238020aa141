import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { tenantDb } from '../../src/db/tenant.ts';
import { testDatabaseUrl } from '../helpers/database.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { expectError, uniq } from '../helpers/assertions.ts';

/**
 * Optimistic concurrency (issue 8 item 5, docs/reliability.md): records, entities, properties and
 * segments answer with `ETag: "<version>"`, every write moves it, and `If-Match` on PATCH/DELETE
 * refuses (412 PreconditionFailed, nothing written) a change based on another version. Two racing
 * PATCHes with the same If-Match: exactly one wins; on PostgreSQL they run on two connections at once.
 */

const V1 = '/crm-core/v1';
type Res = LightMyRequestResponse;

/** The ETag of a response, asserted to be a strong, quoted version number. */
function etagOf(res: Res): string {
  const etag = res.headers.etag;
  assert.equal(typeof etag, 'string', `no ETag on ${res.statusCode} ${res.body}`);
  assert.match(etag as string, /^"\d+"$/);
  return etag as string;
}

const versionIn = (etag: string) => Number(etag.slice(1, -1));

describe('optimistic concurrency: ETag and If-Match', () => {
  let t: TestApp;
  let account: TestAccount;
  let entityId: string;

  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, headers?: Record<string, string>) =>
    t.call(account, method, `${V1}${path}`, body, headers);
  async function ok(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, status = 200, headers?: Record<string, string>) {
    const res = await call(method, path, body, headers);
    assert.equal(res.statusCode, status, `${method} ${path}: ${res.body}`);
    return res;
  }
  const newEntity = async () => (await ok('POST', '/entities', { name: 'Deals', slug: uniq('deals') }, 201)).json().entityId as string;
  const newProperty = async (fieldType = 'TEXT') =>
    (await ok('POST', '/properties', { entityId, name: uniq('p'), fieldType }, 201)).json().propertyId as string;
  const newRecord = async (name = 'r') => (await ok('POST', '/records', { entityId, name }, 201)).json().recordId as string;
  const newSegment = async () =>
    (await ok('POST', '/segments', { entityId, name: uniq('s'), conditions: { operator: 'AND', conditions: [] } }, 201)).json().segmentId as string;

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
    entityId = await newEntity();
  });
  after(() => t.close());

  /** The four resources, each with a way to make one and a harmless PATCH body. */
  const resources = [
    { name: 'record', path: '/records', make: () => newRecord(), patch: (n: string) => ({ name: n }), read: (b: any) => b.name },
    { name: 'entity', path: '/entities', make: () => newEntity(), patch: (n: string) => ({ name: n }), read: (b: any) => b.name },
    { name: 'property', path: '/properties', make: () => newProperty(), patch: (n: string) => ({ name: n }), read: (b: any) => b.name },
    { name: 'segment', path: '/segments', make: () => newSegment(), patch: (n: string) => ({ name: n }), read: (b: any) => b.name },
  ];

  for (const r of resources) {
    describe(r.name, () => {
      test('POST, GET and PATCH send an ETag (header only, not a body field); every write moves it', async () => {
        const id = await r.make();
        const first = await ok('GET', `${r.path}/${id}`);
        const v1 = etagOf(first);
        assert.equal(first.json().version, undefined, 'no version field in the body');
        assert.equal(first.body.includes('"version"'), false);
        assert.equal(etagOf(await ok('GET', `${r.path}/${id}`)), v1, 'a read does not move it');

        const patched = await ok('PATCH', `${r.path}/${id}`, r.patch(uniq('n')));
        const v2 = etagOf(patched);
        assert.equal(versionIn(v2), versionIn(v1) + 1);
        assert.equal(etagOf(await ok('GET', `${r.path}/${id}`)), v2, 'GET agrees with the PATCH answer');
        assert.equal(patched.json().version, undefined);

        const again = etagOf(await ok('PATCH', `${r.path}/${id}`, r.patch(uniq('n'))));
        assert.equal(versionIn(again), versionIn(v2) + 1);
      });

      test('a stale If-Match is 412 PreconditionFailed and writes nothing (PATCH and DELETE)', async () => {
        const id = await r.make();
        const stale = etagOf(await ok('GET', `${r.path}/${id}`));
        const name = uniq('current');
        const current = etagOf(await ok('PATCH', `${r.path}/${id}`, r.patch(name)));

        const refused = await call('PATCH', `${r.path}/${id}`, r.patch(uniq('lost')), { 'if-match': stale });
        expectError(refused, 412, 'PreconditionFailed', 'If-Match');
        assert.equal(refused.headers.etag, undefined, 'no ETag on an error');
        expectError(await call('DELETE', `${r.path}/${id}`, undefined, { 'if-match': stale }), 412, 'PreconditionFailed');
        expectError(await call('PATCH', `${r.path}/${id}`, r.patch(uniq('lost')), { 'if-match': 'W/' + current }), 412, 'PreconditionFailed');

        const after = await ok('GET', `${r.path}/${id}`);
        assert.equal(r.read(after.json()), name, 'the refused PATCH wrote nothing');
        assert.equal(etagOf(after), current, 'and did not move the version');
      });

      test('a matching If-Match (the tag, a list holding it, or *) is applied and answers the new ETag', async () => {
        const id = await r.make();
        const v1 = etagOf(await ok('GET', `${r.path}/${id}`));
        const name2 = uniq('n');
        const v2 = etagOf(await ok('PATCH', `${r.path}/${id}`, r.patch(name2), 200, { 'if-match': v1 }));
        assert.notEqual(v2, v1);
        assert.equal(r.read((await ok('GET', `${r.path}/${id}`)).json()), name2);
        const v3 = etagOf(await ok('PATCH', `${r.path}/${id}`, r.patch(uniq('n')), 200, { 'if-match': `"999999", W/${v2}, ${v2}` }));
        const v4 = etagOf(await ok('PATCH', `${r.path}/${id}`, r.patch(uniq('n')), 200, { 'if-match': '*' }));
        assert.deepEqual([v3, v4].map(versionIn), [versionIn(v2) + 1, versionIn(v2) + 2]);
        await ok('DELETE', `${r.path}/${id}`, undefined, 200, { 'if-match': v4 });
      });

      test('a malformed If-Match is 400 before anything runs; an unknown ID stays 404 whatever If-Match says', async () => {
        const id = await r.make();
        const before = etagOf(await ok('GET', `${r.path}/${id}`));
        for (const bad of ['1', '"1', 'W/1', '"a"b"', '*, "1"', '"1",,', 'x'.repeat(2000)]) {
          expectError(await call('PATCH', `${r.path}/${id}`, r.patch(uniq('bad')), { 'if-match': bad }), 400, 'ValidationError', 'if-match');
        }
        expectError(await call('DELETE', `${r.path}/${id}`, undefined, { 'if-match': 'nope' }), 400, 'ValidationError', 'if-match');
        assert.equal(etagOf(await ok('GET', `${r.path}/${id}`)), before, 'nothing was written');
        const unknown = `${id.slice(0, -3)}ZZZ`;
        expectError(await call('PATCH', `${r.path}/${unknown}`, r.patch('x'), { 'if-match': '*' }), 404, 'NotFound');
        expectError(await call('DELETE', `${r.path}/${unknown}`, undefined, { 'if-match': '"1"' }), 404, 'NotFound');
      });

      test('two racing PATCHes with the same If-Match: exactly one 200, one 412, and the winner is what is stored', async () => {
        const id = await r.make();
        const rounds = r.name === 'record' ? 10 : 3;
        for (let round = 0; round < rounds; round++) {
          const base = etagOf(await ok('GET', `${r.path}/${id}`));
          const names = [uniq(`a${round}`), uniq(`b${round}`)];
          const answers = await Promise.all(names.map((n) => call('PATCH', `${r.path}/${id}`, r.patch(n), { 'if-match': base })));
          const statuses = answers.map((a) => a.statusCode).sort();
          assert.deepEqual(statuses, [200, 412], `round ${round}: ${answers.map((a) => a.body).join(' | ')}`);
          const winner = answers.findIndex((a) => a.statusCode === 200);
          expectError(answers[1 - winner]!, 412, 'PreconditionFailed');
          const stored = await ok('GET', `${r.path}/${id}`);
          assert.equal(r.read(stored.json()), names[winner], `round ${round}: the stored state is the winner's`);
          assert.equal(etagOf(stored), etagOf(answers[winner]!));
          assert.equal(versionIn(etagOf(stored)), versionIn(base) + 1, 'exactly one write happened');
        }
      });
    });
  }

  // The racing test above lets the requests interleave as they will. This one makes the overlap
  // certain: a third transaction holds the record's row lock until both PATCHes are waiting on it
  // (each on its own connection), then lets them go at the same instant.
  test('PostgreSQL: two PATCHes queued on the same row lock at once, 10 times: one 200, one 412', { skip: testDatabaseUrl() === undefined && 'needs PostgreSQL (TEST_DATABASE_URL)' }, async () => {
    const id = await newRecord();
    for (let round = 0; round < 10; round++) {
      const base = etagOf(await ok('GET', `/records/${id}`));
      const names = [`left ${round}`, `right ${round}`];
      let answers: Promise<Res[]> | undefined;
      await t.database.db.transaction().execute(async (tx) => {
        await tenantDb(tx, account.accountId).selectFrom('records').select('record_id').where('record_id', '=', id).forUpdate().execute();
        const { rows: [self] } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(tx);
        answers = Promise.all(names.map((name) => call('PATCH', `/records/${id}`, { name }, { 'if-match': base })));
        let waiting = 0;
        for (let i = 0; i < 500 && waiting < 2; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          const { rows: [row] } = await sql<{ n: number }>`
            WITH RECURSIVE blocked(pid) AS (
              SELECT pid FROM pg_stat_activity WHERE ${self!.pid}::int = ANY(pg_blocking_pids(pid))
              UNION SELECT a.pid FROM pg_stat_activity a JOIN blocked b ON b.pid = ANY(pg_blocking_pids(a.pid)))
            SELECT count(*)::int AS n FROM blocked`.execute(t.database.db);
          waiting = row!.n;
        }
        // (The second waits behind the first in the row's lock queue, so count transitively.)
        assert.equal(waiting, 2, 'both PATCHes wait for the row lock at the same time');
      });
      const done = await answers!;
      assert.deepEqual(done.map((a) => a.statusCode).sort(), [200, 412], done.map((a) => a.body).join(' | '));
      const winner = done.findIndex((a) => a.statusCode === 200);
      const stored = await ok('GET', `/records/${id}`);
      assert.equal(stored.json().name, names[winner]);
      assert.equal(versionIn(etagOf(stored)), versionIn(base) + 1);
    }
  });

  test('a malformed If-Match claims no Idempotency-Key: the corrected retry under the same key runs', async () => {
    const id = await newRecord();
    const tag = etagOf(await ok('GET', `/records/${id}`));
    const key = uniq('key');
    expectError(await call('PATCH', `/records/${id}`, { name: 'k' }, { 'if-match': tag.slice(1, -1), 'idempotency-key': key }), 400, 'ValidationError', 'entity-tags');
    const done = await ok('PATCH', `/records/${id}`, { name: 'k' }, 200, { 'if-match': tag, 'idempotency-key': key });
    assert.equal(done.headers['idempotent-replayed'], undefined);
    const replay = await ok('PATCH', `/records/${id}`, { name: 'k' }, 200, { 'if-match': tag, 'idempotency-key': key });
    assert.equal(replay.headers['idempotent-replayed'], 'true');
    assert.equal(replay.headers.etag, done.headers.etag, 'the stored answer keeps its ETag');
  });

  test('without If-Match nothing changes: the last writer wins as before', async () => {
    const id = await newRecord();
    const answers = await Promise.all(['x', 'y'].map((name) => call('PATCH', `/records/${id}`, { name })));
    assert.deepEqual(answers.map((a) => a.statusCode), [200, 200]);
  });

  test('trash and restore move a record\'s version; a DELETE with a stale tag leaves it live', async () => {
    const id = await newRecord();
    const v1 = etagOf(await ok('GET', `/records/${id}`));
    await ok('PATCH', `/records/${id}`, { name: 'moved' });
    expectError(await call('DELETE', `/records/${id}`, undefined, { 'if-match': v1 }), 412, 'PreconditionFailed');
    const v2 = etagOf(await ok('GET', `/records/${id}`));
    await ok('DELETE', `/records/${id}`, undefined, 200, { 'if-match': v2 });
    const restored = await ok('POST', `/records/${id}/restore`);
    assert.equal(versionIn(etagOf(restored)), versionIn(v2) + 2, 'trash and restore are one write each');
    expectError(await call('PATCH', `/records/${id}`, { name: 'stale' }, { 'if-match': v2 }), 412, 'PreconditionFailed');
  });

  test('bulk update, delete and restore move the versions of the records they write', async () => {
    const ids = [await newRecord(), await newRecord()];
    const before = await Promise.all(ids.map(async (id) => etagOf(await ok('GET', `/records/${id}`))));
    const res = await ok('POST', '/records/bulk/update', { records: ids.map((recordId) => ({ recordId, name: 'bulk' })) });
    assert.equal(res.json().succeeded, 2, res.body);
    const afterUpdate = await Promise.all(ids.map(async (id) => etagOf(await ok('GET', `/records/${id}`))));
    assert.deepEqual(afterUpdate.map(versionIn), before.map((v) => versionIn(v) + 1));
    expectError(await call('PATCH', `/records/${ids[0]}`, { name: 'stale' }, { 'if-match': before[0]! }), 412, 'PreconditionFailed');

    await ok('POST', '/records/bulk/delete', { recordIds: ids });
    await ok('POST', '/records/bulk/restore', { recordIds: ids });
    const afterRestore = await Promise.all(ids.map(async (id) => etagOf(await ok('GET', `/records/${id}`))));
    assert.deepEqual(afterRestore.map(versionIn), afterUpdate.map((v) => versionIn(v) + 2));
  });

  test('an entity\'s version moves when a property is added to or deleted from it (propertyIds)', async () => {
    const v1 = etagOf(await ok('GET', `/entities/${entityId}`));
    const added = await newProperty();
    const v2 = etagOf(await ok('GET', `/entities/${entityId}`));
    assert.equal(versionIn(v2), versionIn(v1) + 1);
    await ok('DELETE', `/properties/${added}`);
    assert.equal(versionIn(etagOf(await ok('GET', `/entities/${entityId}`))), versionIn(v2) + 1);
  });

  test('a fieldType conversion moves the version of the records whose value it rewrote', async () => {
    const numberProperty = await newProperty('NUMBER');
    const withValue = (await ok('POST', '/records', { entityId, data: { [numberProperty]: 7 } }, 201)).json().recordId as string;
    const without = await newRecord();
    const [v1, w1] = await Promise.all([withValue, without].map(async (id) => etagOf(await ok('GET', `/records/${id}`))));
    await ok('PATCH', `/properties/${numberProperty}`, { fieldType: 'TEXT' });
    const converted = await ok('GET', `/records/${withValue}`);
    assert.equal(converted.json().data[numberProperty], '7');
    assert.equal(versionIn(etagOf(converted)), versionIn(v1!) + 1);
    assert.equal(etagOf(await ok('GET', `/records/${without}`)), w1, 'records without a value are untouched');
  });

  test('a PATCH answer with extra fields (a property conversion) keeps its ETag; lists have none', async () => {
    const numberProperty = await newProperty('NUMBER');
    await ok('POST', '/records', { entityId, data: { [numberProperty]: 1 } }, 201);
    const v1 = etagOf(await ok('GET', `/properties/${numberProperty}`));
    const res = await ok('PATCH', `/properties/${numberProperty}`, { fieldType: 'TEXT' }, 200, { 'if-match': v1 });
    assert.equal(res.json().conversion.converted, 1, res.body);
    assert.equal(versionIn(etagOf(res)), versionIn(v1) + 1);
    for (const path of [`/records?entityId=${entityId}`, '/entities', `/properties?entityId=${entityId}`, `/segments?entityId=${entityId}`]) {
      assert.equal((await ok('GET', path)).headers.etag, undefined, `${path}: a list has no single version`);
    }
  });
});
