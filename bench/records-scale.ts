import { createClient, type Client, type Response } from './lib/client.ts';
import { CITIES, createCustomersEntity, generateCustomer, loadCustomers, type PropertyIds } from './lib/generate-records.ts';
import { summarize, type Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

/**
 * Records at scale (issue 4): the customers data set of lib/generate-records.ts loaded through
 * POST /records/bulk, then every read budget measured over signed HTTP, then the bytes on disk.
 *
 *   BENCH_RECORDS            records to load (default 100,000; the budgets are stated at 1,000,000)
 *   BENCH_LOAD_CONCURRENCY   bulk requests in flight while loading (default 2)
 *   BENCH_SEED               data set seed (default lib/generate-records.ts DEFAULT_SEED)
 *   BENCH_READS              requests per read operation (default 300; each is capped at 20 s)
 *   BENCH_PAGE_DEPTH         the deep page timed against page 1 (default 1000)
 *
 * Reads are sequential (concurrency 1): the budgets are latencies, not throughput.
 */
const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
const LOAD_CONCURRENCY = Number(process.env.BENCH_LOAD_CONCURRENCY ?? 2);
const SEED = process.env.BENCH_SEED ? Number(process.env.BENCH_SEED) : undefined;
const READS = Number(process.env.BENCH_READS ?? 300);
const READ_CAP_MS = 20_000;
const PAGE_DEPTH = Number(process.env.BENCH_PAGE_DEPTH ?? 1000);
const V1 = '/crm-core/v1';

/** Sequential requests, at most `n` and at most READ_CAP_MS (at least 5); any non-2xx fails the run. */
async function sequential(n: number, operation: (i: number) => Promise<Response>): Promise<{ latencies: number[]; elapsedMs: number }> {
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await operation(i);
    latencies.push(performance.now() - t0);
    if (res.status >= 300) throw new Error(`request ${i} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
    if (i >= 4 && performance.now() - started > READ_CAP_MS) break;
  }
  return { latencies, elapsedMs: performance.now() - started };
}

function listUrl(entityId: string, ids: PropertyIds, startKey?: string): string {
  const filters = encodeURIComponent(JSON.stringify({
    [ids.stage]: { op: 'in', value: ['LEAD', 'CONTACTED', 'QUALIFIED'] },
    [ids.score]: { op: 'between', value: [100, 800] },
    [ids.city]: { op: 'eq', value: '서울' },
  }));
  return `${V1}/records?entityId=${entityId}&limit=20&sortField=${ids.joinedOn}&sortDirection=desc&filters=${filters}${startKey ? `&startKey=${encodeURIComponent(startKey)}` : ''}`;
}

/** A 2-level tree: OR of three ANDs over choice, number, text, checkbox, multi-choice and tags. */
function advancedBody(entityId: string, ids: PropertyIds, i: number) {
  return {
    entityId,
    conditionGroup: {
      operator: 'OR',
      conditions: [
        { operator: 'AND', conditions: [
          { field: `data.${ids.stage}`, operator: 'eq', value: 'WON' },
          { field: `data.${ids.score}`, operator: 'gte', value: 500 + (i % 5) * 50 },
        ] },
        { operator: 'AND', conditions: [
          { field: `data.${ids.grade}`, operator: 'in', value: ['GOLD', 'VIP'] },
          { field: `data.${ids.city}`, operator: 'eq', value: CITIES[1 + (i % 3)] },
        ] },
        { operator: 'AND', conditions: [
          { field: `data.${ids.consent}`, operator: 'eq', value: true },
          { field: `data.${ids.interests}`, operator: 'hasAnyOf', value: ['와인', '캠핑'] },
          { field: 'tags', operator: 'hasAnyOf', value: ['vip'] },
        ] },
      ],
    },
    limit: 20,
  };
}

/** Name prefixes people type: 2- and 3-syllable prefixes of names that exist in the data set. */
function searchTerms(ids: PropertyIds): string[] {
  const terms: string[] = [];
  for (let n = 0; terms.length < 50; n += 7919) {
    const name = generateCustomer(n % RECORDS, ids, SEED).name;
    terms.push(terms.length % 2 ? name.slice(0, 3) : name.slice(0, 2));
  }
  return terms;
}

/** Substrings that are not prefixes: the 2-syllable given name inside a 3-syllable name. */
function givenNames(ids: PropertyIds): string[] {
  const terms: string[] = [];
  for (let n = 0; terms.length < 50; n += 7919) terms.push(generateCustomer(n % RECORDS, ids, SEED).name.slice(1, 3));
  return terms;
}

/** Pairs of syllables the generator never uses: a search that matches nothing. */
const ABSENT_PAIRS = ['쀍뷁', '똠퀭', '뷁똠', '퀭쀍', '햏쀍'];

async function waitForSortIndexes(target: Target, client: Client, url: string): Promise<number> {
  // The first sort by a property asks for its index (built in the background); wait for it.
  const t0 = performance.now();
  await client.request('GET', url);
  if (target.engine === 'postgres') {
    for (;;) {
      const [row] = await target.query(`SELECT count(*)::int AS building FROM pg_index WHERE indrelid = 'records'::regclass AND NOT (indisvalid AND indisready)`);
      const [asked] = await target.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query ILIKE 'CREATE INDEX%' AND pid <> pg_backend_pid()`);
      if (row?.building === 0 && asked?.n === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  await client.request('GET', url);
  return performance.now() - t0;
}

export async function recordsScaleBench(target: Target): Promise<Summary[]> {
  const client = createClient(target.baseUrl, target.creds);
  const rows: Summary[] = [];
  const tag = `[${target.engine}, ${RECORDS.toLocaleString('en')} records]`;
  const note = (text: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
  try {
    const { entityId, ids } = await createCustomersEntity(client);

    note(`loading ${RECORDS} records, ${LOAD_CONCURRENCY} bulk requests in flight`);
    let reported = 0;
    const load = await loadCustomers(client, entityId, ids, {
      total: RECORDS,
      concurrency: LOAD_CONCURRENCY,
      seed: SEED,
      onProgress: (done) => {
        if (done - reported >= 100_000) note(`  ${(reported = done)} loaded`);
      },
    });
    const bulk = summarize(`POST /records/bulk ×1000 ${tag} — **${load.recordsPerSecond.toFixed(0)} records/s**`, load.latencies, load.elapsedMs, LOAD_CONCURRENCY);
    rows.push(bulk);
    note(`loaded: ${load.recordsPerSecond.toFixed(0)} records/s`);

    if (target.engine === 'postgres') {
      // What autovacuum would do shortly after a bulk load; done now so every run plans alike.
      const t0 = performance.now();
      await target.query('SET statement_timeout = 0');
      await target.query('VACUUM (ANALYZE) records');
      note(`VACUUM ANALYZE records: ${(performance.now() - t0).toFixed(0)} ms`);
    }

    const sample = load.sampleIds;
    const get = await sequential(Math.max(READS, 1000), (i) => client.request('GET', `${V1}/records/${sample[(i * 7919) % sample.length]}`));
    rows.push(summarize(`GET /records/{id} ${tag}`, get.latencies, get.elapsedMs, 1));

    const first = listUrl(entityId, ids);
    const indexMs = await waitForSortIndexes(target, client, first);
    note(`sort index ready after ${indexMs.toFixed(0)} ms`);
    const page1 = await sequential(READS, () => client.request('GET', first));
    rows.push(summarize(`GET /records 3 filters, sort by DATE desc, page 1 ${tag}`, page1.latencies, page1.elapsedMs, 1));

    // Walk the cursor to page 1000 once, then time that page alone.
    let startKey: string | undefined;
    const walkStarted = performance.now();
    let depth = 1;
    for (; depth < PAGE_DEPTH; depth++) {
      const res = await client.request('GET', listUrl(entityId, ids, startKey));
      if (res.status !== 200) throw new Error(`page ${depth} answered ${res.status}`);
      if (!res.body.nextKey) break;
      startKey = res.body.nextKey;
    }
    note(`walked ${depth} pages in ${(performance.now() - walkStarted).toFixed(0)} ms`);
    const deep = listUrl(entityId, ids, startKey);
    const pageN = await sequential(READS, () => client.request('GET', deep));
    rows.push(summarize(`GET /records same query, page ${depth} (saved startKey) ${tag}`, pageN.latencies, pageN.elapsedMs, 1));

    const terms = searchTerms(ids);
    const fulltext = await sequential(READS, (i) => client.request('GET', `${V1}/records/search/fulltext/${entityId}?q=${encodeURIComponent(terms[i % terms.length]!)}&limit=20`));
    rows.push(summarize(`GET /records/search/fulltext (name prefix, 2–3 syllables) ${tag}`, fulltext.latencies, fulltext.elapsedMs, 1));
    const given = givenNames(ids);
    const inside = await sequential(READS, (i) => client.request('GET', `${V1}/records/search/fulltext/${entityId}?q=${encodeURIComponent(given[i % given.length]!)}&limit=20`));
    rows.push(summarize(`GET /records/search/fulltext (given name: 2 syllables inside the name) ${tag}`, inside.latencies, inside.elapsedMs, 1));
    const absent = await sequential(Math.min(READS, 50), (i) => client.request('GET', `${V1}/records/search/fulltext/${entityId}?q=${encodeURIComponent(ABSENT_PAIRS[i % ABSENT_PAIRS.length]!)}&limit=20`));
    rows.push(summarize(`GET /records/search/fulltext (2 syllables no name holds) ${tag}`, absent.latencies, absent.elapsedMs, 1));

    const advanced = await sequential(READS, (i) => client.request('POST', `${V1}/records/search/advanced`, advancedBody(entityId, ids, i)));
    rows.push(summarize(`POST /records/search/advanced OR of 3 ANDs, page 1 ${tag}`, advanced.latencies, advanced.elapsedMs, 1));

    // Bulk create again, now that the entity has a property sort index to maintain too.
    const more = Math.min(50_000, RECORDS / 10);
    const extra = await loadCustomers(client, entityId, ids, { total: more, start: RECORDS, concurrency: LOAD_CONCURRENCY, seed: SEED });
    rows.push(summarize(`POST /records/bulk ×1000, ${more.toLocaleString('en')} more with the DATE sort index present ${tag} — **${extra.recordsPerSecond.toFixed(0)} records/s**`, extra.latencies, extra.elapsedMs, LOAD_CONCURRENCY));

    await reportSizes(target, RECORDS + more);
    return rows;
  } finally {
    client.close();
  }
}

/** Write amplification: the records table, its TOAST, and each index, per record. */
async function reportSizes(target: Target, records: number): Promise<void> {
  const indexes = await target.query(`
    SELECT c.relname AS name, pg_relation_size(c.oid)::bigint AS bytes
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = 'records'::regclass ORDER BY pg_relation_size(c.oid) DESC`);
  const [table] = await target.query(`
    SELECT pg_total_relation_size('records')::bigint AS total, pg_relation_size('records')::bigint AS heap,
           pg_indexes_size('records')::bigint AS indexes,
           pg_total_relation_size('records') - pg_relation_size('records') - pg_indexes_size('records') AS toast,
           (SELECT count(*) FROM records)::bigint AS rows`);
  const mb = (b: unknown) => (Number(b) / 1048576).toFixed(1);
  const per = (b: unknown) => (Number(b) / Number(table!.rows)).toFixed(0);
  const lines = [
    `### Bytes on disk — ${target.engine}, ${Number(table!.rows).toLocaleString('en')} records (loaded ${records.toLocaleString('en')})`,
    '',
    '| relation | MiB | bytes/record |',
    '|---|---:|---:|',
    `| records, total (heap + TOAST + indexes) | ${mb(table!.total)} | ${per(table!.total)} |`,
    `| heap | ${mb(table!.heap)} | ${per(table!.heap)} |`,
    `| TOAST + free space/visibility maps | ${mb(table!.toast)} | ${per(table!.toast)} |`,
    `| all indexes | ${mb(table!.indexes)} | ${per(table!.indexes)} |`,
    ...indexes.map((i) => `| index \`${String(i.name)}\` | ${mb(i.bytes)} | ${per(i.bytes)} |`),
  ];
  process.stdout.write(`${lines.join('\n')}\n\n`);
}
