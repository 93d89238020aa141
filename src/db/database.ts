import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, PGliteDialect, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { createInProcessPGlite, startPGliteHost } from './pglite-host/host.ts';
import type { DB } from './schema.ts';

export type Driver = 'pglite' | 'pg';

export interface Database {
  db: Kysely<DB>;
  driver: Driver;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL connection string; undefined selects PGlite. */
  databaseUrl?: string | undefined;
  /** PGlite data directory; undefined keeps PGlite in memory (tests). */
  pgliteDir?: string | undefined;
  pgliteWorker?: boolean;
  poolMax?: number;
  logger?: Pick<Logger, 'warn' | 'error'>;
}

/** Connection-level limits so a dead or wedged database yields an error (503), not a hang. */
const CONNECT_TIMEOUT_MS = 5_000;
const QUERY_TIMEOUT_MS = 30_000;

function createPostgres(url: string, options: DatabaseOptions): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    statement_timeout: QUERY_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
  });
  // An idle pooled client killed by a database restart emits 'error' on the pool; without a
  // listener node-postgres would crash the process (node-postgres #2386).
  pool.on('error', (error) => options.logger?.warn({ err: error }, 'idle database connection lost'));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return { db, driver: 'pg', close: () => db.destroy() };
}

async function createPGlite(options: DatabaseOptions): Promise<Database> {
  const dataDir = options.pgliteDir;
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const pglite = options.pgliteWorker === false
    ? await createInProcessPGlite({ dataDir })
    : await startPGliteHost({ dataDir });
  const db = new Kysely<DB>({ dialect: new PGliteDialect({ pglite }) });
  return { db, driver: 'pglite', close: () => db.destroy() };
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl ? createPostgres(options.databaseUrl, options) : createPGlite(options);
}

/** Where the server keeps PGlite's files inside its data directory. */
export function pgliteDirectory(dataDir: string): string {
  return join(dataDir, 'pglite');
}
