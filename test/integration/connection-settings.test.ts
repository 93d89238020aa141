import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { systemDb } from '../../src/db/scope.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { testDatabaseUrl } from '../helpers/database.ts';

/** What each of `n` connections, held at once, reports for `parallel_setup_cost`. */
async function settingOnConnections(database: Database, n: number): Promise<string[]> {
  const db = systemDb(database.db);
  // A transaction holds its connection, so n of them open together use n connections.
  let release!: () => void;
  const held = new Promise<void>((resolve) => { release = resolve; });
  const seen: string[] = [];
  const transactions = Array.from({ length: n }, () => db.transaction().execute(async (tx) => {
    const row = (await sql<{ setting: string; pid: number }>`SELECT current_setting('parallel_setup_cost') AS setting, pg_backend_pid() AS pid`.execute(tx)).rows[0]!;
    seen.push(`${row.pid}:${row.setting}`);
    if (seen.length === n) release();
    await held;
  }));
  await Promise.all(transactions);
  assert.equal(new Set(seen.map((s) => s.split(':')[0])).size, n, `distinct connections: ${seen.join(', ')}`);
  return seen.map((s) => s.split(':')[1]!);
}

describe('connection settings (PostgreSQL)', { skip: testDatabaseUrl() === undefined && 'PostgreSQL only: PGlite has no parallel workers' }, () => {
  const opened: { close(): Promise<void> }[] = [];
  after(async () => { for (const o of opened) await o.close(); });

  test('every pooled connection runs with the configured parallel_setup_cost', async () => {
    const database = await openDatabase({ databaseUrl: testDatabaseUrl(), poolMax: 3, parallelSetupCost: 12_345 });
    opened.push(database);
    assert.deepEqual(await settingOnConnections(database, 3), ['12345', '12345', '12345']);
  });

  test('without the option the connections keep the server\'s own', async () => {
    const database = await openDatabase({ databaseUrl: testDatabaseUrl(), poolMax: 2 });
    opened.push(database);
    // reset_val: what a session starts with from the server's configuration (file, role, database).
    const reset = (await sql<{ setting: string }>`SELECT reset_val AS setting FROM pg_settings WHERE name = 'parallel_setup_cost'`.execute(systemDb(database.db))).rows[0]!.setting;
    assert.deepEqual(await settingOnConnections(database, 2), [reset, reset]);
  });

  test('the server applies DB_PARALLEL_SETUP_COST, 10,000 when unset', async () => {
    const env = { DATABASE_URL: testDatabaseUrl()!, MASTER_KEY: randomBytes(32).toString('base64'), LOG_LEVEL: 'silent', DB_POOL_MAX: '2' };
    const runtime: Runtime = await openRuntime(loadConfig(env));
    opened.push(runtime);
    assert.deepEqual(await settingOnConnections(runtime.database, 2), ['10000', '10000']);
    const tuned = await openRuntime(loadConfig({ ...env, DB_PARALLEL_SETUP_COST: '2500' }));
    opened.push(tuned);
    assert.deepEqual(await settingOnConnections(tuned.database, 2), ['2500', '2500']);
  });
});
