/** Latency summary of one benchmarked operation. */
export interface Summary {
  operation: string;
  requests: number;
  concurrency: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Requests per second over the whole run. */
  throughput: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

export function summarize(operation: string, latenciesMs: number[], elapsedMs: number, concurrency: number): Summary {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return {
    operation,
    requests: sorted.length,
    concurrency,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    throughput: (sorted.length / elapsedMs) * 1000,
  };
}

const ms = (n: number) => n.toFixed(2);

export function markdownTable(rows: Summary[]): string {
  return [
    '| operation | requests | concurrency | p50 ms | p95 ms | p99 ms | max ms | req/s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.operation} | ${r.requests} | ${r.concurrency} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.p99)} | ${ms(r.max)} | ${r.throughput.toFixed(0)} |`),
  ].join('\n');
}
