import { errors, type ErrorDetail } from '../../errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { newId } from '../../lib/ids.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import type { PropertiesService, RecordField } from '../properties/properties.service.ts';
import type { RecordsService } from '../records/records.service.ts';
import type { RelationshipTypesService } from './relationship-types.service.ts';
import * as repo from './relationships.repository.ts';
import type { LinkWriteHooks } from './relationship-links.ts';
import {
  BULK_MAX_LINKS, MATCH_MAX_CANDIDATES, MATCH_MAX_SELECTED,
  type BulkLinkBody, type BulkMatchBody, type MatchField, type Selector,
} from './relationships.schemas.ts';

/**
 * POST /relationships/bulk and /relationships/bulk-match (API.md §8). Each request is one
 * transaction that either links everything it can or changes nothing:
 * - every named record must exist, be live and belong to the side's entity (else 400 listing
 *   them); a selector picks live records with GET /records' keyword and filters;
 * - the links are written with ONE set-based INSERT … SELECT (rows as one JSON parameter), in
 *   (source, target) order so that overlapping bulk requests lock index entries in the same
 *   order; pairs already linked are skipped by the unique index (ON CONFLICT DO NOTHING);
 * - `relationships.max` is then reserved for exactly the links created, in the same transaction:
 *   over the limit, the whole request is refused (403) and nothing stays written.
 */
export interface BulkLinking {
  bulkLink(tenant: TenantDb, caller: Caller, body: BulkLinkBody): Promise<{ created: number; skipped: number }>;
  bulkMatch(tenant: TenantDb, caller: Caller, body: BulkMatchBody): Promise<{ matched: number; created: number; skipped: number }>;
}

export interface BulkLinkingDeps {
  types: RelationshipTypesService;
  records: RecordsService;
  properties: PropertiesService;
  quota: QuotaService;
  clock: Clock;
  hooks: LinkWriteHooks;
}

const unique = (ids: readonly string[]) => [...new Set(ids)];

function exactlyOne(ids: unknown, filter: unknown, what: string): void {
  if ((ids === undefined) === (filter === undefined)) {
    throw errors.validation(`${what}RecordIds / ${what}Filter: send exactly one of them`, [{ path: `/${what}RecordIds`, message: `send ${what}RecordIds or ${what}Filter` }]);
  }
}

function validationFrom(details: ErrorDetail[]): never {
  const first = details[0]!;
  throw errors.validation(`${first.path}: ${first.message}${details.length > 1 ? ` (and ${details.length - 1} more)` : ''}`, details.slice(0, 50));
}

export function createBulkLinking(deps: BulkLinkingDeps): BulkLinking {
  const { types, records, properties, quota, clock } = deps;

  /** Live records picked by a selector, refused when more than `max` match. */
  async function select(tx: TenantDb, caller: Caller, entityId: string, selector: Selector, max: number, path: string): Promise<string[]> {
    const ids = await records.selectIds(tx, caller, { entityId, keyword: selector.keyword, filters: selector.filters, segmentId: selector.segmentId }, max + 1);
    if (ids.length > max) {
      throw errors.validation(`${path}: matches more than ${max} records; narrow it down`, [{ path, message: `more than ${max} records` }]);
    }
    return ids;
  }

  /** Every ID is a live record of `entityId`; all problems are reported together. */
  async function assertLive(tx: TenantDb, ids: readonly string[], entityId: string, path: string): Promise<void> {
    const states = new Map((await repo.recordStates(tx, ids)).map((r) => [r.record_id, r]));
    const problems: ErrorDetail[] = [];
    for (const id of ids) {
      const state = states.get(id);
      if (!state) problems.push({ path, message: `record ${id} not found` });
      else if (state.entity_id !== entityId) problems.push({ path, message: `record ${id} belongs to entity ${state.entity_id}, not ${entityId}` });
      else if (state.is_deleted) problems.push({ path, message: `record ${id} is in the trash` });
    }
    if (problems.length) validationFrom(problems);
  }

  /** Inserts the pairs (already in the type's direction) and takes their quota; returns how many were new. */
  async function link(tx: TenantDb, caller: Caller, type: repo.TypeRow, pairs: [string, string][]): Promise<number> {
    pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
    const now = new Date(clock());
    const created = await repo.insertLinks(tx, {
      typeId: type.relationship_type_id,
      workspaceId: caller.workspaceId,
      sourceEntityId: type.source_entity_id,
      targetEntityId: type.target_entity_id,
      ids: pairs.map(() => newId('relationship', now)),
      sources: pairs.map((p) => p[0]),
      targets: pairs.map((p) => p[1]),
      at: now,
    });
    await quota.reserve(tx, 'relationships.max', created);
    if (created > 0) {
      await deps.hooks.linksChanged(tx, [
        { entityId: type.source_entity_id, recordIds: unique(pairs.map((p) => p[0])) },
        { entityId: type.target_entity_id, recordIds: unique(pairs.map((p) => p[1])) },
      ]);
    }
    return created;
  }

  /** Which side of the type `entityId` is (the source side for a type from an entity to itself). */
  function sideOf(type: repo.TypeRow, entityId: string, path: string): 'source' | 'target' {
    if (entityId === type.source_entity_id) return 'source';
    if (entityId === type.target_entity_id) return 'target';
    throw errors.validation(`${path}: relationship type ${type.relationship_type_id} links ${type.source_entity_id} → ${type.target_entity_id}`,
      [{ path, message: 'not an entity of the relationship type' }]);
  }

  /** A criterion's field, checked against the entity's live properties. */
  function matchField(field: MatchField, byId: Map<string, RecordField>, masked: boolean, path: string): repo.MatchField {
    if (field.type === 'name') {
      if (field.propertyId !== undefined) throw errors.validation(`${path}.propertyId: only for type "property"`, [{ path: `${path}/propertyId`, message: 'only for type property' }]);
      return { type: 'name' };
    }
    const property = field.propertyId === undefined ? undefined : byId.get(field.propertyId);
    if (!property) throw errors.validation(`${path}.propertyId: must be a live property of the entity`, [{ path: `${path}/propertyId`, message: 'unknown property' }]);
    if (property.fieldType === 'MULTI_CHECKBOX') throw errors.validation(`${path}.propertyId: MULTI_CHECKBOX values cannot be matched`, [{ path: `${path}/propertyId`, message: 'not matchable' }]);
    if (masked && property.isMasked) throw errors.forbidden(`Property ${property.propertyId} is masked: matching on it needs the ADMIN role.`);
    return { type: 'property', storageKey: property.storageKey };
  }

  /**
   * (source, counterpart) pairs whose match values are all equal and not empty, matched here from
   * the two sides' values; FIRST keeps each source's oldest counterpart. A record never matches itself.
   */
  async function matchPairs(tx: TenantDb, sources: readonly string[], counterEntityId: string, criteria: { mine: repo.MatchField; theirs: repo.MatchField }[], first: boolean) {
    const usable = (keys: (string | null)[]) => keys.every((k) => k !== null && k !== '');
    const mine = (await repo.sourceKeys(tx, sources, criteria.map((c) => c.mine))).filter((r) => usable(r.keys));
    const firstValues = [...new Set(mine.map((r) => r.keys[0]!))];
    const candidates = await repo.counterpartKeys(tx, counterEntityId, criteria.map((c) => c.theirs), firstValues, MATCH_MAX_CANDIDATES + 1);
    if (candidates.length > MATCH_MAX_CANDIDATES) {
      throw errors.validation(`criteria: more than ${MATCH_MAX_CANDIDATES} counterpart records share the sources' values; use stricter criteria`, [{ path: '/criteria', message: 'not selective enough' }]);
    }
    const byKeys = new Map<string, string[]>();
    for (const c of candidates) {
      const key = JSON.stringify(c.keys);
      const list = byKeys.get(key);
      if (list) list.push(c.record_id);
      else byKeys.set(key, [c.record_id]);
    }
    const pairs: { source_id: string; counter_id: string }[] = [];
    for (const s of mine) {
      const counterparts = (byKeys.get(JSON.stringify(s.keys)) ?? []).filter((id) => id !== s.record_id);
      for (const id of first ? counterparts.slice(0, 1) : counterparts) pairs.push({ source_id: s.record_id, counter_id: id });
      if (pairs.length > BULK_MAX_LINKS) {
        throw errors.validation(`the criteria match more than ${BULK_MAX_LINKS} pairs; use fewer sources or stricter criteria`, [{ path: '/criteria', message: 'too many matches' }]);
      }
    }
    return pairs;
  }

  return {
    async bulkLink(tenant, caller, body) {
      exactlyOne(body.sourceRecordIds, body.sourceFilter, 'source');
      return tenant.transaction(async (tx) => {
        const type = await types.requireUsable(tx, caller, body.relationshipTypeId);
        const sourceSide = sideOf(type, body.sourceEntityId, 'sourceEntityId');
        if (body.targetEntityId !== (sourceSide === 'source' ? type.target_entity_id : type.source_entity_id)) {
          throw errors.validation(`targetEntityId: relationship type ${type.relationship_type_id} links ${type.source_entity_id} → ${type.target_entity_id}`,
            [{ path: 'targetEntityId', message: 'not the other entity of the relationship type' }]);
        }
        const targets = unique(body.targetRecordIds);
        const maxSources = Math.floor(BULK_MAX_LINKS / targets.length);
        const sources = body.sourceRecordIds
          ? unique(body.sourceRecordIds)
          : await select(tx, caller, body.sourceEntityId, body.sourceFilter!, maxSources, 'sourceFilter');
        if (sources.length * targets.length > BULK_MAX_LINKS) {
          throw errors.validation(`${sources.length} sources × ${targets.length} targets is more than ${BULK_MAX_LINKS} links`, [{ path: '/sourceRecordIds', message: 'too many links' }]);
        }
        await assertLive(tx, sources, body.sourceEntityId, 'sourceRecordIds');
        await assertLive(tx, targets, body.targetEntityId, 'targetRecordIds');
        const pairs: [string, string][] = [];
        for (const s of sources) {
          for (const t of targets) {
            if (s !== t) pairs.push(sourceSide === 'source' ? [s, t] : [t, s]);
          }
        }
        const created = await link(tx, caller, type, pairs);
        return { created, skipped: sources.length * targets.length - created };
      });
    },

    async bulkMatch(tenant, caller, body) {
      exactlyOne(body.sourceRecordIds, body.sourceFilter, 'source');
      return tenant.transaction(async (tx) => {
        const type = await types.requireUsable(tx, caller, body.relationshipTypeId);
        const sourceSide = sideOf(type, body.sourceEntityId, 'sourceEntityId');
        const counterEntityId = sourceSide === 'source' ? type.target_entity_id : type.source_entity_id;
        const byId = async (entityId: string) => new Map((await properties.recordFields(tx, entityId)).map((f) => [f.propertyId, f]));
        const [mine, theirs] = [await byId(body.sourceEntityId), await byId(counterEntityId)];
        const masked = caller.role === 'MEMBER';
        const criteria = body.criteria.map((c, i) => ({
          mine: matchField(c.myField, mine, masked, `criteria[${i}].myField`),
          theirs: matchField(c.counterField, theirs, masked, `criteria[${i}].counterField`),
        }));
        const sources = body.sourceRecordIds
          ? unique(body.sourceRecordIds)
          : await select(tx, caller, body.sourceEntityId, body.sourceFilter!, MATCH_MAX_SELECTED, 'sourceFilter');
        if (body.sourceRecordIds) await assertLive(tx, sources, body.sourceEntityId, 'sourceRecordIds');
        const found = await matchPairs(tx, sources, counterEntityId, criteria, body.matchMode === 'FIRST');
        const pairs = found.map((m): [string, string] => (sourceSide === 'source' ? [m.source_id, m.counter_id] : [m.counter_id, m.source_id]));
        const created = await link(tx, caller, type, pairs);
        const matched = new Set(found.map((m) => m.source_id)).size;
        return { matched, created, skipped: sources.length - matched + (pairs.length - created) };
      });
    },
  };
}
