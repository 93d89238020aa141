import http from 'node:http';
import { authorization, type Credentials } from '../../test/helpers/sign.ts';

export interface Response {
  status: number;
  body: any;
}

/** A keep-alive HTTP client that signs every request the way Solapi's clients do. */
export function createClient(baseUrl: string, creds: Credentials) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const base = new URL(baseUrl);
  function request(method: string, path: string, body?: unknown): Promise<Response> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request({
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path,
        headers: {
          authorization: authorization(creds),
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }
  return { request, close: () => agent.destroy() };
}

export type Client = ReturnType<typeof createClient>;

/**
 * Runs `total` calls of `operation` with `concurrency` in flight and returns each latency (ms).
 * Any non-2xx answer fails the benchmark: a fast error is not a result.
 */
export async function measure(total: number, concurrency: number, operation: (i: number) => Promise<Response>): Promise<{ latencies: number[]; elapsedMs: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      const i = next++;
      const t0 = performance.now();
      const res = await operation(i);
      latencies.push(performance.now() - t0);
      if (res.status >= 300) throw new Error(`request ${i} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
    }
  }));
  return { latencies, elapsedMs: performance.now() - started };
}
