import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, PGliteDialect, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { createInProcessPGlite, startPGliteHost } from './pglite-host/host.ts';
import { preparedStatementsFor } from './prepared-statements.ts';
import type { DB } from './schema.ts';
import { scopedDialect, type ScopeControl, type ScopeStats } from './scope.ts';

export type Driver = 'pglite' | 'pg';

export interface Database {
  db: Kysely<DB>;
  driver: Driver;
  /**
   * How queries' row-level-security scopes reach the connections (scope.ts): `per-query` unless
   * opened with `rowLevelSecurity: false`; row-level-security.ts adjusts it to the connected role.
   */
  scope: ScopeControl;
  /** set_config round trips made so far (tests, benchmarks). */
  scopeStats: ScopeStats;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL connection string; undefined selects PGlite. */
  databaseUrl?: string | undefined;
  /** PGlite data directory; undefined keeps PGlite in memory (tests). */
  pgliteDir?: string | undefined;
  pgliteWorker?: boolean;
  poolMax?: number;
  /**
   * PostgreSQL's `parallel_setup_cost` for this server's connections (DB_PARALLEL_SETUP_COST;
   * undefined: the server's own). Why the server sets it: PostgreSQL has no statistics inside the
   * JSONB documents, so it misjudges how many rows a filtered read touches and starts parallel
   * workers for reads of a few thousand rows; a worker is a new process that page-faults every
   * shared buffer it touches first, which the default price (1,000) does not cover. At 10,000
   * the 1 M-record scans stay parallel and the bounded reads do not (docs/benchmarks.md,
   * "Parallel workers").
   */
  parallelSetupCost?: number;
  logger?: Pick<Logger, 'warn' | 'error'>;
  /**
   * Run every query with its row-level-security scope (default true). False (DATABASE_RLS=off)
   * puts every connection in system mode instead, so tables stay fully visible to a role that
   * the policies still bind.
   */
  rowLevelSecurity?: boolean;
}

function scopeControl(options: DatabaseOptions): { scope: ScopeControl; scopeStats: ScopeStats } {
  return { scope: { mode: options.rowLevelSecurity === false ? 'system' : 'per-query' }, scopeStats: { switches: 0 } };
}

/**
 * The database could not be opened for a reason an operator can act on (the data directory is
 * in use by another process, unreadable, or not a PGlite database). The message is one line,
 * meant to be printed as is; the underlying error, if any, is the `cause`.
 */
export class DatabaseOpenError extends Error {
  override name = 'DatabaseOpenError';
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
  // A client that is checked out when its connection dies emits 'error' too, after pg-pool has
  // removed its idle listener: without a listener of our own that crashes the process. The
  // query it was running is rejected (→ 503) and the pool discards the dead client on release.
  pool.on('connect', (client) => {
    client.on('error', () => { /* reported through the failed query; see the pool listener above for idle clients */ });
    preparedStatementsFor(client);
    // Queued before any query of the client's first user (a client runs its queries in order).
    if (options.parallelSetupCost !== undefined) {
      client.query(`SET parallel_setup_cost = ${Math.trunc(options.parallelSetupCost)}`)
        .catch((error: unknown) => options.logger?.warn({ err: error }, 'could not set parallel_setup_cost'));
    }
  });
  const { scope, scopeStats } = scopeControl(options);
  const db = new Kysely<DB>({ dialect: scopedDialect(new PostgresDialect({ pool }), scope, scopeStats) });
  return { db, driver: 'pg', scope, scopeStats, close: () => db.destroy() };
}

/** Name of the lock file that marks a PGlite data directory as open by one process. */
export const PGLITE_LOCK_FILE = 'crm-core.lock';

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM'; // exists, but belongs to another user
  }
}

/** The pid in a lock file; null when the file is gone, undefined when it holds no pid. */
function lockHolder(file: string): number | null | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return null;
    throw error;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

/**
 * PGlite is a single-process database: two processes opening the same directory corrupt it.
 * So the directory gets a lock file holding the owner's pid, created atomically (a complete
 * file is hard-linked into place, so nobody ever reads a half-written pid). A lock whose
 * process is gone (crash, SIGKILL) is taken over; the takeover moves the stale file aside by
 * rename, which only one contender can win. Returns the release function.
 */
export function lockDataDirectory(dir: string): () => void {
  const lockFile = join(dir, PGLITE_LOCK_FILE);
  const mine = `${process.pid}\n`;
  const unique = () => `${process.pid}.${randomBytes(4).toString('hex')}`;
  const held = (pid: number) => new DatabaseOpenError(
    pid === process.pid
      ? `the PGlite database in ${dir} is already open in this process`
      : `the PGlite database in ${dir} is in use by another crm-core process (pid ${pid}); ` +
        `stop it first (or delete ${lockFile} if that process is not crm-core)`,
  );
  const release = () => {
    process.off('exit', release);
    // Only our own lock: after a takeover the file may belong to someone else.
    if (lockHolder(lockFile) === process.pid) removeQuietly(lockFile);
  };

  const temp = join(dir, `${PGLITE_LOCK_FILE}.${unique()}.tmp`);
  writeFileSync(temp, mine);
  try {
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        linkSync(temp, lockFile);
        process.on('exit', release); // a process.exit() without close still unlocks
        return release;
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error;
      }
      const holder = lockHolder(lockFile);
      if (holder === null) continue; // released meanwhile: try again
      if (holder !== undefined && (holder === process.pid || pidAlive(holder))) throw held(holder);
      const aside = join(dir, `${PGLITE_LOCK_FILE}.${unique()}.stale`);
      try {
        renameSync(lockFile, aside);
      } catch (error) {
        if (errorCode(error) === 'ENOENT') continue; // another contender moved it first
        throw error;
      }
      const moved = lockHolder(aside);
      if (moved !== holder && typeof moved === 'number' && pidAlive(moved)) {
        // Between our read and the rename a contender took the lock over: give it back.
        try {
          linkSync(aside, lockFile);
        } catch {
          // a third process got in; it holds the lock now
        }
        removeQuietly(aside);
        throw held(moved);
      }
      removeQuietly(aside);
    }
    throw new DatabaseOpenError(`could not lock the PGlite database in ${dir}; retry`);
  } finally {
    removeQuietly(temp);
  }
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!.trim();
}

async function createPGlite(options: DatabaseOptions): Promise<Database> {
  const dataDir = options.pgliteDir;
  let release: (() => void) | undefined;
  try {
    if (dataDir) {
      mkdirSync(dataDir, { recursive: true });
      release = lockDataDirectory(dataDir);
    }
    const pglite = options.pgliteWorker === false
      ? await createInProcessPGlite({ dataDir })
      : await startPGliteHost({ dataDir });
    const { scope, scopeStats } = scopeControl(options);
    const db = new Kysely<DB>({ dialect: scopedDialect(new PGliteDialect({ pglite }), scope, scopeStats) });
    return {
      db,
      driver: 'pglite',
      scope,
      scopeStats,
      async close() {
        try {
          await db.destroy();
        } finally {
          release?.();
        }
      },
    };
  } catch (error) {
    release?.();
    if (error instanceof DatabaseOpenError) throw error;
    throw new DatabaseOpenError(
      `cannot open the PGlite database in ${dataDir ?? 'memory'}: ${oneLine(error)}`,
      { cause: error },
    );
  }
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.databaseUrl ? createPostgres(options.databaseUrl, options) : createPGlite(options);
}

/** Where the server keeps PGlite's files inside its data directory. */
export function pgliteDirectory(dataDir: string): string {
  return join(dataDir, 'pglite');
}
