import { AppError, errors, type ErrorDetail } from '../../errors.ts';
import type { FieldType, PropertyOptionJson } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';
import { newId } from '../../lib/ids.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import { uniqueViolation } from '../../db/errors.ts';
import type { EntitiesService, EntityRow } from '../entities/entities.service.ts';
import type { InsightWidget, ViewSettings } from '../entities/entities.schemas.ts';
import { mergeViewSettings, settingsProblems, type PropertyInfo } from '../entities/view-settings.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import { isChoiceType, isReservedKey } from './field-types.ts';
import * as repo from './properties.repository.ts';
import {
  PROPERTY_LIST_CAP,
  type BulkCreatedProperty, type CreatePropertyBody, type ListPropertiesQuery, type OptionInput, type Property, type UpdatePropertyBody,
} from './properties.schemas.ts';

/**
 * Masking (API.md §1.7): a MEMBER sees `options: []` for a masked choice property; ADMIN and
 * OWNER see the options. (Record values are masked by the records module with the same rule.)
 */
export function toProperty(row: repo.PropertyRow, caller: Pick<Caller, 'role'>): Property {
  const hideOptions = caller.role === 'MEMBER' && row.is_masked && isChoiceType(row.field_type);
  return {
    propertyId: row.property_id,
    accountId: row.account_id,
    workspaceId: row.workspace_id,
    entityId: row.entity_id,
    name: row.name,
    ...(row.description === null ? {} : { description: row.description }),
    fieldType: row.field_type,
    propertyGroupId: row.property_group_id,
    options: hideOptions ? [] : row.options,
    isMasked: row.is_masked,
    key: row.key,
    createdBy: row.created_by,
    updatedBy: row.updated_by,
    dateCreated: row.date_created.toISOString(),
    dateUpdated: row.date_updated.toISOString(),
  };
}

export function toPropertyInfo(row: repo.PropertyRow): PropertyInfo {
  return { propertyId: row.property_id, name: row.name, fieldType: row.field_type, optionValues: row.options.map((o) => o.value) };
}

/** Options as stored: priority defaulted to the 1-based position, color to null, sorted by priority. */
function normalizeOptions(input: OptionInput[]): PropertyOptionJson[] {
  return input
    .map((o, i) => ({ label: o.label, value: o.value, priority: o.priority ?? i + 1, color: o.color ?? null }))
    .sort((a, b) => a.priority - b.priority);
}

/** Static checks of one property definition; `path` prefixes the field names in the details. */
function definitionProblems(path: string, def: { fieldType: FieldType; key?: string | null; options?: OptionInput[] }): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  if (def.key && isReservedKey(def.key)) problems.push({ path: `${path}/key`, message: `"${def.key}" is a reserved word` });
  const options = def.options ?? [];
  if (!isChoiceType(def.fieldType)) {
    if (options.length) problems.push({ path: `${path}/options`, message: `${def.fieldType} takes no options (only DROPDOWN, RADIO, MULTI_CHECKBOX)` });
    return problems;
  }
  const values = new Set<string>();
  const priorities = new Set<number>();
  options.forEach((o, i) => {
    if (values.has(o.value)) problems.push({ path: `${path}/options/${i}/value`, message: `duplicate option value "${o.value}"` });
    values.add(o.value);
    const priority = o.priority ?? i + 1;
    if (priorities.has(priority)) problems.push({ path: `${path}/options/${i}/priority`, message: `duplicate option priority ${priority}` });
    priorities.add(priority);
  });
  return problems;
}

function throwValidation(problems: ErrorDetail[]): void {
  if (!problems.length) return;
  const first = problems[0]!;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  throw errors.validation(`${first.path}: ${first.message}${more}`, problems);
}

function throwConflicts(problems: ErrorDetail[]): void {
  if (!problems.length) return;
  const first = problems[0]!;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  throw new AppError(409, 'ConflictException', `${first.path}: ${first.message}${more}`, { details: problems });
}

/** Backstop for the unique indexes of migration 0002 (the pre-checks normally answer first). */
function conflictFromIndex(constraint: string): AppError {
  if (constraint === 'properties_live_name_key') return errors.conflict('name: another live property of this entity has this name.');
  if (constraint === 'properties_live_key_key') return errors.conflict('key: another live property of this entity has this key.');
  return errors.conflict('Another live property of this entity has this name or key.');
}

/** Refuses a property change that the entity's view settings or widgets would no longer fit. */
function assertSettingsStillFit(entity: EntityRow, properties: PropertyInfo[], what: string): void {
  const problems = settingsProblems(
    mergeViewSettings(entity.view_settings as ViewSettings, undefined),
    entity.insight_widgets as InsightWidget[],
    properties,
  );
  if (problems.length) {
    throw new AppError(409, 'ConflictException',
      `${what} would break the entity's settings (${problems[0]!.path}: ${problems[0]!.message}); change viewSettings/insightWidgets first.`,
      { details: problems });
  }
}

export interface PropertiesService {
  create(tenant: TenantDb, caller: Caller, input: CreatePropertyBody): Promise<Property>;
  bulkCreate(tenant: TenantDb, caller: Caller, items: CreatePropertyBody[]): Promise<BulkCreatedProperty[]>;
  list(tenant: TenantDb, caller: Caller, query: ListPropertiesQuery): Promise<Property[]>;
  get(tenant: TenantDb, caller: Caller, propertyId: string): Promise<Property>;
  update(tenant: TenantDb, caller: Caller, propertyId: string, input: UpdatePropertyBody): Promise<Property>;
  remove(tenant: TenantDb, caller: Caller, propertyId: string): Promise<{ propertyId: string; entityId: string }>;
  /** The entity's live properties, as view and widget validation sees them. */
  liveInfo(tenant: TenantDb, entityId: string): Promise<PropertyInfo[]>;
  /** What records need of an entity's live properties: value rules and masking. */
  recordFields(tenant: TenantDb, entityId: string): Promise<RecordField[]>;
}

export interface RecordField {
  propertyId: string;
  fieldType: FieldType;
  optionValues: string[];
  isMasked: boolean;
}

export function createPropertiesService(deps: { entities: EntitiesService; quota: QuotaService }): PropertiesService {
  const { entities, quota } = deps;

  /**
   * Creates every item or none: entities are locked in ID order (no deadlocks between batches),
   * collisions are reported per item, and `properties.maxPerEntity` is reserved per entity in the
   * same transaction. Deleted properties keep their quota slot (as Solapi does) until purged.
   * A property lives in its entity's workspace (it is one of the entity's columns), whichever
   * key creates it: so every key that sees the entity sees all of its columns.
   */
  async function createMany(tenant: TenantDb, caller: Caller, items: CreatePropertyBody[], pathOf: (i: number) => string): Promise<repo.PropertyRow[]> {
    throwValidation(items.flatMap((item, i) => definitionProblems(pathOf(i), item)));
    try {
      return await tenant.transaction(async (tx) => {
        const entityIds = [...new Set(items.map((item) => item.entityId))].sort();
        const entityRows = new Map<string, EntityRow>();
        for (const entityId of entityIds) {
          try {
            entityRows.set(entityId, await entities.requireUsable(tx, caller, entityId, { lock: true }));
          } catch (error) {
            if (!(error instanceof AppError)) throw error;
            const index = items.findIndex((item) => item.entityId === entityId);
            throw new AppError(error.status, error.code, `${pathOf(index)}/entityId: ${error.message}`,
              { details: [{ path: `${pathOf(index)}/entityId`, index, message: error.message }] });
          }
        }

        const existing = await repo.liveProperties(tx, entityIds);
        const names = new Set(existing.map((p) => `${p.entity_id}\u0000${p.name}`));
        const keys = new Set(existing.filter((p) => p.key !== null).map((p) => `${p.entity_id}\u0000${p.key}`));
        const conflicts: ErrorDetail[] = [];
        items.forEach((item, i) => {
          const name = `${item.entityId}\u0000${item.name}`;
          if (names.has(name)) conflicts.push({ path: `${pathOf(i)}/name`, index: i, message: `a property named "${item.name}" already exists in this entity` });
          names.add(name);
          if (item.key) {
            const key = `${item.entityId}\u0000${item.key}`;
            if (keys.has(key)) conflicts.push({ path: `${pathOf(i)}/key`, index: i, message: `key "${item.key}" is already used in this entity` });
            keys.add(key);
          }
        });
        throwConflicts(conflicts);

        for (const entityId of entityIds) {
          await quota.reserve(tx, 'properties.maxPerEntity', items.filter((item) => item.entityId === entityId).length, entityId);
        }

        const now = new Date();
        const rows = await repo.insertProperties(tx, items.map((item) => ({
          property_id: newId('property', now),
          workspace_id: entityRows.get(item.entityId)!.workspace_id,
          entity_id: item.entityId,
          name: item.name,
          description: item.description ?? null,
          field_type: item.fieldType,
          property_group_id: item.propertyGroupId ?? null,
          options: JSON.stringify(normalizeOptions(item.options ?? [])),
          is_masked: item.isMasked ?? false,
          key: item.key ?? null,
          created_by: caller.memberId,
          updated_by: caller.memberId,
          date_created: now,
          date_updated: now,
        })));
        // RETURNING keeps the VALUES order, which is the request order.
        for (const entityId of entityIds) {
          await entities.appendProperties(tx, entityId, rows.filter((r) => r.entity_id === entityId).map((r) => r.property_id));
        }
        return rows;
      });
    } catch (error) {
      const constraint = uniqueViolation(error);
      if (constraint !== undefined) throw conflictFromIndex(constraint);
      throw error;
    }
  }

  /** The property and its (locked, when asked) entity: 404, then the entity's 404/410/403, then 410 if deleted. */
  async function load(tenant: TenantDb, caller: Caller, propertyId: string, lock = false) {
    const row = await repo.findProperty(tenant, propertyId, { lock });
    if (!row) throw errors.notFound('Property');
    let entity: EntityRow;
    try {
      entity = await entities.requireUsable(tenant, caller, row.entity_id, { lock });
    } catch (error) {
      // A property outside the key's workspace is as unknown as one in another account.
      if (error instanceof AppError && error.status === 404) throw errors.notFound('Property');
      throw error;
    }
    if (row.is_deleted) throw errors.gone('Property');
    return { row, entity };
  }

  return {
    async create(tenant, caller, input) {
      const [row] = await createMany(tenant, caller, [input], () => '');
      return toProperty(row!, caller);
    },

    async bulkCreate(tenant, caller, items) {
      const rows = await createMany(tenant, caller, items, (i) => `/properties/${i}`);
      return rows.map((row) => ({
        propertyId: row.property_id,
        entityId: row.entity_id,
        name: row.name,
        fieldType: row.field_type,
        ...(row.key === null ? {} : { key: row.key }),
        ...(row.property_group_id === null ? {} : { propertyGroupId: row.property_group_id }),
        dateCreated: row.date_created.toISOString(),
      }));
    },

    async list(tenant, caller, query) {
      if (query.entityId) await entities.requireUsable(tenant, caller, query.entityId);
      const rows = await repo.listProperties(tenant, caller, {
        entityId: query.entityId,
        keyword: query.keyword,
        cap: Math.min(query.limit ?? PROPERTY_LIST_CAP, PROPERTY_LIST_CAP),
      });
      return rows.map((row) => toProperty(row, caller));
    },

    async get(tenant, caller, propertyId) {
      return toProperty((await load(tenant, caller, propertyId)).row, caller);
    },

    async update(tenant, caller, propertyId, input) {
      try {
        const row = await tenant.transaction(async (tx) => {
          // Entity first, then property: the same lock order as creates, so no deadlocks.
          const peek = await repo.findProperty(tx, propertyId);
          if (!peek) throw errors.notFound('Property');
          await entities.requireUsable(tx, caller, peek.entity_id, { lock: true }).catch((error: unknown) => {
            if (error instanceof AppError && error.status === 404) throw errors.notFound('Property');
            throw error;
          });
          const { row: current, entity } = await load(tx, caller, propertyId, true);

          const fieldType = input.fieldType ?? current.field_type;
          const key = input.key === undefined ? current.key : (input.key || null);
          throwValidation(definitionProblems('', { fieldType, key: input.key === undefined ? null : key, options: input.options }));
          // Leaving the choice types drops the options; entering them keeps whatever list is sent.
          // Records do not exist yet, so no stored value can be lost by a fieldType change; the
          // conversion of stored values (and the 400-with-count unless ?force=true) comes with them.
          let options: PropertyOptionJson[] | undefined;
          if (input.options !== undefined) options = normalizeOptions(input.options);
          else if (!isChoiceType(fieldType) && current.options.length) options = [];

          if (fieldType !== current.field_type || options !== undefined) {
            const others = (await repo.liveProperties(tx, [current.entity_id])).filter((p) => p.property_id !== propertyId);
            const changed = toPropertyInfo({ ...current, field_type: fieldType, options: options ?? current.options });
            assertSettingsStillFit(entity, [...others.map(toPropertyInfo), changed], 'This change');
          }

          return repo.updateProperty(tx, propertyId, {
            ...(input.name === undefined ? {} : { name: input.name }),
            ...(input.description === undefined ? {} : { description: input.description }),
            ...(input.propertyGroupId === undefined ? {} : { property_group_id: input.propertyGroupId }),
            ...(input.isMasked === undefined ? {} : { is_masked: input.isMasked }),
            ...(input.key === undefined ? {} : { key }),
            field_type: fieldType,
            ...(options === undefined ? {} : { options: JSON.stringify(options) }),
            updated_by: caller.memberId,
            date_updated: new Date(),
          });
        });
        return toProperty(row, caller);
      } catch (error) {
        const constraint = uniqueViolation(error);
        if (constraint !== undefined) throw conflictFromIndex(constraint);
        throw error;
      }
    },

    async remove(tenant, caller, propertyId) {
      return tenant.transaction(async (tx) => {
        const peek = await repo.findProperty(tx, propertyId);
        if (!peek) throw errors.notFound('Property');
        await entities.requireUsable(tx, caller, peek.entity_id, { lock: true }).catch((error: unknown) => {
          if (error instanceof AppError && error.status === 404) throw errors.notFound('Property');
          throw error;
        });
        const { row, entity } = await load(tx, caller, propertyId, true);
        const others = (await repo.liveProperties(tx, [row.entity_id])).filter((p) => p.property_id !== propertyId);
        assertSettingsStillFit(entity, others.map(toPropertyInfo), `Deleting "${row.name}"`);
        const now = new Date();
        await repo.updateProperty(tx, propertyId, { is_deleted: true, date_deleted: now, updated_by: caller.memberId, date_updated: now });
        await entities.removeProperty(tx, row.entity_id, propertyId);
        return { propertyId, entityId: row.entity_id };
      });
    },

    async liveInfo(tenant, entityId) {
      return (await repo.liveProperties(tenant, [entityId])).map(toPropertyInfo);
    },

    async recordFields(tenant, entityId) {
      return (await repo.liveProperties(tenant, [entityId])).map((row) => ({
        propertyId: row.property_id,
        fieldType: row.field_type,
        optionValues: row.options.map((o) => o.value),
        isMasked: row.is_masked,
      }));
    },
  };
}
