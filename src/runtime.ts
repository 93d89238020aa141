import pino, { type Logger } from 'pino';
import type { Config } from './config.ts';
import { openDatabase, pgliteDirectory, type Database } from './db/database.ts';
import { isDatabaseUnavailable } from './db/errors.ts';
import { migrateToLatest } from './db/migrate.ts';
import { configureRowLevelSecurity, type RowLevelSecurityStatus } from './db/row-level-security.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import { loadOrCreateMasterKey } from './lib/master-key.ts';
import { createSecretBox } from './lib/secret-box.ts';
import { createServices, type Services } from './services.ts';

/** Everything a command needs: config, logger, an open and migrated database, the services. */
export interface Runtime {
  config: Config;
  logger: Logger;
  database: Database;
  services: Services;
  clock: Clock;
  /** What DATABASE_RLS achieved for the connected role (undefined when migrations were skipped); `serve` logs it. */
  rowLevelSecurity: RowLevelSecurityStatus | undefined;
  close(): Promise<void>;
}

/** Secrets never reach the logs, whatever object they ride on. */
const REDACT = ['req.headers.authorization', 'headers.authorization', 'authorization', 'apiSecret', '*.apiSecret', 'sealed_secret', '*.sealed_secret', 'masterKey'];

export function createLogger(config: Pick<Config, 'logLevel'>, destination?: pino.DestinationStream): Logger {
  return pino({ level: config.logLevel, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}

/** How long a starting node waits for its database (e.g. PostgreSQL still booting) before giving up. */
const STARTUP_WAIT_MS = 60_000;

/**
 * Migrates, retrying while the database is unreachable: nodes and their database often start
 * together, and a node that dies because PostgreSQL was a few seconds late helps nobody.
 */
async function migrateWhenReachable(database: Database, logger: Logger): Promise<void> {
  const deadline = Date.now() + STARTUP_WAIT_MS;
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      const applied = await migrateToLatest(database.db);
      if (applied.length) logger.info({ applied }, 'database migrated');
      return;
    } catch (error) {
      if (!isDatabaseUnavailable(error) || Date.now() + delay > deadline) throw error;
      logger.warn({ err: error, retryInMs: delay }, 'database unreachable at start; retrying');
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

export async function openRuntime(config: Config, options: { logger?: Logger; migrate?: boolean } = {}): Promise<Runtime> {
  const logger = options.logger ?? createLogger(config);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    pgliteDir: pgliteDirectory(config.dataDir),
    pgliteWorker: config.pgliteWorker,
    poolMax: config.dbPoolMax,
    parallelSetupCost: config.dbParallelSetupCost,
    logger,
    rowLevelSecurity: config.databaseRls,
  });
  let masterKey: Buffer;
  let rowLevelSecurity: RowLevelSecurityStatus | undefined;
  try {
    if (options.migrate !== false) {
      await migrateWhenReachable(database, logger);
      // After the migrations (on PGlite they run as its superuser, before the switch to crm_app).
      // Not logged here: CLI commands print JSON on stdout; `serve` reports it.
      rowLevelSecurity = await configureRowLevelSecurity(database, { enabled: config.databaseRls });
    }
    masterKey = config.masterKey ?? loadOrCreateMasterKey(config.dataDir);
  } catch (error) {
    // Release the database (and the PGlite directory lock) before reporting.
    await database.close().catch(() => {});
    throw error;
  }
  const clock = systemClock;
  const services = createServices({
    db: database.db,
    secretBox: createSecretBox(masterKey),
    clock,
    idempotencyPendingTimeoutMs: config.idempotencyPendingTimeoutMs,
    imports: { maxFileBytes: config.importMaxFileBytes },
    onBackgroundError: (error, context) => logger.warn({ err: error, ...context }, 'background task failed; retried on next use'),
  });
  return { config, logger, database, services, clock, rowLevelSecurity, close: () => database.close() };
}
