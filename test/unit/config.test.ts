import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

const KEY = randomBytes(32);
const KEY_B64 = KEY.toString('base64');
const PG = 'postgres://crm@db.internal:5432/crm';

function rejects(env: Record<string, string>, pattern: RegExp) {
  assert.throws(() => loadConfig(env), (error: unknown) => {
    assert.ok(error instanceof ConfigError, `ConfigError expected, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  }, JSON.stringify(env));
}

describe('configuration (environment → Config)', () => {
  test('defaults: PGlite in ./data, 127.0.0.1:3000, 1 MiB / 10 MiB bodies', () => {
    const config = loadConfig({});
    assert.deepEqual({ ...config }, {
      host: '127.0.0.1',
      port: 3000,
      databaseUrl: undefined,
      dataDir: resolve('data'),
      pgliteWorker: true,
      dbPoolMax: 10,
      dbParallelSetupCost: 10_000,
      masterKey: undefined,
      logLevel: 'info',
      bodyLimit: 1024 * 1024,
      bulkBodyLimit: 10 * 1024 * 1024,
      shutdownTimeoutMs: 10_000,
      docsEnabled: true,
      recordsTrashRetentionDays: 14,
      entitiesTrashRetentionDays: 30,
      rateLimitPerKey: undefined,
      rateLimitPerAccount: undefined,
      redisUrl: undefined,
      rateLimitRedisPrefix: 'crm-core:ratelimit:',
      idempotencyPendingTimeoutMs: 60_000,
      databaseRls: true,
      publicBaseUrl: undefined,
      jobsConcurrency: 1,
      importMaxFileBytes: 10 * 1024 * 1024,
    });
    assert.ok(Object.isFrozen(config));
  });

  test('empty strings count as unset', () => {
    const config = loadConfig({ HOST: '', PORT: '', DATABASE_URL: '', DATA_DIR: '', PGLITE_WORKER: '', DB_POOL_MAX: '', DB_PARALLEL_SETUP_COST: '', MASTER_KEY: '', LOG_LEVEL: '', BODY_LIMIT: '', DOCS_ENABLED: '' });
    assert.deepEqual({ ...config }, { ...loadConfig({}) });
  });

  test('reads every setting', () => {
    const config = loadConfig({
      HOST: '0.0.0.0',
      PORT: '8080',
      DATABASE_URL: PG,
      DATA_DIR: 'var/crm',
      PGLITE_WORKER: 'false',
      DB_POOL_MAX: '25',
      DB_PARALLEL_SETUP_COST: '2500',
      MASTER_KEY: KEY_B64,
      LOG_LEVEL: 'debug',
      BODY_LIMIT: '2048',
      BULK_BODY_LIMIT: '4096',
      SHUTDOWN_TIMEOUT_MS: '0',
      DOCS_ENABLED: 'off',
    });
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, 8080);
    assert.equal(config.databaseUrl, PG);
    assert.equal(config.dataDir, resolve('var/crm'));
    assert.equal(config.pgliteWorker, false);
    assert.equal(config.dbPoolMax, 25);
    assert.equal(config.dbParallelSetupCost, 2500);
    assert.ok(config.masterKey?.equals(KEY));
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.bodyLimit, 2048);
    assert.equal(config.bulkBodyLimit, 4096);
    assert.equal(config.shutdownTimeoutMs, 0);
    assert.equal(config.docsEnabled, false);
  });

  test('booleans: 1/true/yes/on and 0/false/no/off, any case', () => {
    for (const raw of ['1', 'true', 'TRUE', 'Yes', 'on']) assert.equal(loadConfig({ DOCS_ENABLED: raw }).docsEnabled, true, raw);
    for (const raw of ['0', 'false', 'False', 'NO', 'off']) assert.equal(loadConfig({ PGLITE_WORKER: raw }).pgliteWorker, false, raw);
  });

  test('integer edges are inclusive', () => {
    assert.equal(loadConfig({ PORT: '0' }).port, 0);
    assert.equal(loadConfig({ PORT: '65535' }).port, 65535);
    assert.equal(loadConfig({ DB_POOL_MAX: '1' }).dbPoolMax, 1);
    assert.equal(loadConfig({ DB_PARALLEL_SETUP_COST: '0' }).dbParallelSetupCost, 0);
    assert.equal(loadConfig({ BODY_LIMIT: '1024' }).bodyLimit, 1024);
    assert.equal(loadConfig({ SHUTDOWN_TIMEOUT_MS: '600000' }).shutdownTimeoutMs, 600_000);
  });

  test('PUBLIC_BASE_URL: an http(s) origin (with an optional path), trailing slashes dropped', () => {
    assert.equal(loadConfig({ PUBLIC_BASE_URL: 'https://crm.example.com/' }).publicBaseUrl, 'https://crm.example.com');
    assert.equal(loadConfig({ PUBLIC_BASE_URL: 'http://10.0.0.5:8080/crm' }).publicBaseUrl, 'http://10.0.0.5:8080/crm');
    for (const bad of ['crm.example.com', 'ftp://x', 'https://x/?q=1', 'https://a b']) rejects({ PUBLIC_BASE_URL: bad }, /PUBLIC_BASE_URL/);
    rejects({ JOBS_CONCURRENCY: '65' }, /JOBS_CONCURRENCY/);
  });

  test('bad numbers are rejected with ConfigError naming the variable', () => {
    for (const [name, raw] of [
      ['PORT', 'abc'],
      ['PORT', '-1'],
      ['PORT', '65536'],
      ['PORT', '80.5'],
      ['PORT', '0x50'],
      ['PORT', '1e3'],
      ['PORT', '+80'],
      ['PORT', '   '],
      ['PORT', '80 http'],
      ['DB_POOL_MAX', '0'],
      ['DB_POOL_MAX', '1001'],
      ['DB_PARALLEL_SETUP_COST', '-1'],
      ['DB_PARALLEL_SETUP_COST', '1000000001'],
      ['BODY_LIMIT', '1023'],
      ['BULK_BODY_LIMIT', 'ten megabytes'],
      ['SHUTDOWN_TIMEOUT_MS', '600001'],
      ['SHUTDOWN_TIMEOUT_MS', 'Infinity'],
    ] as const) {
      rejects({ [name]: raw }, new RegExp(`^${name} must be an integer between`));
    }
  });

  test('bad booleans and log levels are rejected', () => {
    for (const raw of ['maybe', 'enabled', '2', 'y']) {
      rejects({ PGLITE_WORKER: raw }, /^PGLITE_WORKER must be true or false/);
      rejects({ DOCS_ENABLED: raw }, /^DOCS_ENABLED must be true or false/);
    }
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) assert.equal(loadConfig({ LOG_LEVEL: level }).logLevel, level);
    for (const raw of ['verbose', 'INFO', 'warning', '30']) rejects({ LOG_LEVEL: raw }, /^LOG_LEVEL must be one of/);
  });

  test('MASTER_KEY: 32 bytes of base64, nothing else', () => {
    assert.ok(loadConfig({ MASTER_KEY: KEY_B64 }).masterKey?.equals(KEY));
    assert.ok(loadConfig({ MASTER_KEY: `${KEY_B64}\n` }).masterKey?.equals(KEY), 'a trailing newline (from a file) is fine');
    assert.ok(loadConfig({ MASTER_KEY: KEY.toString('base64url') }).masterKey?.equals(KEY), 'URL-safe base64 too');
    for (const raw of [
      randomBytes(16).toString('base64'),
      randomBytes(31).toString('base64'),
      randomBytes(33).toString('base64'),
      KEY.toString('hex'), // 64 hex characters decode to 48 bytes
      'not a key at all',
      `${KEY_B64.slice(0, 43)}!`, // 43 valid characters + garbage would decode to 32 bytes
      `${KEY_B64.slice(0, 20)}*${KEY_B64.slice(20)}`,
    ]) {
      rejects({ MASTER_KEY: raw }, /^MASTER_KEY must be 32 bytes/);
    }
  });

  test('DATABASE_URL requires MASTER_KEY (every API node must open the same secrets)', () => {
    rejects({ DATABASE_URL: PG }, /MASTER_KEY is required with DATABASE_URL/);
    rejects({ DATABASE_URL: PG, MASTER_KEY: '' }, /MASTER_KEY is required with DATABASE_URL/);
    rejects({ DATABASE_URL: PG, MASTER_KEY: 'short' }, /^MASTER_KEY must be 32 bytes/);
    const config = loadConfig({ DATABASE_URL: PG, MASTER_KEY: KEY_B64 });
    assert.equal(config.databaseUrl, PG);
    assert.ok(config.masterKey?.equals(KEY));
    // Without DATABASE_URL the key is optional (PGlite generates one in DATA_DIR).
    assert.equal(loadConfig({ DATA_DIR: '/tmp/x' }).masterKey, undefined);
  });

  test('reads process.env by default and never mutates the given environment', () => {
    const env = { PORT: '4000' };
    loadConfig(env);
    assert.deepEqual(env, { PORT: '4000' });
    const names = ['PORT', 'DATABASE_URL', 'MASTER_KEY'] as const;
    const saved = names.map((name) => process.env[name]);
    try {
      delete process.env.DATABASE_URL;
      delete process.env.MASTER_KEY;
      process.env.PORT = '4321';
      assert.equal(loadConfig().port, 4321);
    } finally {
      names.forEach((name, i) => {
        if (saved[i] === undefined) delete process.env[name];
        else process.env[name] = saved[i];
      });
    }
  });
});
