import { sql, type Insertable, type RawBuilder, type Selectable, type SqlBool, type Updateable } from 'kysely';
import type { TenantDb } from '../../db/tenant.ts';
import type { EntitiesTable } from '../../db/schema.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';

export type EntityRow = Selectable<EntitiesTable>;
export type NewEntityRow = Omit<Insertable<EntitiesTable>, 'account_id'>;

/**
 * `version = version + 1`: part of every UPDATE of an entity a client can see (its ETag,
 * migration 0010). propertyIds is part of the entity, so adding or deleting a property moves it.
 */
const nextVersion = sql<number>`entities.version + 1`;

/**
 * Rows the caller's API key may see: all when unbound, else its workspace plus account-wide
 * rows (§1.9). Raw SQL on `entities.*` so queries joining entities (properties, later records)
 * can use it too.
 */
export function inWorkspaceOf(caller: Pick<Caller, 'workspaceId'>): RawBuilder<SqlBool> {
  return caller.workspaceId === null
    ? sql<SqlBool>`true`
    : sql<SqlBool>`(entities.workspace_id = ${caller.workspaceId} OR entities.workspace_id IS NULL)`;
}

/** Entities whose recordAccess the caller satisfies (§1.7), as SQL; `canAccess` is the same rule in code. */
export function accessibleBy(caller: Pick<Caller, 'role' | 'memberId'>): RawBuilder<SqlBool> {
  if (caller.role === 'OWNER') return sql<SqlBool>`true`;
  const admin = caller.role === 'ADMIN' ? sql` OR entities.record_access = 'ADMIN_ONLY'` : sql``;
  return sql<SqlBool>`(entities.record_access = 'PUBLIC'
    OR (entities.record_access = 'ENTITY_OWNER_ONLY' AND entities.owner_id = ${caller.memberId})${admin})`;
}

/** `%keyword%` with LIKE's wildcards escaped. */
export function containsPattern(keyword: string): string {
  return `%${keyword.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export function findEntity(tenant: TenantDb, caller: Pick<Caller, 'workspaceId'>, entityId: string, options: { lock?: boolean } = {}): Promise<EntityRow | undefined> {
  let query = tenant.selectFrom('entities').selectAll().where('entity_id', '=', entityId).where(inWorkspaceOf(caller));
  if (options.lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

export function listLiveEntities(tenant: TenantDb, caller: Caller, keyword: string | undefined, cap: number): Promise<EntityRow[]> {
  let query = tenant.selectFrom('entities').selectAll()
    .where('is_deleted', '=', false)
    .where(inWorkspaceOf(caller))
    .where(accessibleBy(caller));
  if (keyword) {
    const pattern = containsPattern(keyword);
    query = query.where((eb) => eb.or([eb('name', 'ilike', pattern), eb('slug', 'ilike', pattern)]));
  }
  return query.orderBy('priority').orderBy('date_created').orderBy('entity_id').limit(cap).execute();
}

export function listTrashedEntities(tenant: TenantDb, caller: Caller, cap: number): Promise<EntityRow[]> {
  return tenant.selectFrom('entities').selectAll()
    .where('is_deleted', '=', true)
    .where(inWorkspaceOf(caller))
    .orderBy('date_deleted', 'desc').orderBy('entity_id').limit(cap).execute();
}

/** The next sidebar position: one past the last live entity of the account. */
export async function nextPriority(tenant: TenantDb): Promise<number> {
  const row = await tenant.selectFrom('entities')
    .select(sql<number>`coalesce(max(priority), -1) + 1`.as('next'))
    .where('is_deleted', '=', false)
    .executeTakeFirst();
  return Number(row?.next ?? 0);
}

export function insertEntity(tenant: TenantDb, row: NewEntityRow): Promise<EntityRow> {
  return tenant.insertInto('entities').values({ ...row, account_id: tenant.accountId }).returningAll().executeTakeFirstOrThrow();
}

export function updateEntity(tenant: TenantDb, entityId: string, changes: Updateable<EntitiesTable>): Promise<EntityRow> {
  return tenant.updateTable('entities').set({ ...changes, version: nextVersion })
    .where('entity_id', '=', entityId).returningAll().executeTakeFirstOrThrow();
}

/** Appends property IDs to the entity's column order (call with the entity row locked). */
export async function appendPropertyIds(tenant: TenantDb, entityId: string, propertyIds: string[]): Promise<void> {
  await tenant.updateTable('entities')
    .set({ property_ids: sql`property_ids || ${JSON.stringify(propertyIds)}::jsonb` as unknown as string, version: nextVersion })
    .where('entity_id', '=', entityId)
    .execute();
}

/**
 * Takes the entity's next `count` property numbers (call with the entity row locked) and returns
 * the last: numbers only go up, so a storage key is never given twice within an entity.
 */
export async function takePropertyNumbers(tenant: TenantDb, entityId: string, count: number): Promise<number> {
  const row = await tenant.updateTable('entities')
    .set({ property_seq: sql<number>`property_seq + ${count}` })
    .where('entity_id', '=', entityId)
    .returning('property_seq')
    .executeTakeFirstOrThrow();
  return row.property_seq;
}

/** Removes a property from the entity's column order (call with the entity row locked). */
export async function removePropertyId(tenant: TenantDb, entityId: string, propertyId: string): Promise<void> {
  await tenant.updateTable('entities')
    .set({ property_ids: sql`property_ids - ${propertyId}::text` as unknown as string, version: nextVersion })
    .where('entity_id', '=', entityId)
    .execute();
}
