import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { createClient } from './lib/client.ts';
import type { Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';
import { authorization } from '../test/helpers/sign.ts';

const ROWS = Number(process.env.BENCH_IMPORT_ROWS ?? 100_000);
/** BENCH_IMPORT_UPSERT=0 skips the second run (upsert of the same file). */
const UPSERT = process.env.BENCH_IMPORT_UPSERT !== '0';
const SURNAMES = ['김', '이', '박', '최', '정', '강', '조', '윤', '장', '임'];
const GIVEN = ['민준', '서연', '도윤', '하은', '시우', '지유', '예준', '서윤', '주원', '지호'];
const STAGES = ['리드', '검토', '제안', '성사', '실패'];
const CITIES = ['서울', '부산', '인천', '대구', '"대전, 충청"'];

/**
 * Record import end to end (issue 7: ≥ 10,000 rows/s for a 100k-row CSV): a generated CSV of
 * BENCH_IMPORT_ROWS rows (default 100,000; name + email, NUMBER, DROPDOWN by label, DATE, TEXT)
 * is POSTed to /records/import as multipart/form-data; the clock runs from the request until
 * the job's status says completed (polled every 50 ms). A second run imports the same file with
 * upsertBy=email (every row an update). Only when named: `npm run bench -- imports`.
 */
export async function importsBench(target: Target): Promise<Summary[]> {
  const client = createClient(target.baseUrl, target.creds);
  try {
    const entity = await client.request('POST', '/crm-core/v1/entities', { name: '고객', slug: 'import-customers' });
    const entityId = entity.body.entityId as string;
    const create = (body: object) => client.request('POST', '/crm-core/v1/properties', { entityId, ...body });
    await create({ name: '이메일', key: 'email', fieldType: 'EMAIL' });
    await create({ name: '점수', fieldType: 'NUMBER' });
    await create({ name: '단계', fieldType: 'DROPDOWN', options: STAGES.map((label, i) => ({ label, value: `S${i}` })) });
    await create({ name: '가입일', fieldType: 'DATE' });
    await create({ name: '도시', fieldType: 'TEXT' });

    const lines = ['이름,이메일,점수,단계,가입일,도시'];
    for (let n = 0; n < ROWS; n++) {
      const day = new Date(Date.UTC(2024, 0, 1) + ((n * 104729) % 700) * 86_400_000).toISOString().slice(0, 10);
      lines.push(`${SURNAMES[n % 10]}${GIVEN[(n * 7) % 10]} ${n},user${n}@example.com,${(n * 37) % 1000},${STAGES[n % 5]},${day},${CITIES[n % 5]}`);
    }
    const csv = Buffer.from(`\uFEFF${lines.join('\r\n')}\r\n`, 'utf8');
    process.stderr.write(`imports: ${ROWS} rows, ${(csv.length / 1024 / 1024).toFixed(2)} MiB\n`);

    const run = async (label: string, fields: Record<string, string>): Promise<Summary> => {
      const started = performance.now();
      const res = await upload(target, { entityId, ...fields }, csv);
      if (res.status !== 202 && res.status !== 200) throw new Error(`import answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
      const accepted = performance.now() - started;
      let result = res.body;
      if (res.status === 202) {
        for (;;) {
          const status = await client.request('GET', `/crm-core/v1/records/import/${res.body.jobId}/status`);
          if (status.body.status === 'failed') throw new Error(`import job failed: ${status.body.error}`);
          if (status.body.status === 'completed') {
            result = status.body.result;
            break;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const elapsed = performance.now() - started;
      if (result.failedCount) throw new Error(`${result.failedCount} rows failed: ${JSON.stringify(result.failed[0])}`);
      const rate = (ROWS / elapsed) * 1000;
      process.stderr.write(`imports: ${label}: accepted in ${accepted.toFixed(0)} ms, completed in ${elapsed.toFixed(0)} ms (${rate.toFixed(0)} rows/s), created ${result.created}, updated ${result.updated}\n`);
      return {
        operation: `${label} — ${rate.toFixed(0)} rows/s (202 after ${accepted.toFixed(0)} ms) [${target.engine}]`,
        requests: 1, concurrency: 1, p50: elapsed, p95: elapsed, p99: elapsed, max: elapsed, throughput: rate,
      };
    };

    const created = await run(`POST /records/import ${ROWS} rows CSV → job completed`, {});
    if (!UPSERT) return [created];
    return [created, await run(`same file, upsertBy=email (all updates)`, { upsertBy: 'email' })];
  } finally {
    client.close();
  }
}

/** One signed multipart upload (the bench client speaks JSON only). */
function upload(target: Target, fields: Record<string, string>, file: Buffer): Promise<{ status: number; body: any }> {
  const boundary = `----crmbench${randomBytes(8).toString('hex')}`;
  const parts = Object.entries(fields).map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
  const payload = Buffer.concat([
    Buffer.from(parts.join('')),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="customers.csv"\r\nContent-Type: text/csv\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const base = new URL(target.baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: base.hostname,
      port: base.port,
      method: 'POST',
      path: '/crm-core/v1/records/import',
      headers: { authorization: authorization(target.creds), 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': payload.length },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}
