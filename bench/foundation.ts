import { measure, createClient } from './lib/client.ts';
import { summarize, type Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

/** The fixed cost every API call pays: signature check, nonce insert, role lookup. */
export async function foundationBench(target: Target): Promise<Summary[]> {
  const client = createClient(target.baseUrl, target.creds);
  try {
    await measure(200, 4, () => client.request('GET', '/crm-core/v1/usage')); // warm-up
    const results: Summary[] = [];
    for (const concurrency of [1, 8]) {
      const run = await measure(2000, concurrency, () => client.request('GET', '/crm-core/v1/usage'));
      results.push(summarize(`GET /usage (signed) [${target.engine}]`, run.latencies, run.elapsedMs, concurrency));
    }
    const health = await measure(2000, 8, () => client.request('GET', '/healthz'));
    results.push(summarize(`GET /healthz (no auth) [${target.engine}]`, health.latencies, health.elapsedMs, 8));
    return results;
  } finally {
    client.close();
  }
}
