import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { TENANT_POLICY, tenantTables } from '../../src/db/migrations/0014_row_level_security.ts';
import { protectTenantTable } from '../../src/db/migrations/0017_tenant_policy_settings_once.ts';
import { configureRowLevelSecurity, leakproofStatements, PGLITE_APP_ROLE, type RowLevelSecurityStatus } from '../../src/db/row-level-security.ts';
import type { DB } from '../../src/db/schema.ts';
import { systemDb, tenantDb } from '../../src/db/tenant.ts';
import { membershipChangesStatement } from '../../src/modules/segments/segments.repository.ts';
import { purgeExpiredTrash } from '../../src/modules/trash/trash.purge.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { testDatabaseUrl } from '../helpers/database.ts';

/**
 * Row-level security as defence in depth behind tenantDb (issue 8 item 1; docs/reliability.md,
 * "Row-level security"; src/db/scope.ts, src/db/row-level-security.ts, migration 0014).
 *
 * The app runs as a role the policies bind: on PostgreSQL a fresh NOLOGIN-less, non-superuser
 * role that owns a scratch database (migrated as that role, FORCE makes the owner bound — the
 * recommended deployment); on PGlite the embedded database's `crm_app` role. Then:
 * - normal API use works for two accounts, and the system paths (auth, sweeps, purge, job claim,
 *   sort-index builds) still find their rows;
 * - a statement that forgets its account filter, run as account A, sees none of B's rows and
 *   cannot insert, update or delete B's; a query on the bare handle sees no tenant rows at all;
 * - the same probe reports the leak once the policy is dropped (the test can fail);
 * - pooled connections alternating between accounts (pool of 1 and 2, transactions, rollbacks,
 *   savepoints) never run a query with another account's setting.
 */

const url = testDatabaseUrl();
const engine = url ? 'PostgreSQL' : 'PGlite';
const V1 = '/crm-core/v1';

type Log = { info: (...args: unknown[]) => void; warn: (...args: unknown[]) => void };
function capturingLogger(): Log & { warnings: string[] } {
  const warnings: string[] = [];
  const text = (args: unknown[]) => args.filter((a) => typeof a === 'string').join(' ');
  return { warnings, info: () => {}, warn: (...args) => void warnings.push(text(args)) };
}

/** A database the policies bind, migrated, with RLS configured on; plus handles for more pools. */
interface BoundDatabase {
  database: Database;
  status: RowLevelSecurityStatus;
  /** Another handle as the same role (PostgreSQL: its own pool; PGlite: the one session). */
  open(poolMax: number): Promise<Database>;
  /** Runs SQL as the tables' owner (to drop and restore a policy). */
  asOwner(work: (db: Kysely<any>) => Promise<void>): Promise<void>;
  /** Runs SQL statements as a superuser in this database (to mark functions LEAKPROOF or not). */
  asSuperuser(statements: string[]): Promise<void>;
  close(): Promise<void>;
}

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function boundPostgres(): Promise<BoundDatabase> {
  const suffix = `${Date.now()}_${randomBytes(3).toString('hex')}`;
  const role = `crm_rls_${suffix}`;
  const name = `crm_rls_${suffix}`;
  const password = randomBytes(12).toString('hex');
  await withAdmin(async (c) => {
    await c.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '${password}'`);
    await c.query(`CREATE DATABASE ${name} OWNER ${role}`);
  });
  const roleUrl = new URL(url!);
  roleUrl.username = role;
  roleUrl.password = password;
  roleUrl.pathname = `/${name}`;
  const handles: Database[] = [];
  const open = async (poolMax: number) => {
    const handle = await openDatabase({ databaseUrl: roleUrl.toString(), poolMax });
    handles.push(handle);
    return handle;
  };
  const database = await open(6);
  await migrateToLatest(database.db); // as the role: it owns every table, FORCE binds it
  const status = await configureRowLevelSecurity(database, { enabled: true });
  return {
    database,
    status,
    open,
    asOwner: (work) => work(database.db),
    async asSuperuser(statements) {
      const adminUrl = new URL(url!);
      adminUrl.pathname = `/${name}`;
      const client = new pg.Client({ connectionString: adminUrl.toString() });
      await client.connect();
      try {
        for (const statement of statements) await client.query(statement);
      } finally {
        await client.end();
      }
    },
    async close() {
      for (const handle of handles) await handle.close().catch(() => {});
      await withAdmin(async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      });
    },
  };
}

async function boundPGlite(): Promise<BoundDatabase> {
  const database = await openDatabase({});
  await migrateToLatest(database.db);
  const status = await configureRowLevelSecurity(database, { enabled: true });
  return {
    database,
    status,
    open: async () => database,
    asOwner: (work) => work(database.db), // crm_app owns the tables
    async asSuperuser(statements) {
      // The one session is postgres's, switched to crm_app: switch back for the statements.
      await database.db.connection().execute(async (conn) => {
        await sql`RESET ROLE`.execute(conn);
        try {
          for (const statement of statements) await sql.raw(statement).execute(conn);
        } finally {
          await sql.raw(`SET ROLE ${PGLITE_APP_ROLE}`).execute(conn);
        }
      });
    },
    close: () => database.close(),
  };
}

/**
 * What a statement without its account filter can do when run as account `a` (tenantDb's raw
 * escape, and a builder whose subquery forgets the filter). Returns the breaches: empty when the
 * tenant boundary held.
 */
async function probeAsTenant(db: Kysely<DB>, a: string, b: string): Promise<string[]> {
  const breaches: string[] = [];
  const asA = tenantDb(db, a);
  const foreign = (rows: { account_id: string }[]) => rows.filter((r) => r.account_id !== a).length;

  for (const table of ['accounts', 'members', 'api_keys', 'entities', 'properties', 'records', 'request_nonces']) {
    const { rows } = await asA.executeRaw(sql<{ account_id: string }>`SELECT account_id FROM ${sql.table(table)}`);
    if (foreign(rows)) breaches.push(`read ${foreign(rows)} ${table} rows of another account`);
  }
  // A builder whose subquery forgets the filter: only the outer table is scoped by tenantDb.
  const counted = await asA.selectFrom('accounts')
    .select((eb) => eb.selectFrom('records').select(eb.fn.countAll<number>().as('n')).where('records.account_id', '=', b).as('theirs'))
    .executeTakeFirst();
  if (Number(counted?.theirs ?? 0) > 0) breaches.push(`counted ${counted!.theirs} of B's records through a subquery`);

  const updated = await asA.executeRaw(sql`UPDATE records SET name = name || ' (touched by A)' WHERE account_id = ${b}`);
  if (Number(updated.numAffectedRows ?? 0) > 0) breaches.push(`updated ${updated.numAffectedRows} of B's records`);
  const deleted = await asA.executeRaw(sql`DELETE FROM request_nonces WHERE account_id = ${b}`);
  if (Number(deleted.numAffectedRows ?? 0) > 0) breaches.push(`deleted ${deleted.numAffectedRows} of B's nonces`);
  try {
    await asA.executeRaw(sql`INSERT INTO request_nonces (account_id, nonce, expires_at) VALUES (${b}, ${`planted-${randomBytes(4).toString('hex')}`}, now() + interval '1 hour')`);
    breaches.push('inserted a row for B');
  } catch (error) {
    assert.equal((error as { code?: string }).code, '42501', `refused by the policy, not something else: ${String(error)}`);
  }
  // Moving A's own row to B is a write of B's too (WITH CHECK).
  const mine = `mine-${randomBytes(4).toString('hex')}`;
  await asA.insertInto('request_nonces').values({ account_id: a, nonce: mine, expires_at: new Date(Date.now() + 3_600_000) }).execute();
  try {
    const moved = await asA.executeRaw(sql`UPDATE request_nonces SET account_id = ${b} WHERE account_id = ${a} AND nonce = ${mine}`);
    if (Number(moved.numAffectedRows ?? 0) > 0) breaches.push('moved a row of A to B');
  } catch (error) {
    assert.equal((error as { code?: string }).code, '42501', `refused by the policy: ${String(error)}`);
  }
  return breaches;
}

// On PostgreSQL the test makes its own role and database: it needs a superuser (CI's is).
const canCreateRoles = !url || await withAdmin(async (c) =>
  (await c.query<{ ok: boolean }>('SELECT rolsuper OR (rolcreaterole AND rolcreatedb) AS ok FROM pg_roles WHERE rolname = current_user')).rows[0]?.ok === true);

describe(`row-level security (${engine})`, { skip: canCreateRoles ? false : 'TEST_DATABASE_URL must be able to create roles and databases' }, () => {
  let bound: BoundDatabase;
  let t: TestApp;
  let A: TestAccount;
  let B: TestAccount;
  const shapes: Record<string, { entityId: string; propertyId: string; recordIds: string[] }> = {};

  const ok = async (creds: TestAccount, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, expected = 200, headers?: Record<string, string>) => {
    const res = await t.call(creds, method, `${V1}${path}`, body, headers);
    assert.equal(res.statusCode, expected, `${method} ${path}: ${res.body}`);
    return res.json();
  };

  before(async () => {
    bound = url ? await boundPostgres() : await boundPGlite();
    t = await startTestApp({ database: bound.database, propertyIndexMinRecords: 3 });
    A = await t.newAccount('RLS A');
    B = await t.newAccount('RLS B');
  });
  after(async () => {
    await t?.close();
    await bound?.close();
  });

  test('the app runs as a role the policies bind', () => {
    assert.equal(bound.status.enforced, true, JSON.stringify(bound.status));
    assert.equal(bound.status.mode, 'per-query');
    assert.deepEqual(bound.status.unprotected, []);
    if (!url) assert.equal(bound.status.role, PGLITE_APP_ROLE);
  });

  test('catalog: every table with account_id has RLS enabled and forced and the tenant policy', async () => {
    const tables = await tenantTables(bound.database.db);
    assert.ok(tables.length >= 17, `tenant tables found: ${tables.join(', ')}`);
    const { rows } = await sql<{ name: string; enabled: boolean; forced: boolean; policy: string | null }>`
      SELECT c.relname AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
             (SELECT pg_catalog.pg_get_expr(p.polqual, p.polrelid) FROM pg_catalog.pg_policy p
              WHERE p.polrelid = c.oid AND p.polname = ${TENANT_POLICY}) AS policy
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relname IN (${sql.join(tables)})`.execute(bound.database.db);
    const missing = rows.filter((r) => !r.enabled || !r.forced || !r.policy?.includes("current_setting('app.account_id'")).map((r) => r.name);
    assert.deepEqual(missing, [], 'tables without the tenant policy (call protectTenantTable in the migration that adds them)');
    assert.equal(rows.length, tables.length);
  });

  test('the policy reads the session settings once per statement, not once per row (migration 0017)', async () => {
    const plan = await tenantDb(bound.database.db, A.accountId).executeRaw(sql<{ 'QUERY PLAN': string }>`
      EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM records WHERE name <> ''`);
    const lines = plan.rows.map((r) => r['QUERY PLAN']);
    const perRow = lines.filter((l) => /^\s*Filter:/.test(l));
    assert.ok(perRow.some((l) => l.includes('account_id')), `the policy filters the scan:\n${lines.join('\n')}`);
    assert.ok(perRow.every((l) => !l.includes('current_setting')), `current_setting in a per-row filter:\n${lines.join('\n')}`);
    assert.ok(lines.filter((l) => l.includes('InitPlan')).length >= 2, `settings read once, as InitPlans:\n${lines.join('\n')}`);
  });

  test('API use works for two accounts: transactions, bulk writes, lists, idempotent replays, cross-account 404', async () => {
    for (const [label, creds] of [['A', A], ['B', B]] as const) {
      const entity = await ok(creds, 'POST', '/entities', { name: `Customers ${label}`, slug: `customers-${label.toLowerCase()}` }, 201);
      const property = await ok(creds, 'POST', '/properties', { entityId: entity.entityId, name: 'Score', fieldType: 'NUMBER' }, 201);
      const one = await ok(creds, 'POST', '/records', { entityId: entity.entityId, name: `${label} one`, data: { [property.propertyId]: 1 } }, 201);
      const bulk = await ok(creds, 'POST', '/records/bulk', {
        records: [2, 3, 4, 5].map((n) => ({ entityId: entity.entityId, name: `${label} ${n}`, data: { [property.propertyId]: n } })),
      }, 200);
      assert.equal(bulk.succeeded, 4, JSON.stringify(bulk));
      shapes[label] = { entityId: entity.entityId, propertyId: property.propertyId, recordIds: [one.recordId, ...bulk.recordIds] };
      const patched = await ok(creds, 'PATCH', `/records/${one.recordId}`, { name: `${label} one (edited)` });
      assert.equal(patched.name, `${label} one (edited)`);
      const filtered = await ok(creds, 'GET', `/records?entityId=${entity.entityId}&filters=${encodeURIComponent(JSON.stringify({ [property.propertyId]: { op: 'gte', value: 3 } }))}`);
      assert.deepEqual(filtered.data.map((r: { name: string }) => r.name).sort(), [`${label} 3`, `${label} 4`, `${label} 5`]);
      // An Idempotency-Key replay reads the stored response back.
      const key = `rls-${label}-${randomBytes(4).toString('hex')}`;
      const first = await ok(creds, 'POST', '/records', { entityId: entity.entityId, name: `${label} idem` }, 201, { 'idempotency-key': key });
      const again = await ok(creds, 'POST', '/records', { entityId: entity.entityId, name: `${label} idem` }, 201, { 'idempotency-key': key });
      assert.equal(again.recordId, first.recordId);
      const type = await ok(creds, 'POST', '/relationships/types', { name: `Refers ${label}`, sourceEntityId: entity.entityId, targetEntityId: entity.entityId }, 201);
      await ok(creds, 'POST', '/relationships', {
        relationshipTypeId: type.relationshipTypeId, sourceEntityId: entity.entityId, sourceRecordId: one.recordId, targetEntityId: entity.entityId, targetRecordId: bulk.recordIds[0],
      }, 201);
      await ok(creds, 'POST', '/api-keys', { name: `second key ${label}` }, 201);
      const usage = await ok(creds, 'GET', '/usage');
      assert.equal(usage.limits.find((l: { key: string }) => l.key === 'records.max').used, 6);
      const members = await ok(creds, 'GET', '/members');
      assert.equal(members.data?.length ?? members.length, 1);
    }
    // Each sees its own only, and the other's IDs are 404.
    const listA = await ok(A, 'GET', `/records?entityId=${shapes.A!.entityId}&limit=100`);
    assert.ok(listA.data.every((r: { name: string }) => r.name.startsWith('A ')));
    assert.equal((await t.call(A, 'GET', `${V1}/records/${shapes.B!.recordIds[0]}`)).statusCode, 404);
    assert.equal((await t.call(A, 'GET', `${V1}/entities/${shapes.B!.entityId}`)).statusCode, 404);
  });

  test('a steady one-account workload makes no set_config round trips (the key lookup runs as the key\'s account)', async () => {
    for (let i = 0; i < 3; i++) await ok(A, 'GET', '/usage'); // the key's account is learned, connections warmed
    const before = bound.database.scopeStats.switches;
    for (let i = 0; i < 20; i++) await ok(A, 'GET', '/usage');
    assert.equal(bound.database.scopeStats.switches - before, 0);
    // Another account on the same connection: one switch per change of account, not per statement.
    const mixed = bound.database.scopeStats.switches;
    for (let i = 0; i < 10; i++) await ok(i % 2 ? A : B, 'GET', '/usage');
    assert.ok(bound.database.scopeStats.switches - mixed <= 10, `${bound.database.scopeStats.switches - mixed} switches for 10 requests`);
    // A revoked key is not found under its remembered account either: 401, and forgotten.
    const extra = await ok(A, 'POST', '/api-keys', { name: 'short-lived' }, 201);
    const creds = { ...A, apiKey: extra.apiKey, apiSecret: extra.apiSecret };
    await ok(creds, 'GET', '/usage');
    await ok(A, 'DELETE', `/api-keys/${extra.apiKey}`);
    const res = await t.call(creds, 'GET', `${V1}/usage`);
    assert.equal(res.statusCode, 401, res.body);
  });

  test('system paths still reach every account: nonce sweep, trash purge, sort-index build, job claim', async () => {
    const sys = systemDb(bound.database.db);
    // Nonce sweep (cross-account delete): an expired nonce of each account is swept.
    for (const acct of [A, B]) {
      await tenantDb(bound.database.db, acct.accountId).insertInto('request_nonces')
        .values({ account_id: acct.accountId, nonce: `expired-${randomBytes(4).toString('hex')}`, expires_at: new Date(Date.now() - 60_000) }).execute();
    }
    assert.ok((await t.services.apiKeys.sweepNonces()) >= 2);
    const expiredLeft = await sys.selectFrom('request_nonces').select('nonce').where('expires_at', '<', new Date()).execute();
    assert.equal(expiredLeft.length, 0);

    // Trash purge lists accounts across the boundary, then purges each through its tenant.
    await ok(B, 'DELETE', `/records/${shapes.B!.recordIds[4]}`);
    const report = await purgeExpiredTrash(bound.database.db, Date.now() + 15 * 86_400_000, { hooks: t.services.segments });
    assert.deepEqual(report.failures, []);
    assert.ok(report.records >= 1, JSON.stringify(report));
    const purged = await sys.selectFrom('records').select('record_id').where('record_id', '=', shapes.B!.recordIds[4]!).execute();
    assert.equal(purged.length, 0);

    // A sort by a property builds its indexes (the record count runs as the account, the DDL as the owner).
    await ok(A, 'GET', `/records?entityId=${shapes.A!.entityId}&sortField=${shapes.A!.propertyId}`);
    await t.services.propertyIndexes.idle();
    assert.ok(t.services.propertyIndexes.ready(shapes.A!.propertyId), 'the sort index was built');

    // The job worker claims across accounts (system), then runs the job as its account.
    const jobs = t.services.jobs;
    const kind = `rls-probe-${randomBytes(3).toString('hex')}`;
    jobs.register(kind, async (ctx) => {
      const rows = await ctx.tenant.executeRaw(sql<{ account_id: string }>`SELECT DISTINCT account_id FROM records`);
      return { accounts: rows.rows.map((r) => r.account_id) };
    });
    const queued = await jobs.enqueue(tenantDb(bound.database.db, B.accountId), { kind, params: {}, createdBy: B.memberId });
    const worker = jobs.startWorker({ concurrency: 1, pollMs: 50 });
    try {
      const deadline = Date.now() + 20_000;
      let job = await jobs.get(tenantDb(bound.database.db, B.accountId), queued.jobId);
      while (job?.status !== 'completed' && job?.status !== 'failed' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        job = await jobs.get(tenantDb(bound.database.db, B.accountId), queued.jobId);
      }
      assert.equal(job?.status, 'completed', JSON.stringify(job));
      // Its unscoped statement saw only B's records.
      assert.deepEqual(job!.result, { accounts: [B.accountId] });
    } finally {
      await worker.stop();
    }
  });

  test('a statement that forgets its account filter, run as A, sees none of B and writes none of B', async () => {
    const sys = systemDb(bound.database.db);
    const bRecords = await sys.selectFrom('records').select('record_id').where('account_id', '=', B.accountId).execute();
    assert.ok(bRecords.length >= 4, 'B has records to leak');
    assert.deepEqual(await probeAsTenant(bound.database.db, A.accountId, B.accountId), []);
    // B's rows are untouched.
    const names = await sys.selectFrom('records').select('name').where('account_id', '=', B.accountId).execute();
    assert.ok(names.every((r) => !r.name.includes('touched by A')));
  });

  test('a query on the bare handle (no scope) sees no tenant rows; systemDb sees every account', async () => {
    const bare = await sql<{ n: number }>`SELECT count(*)::int AS n FROM records`.execute(bound.database.db);
    assert.equal(bare.rows[0]!.n, 0);
    const bareBuilder = await bound.database.db.selectFrom('accounts').select('account_id').execute();
    assert.deepEqual(bareBuilder, []);
    const all = await systemDb(bound.database.db).selectFrom('records').select('account_id').distinct().execute();
    assert.deepEqual(all.map((r) => r.account_id).sort(), [A.accountId, B.accountId].sort());
  });

  test('pooled connections alternating between accounts never carry one account\'s setting into another\'s query', async () => {
    const accounts = [A.accountId, B.accountId];
    const check = async (db: Kysely<DB>, who: string, i: number) => {
      const tenant = tenantDb(db, who);
      const probe = sql<{ setting: string; seen: string[] | null }>`
        SELECT current_setting('app.account_id', true) AS setting, (SELECT array_agg(DISTINCT account_id) FROM records) AS seen`;
      switch (i % 5) {
        case 0:
        case 1: {
          const { rows } = await tenant.executeRaw(probe);
          assert.equal(rows[0]!.setting, who);
          assert.deepEqual(rows[0]!.seen, [who]);
          break;
        }
        case 2: // a transaction with two statements
          await tenant.transaction(async (tx) => {
            for (let k = 0; k < 2; k++) {
              const { rows } = await tx.executeRaw(probe);
              assert.deepEqual(rows[0]!.seen, [who]);
            }
          });
          break;
        case 3: { // a transaction that rolls back (its set_config is undone with it)
          await assert.rejects(tenant.transaction(async (tx) => {
            await tx.executeRaw(probe);
            throw new Error('roll back');
          }), /roll back/);
          const { rows } = await tenant.executeRaw(probe);
          assert.deepEqual(rows[0]!.seen, [who]);
          break;
        }
        default: { // system and bare queries in between
          const all = await sql<{ n: number }>`SELECT count(DISTINCT account_id)::int AS n FROM records`.execute(systemDb(db));
          assert.equal(all.rows[0]!.n, 2);
          const bare = await sql<{ n: number }>`SELECT count(*)::int AS n FROM records`.execute(db);
          assert.equal(bare.rows[0]!.n, 0);
        }
      }
    };
    for (const poolMax of url ? [1, 2] : [1]) {
      const handle = await bound.open(poolMax);
      const before = handle.scopeStats.switches;
      // Sequential alternation, then many at once (the pool hands connections out in any order).
      for (let i = 0; i < 20; i++) await check(handle.db, accounts[i % 2]!, i);
      await Promise.all(Array.from({ length: 60 }, (_, i) => check(handle.db, accounts[(i * 7 + (i >> 2)) % 2]!, i)));
      assert.ok(handle.scopeStats.switches > before, 'the settings were switched between accounts');
    }
  });

  test('a rollback undoes the setting; the driver notices (no stale scope after ROLLBACK or ROLLBACK TO SAVEPOINT)', async () => {
    const handle = await bound.open(1);
    const db = handle.db;
    const setting = async (who: string) =>
      (await tenantDb(db, who).executeRaw(sql<{ s: string; seen: string[] | null }>`
        SELECT current_setting('app.account_id', true) AS s, (SELECT array_agg(DISTINCT account_id) FROM records) AS seen`)).rows[0]!;
    // One connection: B, then a transaction that switches to A and rolls back (the session is B
    // again), then A outside: must be re-set to A, not run with B's setting.
    assert.equal((await setting(B.accountId)).s, B.accountId);
    await assert.rejects(tenantDb(db, A.accountId).transaction(async (tx) => {
      await tx.executeRaw(sql`SELECT 1`);
      throw new Error('undo');
    }));
    const afterRollback = await setting(A.accountId);
    assert.equal(afterRollback.s, A.accountId);
    assert.deepEqual(afterRollback.seen, [A.accountId]);

    // Savepoint: A, savepoint, B inside it, rollback to the savepoint (the session is A again), B again.
    const trx = await db.startTransaction().execute();
    try {
      await tenantDb(trx, A.accountId).executeRaw(sql`SELECT 1`);
      const sp = await trx.savepoint('sp').execute();
      await tenantDb(sp, B.accountId).executeRaw(sql`SELECT 1`);
      const rolled = await sp.rollbackToSavepoint('sp').execute();
      const { rows } = await tenantDb(rolled, B.accountId).executeRaw(sql<{ s: string; seen: string[] | null }>`
        SELECT current_setting('app.account_id', true) AS s, (SELECT array_agg(DISTINCT account_id) FROM records) AS seen`);
      assert.equal(rows[0]!.s, B.accountId);
      assert.deepEqual(rows[0]!.seen, [B.accountId]);
    } finally {
      await trx.rollback().execute();
    }
  });

  test('the probe is meaningful: with the policy dropped (and RLS disabled) on records and request_nonces, it reports the leak', async () => {
    await bound.asOwner(async (db) => {
      for (const table of ['records', 'request_nonces']) {
        await sql`DROP POLICY ${sql.id(TENANT_POLICY)} ON ${sql.table(table)}`.execute(db);
        await sql`ALTER TABLE ${sql.table(table)} DISABLE ROW LEVEL SECURITY`.execute(db);
      }
    });
    try {
      const breaches = await probeAsTenant(bound.database.db, A.accountId, B.accountId);
      assert.ok(breaches.some((b) => b.startsWith('read') && b.includes('records rows')), breaches.join('; '));
      assert.ok(breaches.includes('inserted a row for B'), breaches.join('; '));
      assert.ok(breaches.some((b) => b.startsWith('updated')), breaches.join('; '));
      // And the start-up check names the unprotected tables.
      const log = capturingLogger();
      const status = await configureRowLevelSecurity(bound.database, { enabled: true, logger: log });
      assert.deepEqual(status.unprotected, ['records', 'request_nonces']);
      assert.equal(status.enforced, false);
      assert.ok(log.warnings.some((w) => w.includes('without row-level security')), log.warnings.join('\n'));
    } finally {
      await bound.asOwner(async (db) => {
        await protectTenantTable(db, 'records');
        await protectTenantTable(db, 'request_nonces');
      });
    }
    assert.deepEqual(await probeAsTenant(bound.database.db, A.accountId, B.accountId), []);
  });

  test('LEAKPROOF marks keep record indexes usable under RLS (name-prefix search); without them the start-up warns', async () => {
    const db = bound.database.db;
    const explainPrefix = async () => {
      const lines = await tenantDb(db, A.accountId).transaction(async (tx) => {
        await tx.executeRaw(sql`SET LOCAL enable_seqscan = off`);
        const { rows } = await tx.executeRaw(sql<{ 'QUERY PLAN': string }>`EXPLAIN SELECT record_id FROM records
          WHERE account_id = ${A.accountId} AND entity_id = ${shapes.A!.entityId} AND NOT is_deleted AND lower(name) COLLATE "C" LIKE ${'a %'}
          ORDER BY lower(name) COLLATE "C", record_id LIMIT 20`);
        return rows.map((r) => r['QUERY PLAN']);
      });
      return lines.filter((l) => l.includes('Index Cond')).join('\n');
    };
    // Without the marks (as PostgreSQL ships): the prefix is no index condition, and the start-up says so.
    await bound.asSuperuser(leakproofStatements(['pg_catalog.lower(text)', 'pg_catalog.textlike(text, text)']).map((s) => s.replace('LEAKPROOF', 'NOT LEAKPROOF')));
    const log = capturingLogger();
    const before = await configureRowLevelSecurity(bound.database, { enabled: true, logger: log });
    assert.ok(before.leaky.includes('pg_catalog.lower(text)'), JSON.stringify(before.leaky));
    assert.ok(log.warnings.some((w) => w.includes('ALTER FUNCTION pg_catalog.lower(text) LEAKPROOF;')), log.warnings.join('\n'));
    assert.doesNotMatch(await explainPrefix(), /lower\(name\)/);
    // With them: the prefix becomes an index range again, RLS still enforced.
    await bound.asSuperuser(leakproofStatements(before.leaky));
    const after = await configureRowLevelSecurity(bound.database, { enabled: true });
    assert.deepEqual(after.leaky, []);
    assert.equal(after.enforced, true);
    assert.match(await explainPrefix(), /lower\(name\)/);
    assert.deepEqual(await probeAsTenant(db, A.accountId, B.accountId), []);
  });

  test('a cached segment\'s entries and exits look their record and member up by index under RLS', async () => {
    // Enough records and members that a scan of the account costs more than a lookup, as in production.
    const tenant = tenantDb(bound.database.db, A.accountId);
    await tenant.executeRaw(sql`INSERT INTO records (account_id, record_id, entity_id, name)
      SELECT ${A.accountId}, 'CRMRC1' || lpad(g::text, 15, '0') || 'Planprobe00', ${shapes.A!.entityId}, 'plan probe ' || g
      FROM generate_series(1, 3000) AS g`);
    const segment = await ok(A, 'POST', '/segments', {
      entityId: shapes.A!.entityId, name: 'plan probe', mode: 'CACHED',
      conditions: { operator: 'AND', conditions: [{ field: 'name', operator: 'startsWith', value: 'plan probe' }] },
    }, 201);
    try {
      await bound.asOwner(async (db) => void await sql`ANALYZE records, segment_members`.execute(db));
      const change = [{ segmentId: segment.segmentId as string, recordId: shapes.A!.recordIds[0]! }];
      const plan = await tenant.transaction(async (tx) => {
        await tx.executeRaw(sql`SET LOCAL enable_seqscan = off`);
        const { rows } = await tx.executeRaw(sql<{ 'QUERY PLAN': string }>`EXPLAIN (COSTS OFF) ${membershipChangesStatement(A.accountId, change, change, new Date())}`);
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
      const lookup = (table: string, key: string) => new RegExp(`Index (Only )?Scan using \\w+ on ${table}\\s+Index Cond: \\(\\(account_id = '\\d+'::text\\) AND \\(${key} = `);
      assert.match(plan, lookup('records r', 'record_id'), plan);
      assert.match(plan, lookup('segment_members m', '(segment_id|record_id)'), plan);
    } finally {
      await ok(A, 'DELETE', `/segments/${segment.segmentId}`, undefined, 200);
      await tenant.executeRaw(sql`DELETE FROM records WHERE account_id = ${A.accountId} AND record_id LIKE '%Planprobe00'`);
    }
  });

  test('PostgreSQL: a superuser connection is reported as not enforced, with a warning', { skip: url ? false : 'PostgreSQL only' }, async () => {
    const superuser = await openDatabase({ databaseUrl: url, poolMax: 1 });
    try {
      const log = capturingLogger();
      const status = await configureRowLevelSecurity(superuser, { enabled: true, logger: log });
      assert.equal(status.enforced, false);
      assert.equal(status.mode, 'none');
      assert.match(status.reason ?? '', /superuser or has BYPASSRLS/);
      assert.ok(log.warnings.some((w) => w.includes('NOT enforced')), log.warnings.join('\n'));
    } finally {
      await superuser.close();
    }
  });

  test('DATABASE_RLS=off: FORCE is removed for the owner and every connection runs in system mode', async () => {
    const log = capturingLogger();
    try {
      const status = await configureRowLevelSecurity(bound.database, { enabled: false, logger: log });
      assert.equal(status.enforced, false);
      assert.equal(status.mode, 'system');
      const forced = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_catalog.pg_class WHERE relforcerowsecurity`.execute(bound.database.db);
      assert.equal(forced.rows[0]!.n, 0);
      // Nothing is hidden any more, even from a bare query.
      const bare = await sql<{ n: number }>`SELECT count(DISTINCT account_id)::int AS n FROM records`.execute(bound.database.db);
      assert.equal(bare.rows[0]!.n, 2);
    } finally {
      const status = await configureRowLevelSecurity(bound.database, { enabled: true, logger: log });
      assert.equal(status.enforced, true, JSON.stringify(status));
    }
    assert.deepEqual(await probeAsTenant(bound.database.db, A.accountId, B.accountId), []);
  });
});
