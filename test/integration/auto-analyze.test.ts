import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { autovacuumRuns, startAutoAnalyzer, tablesToAnalyze, type AutoAnalyzer } from '../../src/db/auto-analyze.ts';
import { systemDb } from '../../src/db/tenant.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';

const V1 = '/crm-core/v1';

/**
 * src/db/auto-analyze.ts: where autovacuum cannot run (PGlite always; this machine's PostgreSQL has
 * it off), record writes get the records table analyzed; statistics then exist for the planner.
 */
describe('auto-analyze', () => {
  let t: TestApp;
  let account: TestAccount;
  let analyzer: AutoAnalyzer;

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
    // A long interval: the test drives it with runNow.
    analyzer = startAutoAnalyzer({ db: t.database.db, driver: t.database.driver, intervalMs: 3_600_000 });
  });
  after(async () => {
    await analyzer.stop();
    await t.close();
  });

  const lastAnalyzed = async (table: string) => {
    const { rows } = await sql<{ at: Date | null }>`
      SELECT greatest(last_analyze, last_autoanalyze) AS at FROM pg_catalog.pg_stat_user_tables
      WHERE schemaname = 'public' AND relname = ${table}`.execute(systemDb(t.database.db));
    return rows[0]?.at ?? null;
  };

  test('records written past the threshold are analyzed; a table with nothing new is left alone', async (ctx) => {
    if (await autovacuumRuns(t.database.db, t.database.driver)) {
      ctx.skip('autovacuum runs on this PostgreSQL server: the analyzer stays idle');
      return;
    }
    const entity = await t.call(account, 'POST', `${V1}/entities`, { name: 'analyze me', slug: 'analyze-me' });
    assert.equal(entity.statusCode, 201, entity.body);
    const entityId = entity.json().entityId;
    // Far past 50 + 10 % of what the table held: the suite's other files share this database.
    const counted = await sql<{ live: number }>`SELECT count(*)::int AS live FROM records`.execute(systemDb(t.database.db));
    const wanted = Math.max(1_000, Math.ceil(counted.rows[0]!.live * 0.3));
    for (let done = 0; done < wanted; done += 1_000) {
      const res = await t.call(account, 'POST', `${V1}/records/bulk`, { records: Array.from({ length: 1_000 }, (_, i) => ({ entityId, name: `r${done + i}` })) });
      assert.equal(res.statusCode, 200, res.body);
    }
    const before = await lastAnalyzed('records');

    // The writers' statistics reach pg_stat_user_tables within ~1 s on PostgreSQL (10 s at most).
    let analyzed: string[] = [];
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && !analyzed.includes('records');) {
      analyzed = await analyzer.runNow();
      if (!analyzed.includes('records')) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(analyzed.includes('records'), `records analyzed (got ${analyzed.join(', ') || 'nothing'})`);
    const at = await lastAnalyzed('records');
    assert.ok(at && (!before || at > before), 'last_analyze moved');
    const stats = await sql<{ columns: number }>`
      SELECT count(*)::int AS columns FROM pg_catalog.pg_stats WHERE schemaname = 'public' AND tablename = 'records'`.execute(systemDb(t.database.db));
    assert.ok(stats.rows[0]!.columns > 0, 'the planner has statistics for records');

    // Right after, records is below the threshold again.
    assert.ok(!(await tablesToAnalyze(t.database.db)).includes('records'));
  });
});
