import { createClient, measure } from './lib/client.ts';
import { summarize, type Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

const STAGES = ['LEAD', 'QUALIFIED', 'NEGOTIATION', 'WON'];
const COMPANIES = Number(process.env.BENCH_COMPANIES ?? 10_000);
const DEALS = Number(process.env.BENCH_DEALS ?? 100_000);
const MATCH_BATCH = 5_000;

/**
 * Relationships (issue 5) at a modest size (BENCH_COMPANIES, default 10,000; BENCH_DEALS, default
 * 100,000; the 100k × 1M is left for a bigger machine):
 * - every deal is linked to its company with bulk-match (sourceFilter batches of 5,000 deals);
 * - POST /relationships/bulk creating 10,000 links (100 companies × 100 deals) per request;
 * - "companies having ≥3 related deals in stage NEGOTIATION", first page of 20, advanced search.
 */
export async function relationshipsBench(target: Target): Promise<Summary[]> {
  const client = createClient(target.baseUrl, target.creds);
  const post = async (path: string, body: object) => {
    const res = await client.request('POST', `/crm-core/v1${path}`, body);
    if (res.status >= 300) throw new Error(`${path} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
    return res.body;
  };
  try {
    const companies = (await post('/entities', { name: '회사', slug: 'companies' })).entityId as string;
    const deals = (await post('/entities', { name: '딜', slug: 'deals' })).entityId as string;
    const code = (await post('/properties', { entityId: companies, name: '코드', fieldType: 'TEXT' })).propertyId as string;
    const companyCode = (await post('/properties', { entityId: deals, name: '회사 코드', fieldType: 'TEXT' })).propertyId as string;
    const batch = (await post('/properties', { entityId: deals, name: '배치', fieldType: 'NUMBER' })).propertyId as string;
    const stage = (await post('/properties', { entityId: deals, name: '단계', fieldType: 'DROPDOWN', options: STAGES.map((value) => ({ label: value, value })) })).propertyId as string;

    const companyIds: string[] = [];
    const dealIds: string[] = [];
    const create = async (total: number, ids: string[], item: (n: number) => object) => {
      await measure(Math.ceil(total / 1000), 2, async (b) => {
        const records = Array.from({ length: Math.min(1000, total - b * 1000) }, (_, i) => item(b * 1000 + i));
        const res = await client.request('POST', '/crm-core/v1/records/bulk', { records });
        ids.push(...(res.body?.recordIds ?? []));
        return res;
      });
    };
    await create(COMPANIES, companyIds, (n) => ({ entityId: companies, name: `회사 ${n}`, data: { [code]: `C${n}` } }));
    // Deal n belongs to company (n * 7919) mod COMPANIES: about DEALS / COMPANIES deals each, spread evenly.
    await create(DEALS, dealIds, (n) => ({
      entityId: deals,
      name: `딜 ${n}`,
      data: { [companyCode]: `C${(n * 7919) % COMPANIES}`, [batch]: Math.floor(n / MATCH_BATCH), [stage]: STAGES[(n * 31) % 4] },
    }));

    const dealOf = (await post('/relationships/types', { name: '소속 회사', sourceEntityId: deals, targetEntityId: companies })).relationshipTypeId;
    const match = await measure(Math.ceil(DEALS / MATCH_BATCH), 1, async (b) => {
      const res = await client.request('POST', '/crm-core/v1/relationships/bulk-match', {
        sourceEntityId: deals, relationshipTypeId: dealOf, matchMode: 'FIRST',
        criteria: [{ myField: { type: 'property', propertyId: companyCode }, counterField: { type: 'property', propertyId: code } }],
        sourceFilter: { filters: JSON.stringify({ [batch]: { op: 'eq', value: b } }) },
      });
      if (res.body?.created !== Math.min(MATCH_BATCH, DEALS - b * MATCH_BATCH)) throw new Error(`bulk-match ${b}: ${JSON.stringify(res.body)}`);
      return res;
    });

    // 10,000 new links per request: a fresh 100 × 100 block of (company, deal) each time.
    const watches = (await post('/relationships/types', { name: '관심 딜', sourceEntityId: companies, targetEntityId: deals })).relationshipTypeId;
    const blocks = Math.min(10, Math.floor(COMPANIES / 100), Math.floor(DEALS / 100));
    const bulk = await measure(blocks, 1, async (b) => {
      const res = await client.request('POST', '/crm-core/v1/relationships/bulk', {
        relationshipTypeId: watches, sourceEntityId: companies, targetEntityId: deals,
        sourceRecordIds: companyIds.slice(b * 100, b * 100 + 100), targetRecordIds: dealIds.slice(b * 100, b * 100 + 100),
      });
      if (res.body?.created !== 10_000) throw new Error(`bulk ${b}: ${JSON.stringify(res.body)}`);
      return res;
    });

    const negotiating = {
      entityId: companies,
      limit: 20,
      conditionGroup: { operator: 'AND', conditions: [{
        field: `relationship.${dealOf}`, operator: 'countGte', value: 3,
        where: { operator: 'AND', conditions: [{ field: `data.${stage}`, operator: 'eq', value: 'NEGOTIATION' }] },
      }] },
    };
    const firstPage = await post('/records/search/advanced', negotiating);
    if (firstPage.data.length !== 20) throw new Error(`expected a full first page, got ${firstPage.data.length}`);
    const search = await measure(200, 1, () => client.request('POST', '/crm-core/v1/records/search/advanced', negotiating));

    const scale = `${COMPANIES} companies, ${DEALS} deals`;
    return [
      summarize(`POST /relationships/bulk-match FIRST ×${MATCH_BATCH} deals (${scale}) [${target.engine}]`, match.latencies, match.elapsedMs, 1),
      summarize(`POST /relationships/bulk 100×100 = 10,000 links [${target.engine}]`, bulk.latencies, bulk.elapsedMs, 1),
      summarize(`companies with ≥3 NEGOTIATION deals, page 1 of 20 (${scale}) [${target.engine}]`, search.latencies, search.elapsedMs, 1),
    ];
  } finally {
    client.close();
  }
}
