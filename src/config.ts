import { resolve } from 'node:path';
import { parseRateLimitRule, type RateLimitRule } from './lib/rate-limiter.ts';

/**
 * Every setting the server reads, parsed once at boot from the environment. Nothing else
 * reads process.env. The README's configuration table mirrors this list.
 */
export interface Config {
  host: string;
  port: number;
  /** PostgreSQL connection string; when absent the embedded PGlite database is used. */
  databaseUrl: string | undefined;
  /** Where PGlite keeps its files and where a generated master key is stored. */
  dataDir: string;
  /** Host PGlite in a worker thread so a long query cannot stall the HTTP event loop. */
  pgliteWorker: boolean;
  dbPoolMax: number;
  dbParallelSetupCost: number;
  /**
   * Row-level security as defence in depth (DATABASE_RLS, default on): every query runs with its
   * account in the session so the tenant policies bind it (src/db/row-level-security.ts).
   */
  databaseRls: boolean;
  /** 32-byte key sealing API secrets at rest (base64). Required with DATABASE_URL. */
  masterKey: Buffer | undefined;
  logLevel: string;
  bodyLimit: number;
  bulkBodyLimit: number;
  shutdownTimeoutMs: number;
  docsEnabled: boolean;
  /** Days a trashed record stays restorable before the purge deletes it (API.md §5: 14). */
  recordsTrashRetentionDays: number;
  /** Days a trashed entity stays restorable before the purge deletes it and all that hangs off it (API.md §3: 30). */
  entitiesTrashRetentionDays: number;
  /** Requests per API key per window (RATE_LIMIT_PER_KEY, e.g. `100/s`); undefined = unlimited (the default). */
  rateLimitPerKey: RateLimitRule | undefined;
  /** Requests per account per window, all its keys together (RATE_LIMIT_PER_ACCOUNT, e.g. `6000/m`). */
  rateLimitPerAccount: RateLimitRule | undefined;
  /** Redis shared by every node for rate-limit counters; in-process counters when absent. */
  redisUrl: string | undefined;
  /** Prefix of the rate-limit keys in Redis (several deployments may share one Redis). */
  rateLimitRedisPrefix: string;
  /** A pending Idempotency-Key claim older than this is taken over by a retry (its process died). */
  idempotencyPendingTimeoutMs: number;
  /** The server's public origin (PUBLIC_BASE_URL), used in links it hands out (export downloadUrl). */
  publicBaseUrl: string | undefined;
  /** Background jobs (exports, imports) one process runs at a time (JOBS_CONCURRENCY; 0 = this node runs none). */
  jobsConcurrency: number;
  /** Largest file a record import accepts, in bytes (IMPORT_MAX_FILE_BYTES; 413 above it). */
  importMaxFileBytes: number;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  // Plain decimal digits only: Number() would also take "0x50", "1e3" or "  " (= 0).
  const value = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function masterKey(env: Env): Buffer | undefined {
  const raw = env.MASTER_KEY;
  if (raw === undefined || raw === '') return undefined;
  // Buffer.from(…, 'base64') skips characters outside the alphabet, so a mangled key would
  // silently become another key: check the text first (standard or URL-safe alphabet).
  const text = raw.trim();
  const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
  if (key.length !== 32) throw new ConfigError('MASTER_KEY must be 32 bytes, base64-encoded (openssl rand -base64 32)');
  return key;
}

function rateLimit(env: Env, name: string): RateLimitRule | undefined {
  const rule = parseRateLimitRule(env[name]);
  if (rule instanceof Error) throw new ConfigError(`${name} ${rule.message}, got "${env[name]}"`);
  return rule;
}

function publicBaseUrl(env: Env): string | undefined {
  const raw = env.PUBLIC_BASE_URL?.trim();
  if (!raw) return undefined;
  if (!/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(raw)) throw new ConfigError(`PUBLIC_BASE_URL must be an http(s) origin like https://crm.example.com, got "${raw}"`);
  return raw.replace(/\/+$/, '');
}

function redisUrl(env: Env): string | undefined {
  const raw = env.REDIS_URL;
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^rediss?:\/\//.test(raw.trim())) throw new ConfigError('REDIS_URL must start with redis:// or rediss://');
  return raw.trim();
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function logLevel(env: Env): string {
  const raw = env.LOG_LEVEL;
  if (raw === undefined || raw === '') return 'info';
  if (!LOG_LEVELS.includes(raw)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${raw}"`);
  return raw;
}

export function loadConfig(env: Env = process.env): Config {
  const databaseUrl = env.DATABASE_URL || undefined;
  const key = masterKey(env);
  if (databaseUrl && !key) {
    throw new ConfigError(
      'MASTER_KEY is required with DATABASE_URL so every API node can open API secrets (openssl rand -base64 32)',
    );
  }
  return Object.freeze({
    host: env.HOST || '127.0.0.1',
    port: integer(env, 'PORT', 3000, 0, 65535),
    databaseUrl,
    dataDir: resolve(env.DATA_DIR || 'data'),
    pgliteWorker: boolean(env, 'PGLITE_WORKER', true),
    dbPoolMax: integer(env, 'DB_POOL_MAX', 10, 1, 1000),
    dbParallelSetupCost: integer(env, 'DB_PARALLEL_SETUP_COST', 10_000, 0, 1_000_000_000),
    databaseRls: boolean(env, 'DATABASE_RLS', true),
    masterKey: key,
    logLevel: logLevel(env),
    bodyLimit: integer(env, 'BODY_LIMIT', 1024 * 1024, 1024, 1024 * 1024 * 1024),
    bulkBodyLimit: integer(env, 'BULK_BODY_LIMIT', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    docsEnabled: boolean(env, 'DOCS_ENABLED', true),
    recordsTrashRetentionDays: integer(env, 'RECORDS_TRASH_RETENTION_DAYS', 14, 1, 36_500),
    entitiesTrashRetentionDays: integer(env, 'ENTITIES_TRASH_RETENTION_DAYS', 30, 1, 36_500),
    rateLimitPerKey: rateLimit(env, 'RATE_LIMIT_PER_KEY'),
    rateLimitPerAccount: rateLimit(env, 'RATE_LIMIT_PER_ACCOUNT'),
    redisUrl: redisUrl(env),
    rateLimitRedisPrefix: env.RATE_LIMIT_REDIS_PREFIX || 'crm-core:ratelimit:',
    idempotencyPendingTimeoutMs: integer(env, 'IDEMPOTENCY_PENDING_TIMEOUT_SECONDS', 60, 1, 86_400) * 1000,
    publicBaseUrl: publicBaseUrl(env),
    jobsConcurrency: integer(env, 'JOBS_CONCURRENCY', 1, 0, 64),
    importMaxFileBytes: integer(env, 'IMPORT_MAX_FILE_BYTES', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
  });
}
