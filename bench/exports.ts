import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { loadavg } from 'node:os';
import { createClient } from './lib/client.ts';
import { createCustomersEntity, loadCustomers } from './lib/generate-records.ts';
import type { Summary } from './lib/stats.ts';
import type { Target } from './lib/target.ts';

/**
 * Record exports at scale (issue 7; docs/exports.md): the customers data set of
 * lib/generate-records.ts (12 properties, one of each field type) loaded through POST /records/bulk,
 * then, per format, the async export of every record timed end to end: POST /records/export/request
 * → GET …/status every 250 ms until completed → the signed download streamed to nowhere.
 *
 *   BENCH_RECORDS          records to load and export (default 100,000)
 *   BENCH_EXPORT_FORMATS   comma-separated, default "csv,excel"
 *   BENCH_SEED             data set seed (default lib/generate-records.ts DEFAULT_SEED)
 *
 * Memory: the server's peak RSS during each export. Before each export the kernel's high-water mark
 * of the server process is reset (`echo 5 > /proc/<pid>/clear_refs`), so VmHWM afterwards is the peak
 * of that export alone, not of the load before it; VmRSS is also sampled every 100 ms as a check.
 * The load average (1 min) is printed with every figure: the machine is shared.
 */
const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
const FORMATS = (process.env.BENCH_EXPORT_FORMATS ?? 'csv,excel').split(',').map((f) => f.trim()).filter(Boolean);
const SEED = process.env.BENCH_SEED ? Number(process.env.BENCH_SEED) : undefined;
const V1 = '/crm-core/v1';

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
}

/** Resets the process's peak RSS (Linux ≥ 4.0); false when not allowed. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Streams a URL's body, counting bytes, keeping none. */
function drain(url: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => { bytes += chunk.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const mib = (kib: number) => (kib / 1024).toFixed(0);
const load1 = () => loadavg()[0]!.toFixed(2);

export async function exportsBench(target: Target): Promise<Summary[]> {
  const client = createClient(target.baseUrl, target.creds);
  const rows: Summary[] = [];
  const note = (text: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
  try {
    const { entityId, ids } = await createCustomersEntity(client, 'export_customers');
    note(`loading ${RECORDS} records`);
    let reported = 0;
    const load = await loadCustomers(client, entityId, ids, {
      total: RECORDS,
      seed: SEED,
      onProgress: (done) => {
        if (done - reported >= 100_000) note(`  ${(reported = done)} loaded`);
      },
    });
    note(`loaded: ${load.recordsPerSecond.toFixed(0)} records/s (load ${load1()})`);
    if (target.engine === 'postgres') {
      await target.query('SET statement_timeout = 0');
      await target.query('VACUUM (ANALYZE) records');
    }

    for (const format of FORMATS) {
      const loadBefore = load1();
      const rssBefore = statusKiB(target.pid, 'VmRSS');
      const resetOk = resetPeak(target.pid);
      let sampledPeak = rssBefore;
      const sampler = setInterval(() => { sampledPeak = Math.max(sampledPeak, statusKiB(target.pid, 'VmRSS')); }, 100);
      const t0 = performance.now();
      try {
        const answer = await client.request('POST', `${V1}/records/export/request`, { entityId, format });
        if (answer.status !== 200 || answer.body.mode !== 'async') throw new Error(`export request answered ${answer.status}: ${JSON.stringify(answer.body)}`);
        const requestMs = performance.now() - t0;
        let status: any;
        let polls = 0;
        for (;;) {
          const res = await client.request('GET', `${V1}/records/export/${answer.body.jobId}/status`);
          polls++;
          status = res.body;
          if (status.status === 'completed' || status.status === 'failed') break;
          if (polls % 40 === 0) note(`  ${format}: ${status.status} ${status.progress}/${status.total}`);
          await new Promise((r) => setTimeout(r, 250));
        }
        if (status.status !== 'completed') throw new Error(`export failed: ${JSON.stringify(status)}`);
        const jobMs = performance.now() - t0;
        const download = await drain(status.downloadUrl);
        if (download.status !== 200) throw new Error(`download answered ${download.status}`);
        const totalMs = performance.now() - t0;
        clearInterval(sampler);
        const hwm = statusKiB(target.pid, 'VmHWM');
        const rowsPerSecond = (status.total / totalMs) * 1000;
        const text = `export ${format} [${target.engine}, ${status.total.toLocaleString('en')} records] — **${rowsPerSecond.toFixed(0)} rows/s** end to end `
          + `(request ${requestMs.toFixed(0)} ms, job done ${(jobMs / 1000).toFixed(1)} s, download ${((totalMs - jobMs) / 1000).toFixed(1)} s, ${(download.bytes / 2 ** 20).toFixed(1)} MiB); `
          + `server RSS ${mib(rssBefore)} MiB before, peak ${resetOk ? `${mib(hwm)} MiB (VmHWM)` : 'n/a'}, sampled max ${mib(sampledPeak)} MiB; load ${loadBefore} → ${load1()}`;
        note(text);
        rows.push({ operation: text, requests: 1, concurrency: 1, p50: totalMs, p95: totalMs, p99: totalMs, max: totalMs, throughput: rowsPerSecond });
      } finally {
        clearInterval(sampler);
      }
    }
  } finally {
    client.close();
  }
  return rows;
}
