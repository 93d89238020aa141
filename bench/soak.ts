import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import autocannon from 'autocannon';
import { authorization } from '../test/helpers/sign.ts';
import { createClient } from './lib/client.ts';
import { createCustomersEntity, generateCustomer, loadCustomers, STAGES } from './lib/generate-records.ts';
import { summarize, type Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

/**
 * Load soak (issue 8 item 8; docs/reliability.md "Load soak"). Loopback only: autocannon in this
 * process against the real server process of lib/target.ts.
 *
 * 1. Seeds a customers entity with BENCH_SOAK_RECORDS records (default 10,000).
 * 2. Finds the highest request rate the machine holds with p99 < 100 ms and no errors. autocannon
 *    is closed-loop (each connection sends its next request when the previous answer arrives), so
 *    the rate is set by the number of connections: runs of BENCH_SOAK_STEP_SECONDS (default 10) at
 *    1, 2, 4, 8 … connections until one fails, then bisection between the last that held and the
 *    first that failed. A run "holds" when p99 < 100 ms and no request failed (non-2xx, socket
 *    error, timeout). (autocannon's own rate limiter, `overallRate`, releases each connection's
 *    quota in a burst at the start of every second, which measures bursts, not a rate; it is not
 *    used.) BENCH_SOAK_CONNECTIONS skips the search.
 * 3. Soaks with that many connections for BENCH_SOAK_SECONDS (default 60; the issue's figure is
 *    300), reporting the rate served, p50/p95/p99/max, errors, the server's RSS (VmRSS, sampled every
 *    5 s) and, on PostgreSQL, the database's connection count, at the start and the end.
 *
 * The mix (every connection cycles through it): 10 requests = 7 reads (3 get-by-ID, a filtered and
 * sorted list, a fulltext prefix search, an advanced search, an entity read) and 3 writes (a create,
 * a PATCH of an existing record, a bulk create of 10). Every request is signed when it is sent (a
 * fresh date and salt: the server refuses replayed signatures).
 */
const RECORDS = Number(process.env.BENCH_SOAK_RECORDS ?? 10_000);
const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 60);
const STEP_SECONDS = Number(process.env.BENCH_SOAK_STEP_SECONDS ?? 10);
const FIXED_CONNECTIONS = process.env.BENCH_SOAK_CONNECTIONS ? Number(process.env.BENCH_SOAK_CONNECTIONS) : undefined;
const MAX_CONNECTIONS = 256;
const P99_BUDGET_MS = 100;
const V1 = '/crm-core/v1';

/** VmRSS of a process, in MiB. */
function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
  return kb / 1024;
}

interface RunResult {
  summary: Summary;
  served: number;
  errors: number;
  samples: string[];
  rss: number[];
  /** The same run, per operation of the mix. */
  operations: Summary[];
}

const OPERATIONS = [
  'GET /records/{id}', 'GET /records (2 filters, sorted by a DATE property)', 'POST /records', 'GET /records/{id}',
  'GET /records/search/fulltext (2-syllable prefix)', 'PATCH /records/{id}', 'GET /records/{id}', 'POST /records/search/advanced (AND of 2)',
  'GET /entities/{id}', 'POST /records/bulk ×10',
];

export async function soakBench(target: Target): Promise<Summary[]> {
  const client = createClient(target.baseUrl, target.creds);
  const { entityId, ids } = await createCustomersEntity(client, 'soak');
  const loaded = await loadCustomers(client, entityId, ids, { total: RECORDS, sampleEvery: 10 });
  client.close();
  const pool = [...loaded.sampleIds];
  let created = RECORDS;

  const pgConnections = async (): Promise<number | undefined> => {
    if (target.engine !== 'postgres') return undefined; // PGlite: one in-process connection, and query() would stop the server
    const rows = await target.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    return Number(rows[0]!.n);
  };

  const filters = encodeURIComponent(JSON.stringify({ [ids.stage]: { op: 'in', value: STAGES.slice(0, 3) }, [ids.score]: { op: 'between', value: [100, 800] } }));
  const pick = () => pool[Math.floor(Math.random() * pool.length)]!;
  const signed = (req: any, method: string, path: string, body?: unknown) => ({
    ...req,
    method,
    path,
    headers: {
      authorization: authorization(target.creds),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const remember = (status: number, body: string): void => {
    if (status !== 201) return;
    const id = JSON.parse(body).recordId;
    if (id && pool.length < 200_000) pool.push(id);
  };
  /** The mix, in the order every connection cycles through it; each builds a freshly signed request. */
  const mix: ((req: any) => any)[] = [
    (req) => signed(req, 'GET', `${V1}/records/${pick()}`),
    (req) => signed(req, 'GET', `${V1}/records?entityId=${entityId}&limit=20&sortField=${ids.joinedOn}&sortDirection=desc&filters=${filters}`),
    (req) => signed(req, 'POST', `${V1}/records`, { entityId, ...generateCustomer(created++, ids) }),
    (req) => signed(req, 'GET', `${V1}/records/${pick()}`),
    (req) => signed(req, 'GET', `${V1}/records/search/fulltext/${entityId}?q=${encodeURIComponent(generateCustomer(Math.floor(Math.random() * RECORDS), ids).name.slice(0, 2))}&limit=20`),
    (req) => signed(req, 'PATCH', `${V1}/records/${pick()}`, { data: { [ids.score]: Math.floor(Math.random() * 1000) } }),
    (req) => signed(req, 'GET', `${V1}/records/${pick()}`),
    (req) => signed(req, 'POST', `${V1}/records/search/advanced`, {
      entityId, limit: 20,
      conditionGroup: { operator: 'AND', conditions: [{ field: `data.${ids.stage}`, operator: 'eq', value: 'WON' }, { field: `data.${ids.score}`, operator: 'gte', value: Math.floor(Math.random() * 900) }] },
    }),
    (req) => signed(req, 'GET', `${V1}/entities/${entityId}`),
    (req) => signed(req, 'POST', `${V1}/records/bulk`, { records: Array.from({ length: 10 }, () => ({ entityId, ...generateCustomer(created++, ids) })) }),
  ];

  async function run(label: string, connections: number, seconds: number): Promise<RunResult> {
    const latencies: number[] = [];
    const byOperation = mix.map(() => [] as number[]);
    const samples: string[] = [];
    const rss: number[] = [rssMiB(target.pid)];
    const sampler = setInterval(() => rss.push(rssMiB(target.pid)), 5000);
    const started = performance.now();
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      const instance = autocannon({
        url: target.baseUrl,
        connections,
        duration: seconds,
        timeout: 10,
        requests: mix.map((build, i) => ({
          // Closed loop: a request is built right before it is written, so this times it per operation.
          setupRequest: (req: any, context: any) => { context.t0 = performance.now(); return build(req); },
          onResponse: (status: number, body: string, context: any) => {
            byOperation[i]!.push(performance.now() - context.t0);
            if (status >= 300 && samples.length < 5) samples.push(`${status} ${body.slice(0, 200)}`);
            if (i === 2) remember(status, body); // the single create: its ID joins the pool
          },
        })),
      }, (error, res) => (error ? reject(error) : resolve(res)));
      instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => { latencies.push(responseTime); });
      instance.on('reqError', (error: Error) => { if (samples.length < 5) samples.push(String(error)); });
    });
    clearInterval(sampler);
    rss.push(rssMiB(target.pid));
    const elapsedMs = performance.now() - started;
    const errors = result.non2xx + result.errors + result.timeouts;
    const summary = summarize(label, latencies, elapsedMs, connections);
    const operations = byOperation.map((l, i) => summarize(`  ${OPERATIONS[i]}`, l, elapsedMs, connections));
    return { summary, served: summary.throughput, errors, samples, rss, operations };
  }

  const holds = (r: RunResult) => r.summary.p99 < P99_BUDGET_MS && r.errors === 0;
  const rows: Summary[] = [];
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const step = async (connections: number) => {
    const r = await run(`search: ${connections} connections for ${STEP_SECONDS} s`, connections, STEP_SECONDS);
    r.summary.operation += ` → ${holds(r) ? 'holds' : `fails${r.errors ? ` (${r.errors} errors)` : ''}`}`;
    rows.push(r.summary);
    say(`  ${r.summary.operation}: ${r.served.toFixed(0)} req/s, p99 ${r.summary.p99.toFixed(1)} ms`);
    if (r.samples.length) say(`    e.g. ${r.samples.join(' | ')}`);
    return holds(r) ? r.served : undefined;
  };

  say(`soak: ${RECORDS} records seeded (${loaded.recordsPerSecond.toFixed(0)} rec/s); load average ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
  let connections = FIXED_CONNECTIONS;
  if (connections === undefined) {
    await run('warm-up', 4, 5);
    let good = 0;
    let goodRate = 0;
    let bad = MAX_CONNECTIONS + 1;
    for (let c = 1; c <= MAX_CONNECTIONS; c *= 2) {
      const served = await step(c);
      if (served === undefined) { bad = c; break; }
      good = c;
      goodRate = served;
    }
    while (bad - good > 1 && bad <= MAX_CONNECTIONS) {
      const mid = Math.floor((good + bad) / 2);
      const served = await step(mid);
      if (served === undefined) bad = mid;
      else { good = mid; goodRate = served; }
    }
    connections = Math.max(1, good);
    say(`highest load holding p99 < ${P99_BUDGET_MS} ms: ${good ? `${good} connections, ${goodRate.toFixed(0)} req/s` : 'none (soaking with 1 connection)'}`);
  }

  const connectionsBefore = await pgConnections();
  const loadBefore = loadavg();
  const soak = await run(`soak: ${connections} connections for ${SOAK_SECONDS} s (7 reads : 3 writes)`, connections, SOAK_SECONDS);
  const connectionsAfter = await pgConnections();
  const rssStart = soak.rss[0]!;
  const rssEnd = soak.rss[soak.rss.length - 1]!;
  soak.summary.operation += ` — errors ${soak.errors}, RSS ${rssStart.toFixed(0)} → ${rssEnd.toFixed(0)} MiB (max ${Math.max(...soak.rss).toFixed(0)})`
    + (connectionsBefore === undefined ? '' : `, pg connections ${connectionsBefore} → ${connectionsAfter}`);
  rows.push(soak.summary, ...soak.operations);
  say(`soak with ${connections} connections: ${soak.served.toFixed(1)} req/s, ${soak.summary.requests} requests, errors ${soak.errors}`);
  say(`  latency p50 ${soak.summary.p50.toFixed(2)} / p95 ${soak.summary.p95.toFixed(2)} / p99 ${soak.summary.p99.toFixed(2)} / max ${soak.summary.max.toFixed(2)} ms`);
  say(`  server RSS (MiB, every 5 s): ${soak.rss.map((n) => n.toFixed(0)).join(' ')}`);
  if (connectionsBefore !== undefined) say(`  PostgreSQL connections to the database: ${connectionsBefore} before, ${connectionsAfter} after`);
  say(`  load average before ${loadBefore.map((n) => n.toFixed(2)).join(' ')}, after ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
  if (soak.samples.length) say(`  failures, e.g. ${soak.samples.join(' | ')}`);
  return rows;
}
