import { errors } from '../../errors.ts';
import { isForeignKeyViolation, uniqueViolation } from '../../db/errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { decodeCursor, encodeCursor } from '../../lib/cursor.ts';
import { newId } from '../../lib/ids.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { EntitiesService } from '../entities/entities.service.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import type { PropertiesService } from '../properties/properties.service.ts';
import type { RecordsService } from '../records/records.service.ts';
import type { RelationshipTypesService } from './relationship-types.service.ts';
import { createBulkLinking, type BulkLinking } from './relationships.bulk.ts';
import { groupEnds, type LinkQueries, type LinkWriteHooks } from './relationship-links.ts';
import * as repo from './relationships.repository.ts';
import {
  BY_TYPE_CAP, METADATA_MAX_BYTES, TYPE_LIST_CAP,
  type CreateRelationshipBody, type ListRelationshipsQuery, type NamedRelationship, type RecordRelations, type RecordRelationsQuery,
  type Relationship, type UpdateRelationshipBody,
} from './relationships.schemas.ts';

/**
 * Relationships (API.md §8): links between two records along a type, stored in the type's
 * direction. Reads show only links whose records and entities are live and visible to the
 * caller (relationships.repository.ts, Visibility); a hidden link answers 404 like an unknown one.
 */
export interface RelationshipsService extends BulkLinking, LinkQueries {
  create(tenant: TenantDb, caller: Caller, input: CreateRelationshipBody): Promise<Relationship>;
  get(tenant: TenantDb, caller: Caller, relationshipId: string): Promise<Relationship>;
  update(tenant: TenantDb, caller: Caller, relationshipId: string, input: UpdateRelationshipBody): Promise<Relationship>;
  remove(tenant: TenantDb, caller: Caller, relationshipId: string): Promise<{ relationshipId: string }>;
  list(tenant: TenantDb, caller: Caller, query: ListRelationshipsQuery): Promise<{ data: NamedRelationship[]; nextKey?: string }>;
  byType(tenant: TenantDb, caller: Caller, typeId: string): Promise<Relationship[]>;
  ofRecord(tenant: TenantDb, caller: Caller, recordId: string, query: RecordRelationsQuery): Promise<RecordRelations>;
}

export interface RelationshipsServiceDeps {
  entities: EntitiesService;
  properties: PropertiesService;
  types: RelationshipTypesService;
  records: RecordsService;
  quota: QuotaService;
  clock: Clock;
  hooks: LinkWriteHooks;
}

function toRelationship(row: repo.LinkRow): Relationship {
  return {
    relationshipId: row.relationship_id,
    accountId: row.account_id,
    workspaceId: row.workspace_id,
    relationshipTypeId: row.relationship_type_id,
    sourceEntityId: row.source_entity_id,
    sourceRecordId: row.source_record_id,
    targetEntityId: row.target_entity_id,
    targetRecordId: row.target_record_id,
    metadata: row.metadata,
    dateCreated: row.date_created.toISOString(),
    dateUpdated: row.date_updated.toISOString(),
  };
}

/** metadata is free-form but bounded: it is stored and returned as given. */
function checkMetadata(metadata: Record<string, unknown>): Record<string, unknown> {
  const bytes = Buffer.byteLength(JSON.stringify(metadata));
  if (bytes > METADATA_MAX_BYTES) {
    throw errors.validation(`metadata: ${bytes} bytes as JSON; at most ${METADATA_MAX_BYTES}`, [{ path: '/metadata', message: 'too large' }]);
  }
  return metadata;
}

interface Endpoint {
  entityId: string;
  recordId: string;
}

/** The request's two ends in the type's direction; a pair given the other way round is swapped. */
function orient(type: repo.TypeRow, a: Endpoint, b: Endpoint): { source: Endpoint; target: Endpoint } {
  if (a.entityId === type.source_entity_id && b.entityId === type.target_entity_id) return { source: a, target: b };
  if (a.entityId === type.target_entity_id && b.entityId === type.source_entity_id) return { source: b, target: a };
  throw errors.validation(`sourceEntityId/targetEntityId: relationship type ${type.relationship_type_id} links ${type.source_entity_id} → ${type.target_entity_id}`,
    [{ path: '/sourceEntityId', message: 'does not match the relationship type' }]);
}

export function createRelationshipsService(deps: RelationshipsServiceDeps): RelationshipsService {
  const { entities, types, records, quota, clock } = deps;

  async function visible(tenant: TenantDb, caller: Caller, relationshipId: string) {
    const row = await repo.findVisibleLink(tenant, caller, relationshipId);
    if (!row) throw errors.notFound('Relationship');
    return row;
  }

  /** Both ends exist, are live and belong to the entities the request names. */
  async function assertEnds(tx: TenantDb, ends: Endpoint[]): Promise<void> {
    const states = new Map((await repo.recordStates(tx, ends.map((e) => e.recordId))).map((r) => [r.record_id, r]));
    for (const [i, end] of ends.entries()) {
      const side = i === 0 ? 'source' : 'target';
      const state = states.get(end.recordId);
      if (!state) throw errors.notFound(`Record ${end.recordId}`);
      if (state.entity_id !== end.entityId) {
        throw errors.validation(`${side}RecordId: record ${end.recordId} belongs to entity ${state.entity_id}, not ${end.entityId}`,
          [{ path: `/${side}RecordId`, message: 'belongs to another entity' }]);
      }
      if (state.is_deleted) throw errors.gone(`Record ${end.recordId}`);
    }
  }

  return {
    ...createBulkLinking(deps),

    typesOfEntity: repo.typeIdsOfEntity,
    async otherEnds(tx, recordIds, typeIds) {
      return groupEnds(await repo.otherEndsOf(tx, recordIds, typeIds));
    },

    async create(tenant, caller, input) {
      const metadata = checkMetadata(input.metadata ?? {});
      if (input.sourceRecordId === input.targetRecordId) {
        throw errors.validation('targetRecordId: a record cannot be linked to itself', [{ path: '/targetRecordId', message: 'self-link' }]);
      }
      try {
        const row = await tenant.transaction(async (tx) => {
          const type = await types.requireUsable(tx, caller, input.relationshipTypeId);
          const { source, target } = orient(type,
            { entityId: input.sourceEntityId, recordId: input.sourceRecordId },
            { entityId: input.targetEntityId, recordId: input.targetRecordId });
          await assertEnds(tx, [source, target]);
          const now = new Date(clock());
          const inserted = await repo.insertLink(tx, {
            relationship_id: newId('relationship', now),
            relationship_type_id: type.relationship_type_id,
            workspace_id: caller.workspaceId,
            source_entity_id: source.entityId,
            source_record_id: source.recordId,
            target_entity_id: target.entityId,
            target_record_id: target.recordId,
            metadata,
            date_created: now,
            date_updated: now,
          });
          // After the insert, whose foreign keys share-lock both records (QuotaService's lock order).
          await quota.reserve(tx, 'relationships.max');
          await deps.hooks.linksChanged(tx, groupEnds([source, target]));
          return inserted;
        });
        return toRelationship(row);
      } catch (error) {
        if (uniqueViolation(error) !== undefined) throw errors.conflict('These two records are already linked by this relationship type.');
        // The type or a record was deleted for good between the checks and the insert.
        if (isForeignKeyViolation(error)) throw errors.notFound('Relationship type or record');
        throw error;
      }
    },

    async get(tenant, caller, relationshipId) {
      return toRelationship(await visible(tenant, caller, relationshipId));
    },

    async update(tenant, caller, relationshipId, input) {
      const metadata = checkMetadata(input.metadata);
      return tenant.transaction(async (tx) => {
        const current = await visible(tx, caller, relationshipId);
        const moved = (['sourceRecordId', 'targetRecordId'] as const).filter((key) =>
          input[key] !== undefined && input[key] !== current[key === 'sourceRecordId' ? 'source_record_id' : 'target_record_id']);
        if (moved.length) {
          throw errors.validation(`${moved[0]}: the records of a relationship cannot be changed; delete it and create a new one`,
            moved.map((key) => ({ path: `/${key}`, message: 'immutable' })));
        }
        if (!(await repo.lockLink(tx, relationshipId))) throw errors.notFound('Relationship');
        // Replaced wholesale, never merged (API.md §8).
        return toRelationship(await repo.updateMetadata(tx, relationshipId, metadata, new Date(clock())));
      });
    },

    async remove(tenant, caller, relationshipId) {
      return tenant.transaction(async (tx) => {
        const current = await visible(tx, caller, relationshipId);
        if (!(await repo.lockLink(tx, relationshipId))) throw errors.notFound('Relationship');
        await repo.deleteLink(tx, relationshipId);
        await quota.release(tx, 'relationships.max');
        await deps.hooks.linksChanged(tx, groupEnds([
          { entityId: current.source_entity_id, recordId: current.source_record_id },
          { entityId: current.target_entity_id, recordId: current.target_record_id },
        ]));
        return { relationshipId };
      });
    },

    async list(tenant, caller, query) {
      // Each filter is checked as its own resource would answer (404 / 410 / 403).
      if (query.relationshipTypeId !== undefined) await types.requireUsable(tenant, caller, query.relationshipTypeId);
      if (query.entityId !== undefined) await entities.requireUsable(tenant, caller, query.entityId);
      if (query.recordId !== undefined) await records.get(tenant, caller, query.recordId);
      const limit = query.limit ?? 50;
      const before = query.startKey ? decodeCursor(query.startKey, ['rl'], 1)[0] : undefined;
      const rows = await repo.pageLinks(tenant, caller, {
        typeId: query.relationshipTypeId, entityId: query.entityId, recordId: query.recordId, before,
      }, limit + 1);
      const data = rows.slice(0, limit).map((row) => ({
        ...toRelationship(row),
        sourceRecordName: row.source_name || row.source_record_id,
        targetRecordName: row.target_name || row.target_record_id,
      }));
      return rows.length > limit ? { data, nextKey: encodeCursor(['rl', data[data.length - 1]!.relationshipId]) } : { data };
    },

    async byType(tenant, caller, typeId) {
      await types.requireUsable(tenant, caller, typeId);
      return (await repo.pageLinks(tenant, caller, { typeId }, BY_TYPE_CAP)).map(toRelationship);
    },

    async ofRecord(tenant, caller, recordId, query) {
      const record = await records.get(tenant, caller, recordId);
      const entityId = record.entityId;
      if (query.startKey !== undefined && (query.relationshipTypeId === undefined || query.direction === undefined)) {
        throw errors.validation('startKey: send it with the relationshipTypeId and direction of the group it came from', [{ path: 'startKey', message: 'needs relationshipTypeId and direction' }]);
      }
      let typeRows: repo.TypeRow[];
      if (query.relationshipTypeId !== undefined) {
        const type = await types.requireUsable(tenant, caller, query.relationshipTypeId);
        if (type.source_entity_id !== entityId && type.target_entity_id !== entityId) {
          throw errors.validation(`relationshipTypeId: the type does not involve this record's entity ${entityId}`, [{ path: 'relationshipTypeId', message: 'not a type of this entity' }]);
        }
        typeRows = [type];
      } else {
        typeRows = await repo.listTypes(tenant, caller, entityId, TYPE_LIST_CAP);
      }
      const limit = query.limit ?? 20;
      const groups: RecordRelations['groups'] = [];
      for (const type of typeRows) {
        const directions: repo.Direction[] = [];
        if (type.source_entity_id === entityId) directions.push('outgoing');
        if (type.target_entity_id === entityId) directions.push('incoming');
        for (const direction of directions.filter((d) => query.direction === undefined || d === query.direction)) {
          const before = query.startKey ? decodeCursor(query.startKey, ['rg', type.relationship_type_id, direction], 1)[0] : undefined;
          const { rows, total } = await repo.recordGroup(tenant, caller, { recordId, typeId: type.relationship_type_id, direction, before, limit });
          const outgoing = direction === 'outgoing';
          const data = rows.slice(0, limit).map((row) => {
            const otherId = outgoing ? row.target_record_id : row.source_record_id;
            const otherName = outgoing ? row.target_name : row.source_name;
            return { relationshipId: row.relationship_id, recordId: otherId, name: otherName || otherId, metadata: row.metadata, dateCreated: row.date_created.toISOString() };
          });
          groups.push({
            relationshipTypeId: type.relationship_type_id,
            name: type.name,
            direction,
            label: (outgoing ? type.target_label : type.source_label) || type.name,
            relatedEntityId: outgoing ? type.target_entity_id : type.source_entity_id,
            total,
            data,
            ...(rows.length > limit ? { nextKey: encodeCursor(['rg', type.relationship_type_id, direction, data[data.length - 1]!.relationshipId]) } : {}),
          });
        }
      }
      return { recordId, entityId, groups };
    },
  };
}
