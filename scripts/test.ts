/**
 * `npm test`: runs every test file with node's test runner, on PGlite by default.
 * With TEST_DATABASE_URL (a PostgreSQL server we may create databases on) it first creates a
 * fresh database for this run, so runs never see each other's rows, migrates it once, runs
 * the suite against it, and drops it afterwards.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { openDatabase } from '../src/db/database.ts';
import { migrateToLatest } from '../src/db/migrate.ts';

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testFiles(path);
    return name.endsWith('.test.ts') ? [path] : [];
  }).sort();
}

async function withAdmin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function main(): Promise<number> {
  const filter = process.argv.slice(2);
  const files = filter.length ? filter : testFiles('test');
  const env: Record<string, string | undefined> = { ...process.env };
  const adminUrl = process.env.TEST_DATABASE_URL;
  let dropDatabase: (() => Promise<void>) | undefined;

  if (adminUrl) {
    const name = `crm_core_test_${Date.now()}_${randomBytes(3).toString('hex')}`;
    await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    env.CRM_TEST_PG_URL = url.toString();
    dropDatabase = () => withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined);
    const database = await openDatabase({ databaseUrl: env.CRM_TEST_PG_URL });
    await migrateToLatest(database.db);
    await database.close();
    process.stdout.write(`# database: PostgreSQL (${name})\n`);
  } else {
    process.stdout.write('# database: PGlite (in memory, one per test file)\n');
  }

  try {
    const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files], {
      env,
      stdio: 'inherit',
    });
    return result.status ?? 1;
  } finally {
    await dropDatabase?.();
  }
}

process.exitCode = await main();
