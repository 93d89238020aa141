import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, PGliteDialect, sql, type ColumnType, type Generated } from 'kysely';
import { startPGliteHost, createInProcessPGlite, type PGliteHost } from '../../src/db/pglite-host/host.ts';

interface Db {
  // jsonb is written as a JSON string and read back parsed.
  person: { id: Generated<number>; email: string; born: Date | null; meta: ColumnType<unknown, string | null, string | null> };
}

const host: PGliteHost = await startPGliteHost({});
const db = new Kysely<Db>({ dialect: new PGliteDialect({ pglite: host }) });
after(() => db.destroy());

// Captures a rejection's error so properties can be asserted on it.
async function rejection(p: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (err) {
    return err as Record<string, unknown>;
  }
  assert.fail('expected a rejection');
}

test('create table, insert and select with parameters', async () => {
  await db.schema
    .createTable('person')
    .addColumn('id', 'serial', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('born', 'timestamptz')
    .addColumn('meta', 'jsonb')
    .execute();
  const inserted = await db.insertInto('person').values({ email: 'a@x.test', born: null, meta: null }).returning('id').executeTakeFirstOrThrow();
  assert.equal(typeof inserted.id, 'number');
  const rows = await db.selectFrom('person').select(['id', 'email']).where('email', '=', 'a@x.test').execute();
  assert.deepEqual(rows, [{ id: inserted.id, email: 'a@x.test' }]);
  const res = await db.updateTable('person').set({ email: 'a2@x.test' }).where('id', '=', inserted.id).executeTakeFirst();
  assert.equal(res.numUpdatedRows, 1n);
});

test('a transaction that returns commits', async () => {
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('person').values({ email: 'commit@x.test', born: null, meta: null }).execute();
  });
  const row = await db.selectFrom('person').select('email').where('email', '=', 'commit@x.test').executeTakeFirst();
  assert.equal(row?.email, 'commit@x.test');
});

test('a transaction that throws is rolled back', async () => {
  const err = await rejection(
    db.transaction().execute(async (trx) => {
      await trx.insertInto('person').values({ email: 'rollback@x.test', born: null, meta: null }).execute();
      // Visible inside the transaction ...
      const inside = await trx.selectFrom('person').select('id').where('email', '=', 'rollback@x.test').execute();
      assert.equal(inside.length, 1);
      throw new Error('boom');
    }),
  );
  assert.equal(err.message, 'boom');
  // ... and gone afterwards.
  const rows = await db.selectFrom('person').select('id').where('email', '=', 'rollback@x.test').execute();
  assert.deepEqual(rows, []);
});

test('unique violation surfaces SQLSTATE and constraint', async () => {
  const err = await rejection(db.insertInto('person').values({ email: 'commit@x.test', born: null, meta: null }).execute());
  assert.ok(err instanceof Error);
  assert.equal(err.code, '23505');
  assert.equal(err.constraint, 'person_email_key');
  assert.equal(err.table, 'person');
  assert.equal(err.schema, 'public');
  assert.match(String(err.detail), /already exists/);
});

test('a failing statement inside a transaction rolls back the whole transaction', async () => {
  const err = await rejection(
    db.transaction().execute(async (trx) => {
      await trx.insertInto('person').values({ email: 'partial@x.test', born: null, meta: null }).execute();
      await trx.insertInto('person').values({ email: 'commit@x.test', born: null, meta: null }).execute();
    }),
  );
  assert.equal(err.code, '23505');
  const rows = await db.selectFrom('person').select('id').where('email', '=', 'partial@x.test').execute();
  assert.deepEqual(rows, []);
  // The host is still usable afterwards.
  assert.equal((await sql<{ one: number }>`select 1 as one`.execute(db)).rows[0]?.one, 1);
});

test('Date/timestamptz, jsonb, bigint and bytea round-trip', async () => {
  const born = new Date('1990-05-17T08:30:00.123Z');
  const meta = { tags: ['vip', 'kr'], score: 9.5, nested: { ok: true } };
  await db.insertInto('person').values({ email: 'types@x.test', born, meta: JSON.stringify(meta) }).execute();
  const row = await db.selectFrom('person').select(['born', 'meta']).where('email', '=', 'types@x.test').executeTakeFirstOrThrow();
  assert.ok(row.born instanceof Date);
  assert.equal(row.born.getTime(), born.getTime());
  assert.deepEqual(row.meta, meta);

  const big = 9007199254740993n; // > Number.MAX_SAFE_INTEGER
  const bytes = new Uint8Array([0, 1, 254, 255]);
  const { rows } = await sql<{ big: bigint; bytes: Uint8Array }>`select ${big}::int8 + 1 as big, ${bytes}::bytea as bytes`.execute(db);
  assert.equal(String(rows[0]?.big), '9007199254740994');
  assert.deepEqual(new Uint8Array(rows[0]!.bytes), bytes);
});

test('exec runs multi-statement scripts', async () => {
  const results = await host.exec('create table t_exec (x int); insert into t_exec values (1), (2); select count(*)::int as n from t_exec;');
  assert.equal(results.length, 3);
  assert.deepEqual(results[2]?.rows, [{ n: 2 }]);
});

test('top-level and transactional queries issued concurrently do not deadlock', async () => {
  // Bypass Kysely's mutex to exercise the worker-side serialisation directly.
  const txDone = host.transaction(async (tx) => {
    await new Promise((r) => setTimeout(r, 20));
    await tx.query('insert into t_exec values (10)');
  });
  const outside = host.query<{ n: number }>('select count(*)::int as n from t_exec', [], { rowMode: 'object' });
  await txDone;
  // The outside query waited for the transaction to commit.
  assert.deepEqual((await outside).rows, [{ n: 3 }]);
});

test('data directory persists across host restarts', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pglite-host-'));
  try {
    const first = await startPGliteHost({ dataDir: dir });
    await first.exec('create table kept (v text); insert into kept values ($$hello$$);');
    await first.close();
    assert.equal(first.closed, true);
    assert.equal((await rejection(first.query('select 1'))).code, 'PGLITE_WORKER_DOWN');
    const second = await startPGliteHost({ dataDir: dir });
    assert.deepEqual((await second.query('select v from kept')).rows, [{ v: 'hello' }]);
    await second.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('in-process mode satisfies the same Kysely dialect', async () => {
  const local = new Kysely<Db>({ dialect: new PGliteDialect({ pglite: await createInProcessPGlite({}) }) });
  const { rows } = await sql<{ n: number }>`select ${41}::int + 1 as n`.execute(local);
  assert.deepEqual(rows, [{ n: 42 }]);
  await local.destroy();
});

test('after the worker dies, queries reject with PGLITE_WORKER_DOWN instead of hanging', async () => {
  const doomed = await startPGliteHost({});
  const doomedDb = new Kysely<Db>({ dialect: new PGliteDialect({ pglite: doomed }) });
  await sql`select 1`.execute(doomedDb);
  // A slow query in flight when the worker is killed must reject too.
  const inFlight = rejection(sql`select pg_sleep(5)`.execute(doomedDb));
  await new Promise((r) => setTimeout(r, 50));
  await doomed.worker.terminate();
  assert.equal((await inFlight).code, 'PGLITE_WORKER_DOWN');
  const later = await rejection(sql`select 1`.execute(doomedDb));
  assert.equal(later.code, 'PGLITE_WORKER_DOWN');
  const laterTx = await rejection(doomedDb.transaction().execute(async () => {}));
  assert.equal(laterTx.code, 'PGLITE_WORKER_DOWN');
  await doomedDb.destroy(); // must not hang or throw either
});
