import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import { startPeriodic } from '../lib/periodic.ts';
import type { DB } from './schema.ts';
import { systemDb } from './scope.ts';

/**
 * Keeps the planner's statistics fresh where nothing else does.
 *
 * PostgreSQL's autovacuum analyzes a table once more than 50 + 10 % of its rows changed. PGlite
 * has no autovacuum (one process, no launcher), and a PostgreSQL server can run with it off (this
 * project's CI machine does). There, tables are never analyzed, and the planner takes an entity of
 * a million records for a handful of rows: record pages' probes, for one, joined and re-sorted
 * their candidates per row (200–290 ms at 25 k records; docs/reliability.md "Load soak").
 *
 * So, only when autovacuum cannot run (PGlite, or `autovacuum` off), every `intervalMs` this reads
 * the cumulative statistics (`pg_stat_user_tables`, cheap) and runs `ANALYZE` on the tables past
 * autovacuum's default threshold, one at a time. ANALYZE reads a sample (30,000 rows at the
 * default statistics target), not the whole table.
 */
export interface AutoAnalyzer {
  /** Analyzes the tables past the threshold now (runs never overlap); resolves to their names. */
  runNow(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface AutoAnalyzeOptions {
  db: Kysely<DB>;
  driver: 'pg' | 'pglite';
  logger?: Pick<Logger, 'info' | 'warn'>;
  intervalMs?: number;
}

export const AUTO_ANALYZE_INTERVAL_MS = 60_000;

/** autovacuum_analyze_threshold and autovacuum_analyze_scale_factor, PostgreSQL's defaults. */
const THRESHOLD_ROWS = 50;
const SCALE_FACTOR = 0.1;

/** Whether PostgreSQL's own autovacuum analyzes this database (never on PGlite). */
export async function autovacuumRuns(db: Kysely<DB>, driver: 'pg' | 'pglite'): Promise<boolean> {
  if (driver === 'pglite') return false;
  const { rows } = await sql<{ setting: string }>`SELECT current_setting('autovacuum') AS setting`.execute(systemDb(db));
  return rows[0]?.setting === 'on';
}

/** The tables of the public schema changed by more than the threshold since their last ANALYZE. */
export async function tablesToAnalyze(db: Kysely<DB>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT relname AS name FROM pg_catalog.pg_stat_user_tables
    WHERE schemaname = 'public' AND n_mod_since_analyze > ${sql.lit(THRESHOLD_ROWS)} + ${sql.lit(SCALE_FACTOR)} * greatest(n_live_tup, 0)
    ORDER BY n_mod_since_analyze DESC`.execute(systemDb(db));
  return rows.map((r) => r.name);
}

export function startAutoAnalyzer(options: AutoAnalyzeOptions): AutoAnalyzer {
  const { db, driver, logger } = options;
  // Decided once: autovacuum is a server setting that needs a reload to change.
  const needed = autovacuumRuns(db, driver).then((runs) => !runs, () => false);

  const analyze = async (signal: AbortSignal): Promise<string[]> => {
    if (!(await needed)) return [];
    const done: string[] = [];
    for (const table of await tablesToAnalyze(db)) {
      if (signal.aborted) break;
      await sql`ANALYZE ${sql.table(table)}`.execute(systemDb(db));
      done.push(table);
    }
    if (done.length) logger?.info({ tables: done }, 'analyzed tables (autovacuum does not run here)');
    return done;
  };

  return startPeriodic(options.intervalMs ?? AUTO_ANALYZE_INTERVAL_MS, (signal) =>
    analyze(signal).catch((error: unknown) => {
      logger?.warn({ err: error }, 'auto-analyze failed; retried at the next interval');
      return [];
    }));
}
