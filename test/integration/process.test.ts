/**
 * The server and CLI as operators run them: real processes, real ports, real signals.
 * Everything runs on PGlite; the CLI and logging checks also run on PostgreSQL when the test
 * runner prepared a database (CRM_TEST_PG_URL).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DatabaseOpenError, PGLITE_LOCK_FILE, lockDataDirectory } from '../../src/db/database.ts';
import { testDatabaseUrl } from '../helpers/database.ts';
import {
  NODE, copyDataDir, createAccountIn, newMasterKey, printedAccounts, removeTempDirs, runCli, signedFetch, startServer, tempDir,
  type CliResult, type Exit, type PrintedAccount,
} from '../helpers/server-process.ts';
import { authorization } from '../helpers/sign.ts';

const PG_URL = testDatabaseUrl();
const USAGE = '/crm-core/v1/usage';
const LOCK = PGLITE_LOCK_FILE;

after(removeTempDirs);

/** The server's first start on an empty PGlite data directory, shared as a template by the other tests. */
interface FirstStart {
  /** The data directory the server created (test (a) restarts on it). */
  dataDir: string;
  /** A copy taken once it had stopped: what the other tests copy, never used in place. */
  template: string;
  stdout: string;
  stderr: string;
  exit: Exit;
  account: PrintedAccount;
  usage: { status: number; json: any };
}

let firstStartRun: Promise<FirstStart> | undefined;
function firstStart(): Promise<FirstStart> {
  firstStartRun ??= (async () => {
    const dataDir = tempDir();
    const server = await startServer({ dataDir });
    let usage: FirstStart['usage'] | undefined;
    const account = printedAccounts(server.stdout())[0];
    try {
      if (account) usage = await signedFetch(server.baseUrl, account, 'GET', USAGE);
    } finally {
      await server.stop();
    }
    const exit = await server.exited;
    if (!account || !usage) throw new Error(`the first start printed no credentials:\n${server.stdout()}\n${server.stderr()}`);
    return { dataDir, template: copyDataDir(dataDir), stdout: server.stdout(), stderr: server.stderr(), exit, account, usage };
  })();
  return firstStartRun;
}

/** A place to run servers and CLI commands, holding one account with an OWNER key. */
interface Backend {
  name: string;
  /**
   * `env` for servers and CLI commands; `fork()` gives another environment holding the same
   * account, for commands that may run alongside (PGlite: a copy of the data directory, since
   * one directory admits one process at a time).
   */
  prepare(): Promise<{ env: Record<string, string>; account: PrintedAccount; fork(): Record<string, string> }>;
}

const pglite: Backend = {
  name: 'PGlite',
  async prepare() {
    const { template, account } = await firstStart();
    return { env: { DATA_DIR: copyDataDir(template) }, account, fork: () => ({ DATA_DIR: copyDataDir(template) }) };
  },
};

const MASTER_KEY = newMasterKey();
const postgres: Backend = {
  name: 'PostgreSQL',
  async prepare() {
    const env = { DATABASE_URL: PG_URL!, MASTER_KEY, DATA_DIR: tempDir() };
    const account = await createAccountIn(PG_URL!, MASTER_KEY, 'Process test account');
    return { env, account, fork: () => env };
  },
};

/** An operator-facing failure: one `crm-core: ...` line, no stack trace. */
function assertOneLineError(result: CliResult, pattern: RegExp) {
  assert.notEqual(result.code, 0, `expected a failure\n${result.stdout}\n${result.stderr}`);
  assert.match(result.stderr, /^crm-core: [^\n]+\n$/, `not one line:\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
  assert.match(result.stderr, pattern);
}

function waitUntilRefused(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const attempt = (): Promise<void> => new Promise<string | undefined>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(undefined); });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
  }).then((code) => {
    if (code === 'ECONNREFUSED') return;
    if (Date.now() > deadline) throw new Error(`port ${port} still accepts connections (last: ${code ?? 'connected'})`);
    return new Promise((r) => setTimeout(r, 50)).then(attempt);
  });
  return attempt();
}

function cliTests(backend: Backend) {
  test(`${backend.name}: CLI init, keys create, migrate and plan set work; bad input fails cleanly; the server honours the plan`, async () => {
    const { env, account: first, fork } = await backend.prepare();
    const cli = (...args: string[]) => runCli(args, env);

    // Checks that need no server run alongside the main sequence.
    const aside = Promise.all([
      runCli(['keys', 'create', '--account', '00000000000000', '--member', first.memberId], fork()),
      runCli(['keys', 'create', '--account', first.accountId, '--member', 'MEMnotamember00'], fork()),
      runCli(['migrate'], fork()),
    ]);
    aside.catch(() => {}); // awaited below

    const init = await cli('init', '--name', 'CLI account', '--owner', 'Olivia', '--email', 'olivia@example.com');
    assert.equal(init.code, 0, init.stderr);
    const created = JSON.parse(init.stdout) as PrintedAccount;
    assert.match(created.accountId, /^\d{14}$/);
    assert.match(created.memberId, /^MEM[A-Za-z0-9]{11}$/);
    assert.equal(typeof created.apiKey, 'string');
    assert.equal(typeof created.apiSecret, 'string');

    const keys = await cli('keys', 'create', '--account', first.accountId, '--member', first.memberId, '--name', 'from the CLI');
    assert.equal(keys.code, 0, keys.stderr);
    const cliKey = JSON.parse(keys.stdout);
    assert.equal(cliKey.memberId, first.memberId);

    const [unknownAccount, unknownMember, migrate] = await aside;
    assertOneLineError(unknownAccount, /account 00000000000000 does not exist/);
    assertOneLineError(unknownMember, /memberId MEMnotamember00 is not a member/);
    for (const failed of [unknownAccount, unknownMember]) assert.equal(failed.stdout, '');
    // Already migrated (by the first start, or by the test runner): nothing to do, no harm done.
    assert.equal(migrate.code, 0, migrate.stderr);
    assert.deepEqual(JSON.parse(migrate.stdout), { applied: [] });

    const plan = await cli('plan', 'set', '--account', created.accountId, 'apiKeys.max=1');
    assert.equal(plan.code, 0, plan.stderr);
    assert.equal(JSON.parse(plan.stdout)['apiKeys.max'], 1);

    const server = await startServer({ env });
    try {
      const usage = await signedFetch(server.baseUrl, created, 'GET', USAGE);
      assert.equal(usage.status, 200, JSON.stringify(usage.json));
      assert.equal(usage.json.accountId, created.accountId);
      assert.deepEqual(usage.json.limits.find((l: { key: string }) => l.key === 'apiKeys.max'), { key: 'apiKeys.max', max: 1, used: 1 });

      const viaCliKey = await signedFetch(server.baseUrl, cliKey, 'GET', USAGE);
      assert.equal(viaCliKey.status, 200, JSON.stringify(viaCliKey.json));
      assert.equal(viaCliKey.json.accountId, first.accountId);

      const second = await signedFetch(server.baseUrl, created, 'POST', '/crm-core/v1/api-keys', { name: 'second' });
      assert.equal(second.status, 403, JSON.stringify(second.json));
      assert.equal(second.json.errorCode, 'PlanQuotaExceeded');
      assert.equal(second.json.errorMessage, 'apiKeys.max: 1/1');
    } finally {
      await server.stop();
    }
  });
}

function logTests(backend: Backend) {
  test(`${backend.name}: with LOG_LEVEL=trace the logs never hold an API secret or an Authorization header`, async () => {
    const { env, account } = await backend.prepare();
    const server = await startServer({ env, logLevel: 'trace' });
    const headers: string[] = [];
    const secrets = [account.apiSecret];
    const call = async (header: string, expectedStatus: number, expectedCode?: string) => {
      headers.push(header);
      const res = await fetch(`${server.baseUrl}${USAGE}`, { headers: { authorization: header } });
      const body = (await res.json()) as { errorCode?: string };
      assert.equal(res.status, expectedStatus, JSON.stringify(body));
      if (expectedCode) assert.equal(body.errorCode, expectedCode);
    };
    try {
      const good = authorization(account);
      await call(good, 200);
      await call(good, 401, 'DuplicatedSignature'); // replay
      await call(authorization({ apiKey: account.apiKey, apiSecret: 'not-the-secret' }), 401, 'SignatureDoesNotMatch');
      await call(authorization(account, { signature: 'f'.repeat(64) }), 401, 'SignatureDoesNotMatch');
      await call(authorization({ apiKey: 'NCSNOTAREALKEY00', apiSecret: account.apiSecret }), 401, 'InvalidApiKey');
      await call(authorization(account, { date: '2001-01-01T00:00:00Z' }), 401, 'RequestTimeTooSkewed');
      await call(`${authorization(account)}, extra=1`, 401, 'Unauthorized');

      const created = await signedFetch(server.baseUrl, account, 'POST', '/crm-core/v1/api-keys', { name: 'logged?' });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      headers.push(created.authorization);
      secrets.push(created.json.apiSecret);
    } finally {
      await server.stop();
    }
    const logs = server.stdout() + server.stderr();
    // The test is only meaningful if the requests were logged at all.
    assert.ok((logs.match(/"msg":"incoming request"/g) ?? []).length >= headers.length, logs);
    assert.ok((logs.match(/"statusCode":401/g) ?? []).length >= 6, logs);
    assert.ok(!logs.includes('HMAC-SHA256'), 'an Authorization header reached the logs');
    for (const secret of secrets) assert.ok(!logs.includes(secret), 'an API secret reached the logs');
    for (const header of headers) {
      const [, salt, signature] = /salt=([^,]+), signature=([^,]+)/.exec(header)!;
      assert.ok(!logs.includes(signature!), `signature ${signature} reached the logs`);
      assert.ok(!logs.includes(salt!), `salt ${salt} reached the logs`);
    }
  });
}

// Independent tests run side by side (each has its own data directory or account) to keep the
// file's wall time down; the PGlite ones share the first start's data directory as a template.
describe('crm-core processes', { concurrency: 3 }, () => {
  test('PGlite: the first start prints the credentials once; a restart prints none and the old key still works', async () => {
    const first = await firstStart();
    assert.deepEqual(first.exit, { code: 0, signal: null }, first.stderr);
    const printed = printedAccounts(first.stdout);
    assert.equal(printed.length, 1, first.stdout);
    const { account } = first;
    assert.match(account.accountId, /^\d{14}$/);
    assert.match(account.memberId, /^MEM[A-Za-z0-9]{11}$/);
    assert.match(account.apiKey, /^\S{8,}$/);
    assert.match(account.apiSecret, /^\S{16,}$/);
    assert.equal(first.stdout.split(account.apiSecret).length - 1, 1, 'the secret is printed exactly once');
    assert.ok(!first.stderr.includes(account.apiSecret));
    // The first start migrated the empty database; the restart (and `crm-core migrate`, see
    // the CLI test) finds nothing left to apply.
    assert.match(first.stdout, /"applied":\["0001_[^"]+"[^\]]*\],"msg":"database migrated"/);
    assert.equal(first.usage.status, 200, JSON.stringify(first.usage.json));
    assert.equal(first.usage.json.accountId, account.accountId);

    const again = await startServer({ dataDir: first.dataDir });
    let usage;
    try {
      usage = await signedFetch(again.baseUrl, account, 'GET', USAGE);
    } finally {
      await again.stop();
    }
    assert.equal(usage.status, 200, JSON.stringify(usage.json));
    assert.equal(usage.json.accountId, account.accountId);
    assert.deepEqual(await again.exited, { code: 0, signal: null }, again.stderr());
    assert.equal(printedAccounts(again.stdout()).length, 0, again.stdout());
    assert.doesNotMatch(again.stdout(), /created the first account|database migrated/);
    assert.ok(!(again.stdout() + again.stderr()).includes(account.apiSecret), 'the restart printed the old secret');
  });

  cliTests(pglite);

  test('PGlite: a start error is one line on stderr, not a stack, and leaves no lock', async () => {
    const dataDir = tempDir();
    mkdirSync(join(dataDir, 'pglite'));
    writeFileSync(join(dataDir, 'pglite', 'PG_VERSION'), 'not a database\n');
    // Worker-hosted PGlite (the default) fails in a racy way (see startWorkerHost in
    // src/db/database.ts), so it is tried more than once; in-process PGlite once.
    const results = [];
    for (const worker of ['true', 'true', 'false']) {
      results.push(await runCli(['serve'], { DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: '0', PGLITE_WORKER: worker }, 30_000));
    }
    for (const result of results) {
      assert.equal(result.code, 1, result.stderr);
      assertOneLineError(result, /^crm-core: cannot open the PGlite database in \S+: PGlite failed to initialize properly\n$/);
      assert.equal(existsSync(join(dataDir, 'pglite', LOCK)), false);
    }
  });

  test('CLI: an unknown command or a missing option prints the usage and exits 2, without touching the database', async () => {
    // An unreachable database: these must be refused before any connection attempt.
    const env = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', MASTER_KEY: newMasterKey() };
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['keys', 'create', '--account', '12345678901234'], /keys create: --member is required/],
      [['migrate', '--frobnicate'], /Unknown option '--frobnicate'/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args, env)));
    cases.forEach(([args, pattern], i) => {
      const result = results[i]!;
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, pattern);
      assert.match(result.stderr, /Usage: crm-core <command>/);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
      assert.equal(result.stdout, '');
    });
  });

  test('the data directory lock: exclusive, released, stale ones taken over', async () => {
    const dir = tempDir();
    const lockFile = join(dir, LOCK);
    const release = lockDataDirectory(dir);
    assert.equal(readFileSync(lockFile, 'utf8'), `${process.pid}\n`);
    assert.throws(() => lockDataDirectory(dir), (error: Error) => error instanceof DatabaseOpenError && /already open in this process/.test(error.message));
    release();
    assert.equal(existsSync(lockFile), false);

    // Held by another live process: refused, and left alone.
    const other = spawn(NODE, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      writeFileSync(lockFile, `${other.pid}\n`);
      assert.throws(() => lockDataDirectory(dir), new RegExp(`in use by another crm-core process \\(pid ${other.pid}\\)`));
      assert.equal(readFileSync(lockFile, 'utf8'), `${other.pid}\n`);
    } finally {
      other.kill('SIGKILL');
      await once(other, 'exit');
    }
    // Its process is gone now; and a file without a pid is no lock either.
    for (const stale of [`${other.pid}\n`, '', 'garbage']) {
      writeFileSync(lockFile, stale);
      const again = lockDataDirectory(dir);
      assert.equal(readFileSync(lockFile, 'utf8'), `${process.pid}\n`);
      again();
    }
    assert.deepEqual(readdirSync(dir), [], 'temporary lock files were left behind');
  });

  if (PG_URL) {
    cliTests(postgres);
    logTests(postgres);
  } else {
    test('PostgreSQL: CLI and log checks', { skip: 'CRM_TEST_PG_URL is not set (run with TEST_DATABASE_URL)' }, () => {});
  }

  test('PGlite: SIGTERM lets an in-flight request finish, refuses new connections, and exits 0', async () => {
    const { env, account } = await pglite.prepare();
    const server = await startServer({ env });
    try {
      const body = Buffer.from(JSON.stringify({ name: 'Slow Sam', role: 'MEMBER' }));
      const req = request({
        host: '127.0.0.1',
        port: server.port,
        method: 'POST',
        path: '/crm-core/v1/members',
        agent: false,
        headers: {
          authorization: authorization(account),
          'content-type': 'application/json',
          'content-length': String(body.length),
          'x-request-id': 'slow-request-1',
        },
      });
      let answered = false;
      const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
        req.once('response', (res) => {
          answered = true;
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; });
          res.once('end', () => resolve({ status: res.statusCode!, text }));
          res.once('error', reject);
        });
        req.once('error', reject);
      });
      req.write(body.subarray(0, 10)); // headers and the first bytes of the body; the rest comes after SIGTERM
      await server.waitForOutput(/"reqId":"slow-request-1".*"msg":"incoming request"/);

      server.child.kill('SIGTERM');
      await server.waitForOutput(/"signal":"SIGTERM".*"msg":"shutting down/);
      await waitUntilRefused(server.port);
      await assert.rejects(fetch(`${server.baseUrl}/healthz`), 'a new request after SIGTERM was served');
      assert.equal(answered, false, 'the in-flight request was answered before its body was complete');

      req.end(body.subarray(10));
      const res = await response;
      assert.equal(res.status, 201, res.text);
      assert.equal(JSON.parse(res.text).name, 'Slow Sam');

      assert.deepEqual(await server.exited, { code: 0, signal: null }, server.stderr());
      assert.match(server.stdout(), /"msg":"shut down cleanly"/);
    } finally {
      await server.stop('SIGKILL');
    }
  });

  logTests(pglite);

  test('PGlite: a second serve on the same data directory refuses to start; the lock is released on exit', async () => {
    const { env, account } = await pglite.prepare();
    const lockFile = join(env.DATA_DIR!, 'pglite', LOCK);
    // A lock left behind by a process that no longer exists (a crash, SIGKILL) is taken over.
    const gone = spawnSync(NODE, ['-e', '']).pid;
    writeFileSync(lockFile, `${gone}\n`);

    const server = await startServer({ env });
    try {
      assert.equal(readFileSync(lockFile, 'utf8').trim(), String(server.pid));
      const second = await runCli(['serve'], { ...env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' }, 30_000);
      assertOneLineError(second, new RegExp(`in use by another crm-core process \\(pid ${server.pid}\\)`));
      assert.doesNotMatch(second.stdout, /Server listening|created the first account/);
      assert.equal(readFileSync(lockFile, 'utf8').trim(), String(server.pid), 'the refused process touched the lock');

      const usage = await signedFetch(server.baseUrl, account, 'GET', USAGE);
      assert.equal(usage.status, 200, 'the first server was disturbed');
    } finally {
      await server.stop();
    }
    assert.deepEqual(await server.exited, { code: 0, signal: null }, server.stderr());
    assert.equal(existsSync(lockFile), false, 'the lock file outlived the server');
  });
});
