import { openDatabase, type Database } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';

/**
 * The database a test file runs on: PostgreSQL when the runner prepared one
 * (CRM_TEST_PG_URL, a fresh database per `npm test` run, see scripts/test.ts), otherwise a
 * private in-memory PGlite.
 */
export function testDatabaseUrl(): string | undefined {
  return process.env.CRM_TEST_PG_URL || undefined;
}

export async function openTestDatabase(): Promise<Database> {
  const database = await openDatabase({ databaseUrl: testDatabaseUrl(), poolMax: 20 });
  await migrateToLatest(database.db);
  return database;
}
