import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { expectError, uniq } from '../helpers/assertions.ts';
import { authorization, type Credentials } from '../helpers/sign.ts';

/**
 * Idempotency-Key on POST/PATCH/DELETE (issue 8 item 4, docs/reliability.md "Idempotency"):
 * replays return the stored response without a second write, a key reused for another request is
 * 422, concurrent duplicates execute once, 5xx and schema failures are not stored, handler 4xx are.
 */

const V1 = '/crm-core/v1';

/** Headers that legitimately differ between an original response and its replay. */
const PER_EXCHANGE = new Set(['x-request-id', 'date', 'connection', 'idempotent-replayed']);

function sameStoredResponse(replay: LightMyRequestResponse, original: LightMyRequestResponse): void {
  assert.equal(replay.statusCode, original.statusCode, replay.body);
  assert.equal(replay.body, original.body, 'the body is byte for byte the one first sent');
  const strip = (headers: Record<string, unknown>) => Object.fromEntries(Object.entries(headers).filter(([k]) => !PER_EXCHANGE.has(k)));
  assert.deepEqual(strip(replay.headers), strip(original.headers));
  assert.equal(replay.headers['idempotent-replayed'], 'true');
  assert.equal(original.headers['idempotent-replayed'], undefined);
}

describe('Idempotency-Key', () => {
  let t: TestApp;
  let account: TestAccount;
  let entityId: string;
  let propertyId: string;

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
    const entity = await t.call(account, 'POST', `${V1}/entities`, { name: 'Deals', slug: uniq('deals') });
    assert.equal(entity.statusCode, 201, entity.body);
    entityId = entity.json().entityId;
    const property = await t.call(account, 'POST', `${V1}/properties`, { entityId, name: 'Amount', fieldType: 'NUMBER' });
    assert.equal(property.statusCode, 201, property.body);
    propertyId = property.json().propertyId;
  });
  after(() => t.close());

  const keyed = (creds: Credentials, method: 'POST' | 'PATCH' | 'DELETE' | 'GET', url: string, key: string, body?: unknown) =>
    t.call(creds, method, url, body, { 'idempotency-key': key });

  async function recordCount(acct: TestAccount = account): Promise<number> {
    const row = await acct.tenant.selectFrom('records').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }
  async function storedKeys(acct: TestAccount = account): Promise<{ idempotency_key: string; state: string }[]> {
    return acct.tenant.selectFrom('idempotency_keys').select(['idempotency_key', 'state']).execute();
  }

  test('a replay returns the stored response and writes nothing', async () => {
    const key = uniq('create');
    const body = { entityId, name: 'Big deal', data: { [propertyId]: 1000 } };
    const before = await recordCount();
    const first = await keyed(account, 'POST', `${V1}/records`, key, body);
    assert.equal(first.statusCode, 201, first.body);
    assert.equal(await recordCount(), before + 1);

    for (let i = 0; i < 3; i++) {
      const replay = await keyed(account, 'POST', `${V1}/records`, key, body);
      sameStoredResponse(replay, first);
    }
    assert.equal(await recordCount(), before + 1, 'no second record');
    assert.deepEqual((await storedKeys()).filter((k) => k.idempotency_key === key), [{ idempotency_key: key, state: 'completed' }]);
  });

  test('the same body re-serialised (key order, spacing) is the same request', async () => {
    const key = uniq('canonical');
    const first = await keyed(account, 'POST', `${V1}/records`, key, { entityId, name: 'Canon', tags: ['a', 'b'] });
    assert.equal(first.statusCode, 201, first.body);
    const before = await recordCount();
    const replay = await t.app.inject({
      method: 'POST',
      url: `${V1}/records`,
      headers: { authorization: authorization(account), 'content-type': 'application/json', 'idempotency-key': key },
      payload: `{ "tags": ["a", "b"],\n  "name": "Canon", "entityId": "${entityId}" }`,
    });
    sameStoredResponse(replay, first);
    assert.equal(await recordCount(), before);
  });

  test('without a key, the same POST creates twice (the protection is the key)', async () => {
    const before = await recordCount();
    const body = { entityId, name: 'No key' };
    assert.equal((await t.call(account, 'POST', `${V1}/records`, body)).statusCode, 201);
    assert.equal((await t.call(account, 'POST', `${V1}/records`, body)).statusCode, 201);
    assert.equal(await recordCount(), before + 2);
  });

  test('the same key for a different body, path, method or API key is 422 IdempotencyKeyReused', async () => {
    const key = uniq('reuse');
    const first = await keyed(account, 'POST', `${V1}/records`, key, { entityId, name: 'Original' });
    assert.equal(first.statusCode, 201, first.body);
    const recordId = first.json().recordId;
    const before = await recordCount();

    const res = await keyed(account, 'POST', `${V1}/records`, key, { entityId, name: 'Changed' });
    expectError(res, 422, 'IdempotencyKeyReused', `POST ${V1}/records`);
    expectError(await keyed(account, 'POST', `${V1}/records/bulk`, key, { records: [{ entityId, name: 'Original' }] }), 422, 'IdempotencyKeyReused');
    expectError(await keyed(account, 'PATCH', `${V1}/records/${recordId}`, key, { name: 'Original' }), 422, 'IdempotencyKeyReused');
    expectError(await keyed(account, 'DELETE', `${V1}/records/${recordId}`, key), 422, 'IdempotencyKeyReused');
    expectError(await keyed(account, 'POST', `${V1}/records?x=1`, key, { entityId, name: 'Original' }), 422, 'IdempotencyKeyReused');
    // Another key of the same account (its caller may see other masking, other workspaces).
    const admin = await t.addMember(account, 'ADMIN');
    expectError(await keyed(admin, 'POST', `${V1}/records`, key, { entityId, name: 'Original' }), 422, 'IdempotencyKeyReused');

    assert.equal(await recordCount(), before, 'none of them wrote');
    const still = await t.call(account, 'GET', `${V1}/records/${recordId}`);
    assert.equal(still.json().name, 'Original', 'nothing was changed or deleted');
    // The original request still replays.
    sameStoredResponse(await keyed(account, 'POST', `${V1}/records`, key, { entityId, name: 'Original' }), first);
  });

  test('If-Match is part of the request: the same PATCH under another precondition is 422, the same one replays', async () => {
    const created = await t.call(account, 'POST', `${V1}/records`, { entityId, name: 'Versioned' });
    const recordId = created.json().recordId;
    const etag = String(created.headers.etag);
    const key = uniq('if-match');
    const patch = (ifMatch: string) => t.call(account, 'PATCH', `${V1}/records/${recordId}`, { name: 'Patched' }, { 'idempotency-key': key, 'if-match': ifMatch });
    const first = await patch(etag);
    assert.equal(first.statusCode, 200, first.body);
    expectError(await patch('"999"'), 422, 'IdempotencyKeyReused');
    sameStoredResponse(await patch(etag), first);
  });

  test('keys are per account: another account using the same key executes its own request', async () => {
    const other = await t.newAccount('Other');
    const entity = await t.call(other, 'POST', `${V1}/entities`, { name: 'Deals', slug: uniq('deals') });
    assert.equal(entity.statusCode, 201, entity.body);
    const key = uniq('shared-key');
    const mine = await keyed(account, 'POST', `${V1}/members`, key, { name: 'Same name' });
    const theirs = await keyed(other, 'POST', `${V1}/members`, key, { name: 'Same name' });
    assert.equal(mine.statusCode, 201, mine.body);
    assert.equal(theirs.statusCode, 201, theirs.body);
    assert.equal(theirs.headers['idempotent-replayed'], undefined, 'not a replay of the other account\'s response');
    assert.notEqual(theirs.json().memberId, mine.json().memberId);
    assert.equal(theirs.json().accountId ?? other.accountId, other.accountId);
  });

  test('ten identical requests at once execute exactly once', async (ctx) => {
    const key = uniq('parallel');
    const body = { entityId, name: 'Raced', data: { [propertyId]: 7 } };
    const before = await recordCount();
    const responses = await Promise.all(Array.from({ length: 10 }, () => keyed(account, 'POST', `${V1}/records`, key, body)));
    assert.equal(await recordCount(), before + 1, 'exactly one record');
    ctx.diagnostic(`statuses: ${responses.map((r) => r.statusCode).join(' ')}`);
    const created = responses.filter((r) => r.statusCode === 201);
    assert.ok(created.length >= 1, responses.map((r) => r.statusCode).join(','));
    for (const res of responses) {
      if (res.statusCode === 201) assert.equal(res.body, created[0]!.body, 'every 201 is the one response');
      else {
        expectError(res, 409, 'IdempotencyKeyInProgress');
        assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/);
      }
    }
    // Once settled, every retry is the stored response.
    const original = created.find((r) => r.headers['idempotent-replayed'] === undefined)!;
    assert.ok(original, 'one of them executed');
    sameStoredResponse(await keyed(account, 'POST', `${V1}/records`, key, body), original);
    assert.equal(await recordCount(), before + 1);
  });

  test('bulk endpoints too: ten identical bulk creates at once write one batch', async () => {
    const key = uniq('bulk');
    const body = { records: Array.from({ length: 25 }, (_, i) => ({ entityId, name: `Bulk ${i}` })) };
    const before = await recordCount();
    const responses = await Promise.all(Array.from({ length: 10 }, () => keyed(account, 'POST', `${V1}/records/bulk`, key, body)));
    assert.equal(await recordCount(), before + 25, 'one batch of 25');
    assert.ok(responses.every((r) => r.statusCode === 200 || r.statusCode === 409), responses.map((r) => r.statusCode).join(','));
    const replay = await keyed(account, 'POST', `${V1}/records/bulk`, key, body);
    assert.equal(replay.statusCode, 200);
    assert.equal(replay.json().succeeded, 25);
    assert.equal(await recordCount(), before + 25);
  });

  test('DELETE and PATCH replay their first answer', async () => {
    const created = await t.call(account, 'POST', `${V1}/records`, { entityId, name: 'To delete' });
    const recordId = created.json().recordId;
    const key = uniq('delete');
    const first = await keyed(account, 'DELETE', `${V1}/records/${recordId}`, key);
    assert.equal(first.statusCode, 200, first.body);
    // Without the key a second delete would now be refused (the record is in the trash).
    assert.ok((await t.call(account, 'DELETE', `${V1}/records/${recordId}`)).statusCode >= 400);
    sameStoredResponse(await keyed(account, 'DELETE', `${V1}/records/${recordId}`, key), first);

    const live = (await t.call(account, 'POST', `${V1}/records`, { entityId, name: 'To patch' })).json().recordId;
    const patchKey = uniq('patch');
    const patched = await keyed(account, 'PATCH', `${V1}/records/${live}`, patchKey, { name: 'Patched once' });
    assert.equal(patched.statusCode, 200, patched.body);
    await t.call(account, 'PATCH', `${V1}/records/${live}`, { name: 'Changed since' });
    const replay = await keyed(account, 'PATCH', `${V1}/records/${live}`, patchKey, { name: 'Patched once' });
    sameStoredResponse(replay, patched);
    assert.equal((await t.call(account, 'GET', `${V1}/records/${live}`)).json().name, 'Changed since', 'the replay did not patch again');
  });

  test('a 4xx the handler answered is stored and replayed (the key\'s outcome is final)', async () => {
    const slug = uniq('taken');
    const holder = await t.call(account, 'POST', `${V1}/entities`, { name: 'Holder', slug });
    assert.equal(holder.statusCode, 201, holder.body);
    const key = uniq('dup-slug');
    const body = { name: 'Wants the slug', slug };
    const refused = await keyed(account, 'POST', `${V1}/entities`, key, body);
    expectError(refused, 409, 'DuplicateEntity');
    // The conflict goes away, but the key keeps its answer: a replay, not a new attempt.
    const renamed = await t.call(account, 'PATCH', `${V1}/entities/${holder.json().entityId}`, { slug: uniq('moved') });
    assert.equal(renamed.statusCode, 200, renamed.body);
    sameStoredResponse(await keyed(account, 'POST', `${V1}/entities`, key, body), refused);
    // A new key is a new attempt.
    assert.equal((await keyed(account, 'POST', `${V1}/entities`, uniq('dup-slug'), body)).statusCode, 201);
  });

  test('a request the schema refuses claims nothing: the fixed request may use the same key', async () => {
    const key = uniq('schema');
    const before = await recordCount();
    expectError(await keyed(account, 'POST', `${V1}/records`, key, { entityId, name: 'x', nope: true }), 400, 'ValidationError');
    assert.deepEqual((await storedKeys()).filter((k) => k.idempotency_key === key), []);
    const fixed = await keyed(account, 'POST', `${V1}/records`, key, { entityId, name: 'x' });
    assert.equal(fixed.statusCode, 201, fixed.body);
    assert.equal(await recordCount(), before + 1);
  });

  test('a 5xx is not stored: the retry executes', async () => {
    const key = uniq('boom');
    const body = { entityId, name: 'After the failure' };
    const original = t.services.records.create;
    t.services.records.create = async () => { throw new Error('simulated crash in the handler'); };
    try {
      expectError(await keyed(account, 'POST', `${V1}/records`, key, body), 500, 'InternalServerError');
    } finally {
      t.services.records.create = original;
    }
    assert.deepEqual((await storedKeys()).filter((k) => k.idempotency_key === key), [], 'the claim was released');
    const before = await recordCount();
    const retry = await keyed(account, 'POST', `${V1}/records`, key, body);
    assert.equal(retry.statusCode, 201, retry.body);
    assert.equal(retry.headers['idempotent-replayed'], undefined);
    assert.equal(await recordCount(), before + 1);
  });

  test('a claim whose response was never stored blocks retries (409) until the pending timeout, then is taken over', async () => {
    const key = uniq('orphan');
    const body = { entityId, name: 'Orphaned' };
    const complete = t.services.idempotency.complete;
    // As if the process died after the handler committed and before the response was stored.
    t.services.idempotency.complete = async () => { throw new Error('simulated crash before storing'); };
    let first: LightMyRequestResponse;
    try {
      first = await keyed(account, 'POST', `${V1}/records`, key, body);
    } finally {
      t.services.idempotency.complete = complete;
    }
    assert.equal(first.statusCode, 201, 'the client still gets its response');
    assert.deepEqual((await storedKeys()).filter((k) => k.idempotency_key === key), [{ idempotency_key: key, state: 'pending' }]);
    const before = await recordCount();
    expectError(await keyed(account, 'POST', `${V1}/records`, key, body), 409, 'IdempotencyKeyInProgress');
    assert.equal(await recordCount(), before);
    // Past the pending timeout (60 s by default) the claim is presumed dead and taken over.
    t.clock.now = Date.now() + 61_000;
    try {
      const retry = await keyed(account, 'POST', `${V1}/records`, key, body);
      assert.equal(retry.statusCode, 201, retry.body);
      assert.equal(await recordCount(), before + 1, 'executed again (the documented at-least-once window)');
      sameStoredResponse(await keyed(account, 'POST', `${V1}/records`, key, body), retry);
    } finally {
      t.clock.now = undefined;
    }
  });

  test('keys expire after 24 hours and are swept', async () => {
    const key = uniq('expiring');
    const first = await keyed(account, 'POST', `${V1}/members`, key, { name: 'Day one' });
    assert.equal(first.statusCode, 201, first.body);
    t.clock.now = Date.now() + 24 * 3600_000 - 60_000;
    try {
      sameStoredResponse(await keyed(account, 'POST', `${V1}/members`, key, { name: 'Day one' }), first);
      expectError(await keyed(account, 'POST', `${V1}/members`, key, { name: 'Day two' }), 422, 'IdempotencyKeyReused');
      t.clock.now = Date.now() + 24 * 3600_000 + 60_000;
      // Expired: the key is new again, even for another body.
      const again = await keyed(account, 'POST', `${V1}/members`, key, { name: 'Day two' });
      assert.equal(again.statusCode, 201, again.body);
      assert.equal(again.headers['idempotent-replayed'], undefined);
      assert.notEqual(again.json().memberId, first.json().memberId);
      // The sweep deletes every expired key (of every account), not the live ones.
      const expired = uniq('expired');
      await keyed(account, 'POST', `${V1}/members`, expired, { name: 'Old' });
      t.clock.now = Date.now() + 3 * 24 * 3600_000;
      const swept = await t.services.idempotency.sweepExpired();
      assert.ok(swept >= 2, `swept ${swept}`);
      const left = (await storedKeys()).map((k) => k.idempotency_key);
      assert.ok(!left.includes(key) && !left.includes(expired), 'expired keys are gone');
    } finally {
      t.clock.now = undefined;
    }
  });

  test('the key must be 1 to 255 printable ASCII characters', async () => {
    const before = await recordCount();
    for (const bad of ['', 'x'.repeat(256), 'tab\there', 'del\u007f']) {
      const res = await keyed(account, 'POST', `${V1}/records`, bad, { entityId, name: 'Bad key' });
      expectError(res, 400, 'ValidationError', 'idempotency-key');
    }
    assert.equal(await recordCount(), before);
    const printable = ` spaces and ~!@#$%^&*()_+{}|:"<>? ${uniq('')}`;
    assert.equal((await keyed(account, 'POST', `${V1}/records`, printable, { entityId, name: 'Printable key' })).statusCode, 201);
    const exactly255 = uniq('max').padEnd(255, 'z');
    assert.equal(exactly255.length, 255);
    assert.equal((await keyed(account, 'POST', `${V1}/records`, exactly255, { entityId, name: 'Max key' })).statusCode, 201);
  });

  test('GET ignores the header', async () => {
    const key = uniq('get');
    const res = await keyed(account, 'GET', `${V1}/records?entityId=${entityId}`, key);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual((await storedKeys()).filter((k) => k.idempotency_key === key), []);
  });
});
