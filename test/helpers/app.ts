import { randomBytes } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Database } from '../../src/db/database.ts';
import { tenantDb, type TenantDb } from '../../src/db/tenant.ts';
import { buildApp } from '../../src/http/app.ts';
import { systemClock, type Clock } from '../../src/lib/clock.ts';
import type { RateLimiter } from '../../src/lib/rate-limiter.ts';
import { createSecretBox } from '../../src/lib/secret-box.ts';
import { createServices, type Services } from '../../src/services.ts';
import type { WorkerOptions } from '../../src/modules/jobs/jobs.service.ts';
import type { ImportsOptions } from '../../src/modules/imports/imports.service.ts';
import { openTestDatabase } from './database.ts';
import { authorization, type Credentials } from './sign.ts';

export interface TestAccount extends Credentials {
  accountId: string;
  memberId: string;
  tenant: TenantDb;
}

export interface TestApp {
  app: FastifyInstance;
  database: Database;
  services: Services;
  /** The key sealing API secrets; a second app given the same key acts as another API node. */
  masterKey: Buffer;
  /** The clock the app reads; tests may move it. */
  clock: { now: number | undefined };
  /** A fresh account with an OWNER and its key (accounts keep test cases apart in one database). */
  newAccount(name?: string): Promise<TestAccount>;
  /** A signed request as `creds`; `body` is sent as JSON. */
  call(creds: Credentials, method: InjectOptions['method'], url: string, body?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  /** Adds a member with `role` to an account and returns its credentials. */
  addMember(account: TestAccount, role: 'OWNER' | 'ADMIN' | 'MEMBER'): Promise<Credentials & { memberId: string }>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  database?: Database;
  masterKey?: Buffer;
  bodyLimit?: number;
  /** Entities from this many live records get property sort indexes (services default: 5,000). */
  propertyIndexMinRecords?: number;
  /** Builds the app's rate limiter on the app's (movable) clock; no limiter when absent. */
  rateLimiter?: (clock: Clock) => RateLimiter;
  /**
   * Runs the background job worker as server.ts does (1 job at a time unless told otherwise).
   * Off by default: on PostgreSQL every test file shares one database, and a file's jobs should
   * not be picked up by workers of files that did not ask for them.
   */
  jobWorker?: true | Partial<WorkerOptions>;
  /** How long a job's claim lasts without renewal (services default: 30 s). */
  jobLeaseMs?: number;
  /** Record import limits (sync threshold, batch size, upload size); services defaults when absent. */
  imports?: ImportsOptions;
}

export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const database = options.database ?? (await openTestDatabase());
  const clock: TestApp['clock'] = { now: undefined };
  const masterKey = options.masterKey ?? randomBytes(32);
  const readClock: Clock = () => clock.now ?? systemClock();
  const services = createServices({
    db: database.db,
    secretBox: createSecretBox(masterKey),
    clock: readClock,
    propertyIndexMinRecords: options.propertyIndexMinRecords,
    jobLeaseMs: options.jobLeaseMs,
    imports: options.imports,
  });
  const rateLimiter = options.rateLimiter?.(readClock);
  const app = await buildApp({ db: database.db, services, bodyLimit: options.bodyLimit, rateLimiter });
  await app.ready();
  const worker = options.jobWorker
    ? services.jobs.startWorker({ concurrency: 1, pollMs: 250, ...(options.jobWorker === true ? {} : options.jobWorker) })
    : undefined;

  const call: TestApp['call'] = (creds, method, url, body, headers = {}) =>
    app.inject({
      method,
      url,
      headers: {
        authorization: authorization(creds, clock.now === undefined ? {} : { date: new Date(clock.now).toISOString() }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });

  return {
    app,
    database,
    services,
    masterKey,
    clock,
    call,
    async newAccount(name = 'Test account') {
      const created = await services.accounts.create({ name, ownerName: 'Owner' });
      return {
        accountId: created.accountId,
        memberId: created.owner.memberId,
        apiKey: created.key.apiKey,
        apiSecret: created.key.apiSecret,
        tenant: tenantDb(database.db, created.accountId),
      };
    },
    async addMember(account, role) {
      const member = await services.members.create(account.tenant, { name: `${role} ${randomBytes(3).toString('hex')}`, role });
      const key = await services.apiKeys.create(account.tenant, account.memberId, { memberId: member.memberId });
      return { memberId: member.memberId, apiKey: key.apiKey, apiSecret: key.apiSecret };
    },
    async close() {
      await app.close();
      await worker?.stop();
      await rateLimiter?.close();
      await services.propertyIndexes.idle();
      if (!options.database) await database.close();
    },
  };
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/**
 * Calls under /crm-core/v1, signed as `defaults()` unless other credentials are given (a getter,
 * so suites can call this before their `before` hook has made the account). `ok` asserts a 2xx
 * and returns the JSON.
 */
export function apiOf(app: () => TestApp, defaults: () => Credentials) {
  const call = (method: Method, path: string, body?: unknown, creds: Credentials = defaults()) =>
    app().call(creds, method, `/crm-core/v1${path}`, body);
  async function ok(method: Method, path: string, body?: unknown, creds: Credentials = defaults()) {
    const res = await call(method, path, body, creds);
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${res.body}`);
    return res.json();
  }
  return { call, ok };
}
