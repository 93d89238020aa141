import type { FastifyInstance } from 'fastify';
import { startAutoAnalyzer } from './db/auto-analyze.ts';
import { reportRowLevelSecurity } from './db/row-level-security.ts';
import { buildApp } from './http/app.ts';
import { createRateLimiter, memoryCounterStore, redisCounterStore, type RateLimiter } from './lib/rate-limiter.ts';
import { startTrashPurger } from './modules/trash/trash.purge.ts';
import type { Runtime } from './runtime.ts';

const NONCE_SWEEP_MS = 60_000;
/** Expired Idempotency-Keys (older than 24 h) are deleted this often. */
const IDEMPOTENCY_SWEEP_MS = 10 * 60_000;
const JOBS_SWEEP_MS = 10 * 60_000;
/** Sort indexes of deleted properties cost every record write until dropped. */
const SORT_INDEX_SWEEP_MS = 60 * 60_000;

/** Prints the first account's credentials once, on a brand-new database. */
export async function bootstrapIfEmpty(runtime: Runtime): Promise<void> {
  if (await runtime.services.accounts.anyExists()) return;
  const account = await runtime.services.accounts.create({ name: 'Default account', ownerName: 'Owner' });
  process.stdout.write(
    [
      '',
      'crm-core: created the first account. Save the secret now: it is shown only this once.',
      `  accountId : ${account.accountId}`,
      `  memberId  : ${account.owner.memberId} (OWNER)`,
      `  apiKey    : ${account.key.apiKey}`,
      `  apiSecret : ${account.key.apiSecret}`,
      '',
    ].join('\n') + '\n',
  );
}

/** The rate limiter the configuration asks for, or undefined (no RATE_LIMIT_* set: the default). */
function openRateLimiter(runtime: Runtime): RateLimiter | undefined {
  const { config, logger } = runtime;
  if (!config.rateLimitPerKey && !config.rateLimitPerAccount) return undefined;
  const store = config.redisUrl ? redisCounterStore(config.redisUrl, { logger }) : memoryCounterStore();
  logger.info(
    { perKey: config.rateLimitPerKey, perAccount: config.rateLimitPerAccount, store: config.redisUrl ? 'redis' : 'memory' },
    'rate limiting enabled',
  );
  return createRateLimiter({
    rules: { perKey: config.rateLimitPerKey, perAccount: config.rateLimitPerAccount },
    store,
    clock: runtime.clock,
    prefix: config.rateLimitRedisPrefix,
    logger,
  });
}

/** Runs the HTTP server until SIGINT/SIGTERM, then drains in-flight requests and closes the database. */
export async function serve(runtime: Runtime): Promise<FastifyInstance> {
  const { config, logger } = runtime;
  if (runtime.database.driver === 'pglite') {
    logger.info({ dataDir: config.dataDir, worker: config.pgliteWorker }, 'using embedded PGlite (set DATABASE_URL for PostgreSQL)');
  }
  if (runtime.rowLevelSecurity) reportRowLevelSecurity(runtime.rowLevelSecurity, config.databaseRls, logger);
  await bootstrapIfEmpty(runtime);
  const rateLimiter = openRateLimiter(runtime);
  const app = await buildApp({
    db: runtime.database.db,
    services: runtime.services,
    logger,
    bodyLimit: config.bodyLimit,
    bulkBodyLimit: config.bulkBodyLimit,
    docsEnabled: config.docsEnabled,
    rateLimiter,
    publicBaseUrl: config.publicBaseUrl,
  });

  const sweeper = setInterval(() => {
    runtime.services.apiKeys.sweepNonces().catch((error) => logger.warn({ err: error }, 'nonce sweep failed'));
  }, NONCE_SWEEP_MS);
  sweeper.unref();
  const idempotencySweeper = setInterval(() => {
    runtime.services.idempotency.sweepExpired().catch((error) => logger.warn({ err: error }, 'idempotency key sweep failed'));
  }, IDEMPOTENCY_SWEEP_MS);
  idempotencySweeper.unref();
  // Finished jobs and stored files past their retention (exports: 24 h; failed jobs: 7 days).
  const jobsSweeper = setInterval(() => {
    runtime.services.jobs.sweepExpired().catch((error) => logger.warn({ err: error }, 'job sweep failed'));
    runtime.services.files.sweepExpired().catch((error) => logger.warn({ err: error }, 'file sweep failed'));
  }, JOBS_SWEEP_MS);
  jobsSweeper.unref();
  const sortIndexSweeper = setInterval(() => {
    runtime.services.propertyIndexes.sweepOrphans()
      .then((dropped) => { if (dropped.length > 0) logger.info({ dropped }, 'dropped the sort indexes of deleted properties'); })
      .catch((error: unknown) => logger.warn({ err: error }, 'sort index sweep failed'));
  }, SORT_INDEX_SWEEP_MS);
  sortIndexSweeper.unref();
  const worker = runtime.services.jobs.startWorker({
    concurrency: config.jobsConcurrency,
    onError: (error, context) => logger.warn({ err: error, ...context }, 'background job trouble'),
  });
  // Expired trash (records 14 days, entities 30, configurable) is purged every 10 minutes.
  const purger = startTrashPurger({
    db: runtime.database.db,
    hooks: runtime.services.segments,
    clock: runtime.clock,
    logger,
    recordsRetentionDays: config.recordsTrashRetentionDays,
    entitiesRetentionDays: config.entitiesTrashRetentionDays,
  });

  // PGlite (and PostgreSQL with autovacuum off) never analyze by themselves.
  const analyzer = startAutoAnalyzer({ db: runtime.database.db, driver: runtime.database.driver, logger });

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down: draining in-flight requests');
    clearInterval(sweeper);
    clearInterval(idempotencySweeper);
    clearInterval(jobsSweeper);
    clearInterval(sortIndexSweeper);
    const force = setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    try {
      await app.close(); // stops listening, then waits for in-flight requests
      await worker.stop(); // running jobs are given back, to be resumed by any node
      await rateLimiter?.close();
      await purger.stop(); // a running purge stops after its current transaction
      await analyzer.stop();
      await runtime.close();
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
    logger.info('shut down cleanly');
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));

  await app.listen({ host: config.host, port: config.port });
  return app;
}
