/**
 * The real server (and CLI) as child processes: `node src/cli/main.ts serve` with its
 * configuration in the environment, as an operator runs it. Output is captured so tests can
 * read the first-start credentials block and the logs. Every child started here is killed
 * when the test process exits, even when a test fails before stopping it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGLITE_LOCK_FILE, openDatabase } from '../../src/db/database.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { createSecretBox } from '../../src/lib/secret-box.ts';
import { createServices } from '../../src/services.ts';
import { authorization, type Credentials } from './sign.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The project's Node 22 (the system node may be older). */
export const NODE = join(ROOT, 'node_modules/.bin/node');
export const MAIN = join(ROOT, 'src/cli/main.ts');

/** Every variable src/config.ts reads: a child gets only the values a test sets. */
const CONFIG_VARS = [
  'HOST', 'PORT', 'DATABASE_URL', 'DATA_DIR', 'PGLITE_WORKER', 'DB_POOL_MAX', 'MASTER_KEY', 'LOG_LEVEL',
  'BODY_LIMIT', 'BULK_BODY_LIMIT', 'SHUTDOWN_TIMEOUT_MS', 'DOCS_ENABLED',
];

/** The parent's environment without crm-core settings or the test runner's markers, plus `env`. */
export function childEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [...CONFIG_VARS, 'NODE_TEST_CONTEXT', 'CRM_TEST_PG_URL', 'TEST_DATABASE_URL']) delete base[name];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete base[name];
    else base[name] = value;
  }
  return base;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

const tempDirs: string[] = [];
/** A fresh temporary directory, removed by removeTempDirs(). */
export function tempDir(prefix = 'crm-core-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Copies a (stopped) server's data directory, without its lock file. */
export function copyDataDir(from: string): string {
  const to = tempDir();
  cpSync(from, to, { recursive: true, filter: (src) => !basename(src).startsWith(PGLITE_LOCK_FILE) });
  return to;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A random MASTER_KEY, as `openssl rand -base64 32` makes one. */
export function newMasterKey(): string {
  return randomBytes(32).toString('base64');
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string;
  /** Everything the process wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the captured stdout match once it appears (rejects on exit or timeout). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Settles when the process has exited. */
  readonly exited: Promise<Exit>;
  /** Sends `signal` and waits for the exit; SIGKILLs it if it does not exit in time. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
}

export interface StartOptions {
  /** DATA_DIR; a new temp directory when absent. */
  dataDir?: string;
  /** Extra environment (DATABASE_URL, MASTER_KEY, PGLITE_WORKER, ...). */
  env?: Record<string, string | undefined>;
  logLevel?: string;
  timeoutMs?: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const LISTENING = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/;

/** Starts `crm-core serve` bound to 127.0.0.1 and resolves once /healthz answers. */
export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const logLevel = options.logLevel ?? 'info';
  // With info logs the server reports the port it got from the OS (PORT=0); otherwise pick one.
  const announces = ['trace', 'debug', 'info'].includes(logLevel);
  const port = announces ? 0 : await freePort();
  const child = spawn(NODE, [MAIN, 'serve'], {
    cwd: ROOT,
    env: childEnv({
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: options.dataDir ?? tempDir(),
      LOG_LEVEL: logLevel,
      ...options.env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; notify(); });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { err += chunk; notify(); });
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      exit = { code, signal };
      // Let the pipes drain so the last lines are captured.
      let open = 2;
      const done = () => { if (--open === 0) { resolve(exit!); notify(); } };
      child.stdout!.once('close', done);
      child.stderr!.once('close', done);
      if (child.stdout!.closed) done();
      if (child.stderr!.closed) done();
    });
  });
  const describe = () => `exit=${JSON.stringify(exit)}\n--- stdout ---\n${out}\n--- stderr ---\n${err}`;

  const waitForOutput = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(out);
        if (match) return finish(() => resolve(match));
        if (exit) return finish(() => reject(new Error(`server exited before printing ${pattern}\n${describe()}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`timed out waiting for ${pattern}\n${describe()}`))), timeoutMs);
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        waiters.delete(check);
        settle();
      };
      waiters.add(check);
      check();
    });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000) => {
    if (!exit) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };

  try {
    const timeoutMs = options.timeoutMs ?? 120_000;
    const boundPort = announces ? Number((await waitForOutput(LISTENING, timeoutMs))[1]) : port;
    const baseUrl = `http://127.0.0.1:${boundPort}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exit) throw new Error(`server exited during startup\n${describe()}`);
      const res = await fetch(`${baseUrl}/healthz`).catch(() => undefined);
      if (res?.status === 200) break;
      if (Date.now() > deadline) throw new Error(`/healthz did not answer\n${describe()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      child,
      pid: child.pid!,
      port: boundPort,
      baseUrl,
      stdout: () => out,
      stderr: () => err,
      waitForOutput,
      exited,
      stop,
    };
  } catch (error) {
    await stop('SIGKILL');
    throw error;
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `crm-core <args>` to completion with `env` (DATA_DIR or DATABASE_URL + MASTER_KEY). */
export function runCli(args: string[], env: Record<string, string | undefined>, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [MAIN, ...args], { cwd: ROOT, env: childEnv({ LOG_LEVEL: 'warn', ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`crm-core ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface PrintedAccount extends Credentials {
  accountId: string;
  memberId: string;
}

/** Every first-start credentials block (src/server.ts bootstrapIfEmpty) in `output`. */
export function printedAccounts(output: string): PrintedAccount[] {
  const block = /accountId : (\S+)\n\s+memberId\s+: (\S+) \(OWNER\)\n\s+apiKey\s+: (\S+)\n\s+apiSecret : (\S+)/g;
  return [...output.matchAll(block)].map(([, accountId, memberId, apiKey, apiSecret]) =>
    ({ accountId: accountId!, memberId: memberId!, apiKey: apiKey!, apiSecret: apiSecret! }));
}

/**
 * Creates an account (OWNER + key) directly in a PostgreSQL database that servers started with
 * `masterKey` (base64) will share: a fixture, cheaper than running `crm-core init`.
 */
export async function createAccountIn(databaseUrl: string, masterKey: string, name = 'Test account'): Promise<PrintedAccount> {
  const database = await openDatabase({ databaseUrl });
  try {
    const services = createServices({ db: database.db, secretBox: createSecretBox(Buffer.from(masterKey, 'base64')), clock: systemClock });
    const created = await services.accounts.create({ name, ownerName: 'Owner' });
    return { accountId: created.accountId, memberId: created.owner.memberId, apiKey: created.key.apiKey, apiSecret: created.key.apiSecret };
  } finally {
    await database.close();
  }
}

/** A signed request (a fresh date and salt each time) to a running server. */
export async function signedFetch(
  baseUrl: string,
  creds: Credentials,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: any; authorization: string }> {
  const header = authorization(creds);
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: header, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, authorization: header };
}
