import pino, { type Logger } from 'pino';
import type { Config } from './config.ts';
import { openDatabase, pgliteDirectory, type Database } from './db/database.ts';
import { migrateToLatest } from './db/migrate.ts';
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
  close(): Promise<void>;
}

/** Secrets never reach the logs, whatever object they ride on. */
const REDACT = ['req.headers.authorization', 'headers.authorization', 'authorization', 'apiSecret', '*.apiSecret', 'sealed_secret', '*.sealed_secret', 'masterKey'];

export function createLogger(config: Pick<Config, 'logLevel'>, destination?: pino.DestinationStream): Logger {
  return pino({ level: config.logLevel, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}

export async function openRuntime(config: Config, options: { logger?: Logger; migrate?: boolean } = {}): Promise<Runtime> {
  const logger = options.logger ?? createLogger(config);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    pgliteDir: pgliteDirectory(config.dataDir),
    pgliteWorker: config.pgliteWorker,
    poolMax: config.dbPoolMax,
    logger,
  });
  let masterKey: Buffer;
  try {
    if (options.migrate !== false) {
      const applied = await migrateToLatest(database.db);
      if (applied.length) logger.info({ applied }, 'database migrated');
    }
    masterKey = config.masterKey ?? loadOrCreateMasterKey(config.dataDir);
  } catch (error) {
    // Release the database (and the PGlite directory lock) before reporting.
    await database.close().catch(() => {});
    throw error;
  }
  const clock = systemClock;
  const services = createServices({ db: database.db, secretBox: createSecretBox(masterKey), clock });
  return { config, logger, database, services, clock, close: () => database.close() };
}
