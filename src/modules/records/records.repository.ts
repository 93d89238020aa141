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
