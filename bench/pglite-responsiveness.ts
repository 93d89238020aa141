// Measures how a ~1 s PGlite query affects the rest of the process, in-process
// vs. hosted in a worker thread (src/db/pglite-host), plus the worker hop cost.
//
//   node bench/pglite-responsiveness.ts [rows=400000]
//
// Health-check latency is measured from when each 20 ms poll was *due*, not when
// it was actually sent: a blocked event loop cannot even send the request, and
// an external prober polling on schedule would see exactly that delay.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { PGlite } from 'kysely';
import { createInProcessPGlite, startPGliteHost } from '../src/db/pglite-host/host.ts';

const ROWS = Number(process.argv[2] ?? 400_000);
const HEAVY_SQL = `select count(*)::int as n from generate_series(1, ${ROWS}) a(x) join generate_series(1, ${ROWS}) b(x) using (x)`;
const TICK_MS = 10;
const POLL_MS = 20;
const ROUND_TRIPS = 2_000;

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);

function startHealthServer(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'text/plain' }).end('ok');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// Polls /healthz on a fixed schedule; missed slots are sent as soon as the loop runs.
function startPolling(port: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const samples: { due: number; latency: number }[] = [];
  const inFlight = new Set<Promise<void>>();
  const t0 = performance.now();
  let slot = 0;
  let timer: NodeJS.Timeout | undefined;
  const probe = (due: number) => {
    const p = new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/healthz', agent }, (res) => {
        res.resume().on('end', () => {
          samples.push({ due, latency: performance.now() - due });
          resolve();
        });
      }).on('error', reject);
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  const loop = () => {
    const now = performance.now();
    for (; t0 + slot * POLL_MS <= now; slot++) probe(t0 + slot * POLL_MS);
    timer = setTimeout(loop, t0 + slot * POLL_MS - performance.now());
  };
  loop();
  return {
    samples,
    async stop() {
      clearTimeout(timer);
      await Promise.all(inFlight);
      agent.destroy();
    },
  };
}

async function measure(mode: string, db: PGlite, server: http.Server) {
  await db.query('select 1'); // warm up
  const ticks: number[] = [];
  const interval = setInterval(() => ticks.push(performance.now()), TICK_MS);
  const poller = startPolling((server.address() as AddressInfo).port);
  await new Promise((r) => setTimeout(r, 200)); // let polling settle

  const start = performance.now();
  const { rows } = await db.query<{ n: number }>(HEAVY_SQL, [], { rowMode: 'object' });
  const end = performance.now();

  await new Promise((r) => setTimeout(r, 100));
  clearInterval(interval);
  await poller.stop();
  if (rows[0]?.n !== ROWS) throw new Error(`unexpected result ${JSON.stringify(rows)}`);

  const during = poller.samples.filter((s) => s.due >= start && s.due <= end).map((s) => s.latency).sort((a, b) => a - b);
  const perQuery: number[] = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const t = performance.now();
    await db.query('select 1', [], { rowMode: 'object' });
    perQuery.push(performance.now() - t);
  }
  return {
    mode,
    queryMs: end - start,
    ticks: ticks.filter((t) => t >= start && t <= end).length,
    expectedTicks: Math.floor((end - start) / TICK_MS),
    checks: during.length,
    p50: percentile(during, 50),
    p99: percentile(during, 99),
    max: during.at(-1) ?? NaN,
    select1: median(perQuery),
  };
}

const server = await startHealthServer();
const results = [];
const inProcess = await createInProcessPGlite({});
results.push(await measure('in-process', inProcess, server));
await inProcess.close();
const host = await startPGliteHost({});
results.push(await measure('worker', host, server));
await host.close();
server.close();

const f = (n: number, digits = 1) => n.toFixed(digits);
console.log(`Heavy query: ${HEAVY_SQL}`);
console.log(`Node ${process.version}, ${TICK_MS} ms interval, /healthz polled every ${POLL_MS} ms (latency from due time)\n`);
console.log('| mode | query ms | ticks during query (ideal) | /healthz checks | p50 ms | p99 ms | max ms | `select 1` median ms |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of results) {
  console.log(
    `| ${r.mode} | ${f(r.queryMs, 0)} | ${r.ticks} (${r.expectedTicks}) | ${r.checks} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ${f(r.select1, 3)} |`,
  );
}
