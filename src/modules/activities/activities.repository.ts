import { sql, type Insertable, type Selectable, type SqlBool, type Updateable } from 'kysely';
import type { ActivitiesTable } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import { accessibleBy, inWorkspaceOf } from '../entities/entities.repository.ts';

export type ActivityRow = Selectable<ActivitiesTable>;

/**
 * Visibility, the one rule every list applies (get applies the same in code, activities.service.ts):
 * an activity is visible when it is in the caller's workspace (or account-wide), its record (if any)
 * is live, its entity (if any) is live, in the workspace and satisfies recordAccess, and — for
 * MEMBERs — it is PUBLIC, unowned, or theirs (owner, creator or assignee). Trashing a record or
 * entity therefore hides its activities from every read without touching them.
 */
function inWorkspace(caller: Caller) {
  return caller.workspaceId === null
    ? sql<SqlBool>`true`
    : sql<SqlBool>`(activities.workspace_id = ${caller.workspaceId} OR activities.workspace_id IS NULL)`;
}

/** What a MEMBER may see (everyone else sees every activity of the entities they may use). */
function memberSees(caller: Caller) {
  if (caller.role !== 'MEMBER') return sql<SqlBool>`true`;
  const me = caller.memberId;
  return sql<SqlBool>`(activities.visibility = 'PUBLIC' OR activities.owner_id IS NULL OR activities.owner_id = ${me}
    OR activities.created_by = ${me} OR ${me} = ANY(activities.assigned_member_ids))`;
}

function visibleActivities(tenant: TenantDb, caller: Caller) {
  return tenant.selectFrom('activities')
    .leftJoin('records', (join) => join.onRef('records.account_id', '=', 'activities.account_id').onRef('records.record_id', '=', 'activities.record_id'))
    .leftJoin('entities', (join) => join.onRef('entities.account_id', '=', 'activities.account_id').onRef('entities.entity_id', '=', 'activities.entity_id'))
    .selectAll('activities')
    .where(sql<SqlBool>`(activities.record_id IS NULL OR records.is_deleted = false)`)
    .where(sql<SqlBool>`(activities.entity_id IS NULL OR (entities.is_deleted = false AND ${inWorkspaceOf(caller)} AND ${accessibleBy(caller)}))`)
    .where(inWorkspace(caller))
    .where(memberSees(caller));
}

/** The activity if it is in the caller's workspace; the service checks its record, entity and visibility. */
export function findActivity(tenant: TenantDb, caller: Caller, activityId: string, options: { lock?: boolean } = {}): Promise<ActivityRow | undefined> {
  const query = tenant.selectFrom('activities').selectAll().where('activity_id', '=', activityId).where(inWorkspace(caller));
  return (options.lock ? query.forUpdate() : query).executeTakeFirst();
}

/** Whether a record exists and is live (for an activity's own record). */
export async function recordIsLive(tenant: TenantDb, recordId: string): Promise<boolean> {
  const row = await tenant.selectFrom('records').select('is_deleted').where('record_id', '=', recordId).executeTakeFirst();
  return row !== undefined && !row.is_deleted;
}

/** The given records with their trash state, when their entity is live and usable by the caller. */
export function usableRecords(tenant: TenantDb, caller: Caller, recordIds: readonly string[]): Promise<{ record_id: string; is_deleted: boolean }[]> {
  if (recordIds.length === 0) return Promise.resolve([]);
  return tenant.selectFrom('records')
    .innerJoin('entities', (join) => join.onRef('entities.account_id', '=', 'records.account_id').onRef('entities.entity_id', '=', 'records.entity_id'))
    .select(['records.record_id', 'records.is_deleted'])
    .where('records.record_id', 'in', [...recordIds])
    .where('entities.is_deleted', '=', false)
    .where(inWorkspaceOf(caller))
    .where(accessibleBy(caller))
    .execute();
}

export type DateColumn = 'scheduled_at' | 'due_date' | 'completed_at' | 'date_created';

export interface ActivityFilter {
  /** A record ID, or null for standalone calendar items. */
  recordId?: string | null;
  entityId?: string;
  activityType?: string;
  range?: { column: DateColumn; from?: Date; to?: Date };
  /** Keyset: activities with a smaller activity_id (pages are newest first). */
  before?: string;
}

/** One page of visible activities, newest first; ask for limit + 1 to tell whether another page exists. */
export function pageActivities(tenant: TenantDb, caller: Caller, filter: ActivityFilter, limit: number): Promise<ActivityRow[]> {
  let query = visibleActivities(tenant, caller);
  if (filter.recordId === null) query = query.where('activities.record_id', 'is', null);
  else if (filter.recordId !== undefined) query = query.where('activities.record_id', '=', filter.recordId);
  if (filter.entityId !== undefined) query = query.where('activities.entity_id', '=', filter.entityId);
  if (filter.activityType !== undefined) query = query.where('activities.activity_type', '=', filter.activityType as ActivityRow['activity_type']);
  if (filter.range) {
    const column = sql.ref(`activities.${filter.range.column}`);
    if (filter.range.from) query = query.where(sql<SqlBool>`${column} >= ${filter.range.from}`);
    if (filter.range.to) query = query.where(sql<SqlBool>`${column} < ${filter.range.to}`);
    if (!filter.range.from && !filter.range.to) query = query.where(sql<SqlBool>`${column} IS NOT NULL`);
  }
  if (filter.before !== undefined) query = query.where('activities.activity_id', '<', filter.before);
  return query.orderBy('activities.activity_id', 'desc').limit(limit).execute();
}

/** A record's (or the calendar's) visible activities with scheduledAt or dueDate, soonest first. */
export function scheduledActivities(tenant: TenantDb, caller: Caller, recordId: string | null, from: Date | undefined, limit: number): Promise<ActivityRow[]> {
  const when = sql<Date>`coalesce(activities.scheduled_at, activities.due_date)`;
  let query = visibleActivities(tenant, caller)
    .where(recordId === null ? sql<SqlBool>`activities.record_id IS NULL` : sql<SqlBool>`activities.record_id = ${recordId}`)
    .where(sql<SqlBool>`${when} IS NOT NULL`);
  if (from) query = query.where(sql<SqlBool>`${when} >= ${from}`);
  return query.orderBy(when).orderBy('activities.activity_id').limit(limit).execute();
}

export function insertActivity(tenant: TenantDb, row: Omit<Insertable<ActivitiesTable>, 'account_id' | 'metadata'> & { metadata: Record<string, unknown> }): Promise<ActivityRow> {
  return tenant.insertInto('activities')
    .values({ ...row, account_id: tenant.accountId, metadata: JSON.stringify(row.metadata) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function updateActivity(tenant: TenantDb, activityId: string, changes: Omit<Updateable<ActivitiesTable>, 'metadata'> & { metadata?: Record<string, unknown> }): Promise<ActivityRow> {
  const { metadata, ...rest } = changes;
  return tenant.updateTable('activities')
    .set({ ...rest, ...(metadata !== undefined ? { metadata: JSON.stringify(metadata) } : {}) })
    .where('activity_id', '=', activityId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function deleteActivity(tenant: TenantDb, activityId: string): Promise<void> {
  await tenant.deleteFrom('activities').where('activity_id', '=', activityId).execute();
}
