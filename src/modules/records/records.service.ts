import { sql, type RawBuilder, type SqlBool } from 'kysely';
import { errors, type ErrorDetail } from '../../errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { newId } from '../../lib/ids.ts';
import { assertPrecondition, withVersion, type Precondition } from '../../lib/versioning.ts';
import { compileConditionGroup } from '../../query/compile.ts';
import type { Condition, ConditionGroup } from '../../query/types.ts';
import { catalogOf, conditionsOf, validateCondition, validateConditionGroup, type Catalog } from '../../query/validate.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { EntitiesService } from '../entities/entities.service.ts';
import type { MembersService } from '../members/members.service.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import type { RelationshipFieldsLoader } from '../relationships/relationship-fields.ts';
import { maskValue, normalizeValue } from '../properties/field-values.ts';
import type { PropertiesService, RecordField } from '../properties/properties.service.ts';
import type { PropertyIndexes } from './property-indexes.ts';
import { decodeCursor, decodeScanKey, encodeCursor, encodeScanKey, resolveSort } from './record-sort.ts';
import { createBulkOperations, type BulkOperations, type RecordWriteHooks } from './records.bulk.ts';
import * as repo from './records.repository.ts';
import type { AdvancedSearchBody, CreateRecordBody, CrmRecord, ListRecordsQuery, UpdateRecordBody } from './records.schemas.ts';

/** Whether a compiled condition is the bare `TRUE` of an empty AND (no filter at all). */
function isTrue(where: RawBuilder<SqlBool>): boolean {
  const node = where.toOperationNode() as { kind: string; sqlFragments?: readonly string[] };
  return node.kind === 'RawNode' && node.sqlFragments?.length === 1 && node.sqlFragments[0]!.trim() === 'TRUE';
}

/** A page's filter per record (probes) and over the whole entity (the plain query): PageQuery.wholeWhere. */
interface PageFilter { where: RawBuilder<SqlBool>; whole: RawBuilder<SqlBool> }

export interface RecordPage {
  data: CrmRecord[];
  nextKey?: string;
}

export interface RecordsService extends BulkOperations {
  create(tenant: TenantDb, caller: Caller, input: CreateRecordBody): Promise<CrmRecord>;
  get(tenant: TenantDb, caller: Caller, recordId: string): Promise<CrmRecord>;
  /** `ifMatch`: the client's If-Match, checked against the locked row (412 PreconditionFailed). */
  update(tenant: TenantDb, caller: Caller, recordId: string, input: UpdateRecordBody, options?: { ifMatch?: Precondition }): Promise<CrmRecord>;
  remove(tenant: TenantDb, caller: Caller, recordId: string, options?: { ifMatch?: Precondition }): Promise<{ recordId: string; entityId: string }>;
  restore(tenant: TenantDb, caller: Caller, recordId: string): Promise<CrmRecord>;
  /**
   * `scope`: an extra filter from another module (a segment's rules); `set`: page through this set
   * of records only (a CACHED segment's members, driven from its own table; records.repository.ts PageSet).
   */
  list(tenant: TenantDb, caller: Caller, query: ListRecordsQuery, scope?: RawBuilder<SqlBool>, set?: repo.PageSet): Promise<RecordPage>;
  search(tenant: TenantDb, caller: Caller, body: AdvancedSearchBody): Promise<RecordPage>;
  fulltext(tenant: TenantDb, caller: Caller, entityId: string, q: string, limit: number): Promise<CrmRecord[]>;
  trash(tenant: TenantDb, caller: Caller, query: { entityId: string; limit?: number; startKey?: string }): Promise<RecordPage>;
  /**
   * IDs of the live records a bulk selector picks (keyword and filters exactly as GET /records),
   * at most `max` of them in record ID order. Callers ask for one more than they accept to tell
   * "too many" from "exactly enough".
   */
  selectIds(tenant: TenantDb, caller: Caller, selector: RecordSelector, max: number): Promise<string[]>;
  /**
   * The entity's live records whose value of `propertyId` is one of `values` (compared with the
   * stored, normalised value: send what a write would store, e.g. a lower-case email), in record
   * ID order; a value held by several records appears once per record. For upsert by a property
   * (imports). Access as GET /records (404/410/403); a MEMBER may not look up by a masked
   * property (403: the answer would reveal its values). `lock`: the values stay locked until the
   * transaction ends, so a concurrent locked lookup of one of them waits for this transaction and
   * then sees what it created (two imports upserting the same new value make one record).
   */
  findByValues(tenant: TenantDb, caller: Caller, entityId: string, propertyId: string, values: readonly unknown[], options?: { lock?: boolean }): Promise<{ recordId: string; value: unknown }[]>;
  /**
   * A streaming read for exports: the live records a selector picks (keyword, filters and
   * segmentId exactly as GET /records, plus an advanced-search conditionGroup; all ANDed). Access,
   * validation and the masking rules are applied once here, as GET /records applies them (records
   * come out as the caller sees them: masked for MEMBERs); then `page` reads keyset pages in
   * (dateCreated, recordId) order, each after the key the previous one returned.
   */
  scan(tenant: TenantDb, caller: Caller, selector: RecordScanSelector): Promise<RecordScan>;
}

export interface RecordSelector {
  entityId: string;
  keyword?: string;
  filters?: string;
  segmentId?: string;
}

export interface RecordScanSelector extends RecordSelector {
  /** As POST /records/search/advanced takes it (validated against the entity here). */
  conditionGroup?: unknown;
}

export interface RecordScan {
  /** How many records match, counting no further than `max` when given (exact below it). */
  count(max?: number): Promise<number>;
  /**
   * Up to `limit` records after `afterKey` (the `nextKey` of an earlier page; none = from the
   * start). `nextKey` is absent only on a page shorter than `limit`; it is opaque and stays valid
   * across processes (a checkpoint may keep it).
   */
  page(afterKey: string | undefined, limit: number): Promise<RecordPage>;
}

export interface RecordsServiceDeps {
  entities: EntitiesService;
  properties: PropertiesService;
  members: MembersService;
  quota: QuotaService;
  clock: Clock;
  /** Adds the relationship types a condition input names to the catalog (relationship.<id> fields). */
  relationshipFields: RelationshipFieldsLoader;
  /** Segments: told of every write (CACHED members), and the filter of GET /records?segmentId=. */
  hooks: RecordWriteHooks;
  segmentFilter: (tenant: TenantDb, caller: Caller, segmentId: string, entityId: string) => Promise<RawBuilder<SqlBool>>;
  /** Sorts by a property ask for its sort indexes (built in the background). */
  propertyIndexes?: PropertyIndexes;
}

/** An entity as records see it: its live properties and the caller's view of them. */
interface EntityView {
  entityId: string;
  fields: RecordField[];
  byId: Map<string, RecordField>;
  /** The same fields by storage key: how a stored row names them. */
  byKey: Map<string, RecordField>;
  catalog: Catalog;
  /** MEMBERs get masked values (API.md §1.7). */
  masked: boolean;
}

export function createRecordsService(deps: RecordsServiceDeps): RecordsService {
  const { entities, properties, members, quota, clock, relationshipFields } = deps;

  /**
   * The entity's access check and its field definitions, read side by side: outside a
   * transaction on two connections at once; in one, they share its connection (neither takes a
   * lock the other could wait for: the entity row is read without one).
   * `afterConversions: false` for a read of records already fetched (see recordFields).
   */
  async function view(tenant: TenantDb, caller: Caller, entityId: string, options: { afterConversions?: boolean } = {}): Promise<EntityView> {
    const [, fields] = await Promise.all([
      entities.requireUsable(tenant, caller, entityId),
      properties.recordFields(tenant, entityId, options),
    ]);
    return {
      entityId,
      fields,
      byId: new Map(fields.map((f) => [f.propertyId, f])),
      byKey: new Map(fields.map((f) => [f.storageKey, f])),
      catalog: catalogOf(fields),
      masked: caller.role === 'MEMBER',
    };
  }

  /**
   * Only live properties' values leave the server, keyed by property ID (the row keys them by
   * storage key); masked ones masked for MEMBERs.
   */
  function toRecord(row: repo.RecordRow, v: EntityView): CrmRecord {
    const data: Record<string, unknown> = {};
    // The row's own keys, not every field: a record holds few of a wide entity's properties.
    for (const [key, value] of Object.entries(row.data)) {
      const field = v.byKey.get(key);
      if (!field) continue;
      data[field.propertyId] = v.masked && field.isMasked ? maskValue(field.fieldType, value) : value;
    }
    return withVersion({
      recordId: row.record_id,
      accountId: row.account_id,
      entityId: row.entity_id,
      name: row.name,
      data,
      tags: row.tags,
      ownerId: row.owner_id,
      isDeleted: row.is_deleted,
      createdBy: row.created_by,
      updatedBy: row.updated_by,
      dateCreated: row.date_created.toISOString(),
      dateUpdated: row.date_updated.toISOString(),
    }, row.version);
  }

  /**
   * Validates and normalises `data` (keyed by property ID) against the entity's live properties;
   * every problem is reported. The values come back keyed by storage key, as `records.data` and
   * `current` (the stored values) hold them.
   */
  function normalizeData(v: EntityView, data: Record<string, unknown>, current?: Record<string, unknown>, path = 'data'): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const details: ErrorDetail[] = [];
    for (const [propertyId, value] of Object.entries(data)) {
      if (current && isMaskedEcho(v, propertyId, value, current)) continue;
      const field = v.byId.get(propertyId);
      if (!field) {
        details.push({ path: `${path}.${propertyId}`, message: 'is not a live property of this entity' });
        continue;
      }
      const result = normalizeValue({ fieldType: field.fieldType, optionValues: field.optionValues }, value);
      if (result.ok) out[field.storageKey] = result.value;
      else details.push({ path: `${path}.${propertyId}`, message: `${field.fieldType}: ${result.reason}` });
    }
    if (details.length) {
      throw errors.validation(`${details[0]!.path}: ${details[0]!.message}${details.length > 1 ? ` (and ${details.length - 1} more)` : ''}`, details);
    }
    return out;
  }

  /**
   * A MEMBER who reads a record gets masked values ("***", "h***@example.com") and may send the
   * record back unchanged: a value equal to the masked form of what is stored is that echo, and
   * leaves the stored value alone instead of overwriting it with the mask.
   */
  function isMaskedEcho(v: EntityView, propertyId: string, value: unknown, current: Record<string, unknown>): boolean {
    const field = v.byId.get(propertyId);
    if (!v.masked || !field?.isMasked || current[field.storageKey] === undefined) return false;
    return JSON.stringify(maskValue(field.fieldType, current[field.storageKey])) === JSON.stringify(value);
  }

  async function assertOwner(tenant: TenantDb, ownerId: string | null | undefined): Promise<void> {
    if (ownerId && !(await members.exists(tenant, ownerId))) {
      throw errors.validation(`ownerId: ${ownerId} is not a member of this account`, [{ path: 'ownerId', message: 'unknown member' }]);
    }
  }

  /** MEMBERs may not filter or sort on masked properties: that would reveal their values. */
  function assertUnmaskedUse(v: EntityView, conditions: readonly Condition[], sortField: string | undefined): void {
    if (!v.masked) return;
    const used = [...conditions.map((c) => c.field.replace(/^data\./, '')), sortField ?? ''];
    const masked = used.find((id) => v.byId.get(id)?.isMasked);
    if (masked) throw errors.forbidden(`Property ${masked} is masked: filtering or sorting on it needs the ADMIN role.`);
  }

  /** Loads a record the caller may act on: 404 unknown, 410/403 via its entity, 410 trashed. */
  async function load(tenant: TenantDb, caller: Caller, recordId: string, options: { lock?: boolean; allowTrashed?: boolean } = {}) {
    const row = await repo.findRecord(tenant, recordId, { lock: options.lock });
    if (!row) throw errors.notFound('Record');
    // Unlocked, the row is already read: waiting for a property conversion would not make it agree.
    const v = await view(tenant, caller, row.entity_id, { afterConversions: options.lock === true });
    if (row.is_deleted && !options.allowTrashed) throw errors.gone('Record');
    return { row, v };
  }

  async function page(tenant: TenantDb, v: EntityView, filter: PageFilter, sortField: string | undefined, direction: 'asc' | 'desc' | undefined, limit: number | undefined, startKey: string | undefined, trashed = false, set?: repo.PageSet): Promise<RecordPage> {
    const { where, whole } = filter;
    const sort = resolveSort(sortField, direction, v.fields);
    const cursor = decodeCursor(sort, startKey);
    if (sort.property !== undefined && !trashed) deps.propertyIndexes?.sortedBy(tenant.accountId, v.entityId, sort.property);
    const ordered = sort.property === undefined || deps.propertyIndexes?.ready(sort.property.propertyId) === true;
    const { rows, next } = await repo.pageRecords(tenant, { entityId: v.entityId, where, wholeWhere: whole, filtered: !isTrue(where), ordered, sort, cursor, limit: limit ?? 20, trashed, set });
    const data = rows.map((row) => toRecord(row, v));
    return next ? { data, nextKey: encodeCursor(sort, next) } : { data };
  }

  function compile(group: ConditionGroup, catalog: Catalog) {
    return compileConditionGroup(group, catalog, { now: clock() });
  }

  /** A page's filter in both forms (PageQuery.wholeWhere), at one `now`; they differ only for relationship conditions. */
  function pageFilter(tenant: TenantDb, group: ConditionGroup, catalog: Catalog): PageFilter {
    const now = clock();
    const where = compileConditionGroup(group, catalog, { now });
    const related = conditionsOf(group).some((c) => c.field.startsWith('relationship.'));
    return { where, whole: related ? compileConditionGroup(group, catalog, { now, wholeEntity: { accountId: tenant.accountId } }) : where };
  }

  /** The filter ANDed with `extra` (a scope or a segment's filter), in both forms. */
  function andFilter(filter: PageFilter, extra: RawBuilder<SqlBool>): PageFilter {
    const and = (w: RawBuilder<SqlBool>) => (isTrue(w) ? extra : sql<SqlBool>`(${w}) AND (${extra})`);
    return { where: and(filter.where), whole: and(filter.whole) };
  }

  /**
   * `filters` (JSON `{"<propertyId>" | "relationship.<typeId>" | system field: {op, value, where?}}`)
   * and `keyword` as conditions, validated against the entity (and the relationship types named).
   */
  async function selectorConditions(tenant: TenantDb, caller: Caller, v: EntityView, query: { keyword?: string; filters?: string }) {
    const conditions: Condition[] = [];
    let catalog: Catalog = v.catalog;
    if (query.filters !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(query.filters);
      } catch {
        throw errors.validation('filters: must be a JSON object {"<propertyId>": {"op": "...", "value": ...}}', [{ path: 'filters', message: 'malformed JSON' }]);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw errors.validation('filters: must be a JSON object', [{ path: 'filters', message: 'must be an object' }]);
      }
      catalog = await relationshipFields.extend(tenant, caller, v.entityId, catalog, parsed);
      for (const [key, spec] of Object.entries(parsed as Record<string, unknown>)) {
        const { op, value, ...rest } = (typeof spec === 'object' && spec !== null ? spec : {}) as Record<string, unknown>;
        const field = ['name', 'tags', 'ownerId', 'dateCreated', 'dateUpdated'].includes(key) || key.startsWith('relationship.') ? key : `data.${key}`;
        conditions.push(validateCondition({ field, operator: op, ...(value === undefined ? {} : { value }), ...rest }, catalog, `filters.${key}`));
      }
    }
    if (query.keyword) conditions.push({ field: 'name', operator: 'contains', value: query.keyword });
    return { conditions, catalog };
  }

  return {
    // Bulk create/update/delete/restore: the same checks as the single endpoints, per item (records.bulk.ts).
    ...createBulkOperations({ members, quota, clock, hooks: deps.hooks }, { view, normalizeData: (v, data, current) => normalizeData(v, data, current) }),

    async create(tenant, caller, input) {
      return tenant.transaction(async (tx) => {
        const v = await view(tx, caller, input.entityId);
        const data = normalizeData(v, input.data ?? {});
        const ownerId = input.ownerId === undefined ? caller.memberId : input.ownerId;
        await assertOwner(tx, ownerId);
        const now = new Date(clock());
        const [row] = await repo.insertRecords(tx, [{
          record_id: newId('record', now),
          entity_id: input.entityId,
          name: input.name ?? '',
          data,
          tags: [...new Set(input.tags ?? [])],
          owner_id: ownerId,
          created_by: caller.memberId,
          updated_by: caller.memberId,
          date_created: now,
          date_updated: now,
        }]);
        // The slot is taken after the insert: the account's counter row, which every create of the
        // account waits for, stays locked only from here to commit (QuotaService's lock order).
        await quota.reserve(tx, 'records.max');
        await deps.hooks.recordsChanged(tx, v.entityId, [row!.record_id], v.fields);
        return toRecord(row!, v);
      });
    },

    async get(tenant, caller, recordId) {
      const { row, v } = await load(tenant, caller, recordId);
      return toRecord(row, v);
    },

    async update(tenant, caller, recordId, input, options = {}) {
      return tenant.transaction(async (tx) => {
        const { row, v } = await load(tx, caller, recordId, { lock: true });
        assertPrecondition(options.ifMatch, row.version, 'The record');
        let data: Record<string, unknown> | undefined;
        if (input.data) {
          // Merged key by key; null clears. Values of deleted properties are kept (restorable).
          data = { ...row.data };
          for (const [key, value] of Object.entries(normalizeData(v, input.data, row.data))) {
            if (value === null) delete data[key];
            else data[key] = value;
          }
        }
        if (input.ownerId !== undefined) await assertOwner(tx, input.ownerId);
        const updated = await repo.updateRecord(tx, recordId, {
          ...(input.name !== undefined ? { name: input.name } : {}),
          ...(data ? { data } : {}),
          ...(input.tags !== undefined ? { tags: [...new Set(input.tags)] } : {}),
          ...(input.ownerId !== undefined ? { owner_id: input.ownerId } : {}),
          updated_by: caller.memberId,
          date_updated: new Date(clock()),
        });
        await deps.hooks.recordsChanged(tx, v.entityId, [recordId], v.fields);
        return toRecord(updated!, v);
      });
    },

    async remove(tenant, caller, recordId, options = {}) {
      return tenant.transaction(async (tx) => {
        const { row, v } = await load(tx, caller, recordId, { lock: true });
        assertPrecondition(options.ifMatch, row.version, 'The record');
        await repo.setDeleted(tx, [recordId], true, new Date(clock()));
        await deps.hooks.recordsChanged(tx, row.entity_id, [recordId], v.fields);
        return { recordId, entityId: row.entity_id };
      });
    },

    async restore(tenant, caller, recordId) {
      return tenant.transaction(async (tx) => {
        const { row, v } = await load(tx, caller, recordId, { lock: true, allowTrashed: true });
        if (!row.is_deleted) return toRecord(row, v);
        const [restored] = await repo.setDeleted(tx, [recordId], false, new Date(clock()));
        await deps.hooks.recordsChanged(tx, row.entity_id, [recordId], v.fields);
        return toRecord(restored ?? row, v);
      });
    },

    async list(tenant, caller, query, scope, set) {
      const v = await view(tenant, caller, query.entityId);
      const { conditions, catalog } = await selectorConditions(tenant, caller, v, query);
      if (query.ownerId) conditions.push({ field: 'ownerId', operator: 'eq', value: query.ownerId });
      if (query.tags) {
        const tags = query.tags.split(',').map((t) => t.trim()).filter(Boolean);
        if (tags.length) conditions.push({ field: 'tags', operator: 'hasAnyOf', value: tags });
      }
      assertUnmaskedUse(v, conditions, query.sortField);
      let filter = pageFilter(tenant, { operator: 'AND', conditions }, catalog);
      const scopes = [scope, query.segmentId === undefined ? undefined : await deps.segmentFilter(tenant, caller, query.segmentId, v.entityId)];
      for (const extra of scopes) if (extra) filter = andFilter(filter, extra);
      return page(tenant, v, filter, query.sortField, query.sortDirection, query.limit, query.startKey, false, set);
    },

    async search(tenant, caller, body) {
      const v = await view(tenant, caller, body.entityId);
      const catalog = await relationshipFields.extend(tenant, caller, v.entityId, v.catalog, body.conditionGroup);
      const group = body.conditionGroup ? validateConditionGroup(body.conditionGroup, catalog) : { operator: 'AND' as const, conditions: [] };
      const sortSpec = body.sortFields?.[0];
      const sortField = sortSpec?.replace(/^-/, '');
      assertUnmaskedUse(v, conditionsOf(group), sortField);
      const direction = sortSpec === undefined ? undefined : sortSpec.startsWith('-') ? 'desc' : 'asc';
      return page(tenant, v, pageFilter(tenant, group, catalog), sortField, direction, body.limit, body.startKey);
    },

    async fulltext(tenant, caller, entityId, q, limit) {
      const v = await view(tenant, caller, entityId);
      const rows = await repo.searchByName(tenant, entityId, q, limit);
      return rows.map((row) => toRecord(row, v));
    },

    async trash(tenant, caller, query) {
      const v = await view(tenant, caller, query.entityId);
      return page(tenant, v, { where: sql<SqlBool>`TRUE`, whole: sql<SqlBool>`TRUE` }, 'dateCreated', 'desc', query.limit, query.startKey, true);
    },

    async selectIds(tenant, caller, selector, max) {
      const v = await view(tenant, caller, selector.entityId);
      const { conditions, catalog } = await selectorConditions(tenant, caller, v, selector);
      assertUnmaskedUse(v, conditions, undefined);
      // Every match up to `max` is wanted: the whole-entity form (relationship conditions as sets).
      let where = pageFilter(tenant, { operator: 'AND', conditions }, catalog).whole;
      if (selector.segmentId !== undefined) where = sql<SqlBool>`(${where}) AND (${await deps.segmentFilter(tenant, caller, selector.segmentId, v.entityId)})`;
      return repo.selectRecordIds(tenant, v.entityId, where, max);
    },

    async findByValues(tenant, caller, entityId, propertyId, values, options = {}) {
      const v = await view(tenant, caller, entityId);
      const field = v.byId.get(propertyId);
      if (!field) {
        throw errors.validation(`${propertyId} is not a live property of this entity`, [{ path: 'propertyId', message: 'is not a live property of this entity' }]);
      }
      assertUnmaskedUse(v, [{ field: `data.${propertyId}`, operator: 'eq', value: null }], undefined);
      // A large entity gets the property's sort index (built in the background), which serves these lookups.
      deps.propertyIndexes?.sortedBy(tenant.accountId, entityId, field);
      if (options.lock) await repo.lockValues(tenant, entityId, propertyId, values);
      const rows = await repo.findLiveByValues(tenant, entityId, field.storageKey, [...new Set(values)]);
      return rows.map((row) => ({ recordId: row.record_id, value: row.value }));
    },

    async scan(tenant, caller, selector) {
      const v = await view(tenant, caller, selector.entityId);
      const { conditions, catalog } = await selectorConditions(tenant, caller, v, selector);
      let group: ConditionGroup | undefined;
      let groupCatalog = v.catalog;
      if (selector.conditionGroup !== undefined) {
        groupCatalog = await relationshipFields.extend(tenant, caller, v.entityId, v.catalog, selector.conditionGroup);
        group = validateConditionGroup(selector.conditionGroup, groupCatalog);
      }
      assertUnmaskedUse(v, [...conditions, ...(group ? conditionsOf(group) : [])], undefined);
      // Compiled once: every page of the scan applies the same filter (relative dates included).
      let where = compile({ operator: 'AND', conditions }, catalog);
      const extras = [
        group ? compile(group, groupCatalog) : undefined,
        selector.segmentId === undefined ? undefined : await deps.segmentFilter(tenant, caller, selector.segmentId, v.entityId),
      ];
      for (const extra of extras) if (extra) where = isTrue(where) ? extra : sql<SqlBool>`(${where}) AND (${extra})`;
      return {
        count: (max) => repo.countRecordsUpTo(tenant, v.entityId, where, max),
        async page(afterKey, limit) {
          const rows = await repo.scanRecords(tenant, v.entityId, where, decodeScanKey(afterKey), limit);
          const data = rows.map((row) => toRecord(row, v));
          const last = rows[rows.length - 1];
          return last && rows.length >= limit ? { data, nextKey: encodeScanKey({ at: last.scan_at, recordId: last.record_id }) } : { data };
        },
      };
    },
  };
}
