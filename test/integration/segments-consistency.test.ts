import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { uniq } from '../helpers/assertions.ts';

/**
 * CACHED segments are never stale (API.md §7): random sequences of writes — record creates,
 * patches, bulk patches, trash, restore, permanent deletes, segment rule changes, property
 * option changes — and after every step, each CACHED segment's members and memberCount equal
 * what the same conditions match right now (advanced search, evaluated on the spot).
 */

const V1 = '/crm-core/v1';
const STAGES = ['LEAD', 'NEGOTIATION', 'WON'];
const TAGS = ['vip', 'new'];

type Op =
  | { kind: 'create'; stage: string | null; score: number | null; tags: string[]; name: string }
  | { kind: 'patch'; at: number; stage?: string | null; score?: number | null; tags?: string[] }
  | { kind: 'bulkPatch'; at: number[]; score: number }
  | { kind: 'trash'; at: number }
  | { kind: 'restore'; at: number }
  | { kind: 'purge'; at: number }
  | { kind: 'rules'; segment: number; rule: number }
  | { kind: 'dropOption' };

const stageArb = fc.option(fc.constantFrom(...STAGES), { nil: null });
const scoreArb = fc.option(fc.integer({ min: 0, max: 100 }), { nil: null });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('create' as const), stage: stageArb, score: scoreArb, tags: fc.subarray(TAGS), name: fc.constantFrom('김민준', '이서연', 'vip') }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('patch' as const), at: fc.nat(), stage: stageArb, score: scoreArb, tags: fc.subarray(TAGS) }, { requiredKeys: ['kind', 'at'] }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('bulkPatch' as const), at: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), score: fc.integer({ min: 0, max: 100 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('trash' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('restore' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('purge' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rules' as const), segment: fc.nat(), rule: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dropOption' as const) }) },
);

describe('CACHED segments equal realtime evaluation after every write', () => {
  let t: TestApp;

  before(async () => { t = await startTestApp(); });
  after(() => t.close());

  test('random write sequences (fast-check)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 14 }), async (ops) => {
      const a: TestAccount = await t.newAccount();
      const ok = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) => {
        const res = await t.call(a, method, `${V1}${url}`, body);
        assert.ok(res.statusCode < 300, `${method} ${url} → ${res.statusCode} ${res.body}`);
        return res.json();
      };
      const entityId = (await ok('POST', '/entities', { name: 'e', slug: uniq('e') })).entityId;
      const stage = (await ok('POST', '/properties', { entityId, name: 'stage', fieldType: 'DROPDOWN', options: STAGES.map((v) => ({ label: v, value: v })) })).propertyId;
      const score = (await ok('POST', '/properties', { entityId, name: 'score', fieldType: 'NUMBER' })).propertyId;
      const c = (field: string, operator: string, value?: unknown) => ({ field, operator, ...(value === undefined ? {} : { value }) });
      const rules = [
        { operator: 'AND', conditions: [c(`data.${stage}`, 'eq', 'WON')] },
        { operator: 'OR', conditions: [c(`data.${score}`, 'gte', 50), { operator: 'AND', conditions: [c('tags', 'hasAnyOf', ['vip']), c(`data.${stage}`, 'neq', 'LEAD')] }] },
        { operator: 'AND', conditions: [c(`data.${score}`, 'isEmpty'), c('name', 'contains', '민')] },
        { operator: 'AND', conditions: [c(`data.${stage}`, 'in', ['NEGOTIATION', 'WON']), c(`data.${score}`, 'between', [10, 80])] },
        { operator: 'AND', conditions: [] },
      ];
      const segments: { id: string; rule: number }[] = [];
      for (const rule of [0, 1, 2]) {
        segments.push({ id: (await ok('POST', '/segments', { entityId, name: `s${rule}`, mode: 'CACHED', conditions: rules[rule] })).segmentId, rule });
      }
      const ids: string[] = [];
      const pick = (n: number) => ids[n % ids.length]!;

      for (const op of ops) {
        if (op.kind === 'create') {
          ids.push((await ok('POST', '/records', { entityId, name: op.name, tags: op.tags, data: { [stage]: op.stage, [score]: op.score } })).recordId);
          continue;
        }
        if (op.kind === 'rules') {
          const s = segments[op.segment % segments.length]!;
          s.rule = op.rule % rules.length;
          await ok('PATCH', `/segments/${s.id}`, { conditions: rules[s.rule] });
        } else if (op.kind === 'dropOption') {
          // Removing an option clears it from records (force): every CACHED segment is rebuilt.
          await ok('PATCH', `/properties/${stage}?force=true`, { options: STAGES.filter((v) => v !== 'NEGOTIATION').map((v) => ({ label: v, value: v })) });
          await ok('PATCH', `/properties/${stage}`, { options: STAGES.map((v) => ({ label: v, value: v })) });
        } else if (ids.length === 0) {
          continue;
        } else if (op.kind === 'patch') {
          const data: Record<string, unknown> = {};
          if (op.stage !== undefined) data[stage] = op.stage;
          if (op.score !== undefined) data[score] = op.score;
          // A trashed record answers 410: that is a refused write, which must change nothing.
          await t.call(a, 'PATCH', `${V1}/records/${pick(op.at)}`, { data, ...(op.tags ? { tags: op.tags } : {}) });
        } else if (op.kind === 'bulkPatch') {
          const unique = [...new Set(op.at.map(pick))];
          await ok('POST', '/records/bulk/update', { records: unique.map((recordId) => ({ recordId, data: { [score]: op.score } })) });
        } else if (op.kind === 'trash') {
          await t.call(a, 'DELETE', `${V1}/records/${pick(op.at)}`);
        } else if (op.kind === 'restore') {
          await ok('POST', '/records/bulk/restore', { recordIds: [pick(op.at)] });
        } else if (op.kind === 'purge') {
          const victim = pick(op.at);
          await ok('POST', '/records/bulk/delete', { recordIds: [victim], permanent: true });
          ids.splice(ids.indexOf(victim), 1);
        }

        for (const s of segments) {
          const expected = (await ok('POST', '/records/search/advanced', { entityId, conditionGroup: rules[s.rule], limit: 200 }))
            .data.map((r: { recordId: string }) => r.recordId).sort();
          const members = (await ok('GET', `/segments/${s.id}/records?limit=200`)).data.map((r: { recordId: string }) => r.recordId).sort();
          assert.deepEqual(members, expected, `segment rule ${s.rule} after ${op.kind}`);
          assert.equal((await ok('GET', `/segments/${s.id}`)).memberCount, expected.length);
        }
      }
    }), { numRuns: 12 });
  });
});
