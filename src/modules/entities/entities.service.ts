import { errors } from '../../errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { MembersService } from '../members/members.service.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import { uniqueViolation } from '../../db/errors.ts';
import * as repo from './entities.repository.ts';
import type { CreateEntityBody, Entity, InsightWidget, UpdateEntityBody, ViewSettings } from './entities.schemas.ts';
import { mergeViewSettings, normalizeWidgets, validateViewSettings, validateWidgets, type PropertyInfo } from './view-settings.ts';
import { newId } from '../../lib/ids.ts';
import { storageKeyOf } from '../../query/data-key.ts';
import { assertPrecondition, withVersion, type Precondition, type Versioned } from '../../lib/versioning.ts';

/** GET /entities and the trash answer at most this many (API.md §1.6). */
export const ENTITY_LIST_CAP = 200;

export type { EntityRow } from './entities.repository.ts';

/** The API object, tagged with its row version (the ETag; never a body field). */
export function toEntity(row: repo.EntityRow): Versioned<Entity> {
  return withVersion({
    entityId: row.entity_id,
    accountId: row.account_id,
    workspaceId: row.workspace_id,
    name: row.name,
    slug: row.slug,
    description: row.description,
    propertyIds: row.property_ids,
    viewSettings: mergeViewSettings(row.view_settings as ViewSettings, undefined),
    insightWidgets: row.insight_widgets as InsightWidget[],
    recordAccess: row.record_access,
    ownerId: row.owner_id,
    priority: row.priority,
    isDeleted: row.is_deleted,
    createdBy: row.created_by,
    updatedBy: row.updated_by,
    dateCreated: row.date_created.toISOString(),
    dateUpdated: row.date_updated.toISOString(),
  }, row.version);
}

/** recordAccess (API.md §1.7): the same rule as repo.accessibleBy, for one row. */
export function canAccess(caller: Pick<Caller, 'role' | 'memberId'>, row: Pick<repo.EntityRow, 'record_access' | 'owner_id'>): boolean {
  if (caller.role === 'OWNER') return true;
  switch (row.record_access) {
    case 'PUBLIC': return true;
    case 'ENTITY_OWNER_ONLY': return row.owner_id === caller.memberId;
    case 'ADMIN_ONLY': return caller.role === 'ADMIN';
  }
}

function duplicateSlug(slug: string) {
  return errors.duplicateEntity(`An entity with slug "${slug}" already exists.`);
}

export interface EntitiesService {
  list(tenant: TenantDb, caller: Caller, keyword?: string): Promise<Entity[]>;
  trash(tenant: TenantDb, caller: Caller): Promise<Entity[]>;
  get(tenant: TenantDb, caller: Caller, entityId: string): Promise<Entity>;
  create(tenant: TenantDb, caller: Caller, input: CreateEntityBody): Promise<Entity>;
  /** `ifMatch`: the client's If-Match, checked against the locked row (412 PreconditionFailed). */
  update(tenant: TenantDb, caller: Caller, entityId: string, input: UpdateEntityBody, options?: { ifMatch?: Precondition }): Promise<Entity>;
  remove(tenant: TenantDb, caller: Caller, entityId: string, options?: { ifMatch?: Precondition }): Promise<void>;
  restore(tenant: TenantDb, caller: Caller, entityId: string): Promise<Entity>;
  /**
   * The live entity the caller may use, for the entity's sub-resources (properties, later
   * records, segments…): 404 unknown or outside the key's workspace, 410 trashed, 403 recordAccess.
   * `lock` takes the row lock (inside a transaction) that serialises changes to its columns.
   */
  requireUsable(tenant: TenantDb, caller: Caller, entityId: string, options?: { lock?: boolean }): Promise<repo.EntityRow>;
  /** Appends new properties to the column order (inside the transaction holding the entity lock). */
  appendProperties(tenant: TenantDb, entityId: string, propertyIds: string[]): Promise<void>;
  /** Storage keys for `count` new properties of the entity (entity row locked), never given before in it. */
  newStorageKeys(tenant: TenantDb, entityId: string, count: number): Promise<string[]>;
  /** Drops a deleted property from the column order (same). */
  removeProperty(tenant: TenantDb, entityId: string, propertyId: string): Promise<void>;
}

export interface EntitiesServiceDeps {
  members: MembersService;
  quota: QuotaService;
  /** The entity's live properties (late-bound: the properties module depends on this one). */
  liveProperties: (tenant: TenantDb, entityId: string) => Promise<PropertyInfo[]>;
  /** The entity was trashed or restored, in that transaction: its records' links were hidden or shown. */
  visibilityChanged: (tx: TenantDb, entityId: string) => Promise<void>;
}

export function createEntitiesService(deps: EntitiesServiceDeps): EntitiesService {
  const { members, quota } = deps;

  async function assertMember(tenant: TenantDb, ownerId: string): Promise<void> {
    if (!(await members.exists(tenant, ownerId))) {
      throw errors.validation(`ownerId: ${ownerId} is not a member of this account.`, [{ path: '/ownerId', message: 'unknown member' }]);
    }
  }

  async function requireUsable(tenant: TenantDb, caller: Caller, entityId: string, options: { lock?: boolean } = {}) {
    const row = await repo.findEntity(tenant, caller, entityId, options);
    if (!row) throw errors.notFound('Entity');
    if (row.is_deleted) throw errors.gone('Entity');
    if (!canAccess(caller, row)) throw errors.forbidden('This entity\'s recordAccess does not allow you.');
    return row;
  }

  return {
    requireUsable,
    appendProperties: repo.appendPropertyIds,
    async newStorageKeys(tenant, entityId, count) {
      const last = await repo.takePropertyNumbers(tenant, entityId, count);
      return Array.from({ length: count }, (_, i) => storageKeyOf(last - count + 1 + i));
    },
    removeProperty: repo.removePropertyId,

    async list(tenant, caller, keyword) {
      return (await repo.listLiveEntities(tenant, caller, keyword, ENTITY_LIST_CAP)).map(toEntity);
    },

    async trash(tenant, caller) {
      return (await repo.listTrashedEntities(tenant, caller, ENTITY_LIST_CAP)).map(toEntity);
    },

    async get(tenant, caller, entityId) {
      return toEntity(await requireUsable(tenant, caller, entityId));
    },

    async create(tenant, caller, input) {
      const ownerId = input.ownerId ?? caller.memberId;
      if (input.ownerId !== undefined) await assertMember(tenant, ownerId);
      // A new entity has no properties yet: settings may only use what needs none.
      const viewSettings = mergeViewSettings(undefined, input.viewSettings);
      validateViewSettings(viewSettings, []);
      const widgets = normalizeWidgets(input.insightWidgets ?? [], []);
      validateWidgets(widgets, []);
      try {
        const row = await tenant.transaction(async (tx) => {
          // Trashed entities keep their entities.max slot until they are purged, so a restore
          // can never fail on the quota; the purge (not delete) releases it.
          await quota.reserve(tx, 'entities.max');
          const now = new Date();
          return repo.insertEntity(tx, {
            entity_id: newId('entity', now),
            workspace_id: caller.workspaceId,
            name: input.name,
            slug: input.slug,
            description: input.description ?? null,
            property_ids: '[]',
            view_settings: JSON.stringify(viewSettings),
            insight_widgets: JSON.stringify(widgets),
            record_access: input.recordAccess ?? 'PUBLIC',
            owner_id: ownerId,
            priority: input.priority ?? (await repo.nextPriority(tx)),
            created_by: caller.memberId,
            updated_by: caller.memberId,
            date_created: now,
            date_updated: now,
          });
        });
        return toEntity(row);
      } catch (error) {
        if (uniqueViolation(error) !== undefined) throw duplicateSlug(input.slug);
        throw error;
      }
    },

    async update(tenant, caller, entityId, input, options = {}) {
      try {
        const row = await tenant.transaction(async (tx) => {
          const current = await requireUsable(tx, caller, entityId, { lock: true });
          assertPrecondition(options.ifMatch, current.version, 'The entity');
          const ownerOnly: string[] = [];
          if (input.recordAccess !== undefined && input.recordAccess !== current.record_access) ownerOnly.push('recordAccess');
          if (input.ownerId !== undefined && input.ownerId !== current.owner_id) ownerOnly.push('ownerId');
          if (ownerOnly.length && caller.role !== 'OWNER') {
            throw errors.forbidden(`Changing ${ownerOnly.join(' and ')} needs the OWNER role.`);
          }
          if (input.ownerId !== undefined && input.ownerId !== current.owner_id) await assertMember(tx, input.ownerId);

          const changes: Parameters<typeof repo.updateEntity>[2] = {};
          if (input.name !== undefined) changes.name = input.name;
          if (input.slug !== undefined) changes.slug = input.slug;
          if (input.description !== undefined) changes.description = input.description;
          if (input.recordAccess !== undefined) changes.record_access = input.recordAccess;
          if (input.ownerId !== undefined) changes.owner_id = input.ownerId;
          if (input.priority !== undefined) changes.priority = input.priority;

          if (input.propertyIds !== undefined || input.viewSettings !== undefined || input.insightWidgets !== undefined) {
            const properties = await deps.liveProperties(tx, entityId);
            if (input.propertyIds !== undefined) {
              assertPermutation(input.propertyIds, properties);
              changes.property_ids = JSON.stringify(input.propertyIds);
            }
            if (input.viewSettings !== undefined) {
              const merged = mergeViewSettings(current.view_settings as ViewSettings, input.viewSettings);
              validateViewSettings(merged, properties);
              changes.view_settings = JSON.stringify(merged);
            }
            if (input.insightWidgets !== undefined) {
              const widgets = normalizeWidgets(input.insightWidgets, properties);
              validateWidgets(widgets, properties);
              changes.insight_widgets = JSON.stringify(widgets);
            }
          }
          return repo.updateEntity(tx, entityId, { ...changes, updated_by: caller.memberId, date_updated: new Date() });
        });
        return toEntity(row);
      } catch (error) {
        if (uniqueViolation(error) !== undefined) throw duplicateSlug(input.slug ?? '');
        throw error;
      }
    },

    async remove(tenant, caller, entityId, options = {}) {
      await tenant.transaction(async (tx) => {
        const current = await requireUsable(tx, caller, entityId, { lock: true });
        assertPrecondition(options.ifMatch, current.version, 'The entity');
        const now = new Date();
        await repo.updateEntity(tx, entityId, { is_deleted: true, date_deleted: now, updated_by: caller.memberId, date_updated: now });
        await deps.visibilityChanged(tx, entityId);
      });
    },

    async restore(tenant, caller, entityId) {
      let slug = '';
      try {
        const row = await tenant.transaction(async (tx) => {
          const current = await repo.findEntity(tx, caller, entityId, { lock: true });
          if (!current) throw errors.notFound('Entity');
          if (!current.is_deleted) return current; // already live: restoring is idempotent
          if (current.purge_started_at) throw errors.gone('Entity', 'is past its retention and is being purged');
          // No quota reservation: a trashed entity never gave its entities.max slot back (see create).
          slug = current.slug;
          const now = new Date();
          const restored = await repo.updateEntity(tx, entityId, { is_deleted: false, date_deleted: null, updated_by: caller.memberId, date_updated: now });
          await deps.visibilityChanged(tx, entityId);
          return restored;
        });
        return toEntity(row);
      } catch (error) {
        if (uniqueViolation(error) !== undefined) {
          throw errors.duplicateEntity(`Another live entity now uses slug "${slug}"; change its slug, then restore.`);
        }
        throw error;
      }
    },
  };
}

/** `ids` must list every live property of the entity exactly once. */
function assertPermutation(ids: string[], properties: PropertyInfo[]): void {
  const live = new Set(properties.map((p) => p.propertyId));
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const id of ids) {
    if (seen.has(id)) problems.push(`${id} is listed twice`);
    else if (!live.has(id)) problems.push(`${id} is not a live property of this entity`);
    seen.add(id);
  }
  const missing = [...live].filter((id) => !seen.has(id));
  if (missing.length) problems.push(`missing ${missing.join(', ')}`);
  if (problems.length) {
    throw errors.validation(`propertyIds: must be a permutation of the entity's live properties (${problems.join('; ')})`,
      problems.map((message) => ({ path: '/propertyIds', message })));
  }
}
