import { errors } from '../../errors.ts';
import { uniqueViolation } from '../../db/errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { newId } from '../../lib/ids.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { EntitiesService } from '../entities/entities.service.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import type { LinkWriteHooks } from './relationship-links.ts';
import * as repo from './relationships.repository.ts';
import { TYPE_LIST_CAP, type CreateRelationshipTypeBody, type RelationshipType, type UpdateRelationshipTypeBody } from './relationships.schemas.ts';

/**
 * Relationship types (API.md §8). A type links a source entity to a target entity (possibly the
 * same one). It is usable while both entities are live and the caller satisfies both entities'
 * recordAccess; otherwise it answers as its entities do (410 trashed, 403 recordAccess).
 */
export interface RelationshipTypesService {
  create(tenant: TenantDb, caller: Caller, input: CreateRelationshipTypeBody): Promise<RelationshipType>;
  list(tenant: TenantDb, caller: Caller, entityId: string | undefined): Promise<RelationshipType[]>;
  get(tenant: TenantDb, caller: Caller, typeId: string): Promise<RelationshipType>;
  update(tenant: TenantDb, caller: Caller, typeId: string, input: UpdateRelationshipTypeBody): Promise<RelationshipType>;
  remove(tenant: TenantDb, caller: Caller, typeId: string, cascade: boolean): Promise<{ relationshipTypeId: string; deletedRelationships: number }>;
  /** The type if usable: 404 unknown (or outside the key's workspace), else as its entities (410, 403). */
  requireUsable(tenant: TenantDb, caller: Caller, typeId: string, options?: { lock?: boolean }): Promise<repo.TypeRow>;
}

export function toRelationshipType(row: repo.TypeRow): RelationshipType {
  return {
    relationshipTypeId: row.relationship_type_id,
    accountId: row.account_id,
    workspaceId: row.workspace_id,
    name: row.name,
    sourceEntityId: row.source_entity_id,
    targetEntityId: row.target_entity_id,
    ...(row.source_label === null ? {} : { sourceLabel: row.source_label }),
    ...(row.target_label === null ? {} : { targetLabel: row.target_label }),
    ...(row.description === null ? {} : { description: row.description }),
    dateCreated: row.date_created.toISOString(),
    dateUpdated: row.date_updated.toISOString(),
  };
}

function duplicateName(name: string) {
  return errors.conflict(`A relationship type named "${name}" already links these two entities.`);
}

export function createRelationshipTypesService(deps: { entities: EntitiesService; quota: QuotaService; clock: Clock; hooks: Pick<LinkWriteHooks, 'typeRemoved'> }): RelationshipTypesService {
  const { entities, quota, clock } = deps;

  async function requireUsable(tenant: TenantDb, caller: Caller, typeId: string, options: { lock?: boolean } = {}) {
    const row = await repo.findType(tenant, caller, typeId, options);
    if (!row) throw errors.notFound('Relationship type');
    await entities.requireUsable(tenant, caller, row.source_entity_id);
    if (row.target_entity_id !== row.source_entity_id) await entities.requireUsable(tenant, caller, row.target_entity_id);
    return row;
  }

  return {
    requireUsable,

    async create(tenant, caller, input) {
      try {
        const row = await tenant.transaction(async (tx) => {
          await entities.requireUsable(tx, caller, input.sourceEntityId);
          if (input.targetEntityId !== input.sourceEntityId) await entities.requireUsable(tx, caller, input.targetEntityId);
          // Counted per source entity (API.md §8).
          await quota.reserve(tx, 'relationshipTypes.maxPerEntity', 1, input.sourceEntityId);
          const now = new Date(clock());
          return repo.insertType(tx, {
            relationship_type_id: newId('relationshipType', now),
            workspace_id: caller.workspaceId,
            name: input.name,
            source_entity_id: input.sourceEntityId,
            target_entity_id: input.targetEntityId,
            source_label: input.sourceLabel ?? null,
            target_label: input.targetLabel ?? null,
            description: input.description ?? null,
            date_created: now,
            date_updated: now,
          });
        });
        return toRelationshipType(row);
      } catch (error) {
        // The unique index decides, also between racing creates.
        if (uniqueViolation(error) !== undefined) throw duplicateName(input.name);
        throw error;
      }
    },

    async list(tenant, caller, entityId) {
      if (entityId !== undefined) await entities.requireUsable(tenant, caller, entityId);
      return (await repo.listTypes(tenant, caller, entityId, TYPE_LIST_CAP)).map(toRelationshipType);
    },

    async get(tenant, caller, typeId) {
      return toRelationshipType(await requireUsable(tenant, caller, typeId));
    },

    async update(tenant, caller, typeId, input) {
      try {
        const row = await tenant.transaction(async (tx) => {
          const current = await requireUsable(tx, caller, typeId, { lock: true });
          const moved = (['sourceEntityId', 'targetEntityId'] as const).filter((key) =>
            input[key] !== undefined && input[key] !== current[key === 'sourceEntityId' ? 'source_entity_id' : 'target_entity_id']);
          if (moved.length) {
            throw errors.validation(`${moved[0]}: the entities of a relationship type cannot be changed (its relationships depend on them); create a new type instead`,
              moved.map((key) => ({ path: `/${key}`, message: 'immutable' })));
          }
          return repo.updateType(tx, typeId, {
            ...(input.name !== undefined ? { name: input.name } : {}),
            ...(input.sourceLabel !== undefined ? { source_label: input.sourceLabel } : {}),
            ...(input.targetLabel !== undefined ? { target_label: input.targetLabel } : {}),
            ...(input.description !== undefined ? { description: input.description } : {}),
            date_updated: new Date(clock()),
          });
        });
        return toRelationshipType(row);
      } catch (error) {
        if (uniqueViolation(error) !== undefined) throw duplicateName(input.name ?? '');
        throw error;
      }
    },

    async remove(tenant, caller, typeId, cascade) {
      return tenant.transaction(async (tx) => {
        // The row lock makes racing link creates (their foreign key check) wait for this decision.
        const type = await requireUsable(tx, caller, typeId, { lock: true });
        const links = await repo.countLinksOfType(tx, typeId);
        if (links > 0 && !cascade) {
          throw errors.conflict(`${links} relationship(s) use this type (including those of trashed records); delete them or pass cascade=true.`);
        }
        const deleted = links > 0 ? await repo.deleteLinksOfType(tx, typeId) : 0;
        await quota.release(tx, 'relationships.max', deleted);
        await repo.deleteType(tx, typeId);
        // Before the segments that named the type are rebuilt (QuotaService's lock order).
        await quota.release(tx, 'relationshipTypes.maxPerEntity', 1, type.source_entity_id);
        await deps.hooks.typeRemoved(tx, typeId);
        return { relationshipTypeId: typeId, deletedRelationships: deleted };
      });
    },
  };
}
