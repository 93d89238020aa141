import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { testDatabaseUrl } from './database.ts';
import { createAccountIn, newMasterKey, printedAccounts, startServer, tempDir, type PrintedAccount, type ServerProcess } from './server-process.ts';

/**
 * Shared machinery for running Solapi's published client samples (seeds/) against a live
 * server: exact-once substitutions, the sample programs' environment, and the two backends.
 */

/** Replaces each `from` exactly once, so a changed sample fails here instead of testing something else. */
export function substitute(text: string, pairs: [string | RegExp, string][]): string {
  let out = text;
  for (const [from, to] of pairs) {
    const count = typeof from === 'string' ? out.split(from).length - 1 : (out.match(new RegExp(from, 'gm')) ?? []).length;
    assert.equal(count, 1, `expected exactly one ${from} in the sample`);
    out = out.replace(from, to);
  }
  return out;
}

/** The page rendering dropped the backticks of the auth header's template literal. */
export const AUTH_HEADER_BACKTICKS: [RegExp, string] = [/^const authHeader = (HMAC-SHA256 .*);$/m, 'const authHeader = `$1`;'];

/** Environment for the sample programs: nothing may route 127.0.0.1 through a proxy. */
export const SAMPLE_ENV = { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' };

function pythonSkipReason(): string | false {
  const probe = spawnSync('python3', ['-c', 'import requests'], { encoding: 'utf8', env: SAMPLE_ENV });
  if (probe.error) return `python3 is not available (${(probe.error as NodeJS.ErrnoException).code}); the Python samples were not run`;
  if (probe.status !== 0) {
    return "python3 has no 'requests' module (apt-get install python3-requests, or pip install requests); the Python samples were not run";
  }
  return false;
}
/** Why the Python samples cannot run here, or false when they can. */
export const PYTHON_SKIP = pythonSkipReason();

export interface Backend {
  name: string;
  skip: string | false;
  /** A running server and an OWNER key for it. */
  start(): Promise<{ server: ServerProcess; creds: PrintedAccount }>;
}

/** A fresh PGlite server (its first-start key) and, when the runner prepared one, a PostgreSQL server. */
export function serverBackends(accountName: string): Backend[] {
  const pgUrl = testDatabaseUrl();
  return [
    {
      name: 'PGlite',
      skip: false,
      async start() {
        // An empty data directory: the server creates the first account and prints its key once.
        const server = await startServer({ dataDir: tempDir() });
        const printed = printedAccounts(server.stdout());
        if (printed.length !== 1) {
          await server.stop();
          assert.fail(`expected one credentials block on first start:\n${server.stdout()}`);
        }
        return { server, creds: printed[0]! };
      },
    },
    {
      name: 'PostgreSQL',
      skip: pgUrl ? false : 'CRM_TEST_PG_URL is not set (run with TEST_DATABASE_URL)',
      async start() {
        // The shared test database already holds other files' accounts, so the server would not
        // print one: the account is made beforehand, sealed with the server's MASTER_KEY.
        const env = { DATABASE_URL: pgUrl!, MASTER_KEY: newMasterKey(), DATA_DIR: tempDir() };
        const creds = await createAccountIn(pgUrl!, env.MASTER_KEY, accountName);
        return { server: await startServer({ env }), creds };
      },
    },
  ];
}
