import { sql, type RawBuilder, type Selectable, type SqlBool } from 'kysely';
import type { RecordsTable } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';
import { afterNull, afterValued, cursorValue, orderNull, orderValued, type Cursor, type Sort } from './record-sort.ts';

export type RecordRow = Selectable<RecordsTable>;

export function findRecord(tenant: TenantDb, recordId: string, options: { lock?: boolean } = {}): Promise<RecordRow | undefined> {
  const query = tenant.selectFrom('records').selectAll().where('record_id', '=', recordId);
  return (options.lock ? query.forUpdate() : query).executeTakeFirst();
}

export function findRecords(tenant: TenantDb, recordIds: readonly string[]): Promise<RecordRow[]> {
  if (recordIds.length === 0) return Promise.resolve([]);
  return tenant.selectFrom('records').selectAll().where('record_id', 'in', recordIds).forUpdate().execute();
}

export type NewRecordRow = Omit<RecordRow, 'account_id' | 'is_deleted' | 'date_deleted' | 'data'> & { data: Record<string, unknown> };

export function insertRecords(tenant: TenantDb, rows: NewRecordRow[]): Promise<RecordRow[]> {
  return tenant.insertInto('records')
    .values(rows.map((row) => ({ ...row, account_id: tenant.accountId, data: JSON.stringify(row.data) })))
    .returningAll()
    .execute();
}

export function updateRecord(tenant: TenantDb, recordId: string, changes: { name?: string; data?: Record<string, unknown>; tags?: string[]; owner_id?: string | null; updated_by: string; date_updated: Date }): Promise<RecordRow | undefined> {
  const { data, ...rest } = changes;
  return tenant.updateTable('records')
    .set({ ...rest, ...(data ? { data: JSON.stringify(data) } : {}) })
    .where('record_id', '=', recordId)
    .returningAll()
    .executeTakeFirst();
}

export async function setDeleted(tenant: TenantDb, recordIds: readonly string[], deleted: boolean, at: Date): Promise<RecordRow[]> {
  if (recordIds.length === 0) return [];
  return tenant.updateTable('records')
    .set({ is_deleted: deleted, date_deleted: deleted ? at : null })
    .where('record_id', 'in', recordIds)
    .where('is_deleted', '=', !deleted)
    .returningAll()
    .execute();
}

export async function deleteRecords(tenant: TenantDb, recordIds: readonly string[]): Promise<number> {
  if (recordIds.length === 0) return 0;
  const result = await tenant.deleteFrom('records').where('record_id', 'in', recordIds).executeTakeFirst();
  return Number(result.numDeletedRows);
}

export interface PageQuery {
  entityId: string;
  where: RawBuilder<SqlBool>;
  sort: Sort;
  cursor: Cursor | undefined;
  limit: number;
  trashed?: boolean;
}

type PageRow = RecordRow & { sort_key: unknown };

/**
 * One keyset page: valued rows after the cursor in sort order, then (for nullable sorts) rows
 * without a value. Fetches limit + 1 rows to know whether another page exists.
 */
export async function pageRecords(tenant: TenantDb, q: PageQuery): Promise<{ rows: PageRow[]; next: Cursor | undefined }> {
  const base = () => tenant.selectFrom('records').selectAll()
    .select(sql`${q.sort.expr}`.as('sort_key'))
    .where('entity_id', '=', q.entityId)
    .where('is_deleted', '=', q.trashed ?? false)
    .where(q.where);

  const rows = await base().where(afterValued(q.sort, q.cursor)).orderBy(orderValued(q.sort)).limit(q.limit + 1).execute() as PageRow[];
  if (q.sort.nullable && rows.length <= q.limit) {
    const rest = await base().where(afterNull(q.sort, q.cursor)).orderBy(orderNull(q.sort)).limit(q.limit + 1 - rows.length).execute() as PageRow[];
    rows.push(...rest);
  }
  if (rows.length <= q.limit) return { rows, next: undefined };
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1]!;
  return { rows: page, next: { value: cursorValue(last.sort_key), recordId: last.record_id } };
}

/** Name matches for the fulltext endpoint: prefix matches first, then other substring matches. */
export function searchByName(tenant: TenantDb, entityId: string, pattern: { prefix: string; contains: string }, limit: number): Promise<RecordRow[]> {
  return tenant.selectFrom('records').selectAll()
    .where('entity_id', '=', entityId)
    .where('is_deleted', '=', false)
    .where(sql<SqlBool>`records.name ILIKE ${pattern.contains}`)
    .orderBy(sql`(records.name ILIKE ${pattern.prefix}) DESC`)
    .orderBy(sql`lower(records.name)`)
    .orderBy('record_id')
    .limit(limit)
    .execute();
}

/* ---------- Bulk writes: one statement per batch, the rows passed as one JSON document ---------- */

/**
 * Locks the records (those that exist in the account) in record_id order, so two bulk requests
 * over overlapping IDs take their row locks in the same order and cannot deadlock.
 */
export function lockRecordsInOrder(tenant: TenantDb, recordIds: readonly string[]): Promise<RecordRow[]> {
  if (recordIds.length === 0) return Promise.resolve([]);
  return tenant.selectFrom('records').selectAll().where('record_id', 'in', recordIds).orderBy('record_id').forUpdate().execute();
}

/** The same, reading only what delete and restore decide on. */
export function lockRecordStates(tenant: TenantDb, recordIds: readonly string[]): Promise<Pick<RecordRow, 'record_id' | 'entity_id' | 'is_deleted'>[]> {
  if (recordIds.length === 0) return Promise.resolve([]);
  return tenant.selectFrom('records').select(['record_id', 'entity_id', 'is_deleted']).where('record_id', 'in', recordIds).orderBy('record_id').forUpdate().execute();
}

export interface BulkNewRecord {
  record_id: string;
  entity_id: string;
  name: string;
  data: Record<string, unknown>;
  tags: string[];
  owner_id: string | null;
}

/**
 * Inserts many records in ONE statement with ONE parameter carrying the rows (jsonb_to_recordset):
 * a 1,000-row VALUES list would send 10,000 parameters for PostgreSQL to parse and plan.
 */
export async function insertRecordBatch(tenant: TenantDb, rows: readonly BulkNewRecord[], by: string, at: Date): Promise<void> {
  if (rows.length === 0) return;
  await tenant.insertInto('records')
    .columns(['account_id', 'record_id', 'entity_id', 'name', 'data', 'tags', 'owner_id', 'created_by', 'updated_by', 'date_created', 'date_updated'])
    .expression(sql`
      SELECT ${tenant.accountId}, v.record_id, v.entity_id, v.name, v.data, v.tags, v.owner_id, ${by}, ${by}, ${at}::timestamptz, ${at}::timestamptz
      FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        AS v(record_id text, entity_id text, name text, data jsonb, tags text[], owner_id text)`)
    .execute();
}

export interface BulkRecordChange {
  record_id: string;
  name: string;
  data: Record<string, unknown>;
  tags: string[];
  owner_id: string | null;
}

/**
 * Writes the new state of many (already locked) records in ONE statement. Every row carries its
 * complete new name/data/tags/owner, computed from the locked row, so the statement is the same
 * whichever fields each patch touched.
 */
export async function updateRecordBatch(tenant: TenantDb, rows: readonly BulkRecordChange[], by: string, at: Date): Promise<void> {
  if (rows.length === 0) return;
  const changes = sql`(
    SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      AS t(record_id text, name text, data jsonb, tags text[], owner_id text))`;
  await tenant.updateTable('records')
    .from(changes.as('v'))
    .set({
      name: sql<string>`v.name`,
      data: sql<string>`v.data`,
      tags: sql<string[]>`v.tags`,
      owner_id: sql<string | null>`v.owner_id`,
      updated_by: by,
      date_updated: at,
    })
    .where(sql<SqlBool>`records.record_id = v.record_id`)
    .execute();
}

/** Trashes or restores records without reading them back; returns how many changed. */
export async function markDeleted(tenant: TenantDb, recordIds: readonly string[], deleted: boolean, at: Date): Promise<number> {
  if (recordIds.length === 0) return 0;
  const result = await tenant.updateTable('records')
    .set({ is_deleted: deleted, date_deleted: deleted ? at : null })
    .where('record_id', 'in', recordIds)
    .where('is_deleted', '=', !deleted)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
