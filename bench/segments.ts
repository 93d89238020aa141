import { createClient, measure, type Client } from './lib/client.ts';
import { createCustomersEntity, loadCustomers, type PropertyIds } from './lib/generate-records.ts';
import { summarize, type Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

/**
 * Issue 6's budgets over BENCH_RECORDS customers (default 100,000; 1,000,000 for the issue):
 * realtime count with a 2-level OR/AND tree, cached count, first page either way (and later pages,
 * and a small segment in another sort), full refresh, and what 20 CACHED segments add to a record update.
 */
const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
const READS = Number(process.env.BENCH_READS ?? 50);
const V1 = '/crm-core/v1';
const TWIN_RECORDS = 20_000;

function tree(ids: PropertyIds) {
  const c = (field: string, operator: string, value?: unknown) => ({ field, operator, ...(value === undefined ? {} : { value }) });
  return {
    operator: 'OR',
    conditions: [
      { operator: 'AND', conditions: [c(`data.${ids.stage}`, 'in', ['PROPOSAL', 'WON']), c(`data.${ids.score}`, 'gte', 600)] },
      { operator: 'AND', conditions: [c(`data.${ids.grade}`, 'eq', 'VIP'), c(`data.${ids.city}`, 'eq', '부산')] },
    ],
  };
}

async function ok(client: Client, method: string, path: string, body?: unknown) {
  const res = await client.request(method, `${V1}${path}`, body);
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
  return res.body;
}

export async function segmentsBench(target: Target): Promise<Summary[]> {
  const client = createClient(target.baseUrl, target.creds);
  const tag = `[${target.engine}, ${RECORDS.toLocaleString('en')} records]`;
  const note = (text: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
  const rows: Summary[] = [];
  try {
    const { entityId, ids } = await createCustomersEntity(client, 'segment-customers');
    note(`loading ${RECORDS} records`);
    const load = await loadCustomers(client, entityId, ids, { total: RECORDS, concurrency: 2 });
    // A twin entity in the same records table that never gets a segment: its updates, alternated
    // with the segmented entity's, are the write baseline measured at the same moment (same table
    // and indexes, same machine load), where a baseline measured minutes earlier moved by ±2 ms.
    const twin = await createCustomersEntity(client, 'segment-twin');
    const twinLoad = await loadCustomers(client, twin.entityId, twin.ids, { total: Math.min(RECORDS, TWIN_RECORDS), concurrency: 2 });
    if (target.engine === 'postgres') {
      await target.query('SET statement_timeout = 0');
      await target.query('VACUUM (ANALYZE) records');
    }
    const conditions = tree(ids);
    /**
     * Before each write measurement: the bulk writes just made (1 M records, a segment's first
     * build of 45 k members, 19 more builds) leave dirty pages, a checkpoint and autovacuum behind,
     * which slow the commits measured next; settled, the runs compare what maintenance costs.
     */
    const settle = async () => {
      if (target.engine !== 'postgres') return;
      await target.query('VACUUM (ANALYZE) segment_members');
      await target.query('VACUUM (ANALYZE) segment_events');
      await target.query('CHECKPOINT').catch(() => note('CHECKPOINT refused (not a superuser): write numbers include the builds\' I/O'));
    };

    // Write overhead baseline: record updates while the entity has no segment at all.
    const sample = load.sampleIds;
    const update = (i: number) => client.request('PATCH', `${V1}/records/${sample[(i * 7919) % sample.length]}`, { data: { [ids.score]: (i * 37) % 1000 } });
    await settle();
    const baseline = await measure(READS * 4, 1, update);
    rows.push(summarize(`PATCH /records/{id}, no segments ${tag}`, baseline.latencies, baseline.elapsedMs, 1));

    const realtime = await ok(client, 'POST', '/segments', { entityId, name: 'realtime', conditions });
    const rtCount = await measure(READS, 1, () => client.request('GET', `${V1}/segments/${realtime.segmentId}/count`));
    rows.push(summarize(`GET /segments/{id}/count REALTIME, 2-level tree ${tag}`, rtCount.latencies, rtCount.elapsedMs, 1));
    const rtPage = await measure(READS, 1, () => client.request('GET', `${V1}/segments/${realtime.segmentId}/records?limit=20`));
    rows.push(summarize(`GET /segments/{id}/records REALTIME page 1 ${tag}`, rtPage.latencies, rtPage.elapsedMs, 1));

    const t0 = performance.now();
    const cached = await ok(client, 'POST', '/segments', { entityId, name: 'cached', mode: 'CACHED', conditions });
    note(`CACHED create (first build of ${cached.memberCount} members): ${(performance.now() - t0).toFixed(0)} ms`);
    const refresh = await measure(3, 1, () => client.request('POST', `${V1}/segments/${cached.segmentId}/refresh`));
    rows.push(summarize(`POST /segments/{id}/refresh (${cached.memberCount} members) ${tag}`, refresh.latencies, refresh.elapsedMs, 1));
    const cCount = await measure(READS * 4, 1, () => client.request('GET', `${V1}/segments/${cached.segmentId}/count`));
    rows.push(summarize(`GET /segments/{id}/count CACHED ${tag}`, cCount.latencies, cCount.elapsedMs, 1));
    const cPage = await measure(READS * 4, 1, () => client.request('GET', `${V1}/segments/${cached.segmentId}/records?limit=20`));
    rows.push(summarize(`GET /segments/{id}/records CACHED page 1 ${tag}`, cPage.latencies, cPage.elapsedMs, 1));
    // Following nextKey: each page is a range of segment_members' (record_created, record_id) index.
    let startKey: string | undefined;
    const cPages = await measure(READS * 2, 1, async () => {
      const res = await client.request('GET', `${V1}/segments/${cached.segmentId}/records?limit=20${startKey ? `&startKey=${encodeURIComponent(startKey)}` : ''}`);
      startKey = res.body?.nextKey;
      return res;
    });
    rows.push(summarize(`GET /segments/{id}/records CACHED pages 1–${READS * 2} (nextKey) ${tag}`, cPages.latencies, cPages.elapsedMs, 1));

    // Write overhead: the same kind of updates with 1 and then 20 CACHED segments on the entity.
    await settle();
    const before = await measure(READS * 4, 1, (i) => update(i + READS * 4));
    rows.push(summarize(`PATCH /records/{id}, 1 CACHED segment ${tag}`, before.latencies, before.elapsedMs, 1));
    for (let i = 0; i < 19; i++) {
      // Selective rules (a narrow score band each) keep the 19 first builds short.
      await ok(client, 'POST', '/segments', {
        entityId, name: `band ${i}`, mode: 'CACHED',
        conditions: { operator: 'AND', conditions: [{ field: `data.${ids.score}`, operator: 'between', value: [i * 50, i * 50 + 5] }] },
      });
    }
    await settle();
    const after = await measure(READS * 4, 1, (i) => update(i + READS * 8));
    rows.push(summarize(`PATCH /records/{id}, 20 CACHED segments ${tag}`, after.latencies, after.elapsedMs, 1));
    // The budget's comparison: alternate requests, one on the segmented entity, one on the twin.
    const twinSample = twinLoad.sampleIds;
    const twinUpdate = (i: number) => client.request('PATCH', `${V1}/records/${twinSample[(i * 7919) % twinSample.length]}`, { data: { [twin.ids.score]: (i * 37) % 1000 } });
    const pairs = READS * 10;
    const alternated = await measure(pairs * 2, 1, (i) => (i % 2 === 0 ? update(READS * 12 + (i >> 1)) : twinUpdate(i >> 1)));
    const half = (parity: number) => alternated.latencies.filter((_, i) => i % 2 === parity);
    rows.push(summarize(`PATCH /records/{id}, 20 CACHED segments, alternated ${tag}`, half(0), alternated.elapsedMs / 2, 1));
    rows.push(summarize(`PATCH /records/{id}, twin entity without segments, alternated [${target.engine}, ${Math.min(RECORDS, TWIN_RECORDS).toLocaleString('en')} records]`, half(1), alternated.elapsedMs / 2, 1));

    // A small segment (one score band, ~0.4 % of the records) in sorts other than dateCreated: the
    // records' probes find no page, so its members are read and sorted instead of walking a sort
    // index until they turn up (by score, descending, they come after ~29 % of the records).
    const band = (await ok(client, 'GET', `/segments?entityId=${entityId}`) as { name: string; segmentId: string; memberCount: number }[])
      .find((s) => s.name === 'band 10')!;
    for (const [label, sort] of [['name', 'sortField=name&sortDirection=asc'], ['score desc', `sortField=${ids.score}&sortDirection=desc`]]) {
      const url = `${V1}/segments/${band.segmentId}/records?limit=20&${sort}`;
      await client.request('GET', url);
      const small = await measure(READS, 1, () => client.request('GET', url));
      rows.push(summarize(`GET /segments/{id}/records CACHED (${band.memberCount} members) page 1 by ${label} ${tag}`, small.latencies, small.elapsedMs, 1));
    }
    return rows;
  } finally {
    client.close();
  }
}
