import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { uniq } from '../helpers/assertions.ts';

/**
 * CACHED segments are never stale (API.md §7): random sequences of writes — record creates,
 * patches, bulk patches, trash, restore, permanent deletes, segment rule changes, property
 * option changes, links created and deleted — and after every step, each CACHED segment's
 * members and memberCount equal what the same conditions match right now (advanced search,
 * evaluated on the spot). Segments on a second entity (companies) look at the deals across a
 * relationship type, so deal writes must move company members too.
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
  | { kind: 'dropOption' }
  | { kind: 'company' }
  | { kind: 'link'; company: number; deal: number }
  | { kind: 'unlink'; at: number };

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
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('company' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('link' as const), company: fc.nat(), deal: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unlink' as const), at: fc.nat() }) },
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
      const companies = (await ok('POST', '/entities', { name: 'c', slug: uniq('c') })).entityId;
      const typeId = (await ok('POST', '/relationships/types', { name: 'deals', sourceEntityId: companies, targetEntityId: entityId })).relationshipTypeId;
      const rel = `relationship.${typeId}`;
      const companyRules = [
        { operator: 'AND', conditions: [{ field: rel, operator: 'exists', where: { operator: 'AND', conditions: [c(`data.${stage}`, 'eq', 'WON')] } }] },
        { operator: 'AND', conditions: [{ field: rel, operator: 'countGte', value: 2 }] },
        { operator: 'OR', conditions: [{ field: rel, operator: 'notExists' }, c('name', 'eq', 'big')] },
      ];
      const companySegments: { id: string; rule: number }[] = [];
      for (const rule of [0, 1, 2]) {
        companySegments.push({ id: (await ok('POST', '/segments', { entityId: companies, name: `c${rule}`, mode: 'CACHED', conditions: companyRules[rule] })).segmentId, rule });
      }
      const companyIds: string[] = [];
      const links: string[] = [];
      const ids: string[] = [];
      const pick = (n: number) => ids[n % ids.length]!;
      // A starting graph, so that early deal writes already reach company segments across links.
      for (const name of ['big', 'small']) companyIds.push((await ok('POST', '/records', { entityId: companies, name })).recordId);
      for (const [i, s] of ['WON', 'LEAD', 'WON'].entries()) {
        ids.push((await ok('POST', '/records', { entityId, name: `d${i}`, data: { [stage]: s, [score]: i * 40 } })).recordId);
        links.push((await ok('POST', '/relationships', { relationshipTypeId: typeId, sourceEntityId: companies, sourceRecordId: companyIds[i % 2], targetEntityId: entityId, targetRecordId: ids[i] })).relationshipId);
      }

      for (const op of ops) {
        if (op.kind === 'create') {
          ids.push((await ok('POST', '/records', { entityId, name: op.name, tags: op.tags, data: { [stage]: op.stage, [score]: op.score } })).recordId);
          continue;
        }
        if (op.kind === 'company') {
          companyIds.push((await ok('POST', '/records', { entityId: companies, name: companyIds.length % 2 ? 'big' : 'small' })).recordId);
        } else if (op.kind === 'link') {
          if (companyIds.length === 0 || ids.length === 0) continue;
          // A trashed or duplicate end is refused (410/409): a refused write must change nothing.
          const res = await t.call(a, 'POST', `${V1}/relationships`, {
            relationshipTypeId: typeId, sourceEntityId: companies, sourceRecordId: companyIds[op.company % companyIds.length], targetEntityId: entityId, targetRecordId: pick(op.deal),
          });
          if (res.statusCode === 201) links.push(res.json().relationshipId);
        } else if (op.kind === 'unlink') {
          if (links.length === 0) continue;
          const [linkId] = links.splice(op.at % links.length, 1);
          await t.call(a, 'DELETE', `${V1}/relationships/${linkId}`);
        } else if (op.kind === 'rules') {
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
        for (const s of companySegments) {
          const expected = (await ok('POST', '/records/search/advanced', { entityId: companies, conditionGroup: companyRules[s.rule], limit: 200 }))
            .data.map((r: { recordId: string }) => r.recordId).sort();
          const members = (await ok('GET', `/segments/${s.id}/records?limit=200`)).data.map((r: { recordId: string }) => r.recordId).sort();
          assert.deepEqual(members, expected, `company segment rule ${s.rule} after ${op.kind}`);
          assert.equal((await ok('GET', `/segments/${s.id}`)).memberCount, expected.length);
        }
      }
    }), { numRuns: 12 });
  });
});
