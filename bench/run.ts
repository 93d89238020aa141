/**
 * `npm run bench -- [suite…] [--engine postgres|pglite|both]`
 * Starts a fresh target per engine (see lib/target.ts), runs the suites, prints markdown tables
 * (p50/p95/p99/max latency and throughput) to paste into docs/benchmarks.md.
 */
import { parseArgs } from 'node:util';
import { eventsBench } from './events.ts';
import { foundationBench } from './foundation.ts';
import { metadataBench } from './metadata.ts';
import { recordsBench } from './records.ts';
import { relationshipsBench } from './relationships.ts';
import { recordsScaleBench } from './records-scale.ts';
import { segmentsBench } from './segments.ts';
import { insightsBench } from './insights.ts';
import { soakBench } from './soak.ts';
import { importsBench } from './imports.ts';
import { exportsBench } from './exports.ts';
import { markdownTable, type Summary } from './lib/stats.ts';
import { startTarget, type Target } from './lib/target.ts';

const SUITES: Record<string, (target: Target) => Promise<Summary[]>> = {
  foundation: foundationBench,
  metadata: metadataBench,
  records: recordsBench,
  relationships: relationshipsBench,
  'records-scale': recordsScaleBench,
  segments: segmentsBench,
  events: eventsBench,
  insights: insightsBench,
  soak: soakBench,
  imports: importsBench,
  exports: exportsBench,
};

const { values, positionals } = parseArgs({ allowPositionals: true, options: { engine: { type: 'string', default: 'postgres' } } });
const engines = values.engine === 'both' ? (['postgres', 'pglite'] as const) : [values.engine as 'postgres' | 'pglite'];
// records-scale, segments and insights load up to 1 M records, soak runs for minutes, imports loads 200k rows, exports loads 100k+: only when named.
const suites = positionals.length ? positionals : Object.keys(SUITES).filter((s) => s !== 'records-scale' && s !== 'segments' && s !== 'insights' && s !== 'soak' && s !== 'imports' && s !== 'exports');

for (const name of suites) if (!SUITES[name]) throw new Error(`unknown suite ${name}; known: ${Object.keys(SUITES).join(', ')}`);

process.stdout.write(`node ${process.version}, ${new Date().toISOString()}\n\n`);
for (const engine of engines) {
  const target = await startTarget(engine);
  process.stdout.write(`server connects as ${target.connectsAs}\n\n`);
  try {
    for (const name of suites) {
      process.stdout.write(`## ${name} — ${engine}\n\n${markdownTable(await SUITES[name]!(target))}\n\n`);
    }
  } finally {
    await target.stop();
  }
}
