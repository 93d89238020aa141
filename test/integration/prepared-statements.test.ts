import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql, type RawBuilder, type SqlBool } from 'kysely';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { PREPARED_PER_CONNECTION, prepared } from '../../src/db/prepared-statements.ts';
import { systemDb } from '../../src/db/scope.ts';
import { tenantDb } from '../../src/db/tenant.ts';
import { membershipState } from '../../src/modules/segments/segments.repository.ts';
import { testDatabaseUrl } from '../helpers/database.ts';

/**
 * Marked statements run as named prepared statements on PostgreSQL (db/prepared-statements.ts).
 * One pooled connection, so pg_prepared_statements (per session) shows what that connection holds.
 */
describe('prepared statements (PostgreSQL)', { skip: testDatabaseUrl() === undefined && 'PostgreSQL only: PGlite runs them unprepared' }, () => {
  let database: Database;
  const held = async (containing = '') => (await sql<{ name: string; generic_plans: string; custom_plans: string }>`
    SELECT name, generic_plans, custom_plans FROM pg_prepared_statements
    WHERE name LIKE 'crm_%' AND strpos(statement, ${containing}) > 0`.execute(systemDb(database.db))).rows;
  const distinct = (k: number) => prepared(sql<{ n: number }>`SELECT ${k}::int + ${sql.lit(k)} AS n`);

  before(async () => {
    database = await openDatabase({ databaseUrl: testDatabaseUrl(), poolMax: 1 });
    await migrateToLatest(database.db);
  });
  after(() => database.close());

  test('a marked statement is parsed once per connection and answers with each call\'s values', async () => {
    const statement = (k: number) => prepared(sql<{ n: number }>`SELECT ${k}::int * 2 AS n`);
    for (let k = 0; k < 8; k++) assert.equal((await statement(k).execute(database.db)).rows[0]!.n, k * 2);
    const statements = await held('* 2 AS n');
    assert.equal(statements.length, 1, JSON.stringify(statements));
    assert.equal(Number(statements[0]!.generic_plans) + Number(statements[0]!.custom_plans), 8);
  });

  test('a connection keeps at most PREPARED_PER_CONNECTION; an evicted statement is prepared again when it comes back', async () => {
    for (let k = 0; k < PREPARED_PER_CONNECTION + 10; k++) assert.equal((await distinct(k).execute(database.db)).rows[0]!.n, 2 * k);
    assert.ok((await held()).length <= PREPARED_PER_CONNECTION, `${(await held()).length} held`);
    assert.equal((await distinct(0).execute(database.db)).rows[0]!.n, 0);
  });

  test('an eviction in an aborted transaction leaves the connection usable afterwards', async () => {
    // The connection's whole list is now these, 1000 the least recently used.
    for (let k = 0; k < PREPARED_PER_CONNECTION; k++) await distinct(1000 + k).execute(database.db);
    const oldest = 1000;
    await assert.rejects(database.db.transaction().execute(async (tx) => {
      await sql`SELECT 1 / 0`.execute(tx).catch(() => {});
      await distinct(5000).execute(tx); // evicts the oldest; its DEALLOCATE fails: the transaction is aborted
    }));
    // The statement that could not be deallocated is still listed: the next ones bring the connection back to the bound.
    assert.equal((await distinct(5000).execute(database.db)).rows[0]!.n, 10_000);
    await distinct(6000).execute(database.db);
    assert.ok((await held()).length <= PREPARED_PER_CONNECTION, `${(await held()).length} held`);
    // Still prepared on the server, and node-postgres knows it: no second Parse of the same name.
    assert.equal((await distinct(oldest).execute(database.db)).rows[0]!.n, 2 * oldest);
  });

  test('a record\'s segment evaluation switches to a generic plan', async () => {
    const tenant = tenantDb(database.db, 'acct-prepared');
    const segments = Array.from({ length: 20 }, (_, i) => `seg${i}`);
    const rules: RawBuilder<SqlBool>[] = segments.map((_, i) => sql<SqlBool>`(records.data->>'score')::numeric >= ${i * 10}`);
    for (let k = 0; k < 8; k++) {
      const states = await membershipState(tenant, 'entity-x', segments, rules, [`rec-${k}`]);
      assert.deepEqual(states, [{ recordId: `rec-${k}`, flags: null, memberOf: [] }]);
    }
    const statements = await held('segment_members');
    assert.equal(statements.length, 1, JSON.stringify(statements));
    assert.ok(Number(statements[0]!.generic_plans) >= 1, `planned each time: ${JSON.stringify(statements[0])}`);
  });
});
