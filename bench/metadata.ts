import { createClient, measure } from './lib/client.ts';
import { summarize, type Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

/**
 * Issue 3's budget: GET /entities with 200 entities and GET /properties with 500 properties,
 * p95 under 20 ms on PostgreSQL. Seeds through the public API, then measures the full lists.
 */
export async function metadataBench(target: Target): Promise<Summary[]> {
  const client = createClient(target.baseUrl, target.creds);
  try {
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      const res = await client.request('POST', '/crm-core/v1/entities', { name: `엔티티 ${i}`, slug: `bench-${i}`, description: 'benchmark entity' });
      if (res.status !== 201) throw new Error(`entity create: ${res.status} ${JSON.stringify(res.body)}`);
      ids.push(res.body.entityId);
    }
    const types = ['TEXT', 'NUMBER', 'DATE', 'EMAIL', 'DROPDOWN', 'MULTI_CHECKBOX', 'CHECKBOX', 'PHONE'];
    const options = [{ label: '리드', value: 'LEAD' }, { label: '계약', value: 'WON' }, { label: '실패', value: 'LOST' }];
    const properties = Array.from({ length: 500 }, (_, i) => {
      const fieldType = types[i % types.length]!;
      return { entityId: ids[0], name: `속성 ${i}`, fieldType, ...(fieldType === 'DROPDOWN' || fieldType === 'MULTI_CHECKBOX' ? { options } : {}) };
    });
    const bulk = await client.request('POST', '/crm-core/v1/properties/bulk', { properties });
    if (bulk.status !== 201) throw new Error(`property bulk create: ${bulk.status} ${JSON.stringify(bulk.body).slice(0, 300)}`);

    const listEntities = () => client.request('GET', '/crm-core/v1/entities');
    const listProperties = () => client.request('GET', `/crm-core/v1/properties?entityId=${ids[0]}`);
    const check = await listEntities();
    if (check.body.length !== 200) throw new Error(`expected 200 entities, got ${check.body.length}`);
    const checkProps = await listProperties();
    if (checkProps.body.length !== 500) throw new Error(`expected 500 properties, got ${checkProps.body.length}`);

    await measure(100, 2, listEntities);
    await measure(100, 2, listProperties);
    const results: Summary[] = [];
    for (const concurrency of [1, 4]) {
      const e = await measure(1000, concurrency, listEntities);
      results.push(summarize(`GET /entities (200) [${target.engine}]`, e.latencies, e.elapsedMs, concurrency));
      const p = await measure(1000, concurrency, listProperties);
      results.push(summarize(`GET /properties?entityId (500) [${target.engine}]`, p.latencies, p.elapsedMs, concurrency));
    }
    return results;
  } finally {
    client.close();
  }
}
