import type { FastifyInstance } from 'fastify';
import { buildApp } from './http/app.ts';
import { startTrashPurger } from './modules/trash/trash.purge.ts';
import type { Runtime } from './runtime.ts';

const NONCE_SWEEP_MS = 60_000;

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

/** Runs the HTTP server until SIGINT/SIGTERM, then drains in-flight requests and closes the database. */
export async function serve(runtime: Runtime): Promise<FastifyInstance> {
  const { config, logger } = runtime;
  if (runtime.database.driver === 'pglite') {
    logger.info({ dataDir: config.dataDir, worker: config.pgliteWorker }, 'using embedded PGlite (set DATABASE_URL for PostgreSQL)');
  }
  await bootstrapIfEmpty(runtime);
  const app = await buildApp({
    db: runtime.database.db,
    services: runtime.services,
    logger,
    bodyLimit: config.bodyLimit,
    bulkBodyLimit: config.bulkBodyLimit,
    docsEnabled: config.docsEnabled,
  });

  const sweeper = setInterval(() => {
    runtime.services.apiKeys.sweepNonces().catch((error) => logger.warn({ err: error }, 'nonce sweep failed'));
  }, NONCE_SWEEP_MS);
  sweeper.unref();
  // Expired trash (records 14 days, entities 30, configurable) is purged every 10 minutes.
  const purger = startTrashPurger({
    db: runtime.database.db,
    clock: runtime.clock,
    logger,
    recordsRetentionDays: config.recordsTrashRetentionDays,
    entitiesRetentionDays: config.entitiesTrashRetentionDays,
  });

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down: draining in-flight requests');
    clearInterval(sweeper);
    const force = setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    try {
      await app.close(); // stops listening, then waits for in-flight requests
      await purger.stop(); // a running purge stops after its current transaction
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
