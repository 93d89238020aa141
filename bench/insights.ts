import { createClient, measure, type Client } from './lib/client.ts';
import { createCustomersEntity, loadCustomers } from './lib/generate-records.ts';
import { summarize, type Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

/**
 * Issue 7's insights budget over BENCH_RECORDS customers (default 100,000; the budget is stated
 * at 1,000,000): POST /records/aggregate grouped by a dropdown ≤ 500 ms on PostgreSQL, plus the
 * other groupings (multi-choice, date buckets in a zone, filtered), the board view and the
 * widgets endpoint. Only when named: `npm run bench -- insights`.
 *
 *   BENCH_RECORDS   records to load (default 100,000)
 *   BENCH_READS     requests per operation (default 20)
 */
const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
const READS = Number(process.env.BENCH_READS ?? 20);
const V1 = '/crm-core/v1';

async function ok(client: Client, method: string, path: string, body?: unknown) {
  const res = await client.request(method, `${V1}${path}`, body);
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
  return res.body;
}

export async function insightsBench(target: Target): Promise<Summary[]> {
  const client = createClient(target.baseUrl, target.creds);
  const tag = `[${target.engine}, ${RECORDS.toLocaleString('en')} records]`;
  const note = (text: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
  const rows: Summary[] = [];
  const time = async (label: string, n: number, path: string, method = 'POST', body?: (i: number) => unknown) => {
    // One warm-up request (and its answer checked), then n measured ones.
    await ok(client, method, path, body?.(0));
    const run = await measure(n, 1, async (i) => {
      const res = await client.request(method, `${V1}${path}`, body?.(i));
      if (res.status >= 300) throw new Error(`${label} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
      return res;
    });
    rows.push(summarize(`${label} ${tag}`, run.latencies, run.elapsedMs, 1));
  };
  try {
    const { entityId, ids } = await createCustomersEntity(client, 'insight-customers');
    note(`loading ${RECORDS} records`);
    await loadCustomers(client, entityId, ids, { total: RECORDS, concurrency: 2 });
    if (target.engine === 'postgres') {
      await target.query('SET statement_timeout = 0');
      await target.query('VACUUM (ANALYZE) records');
    }
    note('measuring');
    const aggregate = (extra: Record<string, unknown>) => () => ({ entityId, ...extra });

    await time('POST /records/aggregate count by dropdown', READS, '/records/aggregate', 'POST', aggregate({ groupBy: ids.stage }));
    await time('POST /records/aggregate count+sum+avg by dropdown', READS, '/records/aggregate', 'POST',
      aggregate({ groupBy: ids.stage, metrics: [{ op: 'count' }, { op: 'sum', propertyId: ids.score }, { op: 'avg', propertyId: ids.score }] }));
    await time('POST /records/aggregate by MULTI_CHECKBOX', READS, '/records/aggregate', 'POST', aggregate({ groupBy: ids.interests }));
    await time('POST /records/aggregate DATETIME by month, Asia/Seoul', READS, '/records/aggregate', 'POST',
      aggregate({ groupBy: ids.lastContactAt, dateBucket: 'month', timeZone: 'Asia/Seoul' }));
    await time('POST /records/aggregate filtered (2 conditions) by radio', READS, '/records/aggregate', 'POST', aggregate({
      groupBy: ids.grade,
      metrics: [{ op: 'sum', propertyId: ids.score }],
      conditionGroup: { operator: 'AND', conditions: [{ field: `data.${ids.consent}`, operator: 'eq', value: true }, { field: `data.${ids.score}`, operator: 'gte', value: 500 }] },
    }));

    await ok(client, 'PATCH', `/entities/${entityId}`, {
      viewSettings: { board: { groupByPropertyId: ids.stage, sumPropertyId: ids.score, closedWonValues: ['WON'], closedLostValues: ['LOST'], dealRotting: { enabled: true, days: 30 } } },
      insightWidgets: [
        { widgetId: 'kpi', type: 'KPI', title: 'customers', metric: { op: 'count' } },
        { widgetId: 'stages', type: 'FUNNEL', title: 'stages', metric: { op: 'count' }, groupBy: ids.stage },
        { widgetId: 'joined', type: 'BAR', title: 'joined per month', metric: { op: 'count' }, groupBy: ids.joinedOn, dateBucket: 'month' },
      ],
    });
    await time('GET /entities/{id}/board (7 columns × 20 cards)', Math.max(5, Math.floor(READS / 2)), `/entities/${entityId}/board`, 'GET');
    await time('GET /entities/{id}/insights (3 widgets)', Math.max(5, Math.floor(READS / 2)), `/entities/${entityId}/insights?timeZone=Asia/Seoul`, 'GET');
    return rows;
  } finally {
    client.close();
  }
}
