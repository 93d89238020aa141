import { sql, type Insertable, type Selectable, type SqlBool, type Updateable } from 'kysely';
import type { TenantDb } from '../../db/tenant.ts';
import type { PropertiesTable } from '../../db/schema.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import { accessibleBy, containsPattern, inWorkspaceOf } from '../entities/entities.repository.ts';

export type PropertyRow = Selectable<PropertiesTable>;
export type NewPropertyRow = Omit<Insertable<PropertiesTable>, 'account_id'>;

export function findProperty(tenant: TenantDb, propertyId: string, options: { lock?: boolean } = {}): Promise<PropertyRow | undefined> {
  let query = tenant.selectFrom('properties').selectAll().where('property_id', '=', propertyId);
  if (options.lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

export function liveProperties(tenant: TenantDb, entityIds: string[]): Promise<PropertyRow[]> {
  if (!entityIds.length) return Promise.resolve([]);
  return tenant.selectFrom('properties').selectAll()
    .where('entity_id', 'in', entityIds).where('is_deleted', '=', false)
    .orderBy('date_created').orderBy('property_id')
    .execute();
}

/**
 * Live properties, newest first: of one entity (which the caller has already been allowed to
 * use), or of every live entity the caller may see and use. The entity filter is a semi-join
 * so the planner reads each entity once (a join re-probed the entities per property row).
 */
export function listProperties(tenant: TenantDb, caller: Caller, filter: { entityId?: string; keyword?: string; cap: number }): Promise<PropertyRow[]> {
  let query = tenant.selectFrom('properties').selectAll().where(sql<SqlBool>`NOT properties.is_deleted`);
  if (filter.entityId) {
    query = query.where('entity_id', '=', filter.entityId);
  } else {
    const usable = tenant.selectFrom('entities').select('entities.entity_id')
      .where(sql<SqlBool>`NOT entities.is_deleted`).where(inWorkspaceOf(caller)).where(accessibleBy(caller));
    query = query.where('entity_id', 'in', usable);
  }
  if (filter.keyword) query = query.where('name', 'ilike', containsPattern(filter.keyword));
  return query.orderBy('date_created', 'desc').orderBy('property_id', 'desc').limit(filter.cap).execute();
}

export function insertProperties(tenant: TenantDb, rows: NewPropertyRow[]): Promise<PropertyRow[]> {
  return tenant.insertInto('properties')
    .values(rows.map((row) => ({ ...row, account_id: tenant.accountId })))
    .returningAll()
    .execute();
}

export function updateProperty(tenant: TenantDb, propertyId: string, changes: Updateable<PropertiesTable>): Promise<PropertyRow> {
  return tenant.updateTable('properties').set({ ...changes, version: sql<number>`properties.version + 1` })
    .where('property_id', '=', propertyId).returningAll().executeTakeFirstOrThrow();
}


// ---- Stored values of a property (the fieldType conversion) ----
//
// A property owns the meaning of its values: records store them in `records.data` under the
// property's storage key (query/data-key.ts), but what a value may be is the property's fieldType
// and options. So when those change, this module rewrites the values itself (and only the values
// of that one key), instead of going through the records module's per-record API.

/** First keys of our two-key advisory locks ("CRM" + n); the second key is a hash of account and entity. */
const RECORD_VALUES_LOCK = 0x43524d01;
const PROPERTY_CONVERSION_LOCK = 0x43524d02;

async function advisoryLock(tenant: TenantDb, entityId: string, lockClass: number, mode: 'shared' | 'exclusive'): Promise<void> {
  const key = sql`hashtext(${`${tenant.accountId}/${entityId}`})`;
  const lock = mode === 'shared'
    ? sql`pg_advisory_xact_lock_shared(${lockClass}::int4, ${key})`
    : sql`pg_advisory_xact_lock(${lockClass}::int4, ${key})`;
  // The lock function needs no table, but the tenant door needs one: the entity's own row.
  await tenant.selectFrom('entities').select(sql<string>`${lock}::text`.as('locked')).where('entity_id', '=', entityId).execute();
}

/**
 * The lock that keeps record writes and a property conversion of the same entity apart, held
 * until the transaction ends. Record writes take it shared (through PropertiesService.recordFields,
 * before they validate values against the property definitions); a fieldType or options change
 * that rewrites values takes it exclusive, so no record write can validate against the old
 * definition and commit after the conversion has read the values. Outside a transaction a
 * shared lock is released at once (reads merely wait for a conversion in progress).
 */
export function lockRecordValues(tenant: TenantDb, entityId: string, mode: 'shared' | 'exclusive'): Promise<void> {
  return advisoryLock(tenant, entityId, RECORD_VALUES_LOCK, mode);
}

/** Serialises the value-rewriting property changes of one entity (taken before any other lock). */
export function lockPropertyConversions(tenant: TenantDb, entityId: string): Promise<void> {
  return advisoryLock(tenant, entityId, PROPERTY_CONVERSION_LOCK, 'exclusive');
}

/** Records of the entity (live and trashed) holding a value for the property stored under `storageKey`. */
function withValue(tenant: TenantDb, entityId: string, storageKey: string) {
  return tenant.selectFrom('records')
    .where('records.entity_id', '=', entityId)
    .where(sql<SqlBool>`records.data ? ${storageKey}`)
    .where(sql<SqlBool>`jsonb_typeof(records.data -> ${storageKey}) <> 'null'`);
}

/**
 * Row-locks every record holding a value, in record ID order, and returns how many there are.
 * With `nowait`, a row locked by another transaction fails the statement at once (55P03).
 */
export async function lockRecordsWithValue(tenant: TenantDb, entityId: string, storageKey: string, options: { nowait?: boolean } = {}): Promise<number> {
  let locked = withValue(tenant, entityId, storageKey).select('records.record_id').orderBy('records.record_id').forUpdate();
  if (options.nowait) locked = locked.noWait();
  const row = await tenant.selectFrom('entities')
    .select(sql<number>`(SELECT count(*)::int FROM (${locked}) AS locked)`.as('n'))
    .where('entity_id', '=', entityId)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

export interface RecordValue {
  record_id: string;
  is_deleted: boolean;
  value: unknown;
}

/** One keyset page of the records holding a value, with the value, in record ID order. */
export function recordValuesPage(tenant: TenantDb, entityId: string, storageKey: string, after: string | undefined, limit: number): Promise<RecordValue[]> {
  let query = withValue(tenant, entityId, storageKey)
    .select(['records.record_id', 'records.is_deleted', sql<unknown>`records.data -> ${storageKey}`.as('value')]);
  if (after !== undefined) query = query.where('records.record_id', '>', after);
  return query.orderBy('records.record_id').limit(limit).execute();
}

/**
 * Rewrites one property's value in many records with ONE set-based UPDATE: `values` maps a
 * record ID to its new value, or to null for "no value" (the key is removed). Nothing else of
 * the record changes: not its other values, not dateUpdated (a conversion changes the property,
 * whose dateUpdated says so, not the records' content).
 */
export async function rewriteRecordValues(tenant: TenantDb, entityId: string, storageKey: string, values: Map<string, unknown>): Promise<number> {
  if (values.size === 0) return 0;
  const changes = JSON.stringify(Object.fromEntries(values));
  const next = sql`(${changes}::jsonb -> records.record_id)`;
  const result = await tenant.updateTable('records')
    .set({
      data: sql`CASE WHEN jsonb_typeof(${next}) = 'null' THEN records.data - ${storageKey}::text
                ELSE jsonb_set(records.data, ARRAY[${storageKey}::text], ${next}) END` as unknown as string,
      // The record's content changed, so its ETag does (dateUpdated does not; see above).
      version: sql<number>`records.version + 1`,
    })
    .where('records.entity_id', '=', entityId)
    .where(sql<SqlBool>`records.record_id = ANY(${[...values.keys()]}::text[])`)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
