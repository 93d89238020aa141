import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
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
  creds: Credentials & { accountId: string; memberId: string };
  env: Record<string, string>;
  stop(): Promise<void>;
}

const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function admin(sqlText: string) {
  const client = new pg.Client({ connectionString: ADMIN_URL });
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
  if (engine === 'postgres') {
    const name = `crm_core_bench_${Date.now()}`;
    await admin(`CREATE DATABASE ${name}`);
    const url = new URL(ADMIN_URL);
    url.pathname = `/${name}`;
    env.DATABASE_URL = url.toString();
    env.MASTER_KEY = randomBytes(32).toString('base64');
    dropDatabase = () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } else {
    // The server opens the data dir itself; the seeding runtime below must be closed first.
    env.PGLITE_WORKER = 'true';
  }

  const runtime = await openRuntime(loadConfig({ ...process.env, ...env }), {});
  const account = await runtime.services.accounts.create({ name: 'bench', ownerName: 'Bench owner' });
  await runtime.close();

  const child = spawn(process.execPath, ['src/cli/main.ts', 'serve'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForListening(child, port);
  return {
    engine,
    baseUrl: `http://127.0.0.1:${port}`,
    creds: { accountId: account.accountId, memberId: account.owner.memberId, apiKey: account.key.apiKey, apiSecret: account.key.apiSecret },
    env,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await dropDatabase();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
