import { AppError, errors, type ErrorDetail } from '../../errors.ts';
import type { FieldType, PropertyOptionJson } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';
import { newId } from '../../lib/ids.ts';
import { assertPrecondition, withVersion, type Precondition, type Versioned } from '../../lib/versioning.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import { uniqueViolation } from '../../db/errors.ts';
import type { EntitiesService, EntityRow } from '../entities/entities.service.ts';
import type { InsightWidget, ViewSettings } from '../entities/entities.schemas.ts';
import { mergeViewSettings, settingsProblems, type PropertyInfo } from '../entities/view-settings.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import { convertValue, isValuePreserving } from './field-conversion.ts';
import { isChoiceType, isReservedKey } from './field-types.ts';
import * as repo from './properties.repository.ts';
import {
  PROPERTY_LIST_CAP,
  type BulkCreatedProperty, type CreatePropertyBody, type ListPropertiesQuery, type OptionInput, type Property, type UpdatedProperty,
  type UpdatePropertyBody, type ValueConversion,
} from './properties.schemas.ts';

/**
 * Masking (API.md §1.7): a MEMBER sees `options: []` for a masked choice property; ADMIN and
 * OWNER see the options. (Record values are masked by the records module with the same rule.)
 */
export function toProperty(row: repo.PropertyRow, caller: Pick<Caller, 'role'>): Versioned<Property> {
  const hideOptions = caller.role === 'MEMBER' && row.is_masked && isChoiceType(row.field_type);
  // Tagged with the row version: the ETag, never a body field.
  return withVersion({
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
  }, row.version);
}

export function toPropertyInfo(row: repo.PropertyRow): PropertyInfo {
  return { propertyId: row.property_id, storageKey: row.storage_key, name: row.name, fieldType: row.field_type, optionValues: row.options.map((o) => o.value) };
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

/** The fieldType and (when they change) options a PATCH leads to. */
function nextDefinition(current: repo.PropertyRow, input: UpdatePropertyBody): { fieldType: FieldType; options: PropertyOptionJson[] | undefined } {
  const fieldType = input.fieldType ?? current.field_type;
  // Leaving the choice types drops the options; entering them keeps whatever list is sent.
  let options: PropertyOptionJson[] | undefined;
  if (input.options !== undefined) options = normalizeOptions(input.options);
  else if (!isChoiceType(fieldType) && current.options.length) options = [];
  return { fieldType, options };
}

/** Whether a PATCH of `current` may change or drop values that records hold. */
function rewritesValues(current: repo.PropertyRow, input: UpdatePropertyBody): boolean {
  const { fieldType, options } = nextDefinition(current, input);
  if (fieldType === current.field_type && options === undefined) return false;
  return !isValuePreserving(current.field_type, fieldType, current.options.map((o) => o.value), (options ?? current.options).map((o) => o.value));
}

/** A PATCH attempt that has to start over, holding the value locks from the beginning. */
class RetryWithValueLocks extends Error {}
const MAX_UPDATE_ATTEMPTS = 5;

/** PostgreSQL's lock_not_available (a NOWAIT lock that another transaction holds). */
function isLockNotAvailable(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '55P03';
}

/** Records read (and written back) per round trip while converting values. */
const CONVERSION_PAGE = 1_000;
/** Examples of values that cannot be converted, listed in the 400's details. */
const MAX_EXAMPLES = 10;

interface ValueChange {
  entityId: string;
  /** Where the property's values live in `records.data`. */
  storageKey: string;
  from: FieldType;
  to: FieldType;
  oldOptionValues: string[];
  newOptionValues: string[];
  force: boolean;
}

const plural = (n: number, one: string, many: string) => (n === 1 ? one : many);

/**
 * Converts the values that records (live and trashed) hold for a property whose fieldType or
 * options change, inside the PATCH's transaction; see field-conversion.ts for the rules. Values
 * that cannot be converted make it a 400 with their count, unless `force`: then they are cleared
 * (MULTI_CHECKBOX keeps the options that still exist) and the answer's `conversion.cleared` says
 * how many.
 *
 * The caller holds the locks (see updateOnce): no record write of the entity runs meanwhile.
 * Two read passes in record ID order: the first only decides (nothing is written when the answer
 * is 400), the second writes each page's changes with one set-based UPDATE.
 */
async function convertStoredValues(tx: TenantDb, c: ValueChange): Promise<ValueConversion> {
  const eachPage = async (work: (rows: repo.RecordValue[]) => Promise<void> | void) => {
    let after: string | undefined;
    for (;;) {
      const rows = await repo.recordValuesPage(tx, c.entityId, c.storageKey, after, CONVERSION_PAGE);
      if (rows.length) await work(rows);
      if (rows.length < CONVERSION_PAGE) return;
      after = rows[rows.length - 1]!.record_id;
    }
  };
  const convert = (value: unknown) => convertValue(c.from, c.to, value, c.newOptionValues);
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

  const report: ValueConversion = { fromType: c.from, toType: c.to, records: 0, converted: 0, unchanged: 0, cleared: 0 };
  let trashedLost = 0;
  const examples: ErrorDetail[] = [];
  await eachPage((rows) => {
    for (const row of rows) {
      report.records++;
      const result = convert(row.value);
      if (!result.ok) {
        report.cleared++;
        if (row.is_deleted) trashedLost++;
        if (examples.length < MAX_EXAMPLES) {
          examples.push({ path: `/records/${row.record_id}`, recordId: row.record_id, ...(row.is_deleted ? { inTrash: true } : {}), message: result.reason });
        }
      } else if (same(result.value, row.value)) {
        report.unchanged++;
      } else {
        report.converted++;
      }
    }
  });

  const lost = report.cleared;
  if (lost && !c.force) {
    const trash = !trashedLost ? '' : lost === 1 ? ' (in the trash)' : ` (${trashedLost} of them in the trash)`;
    const them = plural(lost, 'it', 'them');
    let message: string;
    if (c.from === c.to) {
      const kept = new Set(c.newOptionValues);
      const removed = c.oldOptionValues.filter((v) => !kept.has(v));
      message = `${lost} ${plural(lost, 'record', 'records')}${trash} ${plural(lost, 'uses', 'use')} option values that the new option list removes`
        + `${removed.length ? ` (${removed.slice(0, 10).join(', ')}${removed.length > 10 ? ', …' : ''})` : ''}; send ?force=true to clear ${them}`;
    } else {
      message = `${lost} ${plural(lost, 'record', 'records')}${trash} ${plural(lost, 'has a value', 'have values')} that cannot be converted`
        + ` from ${c.from} to ${c.to}; send ?force=true to clear ${them}`;
    }
    throw errors.validation(message, [
      { path: c.from === c.to ? '/options' : '/fieldType', message, records: lost, fromType: c.from, toType: c.to },
      ...examples,
    ]);
  }

  if (report.converted || report.cleared) {
    await eachPage(async (rows) => {
      const changes = new Map<string, unknown>();
      for (const row of rows) {
        const result = convert(row.value);
        // null in the map = no value (the key is removed from the record's data).
        if (!result.ok) changes.set(row.record_id, result.fallback ?? null);
        else if (!same(result.value, row.value)) changes.set(row.record_id, result.value ?? null);
      }
      await repo.rewriteRecordValues(tx, c.entityId, c.storageKey, changes);
    });
  }
  return report;
}

export interface PropertiesService {
  create(tenant: TenantDb, caller: Caller, input: CreatePropertyBody): Promise<Property>;
  bulkCreate(tenant: TenantDb, caller: Caller, items: CreatePropertyBody[]): Promise<BulkCreatedProperty[]>;
  list(tenant: TenantDb, caller: Caller, query: ListPropertiesQuery): Promise<Property[]>;
  get(tenant: TenantDb, caller: Caller, propertyId: string): Promise<Property>;
  /**
   * A fieldType or options change converts the values records hold (see field-conversion.ts);
   * values that cannot be converted make it a 400 with their count unless `force`, which clears
   * them. `conversion` in the answer reports what happened to the values.
   */
  update(tenant: TenantDb, caller: Caller, propertyId: string, input: UpdatePropertyBody, options?: { force?: boolean; ifMatch?: Precondition }): Promise<UpdatedProperty>;
  /** `ifMatch` (here and in update): the client's If-Match, checked against the locked row (412 PreconditionFailed). */
  remove(tenant: TenantDb, caller: Caller, propertyId: string, options?: { ifMatch?: Precondition }): Promise<{ propertyId: string; entityId: string }>;
  /** The entity's live properties, as view and widget validation sees them. */
  liveInfo(tenant: TenantDb, entityId: string): Promise<PropertyInfo[]>;
  /**
   * What records need of an entity's live properties: value rules and masking. Inside a
   * transaction it also holds the entity's record-values lock shared until the end, so a record
   * write validated against these definitions cannot interleave with a fieldType conversion
   * (which takes the lock exclusive; see properties.repository.ts lockRecordValues). Outside
   * one it waits for a conversion in progress, so records read next agree with the definitions;
   * `afterConversions: false` skips that (one round trip) for a caller whose records were read
   * before it asked, which the wait could not make agree.
   */
  recordFields(tenant: TenantDb, entityId: string, options?: { afterConversions?: boolean }): Promise<RecordField[]>;
}

export interface RecordField {
  propertyId: string;
  /** Where its values live in `records.data` (query/data-key.ts). */
  storageKey: string;
  fieldType: FieldType;
  optionValues: string[];
  isMasked: boolean;
}

export interface PropertiesServiceDeps {
  entities: EntitiesService;
  quota: QuotaService;
  /** A property of the entity was retyped, had its options changed or was deleted (in that transaction): what depends on its values re-evaluates (CACHED segments). */
  definitionsChanged: (tx: TenantDb, entityId: string) => Promise<void>;
}

export function createPropertiesService(deps: PropertiesServiceDeps): PropertiesService {
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
        const storageKeys = new Map<string, string[]>();
        for (const entityId of entityIds) {
          storageKeys.set(entityId, await entities.newStorageKeys(tx, entityId, items.filter((item) => item.entityId === entityId).length));
        }
        const rows = await repo.insertProperties(tx, items.map((item) => ({
          property_id: newId('property', now),
          storage_key: storageKeys.get(item.entityId)!.shift()!,
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

  /**
   * One attempt at a property PATCH, in its transaction. Lock order, the same for every writer
   * of the entity so none can deadlock another:
   *   conversion lock → rows of records holding a value → record-values lock (exclusive)
   *   → entity row → property row.
   * The first three are taken only when the change may rewrite stored values, judged from an
   * unlocked read; if the locked read disagrees (another PATCH got in between), the attempt is
   * retried with them. Record writes take the record-values lock shared before they validate
   * (recordFields), and record updates lock their row before that: so rows are locked before the
   * exclusive lock (writes already under way finish), and once it is held every row holding a
   * value is locked again with NOWAIT: a row that a write locked meanwhile means that write now
   * waits for us, so this attempt gives way (rolls back) and the next one runs after it.
   */
  async function updateOnce(tx: TenantDb, caller: Caller, propertyId: string, input: UpdatePropertyBody, force: boolean, lockValues: boolean, ifMatch: Precondition | undefined) {
    const peek = await repo.findProperty(tx, propertyId);
    if (!peek) throw errors.notFound('Property');
    const entityId = peek.entity_id;
    const asPropertyNotFound = (error: unknown) => {
      if (error instanceof AppError && error.status === 404) throw errors.notFound('Property');
      throw error;
    };
    await entities.requireUsable(tx, caller, entityId).catch(asPropertyNotFound);

    const valuesLocked = lockValues || rewritesValues(peek, input);
    if (valuesLocked) {
      await repo.lockPropertyConversions(tx, entityId);
      await repo.lockRecordsWithValue(tx, entityId, peek.storage_key);
      await repo.lockRecordValues(tx, entityId, 'exclusive');
    }
    // Entity first, then property: the same lock order as creates.
    await entities.requireUsable(tx, caller, entityId, { lock: true }).catch(asPropertyNotFound);
    const { row: current, entity } = await load(tx, caller, propertyId, true);
    assertPrecondition(ifMatch, current.version, 'The property');

    const { fieldType, options } = nextDefinition(current, input);
    const key = input.key === undefined ? current.key : (input.key || null);
    throwValidation(definitionProblems('', { fieldType, key: input.key === undefined ? null : key, options: input.options }));

    const definitionChanges = fieldType !== current.field_type || options !== undefined;
    if (definitionChanges) {
      const others = (await repo.liveProperties(tx, [current.entity_id])).filter((p) => p.property_id !== propertyId);
      const changed = toPropertyInfo({ ...current, field_type: fieldType, options: options ?? current.options });
      assertSettingsStillFit(entity, [...others.map(toPropertyInfo), changed], 'This change');
    }

    // The values records hold follow the new definition (400 with a count, unless force).
    let conversion: ValueConversion | undefined;
    if (rewritesValues(current, input)) {
      if (!valuesLocked) throw new RetryWithValueLocks();
      try {
        await repo.lockRecordsWithValue(tx, entityId, current.storage_key, { nowait: true });
      } catch (error) {
        if (isLockNotAvailable(error)) throw new RetryWithValueLocks();
        throw error;
      }
      conversion = await convertStoredValues(tx, {
        entityId,
        storageKey: current.storage_key,
        from: current.field_type,
        to: fieldType,
        oldOptionValues: current.options.map((o) => o.value),
        newOptionValues: (options ?? current.options).map((o) => o.value),
        force,
      });
    }

    const row = await repo.updateProperty(tx, propertyId, {
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
    if (definitionChanges) await deps.definitionsChanged(tx, entityId);
    return { row, conversion };
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

    async update(tenant, caller, propertyId, input, updateOptions = {}) {
      const force = updateOptions.force === true;
      for (let attempt = 1; ; attempt++) {
        try {
          const { row, conversion } = await tenant.transaction((tx) => updateOnce(tx, caller, propertyId, input, force, attempt > 1, updateOptions.ifMatch));
          return { ...toProperty(row, caller), ...(conversion ? { conversion } : {}) };
        } catch (error) {
          if (error instanceof RetryWithValueLocks) {
            if (attempt < MAX_UPDATE_ATTEMPTS) {
              await new Promise((resolve) => setTimeout(resolve, 25 * attempt));
              continue;
            }
            throw errors.conflict('Records of this entity are being written right now; retry the property change.');
          }
          const constraint = uniqueViolation(error);
          if (constraint !== undefined) throw conflictFromIndex(constraint);
          throw error;
        }
      }
    },

    async remove(tenant, caller, propertyId, removeOptions = {}) {
      return tenant.transaction(async (tx) => {
        const peek = await repo.findProperty(tx, propertyId);
        if (!peek) throw errors.notFound('Property');
        await entities.requireUsable(tx, caller, peek.entity_id, { lock: true }).catch((error: unknown) => {
          if (error instanceof AppError && error.status === 404) throw errors.notFound('Property');
          throw error;
        });
        const { row, entity } = await load(tx, caller, propertyId, true);
        assertPrecondition(removeOptions.ifMatch, row.version, 'The property');
        const others = (await repo.liveProperties(tx, [row.entity_id])).filter((p) => p.property_id !== propertyId);
        assertSettingsStillFit(entity, others.map(toPropertyInfo), `Deleting "${row.name}"`);
        const now = new Date();
        await repo.updateProperty(tx, propertyId, { is_deleted: true, date_deleted: now, updated_by: caller.memberId, date_updated: now });
        await entities.removeProperty(tx, row.entity_id, propertyId);
        await deps.definitionsChanged(tx, row.entity_id);
        return { propertyId, entityId: row.entity_id };
      });
    },

    async liveInfo(tenant, entityId) {
      return (await repo.liveProperties(tenant, [entityId])).map(toPropertyInfo);
    },

    async recordFields(tenant, entityId, options = {}) {
      // Before reading the definitions: a conversion in progress is waited for, then seen.
      if (options.afterConversions !== false) await repo.lockRecordValues(tenant, entityId, 'shared');
      return (await repo.liveProperties(tenant, [entityId])).map((row) => ({
        propertyId: row.property_id,
        storageKey: row.storage_key,
        fieldType: row.field_type,
        optionValues: row.options.map((o) => o.value),
        isMasked: row.is_masked,
      }));
    },
  };
}
