import { createClient, type Client, type Response } from './lib/client.ts';
import { DEFAULT_SEED, rngFor, weighted } from './lib/generate-records.ts';
import { summarize, type Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

/**
 * Relationships at scale (issue 5): companies and deals loaded through the HTTP API, each deal
 * linked to one company, then the relationship reads and writes timed over signed HTTP.
 *
 *   BENCH_COMPANIES          companies (default 10,000; the scale is 100,000)
 *   BENCH_DEALS              deals (default 100,000; the scale is 1,000,000)
 *   BENCH_LOAD_CONCURRENCY   bulk requests in flight while loading (default 2)
 *   BENCH_LINK_CONCURRENCY   POST /relationships/bulk requests in flight while linking (default 4)
 *   BENCH_READS              requests per read operation (default 200; each is capped at 20 s)
 *   BENCH_SEED               data set seed (default lib/generate-records.ts DEFAULT_SEED)
 *
 * The data set (a pure function of the seed, like lib/generate-records.ts):
 * - deal n belongs to the company of popularity rank ⌊C·u³⌋ (u uniform): a heavy head (the top
 *   company has ~2 % of all deals) and a tail of ~3 deals per company; ranks are scattered over
 *   the companies by a fixed permutation, so creation order says nothing about popularity;
 * - deal stages LEAD 40 %, QUALIFIED 25 %, NEGOTIATION 20 %, WON 15 %;
 * - each company's deals are linked with POST /relationships/bulk (the company as the single
 *   source, its deals as targets, ≤10,000 per request) along "소속 회사" (deals → companies), so the
 *   filtered companies are the type's target side;
 * - 200 contacts linked to 200 companies along a second type: a small entity among 1 M links,
 *   for GET /relationships/list?entityId=.
 *
 * Reads are sequential (concurrency 1): the budgets are latencies. On PostgreSQL the tables get
 * VACUUM (ANALYZE) after loading, as autovacuum would shortly after a bulk load.
 */
const COMPANIES = Number(process.env.BENCH_COMPANIES ?? 10_000);
const DEALS = Number(process.env.BENCH_DEALS ?? 100_000);
const LOAD_CONCURRENCY = Number(process.env.BENCH_LOAD_CONCURRENCY ?? 2);
const LINK_CONCURRENCY = Number(process.env.BENCH_LINK_CONCURRENCY ?? 4);
const READS = Number(process.env.BENCH_READS ?? 200);
const SEED = process.env.BENCH_SEED ? Number(process.env.BENCH_SEED) : DEFAULT_SEED;
const READ_CAP_MS = 20_000;
const MATCH_BATCH = 5_000;
const CONTACTS = Math.min(200, COMPANIES);
const V1 = '/crm-core/v1';

const STAGES = ['LEAD', 'QUALIFIED', 'NEGOTIATION', 'WON'] as const;
const stageOf = weighted(STAGES, [40, 25, 20, 15]);
/** A multiplier coprime with the company count: rank → company is a permutation. */
const SCATTER = [7919, 7907, 7901].find((p) => COMPANIES % p !== 0)!;

/** Deal n of the data set: its company (index) and stage. */
export function generateDeal(n: number, seed = SEED): { company: number; stage: (typeof STAGES)[number] } {
  const r = rngFor(seed, n);
  const rank = Math.min(COMPANIES - 1, Math.floor(COMPANIES * r() ** 3));
  return { company: (rank * SCATTER + 12_345) % COMPANIES, stage: stageOf(r()) };
}

/** Sequential requests, at most `n` and at most READ_CAP_MS (at least 5); any non-2xx fails the run. */
async function sequential(n: number, operation: (i: number) => Promise<Response>): Promise<{ latencies: number[]; elapsedMs: number; last: Response }> {
  const latencies: number[] = [];
  const started = performance.now();
  let last: Response | undefined;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    last = await operation(i);
    latencies.push(performance.now() - t0);
    if (last.status >= 300) throw new Error(`request ${i} answered ${last.status}: ${JSON.stringify(last.body).slice(0, 300)}`);
    if (i >= 4 && performance.now() - started > READ_CAP_MS) break;
  }
  return { latencies, elapsedMs: performance.now() - started, last: last! };
}

/** `concurrency` workers taking batch numbers 0…batches-1; returns per-request latencies. */
async function parallel(batches: number, concurrency: number, operation: (b: number) => Promise<void>): Promise<{ latencies: number[]; elapsedMs: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < batches) {
      const b = next++;
      const t0 = performance.now();
      await operation(b);
      latencies.push(performance.now() - t0);
    }
  }));
  return { latencies, elapsedMs: performance.now() - started };
}

async function ok(client: Client, method: 'GET' | 'POST', path: string, body?: object) {
  const res = await client.request(method, `${V1}${path}`, body);
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
  return res.body;
}

/** Creates `total` records 1000 per POST /records/bulk; returns their IDs in generation order. */
async function loadRecords(client: Client, total: number, item: (n: number) => object) {
  const ids: string[] = new Array(total);
  const run = await parallel(Math.ceil(total / 1000), LOAD_CONCURRENCY, async (b) => {
    const records = [];
    for (let n = b * 1000; n < Math.min(total, (b + 1) * 1000); n++) records.push(item(n));
    const res = await ok(client, 'POST', '/records/bulk', { records });
    if (res.failed?.length) throw new Error(`records bulk ${b}: ${res.failed.length} failed, first ${JSON.stringify(res.failed[0])}`);
    (res.recordIds as string[]).forEach((id, i) => { ids[b * 1000 + i] = id; });
  });
  return { ids, ...run };
}

export async function relationshipsBench(target: Target): Promise<Summary[]> {
  const client = createClient(target.baseUrl, target.creds);
  const rows: Summary[] = [];
  const scale = `${COMPANIES.toLocaleString('en')} × ${DEALS.toLocaleString('en')}`;
  const tag = `[${target.engine}, ${scale}]`;
  const note = (text: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
  try {
    const companies = (await ok(client, 'POST', '/entities', { name: '회사', slug: 'companies' })).entityId as string;
    const deals = (await ok(client, 'POST', '/entities', { name: '딜', slug: 'deals' })).entityId as string;
    const contacts = (await ok(client, 'POST', '/entities', { name: '담당자', slug: 'contacts' })).entityId as string;
    const prop = async (entityId: string, name: string, fieldType: string, extra: object = {}) =>
      (await ok(client, 'POST', '/properties', { entityId, name, fieldType, ...extra })).propertyId as string;
    const code = await prop(companies, '코드', 'TEXT');
    const companyCode = await prop(deals, '회사 코드', 'TEXT');
    const batch = await prop(deals, '배치', 'NUMBER');
    const stage = await prop(deals, '단계', 'DROPDOWN', { options: STAGES.map((value) => ({ label: value, value })) });

    // The data set, and what each query should find in it.
    const companyOf = new Int32Array(DEALS);
    const dealsOf = new Int32Array(COMPANIES);
    const negotiating = new Int32Array(COMPANIES);
    for (let n = 0; n < DEALS; n++) {
      const d = generateDeal(n);
      companyOf[n] = d.company;
      dealsOf[d.company]!++;
      if (d.stage === 'NEGOTIATION') negotiating[d.company]!++;
    }
    const share = (test: (c: number) => boolean) => {
      let k = 0;
      for (let c = 0; c < COMPANIES; c++) if (test(c)) k++;
      return `${k.toLocaleString('en')} companies (${((100 * k) / COMPANIES).toFixed(1)} %) match`;
    };
    let top = 0;
    for (let c = 1; c < COMPANIES; c++) if (dealsOf[c]! > dealsOf[top]!) top = c;
    note(`data set: top company ${top} has ${dealsOf[top]} deals; ≥3 NEGOTIATION: ${share((c) => negotiating[c]! >= 3)}; no deals: ${share((c) => dealsOf[c] === 0)}`);

    note(`loading ${COMPANIES} companies and ${DEALS} deals, ${LOAD_CONCURRENCY} bulk requests in flight`);
    const co = await loadRecords(client, COMPANIES, (n) => ({ entityId: companies, name: `회사 ${n}`, data: { [code]: `C${n}` } }));
    rows.push(summarize(`POST /records/bulk ×1000, companies ${tag} — **${((COMPANIES / co.elapsedMs) * 1000).toFixed(0)} records/s**`, co.latencies, co.elapsedMs, LOAD_CONCURRENCY));
    const de = await loadRecords(client, DEALS, (n) => ({
      entityId: deals,
      name: `딜 ${n}`,
      data: { [companyCode]: `C${companyOf[n]}`, [batch]: Math.floor(n / MATCH_BATCH), [stage]: generateDeal(n).stage },
    }));
    rows.push(summarize(`POST /records/bulk ×1000, deals ${tag} — **${((DEALS / de.elapsedMs) * 1000).toFixed(0)} records/s**`, de.latencies, de.elapsedMs, LOAD_CONCURRENCY));
    note(`records loaded: companies ${co.elapsedMs.toFixed(0)} ms, deals ${de.elapsedMs.toFixed(0)} ms`);

    // A small entity among the links: 200 contacts, each linked to one company — before the deals,
    // so its links are the oldest (a list walking all links newest first would pass 1 M first).
    const contactOf = (await ok(client, 'POST', '/relationships/types', { name: '담당 회사', sourceEntityId: contacts, targetEntityId: companies })).relationshipTypeId as string;
    const ct = await loadRecords(client, CONTACTS, (n) => ({ entityId: contacts, name: `담당자 ${n}` }));
    for (const [k, id] of ct.ids.entries()) {
      await ok(client, 'POST', '/relationships', { relationshipTypeId: contactOf, sourceEntityId: contacts, sourceRecordId: id, targetEntityId: companies, targetRecordId: co.ids[(k * 37) % COMPANIES] });
    }

    // Each company's deals, in deal order: one POST /relationships/bulk per company (≤10,000 deals each).
    const dealOf = (await ok(client, 'POST', '/relationships/types', { name: '소속 회사', sourceEntityId: deals, targetEntityId: companies })).relationshipTypeId as string;
    const byCompany: number[][] = Array.from({ length: COMPANIES }, () => []);
    for (let n = 0; n < DEALS; n++) byCompany[companyOf[n]!]!.push(n);
    const requests: [number, number[]][] = [];
    for (let c = 0; c < COMPANIES; c++) {
      for (let i = 0; i < byCompany[c]!.length; i += 10_000) requests.push([c, byCompany[c]!.slice(i, i + 10_000)]);
    }
    byCompany.length = 0;
    note(`linking ${DEALS} deals in ${requests.length} POST /relationships/bulk, ${LINK_CONCURRENCY} in flight`);
    let linked = 0;
    const links = await parallel(requests.length, LINK_CONCURRENCY, async (b) => {
      const [c, ds] = requests[b]!;
      const res = await ok(client, 'POST', '/relationships/bulk', {
        relationshipTypeId: dealOf, sourceEntityId: companies, targetEntityId: deals,
        sourceRecordIds: [co.ids[c]], targetRecordIds: ds.map((n) => de.ids[n]),
      });
      if (res.created !== ds.length) throw new Error(`link company ${c}: ${JSON.stringify(res)}`);
      if (Math.floor((linked + ds.length) / 100_000) > Math.floor(linked / 100_000)) note(`  ${linked + ds.length} linked`);
      linked += ds.length;
    });
    rows.push(summarize(`POST /relationships/bulk, one company × its deals (load) ${tag} — **${((DEALS / links.elapsedMs) * 1000).toFixed(0)} links/s**`, links.latencies, links.elapsedMs, LINK_CONCURRENCY));
    requests.length = 0;
    note(`linked: ${links.elapsedMs.toFixed(0)} ms`);

    if (target.engine === 'postgres') {
      const t0 = performance.now();
      await target.query('SET statement_timeout = 0');
      await target.query('VACUUM (ANALYZE) records');
      await target.query('VACUUM (ANALYZE) relationships');
      note(`VACUUM (ANALYZE) records, relationships: ${(performance.now() - t0).toFixed(0)} ms`);
    }

    const isCompany = new Map(co.ids.map((id, c) => [id, c]));
    const check = (what: string, res: Response, want: (c: number) => boolean) => {
      const data = res.body.data as { recordId: string }[];
      let matching = 0;
      for (let c = 0; c < COMPANIES; c++) if (want(c)) matching++;
      if (data.length !== Math.min(20, matching)) throw new Error(`${what}: expected ${Math.min(20, matching)} on the first page, got ${data.length}`);
      const wrong = data.find((r) => !want(isCompany.get(r.recordId)!));
      if (wrong) throw new Error(`${what}: ${wrong.recordId} should not match`);
    };
    const inStage = { operator: 'AND', conditions: [{ field: `data.${stage}`, operator: 'eq', value: 'NEGOTIATION' }] };
    const advanced = (condition: object) => ({ entityId: companies, limit: 20, conditionGroup: { operator: 'AND', conditions: [{ field: `relationship.${dealOf}`, ...condition }] } });
    const search = async (label: string, condition: object, want: (c: number) => boolean) => {
      const run = await sequential(READS, () => client.request('POST', `${V1}/records/search/advanced`, advanced(condition)));
      check(label, run.last, want);
      rows.push(summarize(`${label}, page 1 of 20 (${share(want)}) ${tag}`, run.latencies, run.elapsedMs, 1));
    };

    await search('advanced: ≥3 related deals in NEGOTIATION', { operator: 'countGte', value: 3, where: inStage }, (c) => negotiating[c]! >= 3);
    const filters = encodeURIComponent(JSON.stringify({ [`relationship.${dealOf}`]: { op: 'countGte', value: 3, where: inStage } }));
    const viaFilters = await sequential(READS, () => client.request('GET', `${V1}/records?entityId=${companies}&limit=20&filters=${filters}`));
    check('filters', viaFilters.last, (c) => negotiating[c]! >= 3);
    rows.push(summarize(`GET /records filters: ≥3 related deals in NEGOTIATION, page 1 of 20 ${tag}`, viaFilters.latencies, viaFilters.elapsedMs, 1));
    await search('advanced: notExists (no deals)', { operator: 'notExists' }, (c) => dealsOf[c] === 0);
    await search('advanced: countLte 3 (≤3 deals)', { operator: 'countLte', value: 3 }, (c) => dealsOf[c]! <= 3);
    const rare = Math.max(3, Math.round(dealsOf[top]! * 0.2 * 0.05));
    await search(`advanced: ≥${rare} related deals in NEGOTIATION (rare)`, { operator: 'countGte', value: rare, where: inStage }, (c) => negotiating[c]! >= rare);

    // Whole-entity evaluation: a REALTIME segment's exact count over every company.
    const counted: [string, object, (c: number) => boolean][] = [
      ['≥3 related deals in NEGOTIATION', { operator: 'countGte', value: 3, where: inStage }, (c) => negotiating[c]! >= 3],
      [`≥${rare} related deals in NEGOTIATION (rare)`, { operator: 'countGte', value: rare, where: inStage }, (c) => negotiating[c]! >= rare],
      ['notExists (no deals)', { operator: 'notExists' }, (c) => dealsOf[c] === 0],
      ['countLte 3 (≤3 deals)', { operator: 'countLte', value: 3 }, (c) => dealsOf[c]! <= 3],
    ];
    for (const [label, condition, want] of counted) {
      const segment = await ok(client, 'POST', '/segments', { entityId: companies, name: label, conditions: { operator: 'AND', conditions: [{ field: `relationship.${dealOf}`, ...condition }] } });
      const run = await sequential(Math.min(READS, 20), () => client.request('GET', `${V1}/segments/${segment.segmentId}/count`));
      let matching = 0;
      for (let c = 0; c < COMPANIES; c++) if (want(c)) matching++;
      if (run.last.body.count !== matching) throw new Error(`count ${label}: expected ${matching}, got ${JSON.stringify(run.last.body)}`);
      rows.push(summarize(`GET /segments/{id}/count REALTIME: ${label} (${matching.toLocaleString('en')} companies) ${tag}`, run.latencies, run.elapsedMs, 1));
    }

    const topId = co.ids[top]!;
    const page = await sequential(READS, () => client.request('GET', `${V1}/records/${topId}/relationships`));
    if (page.last.body.groups.find((g: { relationshipTypeId: string }) => g.relationshipTypeId === dealOf)?.total !== dealsOf[top]) throw new Error(`record page total: ${JSON.stringify(page.last.body).slice(0, 300)}`);
    rows.push(summarize(`GET /records/{id}/relationships, company with ${dealsOf[top]!.toLocaleString('en')} deals ${tag}`, page.latencies, page.elapsedMs, 1));
    const byRecord = await sequential(READS, () => client.request('GET', `${V1}/relationships/list?recordId=${topId}`));
    if (byRecord.last.body.data.length !== 50) throw new Error('list?recordId: expected a full page');
    rows.push(summarize(`GET /relationships/list?recordId= (same company), page 1 of 50 ${tag}`, byRecord.latencies, byRecord.elapsedMs, 1));
    const byEntity = await sequential(READS, () => client.request('GET', `${V1}/relationships/list?entityId=${contacts}`));
    if (byEntity.last.body.data.length !== 50) throw new Error('list?entityId: expected a full page');
    rows.push(summarize(`GET /relationships/list?entityId= (${CONTACTS} contacts' links among ${(DEALS + CONTACTS).toLocaleString('en')}), page 1 ${tag}`, byEntity.latencies, byEntity.elapsedMs, 1));

    // 10,000 new links per request: a fresh 100 × 100 block of (company, deal) each time.
    const watches = (await ok(client, 'POST', '/relationships/types', { name: '관심 딜', sourceEntityId: companies, targetEntityId: deals })).relationshipTypeId;
    const blocks = Math.min(10, Math.floor(COMPANIES / 100), Math.floor(DEALS / 100));
    const bulk = await sequential(blocks, (b) => client.request('POST', `${V1}/relationships/bulk`, {
      relationshipTypeId: watches, sourceEntityId: companies, targetEntityId: deals,
      sourceRecordIds: co.ids.slice(b * 100, b * 100 + 100), targetRecordIds: de.ids.slice(b * 100, b * 100 + 100),
    }));
    if (bulk.last.body.created !== 10_000) throw new Error(`bulk: ${JSON.stringify(bulk.last.body)}`);
    rows.push(summarize(`POST /relationships/bulk 100 × 100 = 10,000 new links ${tag}`, bulk.latencies, bulk.elapsedMs, 1));

    // bulk-match: 5,000 deals (one `batch` value) matched to their company by code, along a fresh type.
    const matched = (await ok(client, 'POST', '/relationships/types', { name: '매칭 회사', sourceEntityId: deals, targetEntityId: companies })).relationshipTypeId;
    const matches = Math.min(10, Math.floor(DEALS / MATCH_BATCH));
    const match = await sequential(matches, (b) => client.request('POST', `${V1}/relationships/bulk-match`, {
      sourceEntityId: deals, relationshipTypeId: matched, matchMode: 'FIRST',
      criteria: [{ myField: { type: 'property', propertyId: companyCode }, counterField: { type: 'property', propertyId: code } }],
      sourceFilter: { filters: JSON.stringify({ [batch]: { op: 'eq', value: b } }) },
    }));
    if (match.last.body.created !== MATCH_BATCH) throw new Error(`bulk-match: ${JSON.stringify(match.last.body)}`);
    rows.push(summarize(`POST /relationships/bulk-match FIRST, 5,000 deals (filter) → companies by code ${tag}`, match.latencies, match.elapsedMs, 1));
    return rows;
  } finally {
    client.close();
  }
}
