import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, pgliteDirectory } from '../../src/db/database.ts';
import { leakproofStatements } from '../../src/db/row-level-security.ts';
import { systemDb } from '../../src/db/tenant.ts';
import { openRuntime } from '../../src/runtime.ts';
import type { Credentials } from '../../test/helpers/sign.ts';

/**
 * A benchmark target: a fresh database (PostgreSQL: a new database on BENCH_PG_URL's server;
 * PGlite: a temp data dir), an account created through the services, and the real server as a
 * separate process so client and server do not share an event loop.
 */
export interface Target {
  engine: 'postgres' | 'pglite';
  baseUrl: string;
  /** The server process's pid (for its RSS in /proc/<pid>/status). */
  pid: number;
  creds: Credentials & { accountId: string; memberId: string };
  env: Record<string, string>;
  /** How the server meets the database, for the report: which role, whether the tenant policies bind it. */
  connectsAs: string;
  /**
   * Runs read-only SQL on the target's database (sizes, EXPLAIN). PostgreSQL: any time, on its
   * own connection. PGlite: one process per data directory, so this stops the server first —
   * call it last.
   */
  query(text: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The role the server connects as, by default: the recommended deployment (docs/reliability.md,
 * "Row-level security"), an ordinary role owning its database, so that the tenant policies bind
 * every query as they do in production. BENCH_PG_SUPERUSER=1 connects as BENCH_PG_URL's role
 * instead (a superuser: policies bypassed, no set_config), as the benchmarks did before
 * 2026-11-23 12:30 UTC.
 */
const OWNER_ROLE = 'crm_bench_owner';

function databaseUrl(database: string, user?: { name: string; password: string }): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  if (user) {
    url.username = user.name;
    url.password = user.password;
  }
  return url.toString();
}

/** Runs statements as BENCH_PG_URL's (superuser) role, in `database` or BENCH_PG_URL's own. */
async function admin(sqlText: string, database?: string) {
  const client = new pg.Client({ connectionString: database ? databaseUrl(database) : ADMIN_URL });
  await client.connect();
  try {
    await client.query(sqlText);
  } finally {
    await client.end();
  }
}

function waitForListening(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 60_000;
    const poll = async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (res.ok) return resolve();
      } catch { /* not up yet */ }
      if (child.exitCode !== null) return reject(new Error(`server exited with ${child.exitCode}`));
      if (Date.now() > deadline) return reject(new Error('server did not start within 60 s'));
      setTimeout(poll, 200);
    };
    void poll();
  });
}

export async function startTarget(engine: 'postgres' | 'pglite', port = 3900 + Math.floor(Math.random() * 90)): Promise<Target> {
  const dataDir = mkdtempSync(join(tmpdir(), 'crm-bench-'));
  const env: Record<string, string> = { DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn' };
  let dropDatabase = async () => {};
  let afterMigrations = async () => {};
  let connectsAs = 'PGlite as crm_app (row-level security enforced)';
  // BENCH_KEEP=1 keeps the database (and data dir) after the run, for EXPLAIN; drop it by hand.
  const keep = process.env.BENCH_KEEP === '1';
  if (engine === 'postgres') {
    const name = `crm_core_bench_${Date.now()}`;
    if (process.env.BENCH_PG_SUPERUSER === '1') {
      await admin(`CREATE DATABASE ${name}`);
      env.DATABASE_URL = databaseUrl(name);
      connectsAs = `${new URL(ADMIN_URL).username} (superuser: row-level security bypassed)`;
    } else {
      // A new password each run: BENCH_PG_URL's server need not trust local connections.
      const owner = { name: OWNER_ROLE, password: randomBytes(18).toString('base64url') };
      await admin(`DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${owner.name}') THEN CREATE ROLE ${owner.name} LOGIN; END IF;
      END $$; ALTER ROLE ${owner.name} NOSUPERUSER NOBYPASSRLS PASSWORD '${owner.password}'`);
      await admin(`CREATE DATABASE ${name} OWNER ${owner.name}`);
      // Once the migrations have created crm_name_grams, one of the functions.
      afterMigrations = () => admin(leakproofStatements().join('\n'), name);
      env.DATABASE_URL = databaseUrl(name, owner);
      connectsAs = `${owner.name}, owner of the database (row-level security enforced, LEAKPROOF marks set)`;
    }
    env.MASTER_KEY = randomBytes(32).toString('base64');
    dropDatabase = keep
      ? async () => { process.stderr.write(`kept database ${name}\n`); }
      : () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } else {
    // The server opens the data dir itself; the seeding runtime below must be closed first.
    env.PGLITE_WORKER = 'true';
  }

  const runtime = await openRuntime(loadConfig({ ...process.env, ...env }), {});
  const account = await runtime.services.accounts.create({ name: 'bench', ownerName: 'Bench owner' });
  await runtime.close();
  await afterMigrations();

  // BENCH_SERVER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the server under load.
  const nodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, 'src/cli/main.ts', 'serve'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForListening(child, port);
  const stopServer = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  };
  let inspector: Awaited<ReturnType<typeof openDatabase>> | undefined;
  return {
    engine,
    baseUrl: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    creds: { accountId: account.accountId, memberId: account.owner.memberId, apiKey: account.key.apiKey, apiSecret: account.key.apiSecret },
    env,
    connectsAs,
    async query(text) {
      if (!inspector) {
        if (engine === 'pglite') await stopServer();
        inspector = await openDatabase(engine === 'postgres'
          ? { databaseUrl: env.DATABASE_URL, poolMax: 1 }
          : { pgliteDir: pgliteDirectory(dataDir), pgliteWorker: false });
      }
      // systemDb: the inspector reads every account's rows even where row-level security binds its role.
      const result = await sql.raw(text).execute(systemDb(inspector.db));
      return result.rows as Record<string, unknown>[];
    },
    async stop() {
      await inspector?.close();
      await stopServer();
      await dropDatabase();
      if (keep) process.stderr.write(`kept data dir ${dataDir}\n`);
      else rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
