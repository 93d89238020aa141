import { createClient, measure, type Client } from './lib/client.ts';
import { DEFAULT_SEED, rngFor, weighted } from './lib/generate-records.ts';
import { summarize, type Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

/**
 * Events and activities (issue 7): bulk event ingest over signed HTTP (the budget: ≥ 5,000
 * events/s), then the reads a record page and a dashboard make.
 *
 *   BENCH_EVENT_RECORDS       records the events land on (default 10,000)
 *   BENCH_EVENTS              events ingested with POST /events/bulk ×100 (default 200,000)
 *   BENCH_EVENT_CONCURRENCY   bulk requests in flight (default 8)
 *   BENCH_READS               requests per read operation (default 200)
 *   BENCH_SEED                data set seed
 *
 * The data set (a pure function of the seed): event n lands on record ⌊R·u²⌋ (a head of busy
 * records, a long tail), type page_view 60 % / email_open 25 % / purchase 10 % / signup 5 %, a
 * category per type, a value on purchases, occurredAt spread over the last 90 days, and a small
 * properties object. Reads are sequential (concurrency 1): their budgets are latencies.
 */
const RECORDS = Number(process.env.BENCH_EVENT_RECORDS ?? 10_000);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const CONCURRENCY = Number(process.env.BENCH_EVENT_CONCURRENCY ?? 8);
const READS = Number(process.env.BENCH_READS ?? 200);
const SEED = process.env.BENCH_SEED ? Number(process.env.BENCH_SEED) : DEFAULT_SEED;
const BATCH = 100;
const V1 = '/crm-core/v1';
const DAY_MS = 86_400_000;

const TYPES = ['page_view', 'email_open', 'purchase', 'signup'] as const;
const typeOf = weighted(TYPES, [60, 25, 10, 5]);
const CATEGORIES: Record<(typeof TYPES)[number], string[]> = {
  page_view: ['pricing', 'docs', 'blog', 'home'],
  email_open: ['newsletter', 'campaign'],
  purchase: ['online', 'store'],
  signup: ['trial'],
};

async function ok(client: Client, method: string, path: string, body?: unknown) {
  const res = await client.request(method, `${V1}${path}`, body);
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
  return res.body;
}

export async function eventsBench(target: Target): Promise<Summary[]> {
  const client = createClient(target.baseUrl, target.creds);
  const note = (text: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
  const tag = `[${target.engine}, ${RECORDS.toLocaleString('en')} records]`;
  const rows: Summary[] = [];
  const now = Date.now();
  try {
    const entityId = (await ok(client, 'POST', '/entities', { name: '고객', slug: 'event-customers' })).entityId as string;
    note(`loading ${RECORDS} records`);
    const recordIds: string[] = [];
    for (let b = 0; b < Math.ceil(RECORDS / 1000); b++) {
      const records = Array.from({ length: Math.min(1000, RECORDS - b * 1000) }, (_, i) => ({ entityId, name: `고객 ${b * 1000 + i}` }));
      recordIds.push(...((await ok(client, 'POST', '/records/bulk', { records })).recordIds as string[]));
    }

    const eventAt = (n: number) => {
      const r = rngFor(SEED, n);
      const record = recordIds[Math.min(RECORDS - 1, Math.floor(RECORDS * r() ** 2))]!;
      const eventType = typeOf(r());
      const categories = CATEGORIES[eventType];
      return {
        entityId,
        recordId: record,
        eventType,
        category: categories[Math.floor(r() * categories.length)],
        ...(eventType === 'purchase' ? { value: Math.round(r() * 200_000) } : {}),
        label: `${eventType} #${n}`,
        properties: { source: r() < 0.5 ? 'web' : 'app', seq: n },
        occurredAt: new Date(now - Math.floor(r() * 90 * DAY_MS)).toISOString(),
      };
    };

    note(`ingesting ${EVENTS} events, ${BATCH} per request, ${CONCURRENCY} in flight`);
    const batches = Math.ceil(EVENTS / BATCH);
    const ingest = await measure(batches, CONCURRENCY, async (b) => {
      const events = [];
      for (let n = b * BATCH; n < Math.min(EVENTS, (b + 1) * BATCH); n++) events.push(eventAt(n));
      const res = await client.request('POST', `${V1}/events/bulk`, { events });
      if (res.status < 300 && res.body.created !== events.length) throw new Error(`batch ${b}: created ${res.body.created} of ${events.length}`);
      return res;
    });
    const perSecond = (EVENTS / ingest.elapsedMs) * 1000;
    note(`ingest: ${perSecond.toFixed(0)} events/s`);
    rows.push(summarize(`POST /events/bulk ×${BATCH} ${tag} — **${perSecond.toFixed(0)} events/s**`, ingest.latencies, ingest.elapsedMs, CONCURRENCY));

    const single = await measure(READS, 1, (i) => client.request('POST', `${V1}/events`, eventAt(EVENTS + i)));
    rows.push(summarize(`POST /events (one event) ${tag}`, single.latencies, single.elapsedMs, 1));

    if (target.engine === 'postgres') {
      await target.query('SET statement_timeout = 0');
      await target.query('VACUUM (ANALYZE) events');
    }
    const total = EVENTS + READS;
    const busiest = recordIds[0]!;
    const tail = (i: number) => recordIds[RECORDS - 1 - (i % Math.min(RECORDS, 1000))]!;
    const scale = `[${target.engine}, ${total.toLocaleString('en')} events]`;
    const read = async (label: string, path: (i: number) => string) => {
      const run = await measure(READS, 1, (i) => client.request('GET', `${V1}${path(i)}`));
      rows.push(summarize(`${label} ${scale}`, run.latencies, run.elapsedMs, 1));
    };
    await read('GET /events?recordId= page 1 (busiest record)', () => `/events?recordId=${busiest}&limit=20`);
    await read('GET /events?recordId= page 1 (tail records)', (i) => `/events?recordId=${tail(i)}&limit=20`);
    await read('GET /events?entityId=&eventType=purchase page 1', () => `/events?entityId=${entityId}&eventType=purchase&limit=20`);
    await read('GET /events/summaries?recordId= (busiest record)', () => `/events/summaries?recordId=${busiest}`);
    await read('GET /events/summaries?recordId= (tail records)', (i) => `/events/summaries?recordId=${tail(i)}`);
    const entityReads = Math.max(5, Math.floor(READS / 20));
    const summaries = await measure(entityReads, 1, () => client.request('GET', `${V1}/events/summaries?entityId=${entityId}`));
    rows.push(summarize(`GET /events/summaries?entityId= (every event of the entity) ${scale}`, summaries.latencies, summaries.elapsedMs, 1));

    // Activities: a record page's writes and reads.
    const createActivity = await measure(READS, 1, (i) => client.request('POST', `${V1}/activities`, {
      recordId: recordIds[i % RECORDS], activityType: 'CALL', subject: `call ${i}`, scheduledAt: new Date(now + (i % 30) * DAY_MS).toISOString(),
    }));
    rows.push(summarize(`POST /activities ${tag}`, createActivity.latencies, createActivity.elapsedMs, 1));
    const listActivities = await measure(READS, 1, (i) => client.request('GET', `${V1}/activities?recordId=${recordIds[i % RECORDS]}`));
    rows.push(summarize(`GET /activities?recordId= ${tag}`, listActivities.latencies, listActivities.elapsedMs, 1));
    const entityActivities = await measure(READS, 1, () => client.request('GET', `${V1}/activities?entityId=${entityId}&limit=20`));
    rows.push(summarize(`GET /activities?entityId= page 1 ${tag}`, entityActivities.latencies, entityActivities.elapsedMs, 1));
    const scheduled = await measure(READS, 1, (i) => client.request('GET', `${V1}/activities/record/${recordIds[i % RECORDS]}/scheduled`));
    rows.push(summarize(`GET /activities/record/{id}/scheduled ${tag}`, scheduled.latencies, scheduled.elapsedMs, 1));
    return rows;
  } finally {
    client.close();
  }
}
