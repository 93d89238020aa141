import { AppError, errors } from '../../errors.ts';
import { isForeignKeyViolation } from '../../db/errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { decodeCursor, encodeCursor } from '../../lib/cursor.ts';
import { newId } from '../../lib/ids.ts';
import { parseInstant } from '../../lib/iso-instant.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { EntitiesService } from '../entities/entities.service.ts';
import type { MembersService } from '../members/members.service.ts';
import type { RecordsService } from '../records/records.service.ts';
import * as repo from './activities.repository.ts';
import {
  CALENDAR, METADATA_MAX_BYTES,
  type Activity, type CreateActivityBody, type DateField, type ListActivitiesQuery, type ScheduledQuery, type UpdateActivityBody,
} from './activities.schemas.ts';

/**
 * Activities (API.md §9): calls, meetings, notes, tasks… on a record, or standalone calendar
 * items (recordId "CALENDAR"). Reads show only activities whose record and entity are live and
 * usable by the caller (activities.repository.ts, Visibility); MEMBERs further see only PUBLIC,
 * unowned and their own ones (owner, creator or assignee), and change or delete only their own.
 * An activity hidden by its record's trash or its visibility answers 404 like an unknown one; one
 * whose entity's recordAccess the caller does not satisfy, 403.
 */
export interface ActivitiesService {
  create(tenant: TenantDb, caller: Caller, input: CreateActivityBody): Promise<Activity>;
  get(tenant: TenantDb, caller: Caller, activityId: string): Promise<Activity>;
  update(tenant: TenantDb, caller: Caller, activityId: string, input: UpdateActivityBody): Promise<Activity>;
  remove(tenant: TenantDb, caller: Caller, activityId: string): Promise<{ activityId: string }>;
  list(tenant: TenantDb, caller: Caller, query: ListActivitiesQuery): Promise<{ data: Activity[]; nextKey?: string }>;
  scheduled(tenant: TenantDb, caller: Caller, recordId: string, query: ScheduledQuery): Promise<Activity[]>;
}

export interface ActivitiesServiceDeps {
  entities: EntitiesService;
  records: RecordsService;
  members: MembersService;
  clock: Clock;
}

const iso = (date: Date | null) => (date === null ? undefined : date.toISOString());

function toActivity(row: repo.ActivityRow): Activity {
  const optional = {
    subject: row.subject ?? undefined,
    description: row.description ?? undefined,
    outcome: row.outcome ?? undefined,
    outcomeNote: row.outcome_note ?? undefined,
    scheduledAt: iso(row.scheduled_at),
    dueDate: iso(row.due_date),
    completedAt: iso(row.completed_at),
    durationMinutes: row.duration_minutes ?? undefined,
  };
  return {
    activityId: row.activity_id,
    accountId: row.account_id,
    workspaceId: row.workspace_id,
    entityId: row.entity_id,
    recordId: row.record_id ?? CALENDAR,
    activityType: row.activity_type,
    ...Object.fromEntries(Object.entries(optional).filter(([, value]) => value !== undefined)),
    relatedRecordIds: row.related_record_ids,
    attachmentIds: row.attachment_ids,
    assignedMemberId: row.assigned_member_ids[0] ?? null,
    assignedMemberIds: row.assigned_member_ids,
    metadata: row.metadata,
    visibility: row.visibility,
    ownerId: row.owner_id,
    createdBy: row.created_by,
    dateCreated: row.date_created.toISOString(),
    dateUpdated: row.date_updated.toISOString(),
  } as Activity;
}

const invalid = (path: string, message: string): AppError => errors.validation(`${path}: ${message}`, [{ path: `/${path}`, message }]);

/** An ISO-8601 instant from the request (any offset, any fraction digits). */
function instant(value: string, path: string): Date {
  const ms = parseInstant(value);
  if (ms === null) throw invalid(path, 'must be an ISO-8601 date-time, e.g. 2026-04-25T05:00:00.000Z');
  return new Date(ms);
}

const optionalInstant = (value: string | null | undefined, path: string) =>
  (value === undefined ? undefined : value === null ? null : instant(value, path));

function checkMetadata(metadata: Record<string, unknown>): Record<string, unknown> {
  const bytes = Buffer.byteLength(JSON.stringify(metadata));
  if (bytes > METADATA_MAX_BYTES) throw invalid('metadata', `${bytes} bytes as JSON; at most ${METADATA_MAX_BYTES}`);
  return metadata;
}

/** The assignees a write sets: assignedMemberIds wins over the legacy assignedMemberId; undefined = unchanged. */
function assignees(input: { assignedMemberId?: string | null; assignedMemberIds?: string[] }): string[] | undefined {
  if (input.assignedMemberIds !== undefined) return [...new Set(input.assignedMemberIds)];
  if (input.assignedMemberId !== undefined) return input.assignedMemberId === null ? [] : [input.assignedMemberId];
  return undefined;
}

const DATE_COLUMNS: Record<DateField, repo.DateColumn> = {
  scheduledAt: 'scheduled_at', dueDate: 'due_date', completedAt: 'completed_at', dateCreated: 'date_created',
};

/** Owner, creator or assignee: what "their own" means for a MEMBER. */
function isOwn(caller: Caller, row: repo.ActivityRow): boolean {
  return row.owner_id === caller.memberId || row.created_by === caller.memberId || row.assigned_member_ids.includes(caller.memberId);
}

function memberSees(caller: Caller, row: repo.ActivityRow): boolean {
  return caller.role !== 'MEMBER' || row.visibility === 'PUBLIC' || row.owner_id === null || isOwn(caller, row);
}

export function createActivitiesService(deps: ActivitiesServiceDeps): ActivitiesService {
  const { entities, records, members, clock } = deps;

  /**
   * The activity as the caller may see it (the list's visibility, in code): 404 unknown, outside the
   * workspace, hidden with its trashed record or entity, or PRIVATE to others; 403 recordAccess.
   */
  async function visible(tenant: TenantDb, caller: Caller, activityId: string, options: { lock?: boolean } = {}): Promise<repo.ActivityRow> {
    const row = await repo.findActivity(tenant, caller, activityId, options);
    if (!row) throw errors.notFound('Activity');
    if (row.entity_id !== null) {
      try {
        await entities.requireUsable(tenant, caller, row.entity_id);
      } catch (error) {
        // Entity unknown here (another workspace) or trashed: the activity is hidden. 403 and failures pass.
        if (error instanceof AppError && (error.status === 404 || error.status === 410)) throw errors.notFound('Activity');
        throw error;
      }
    }
    if (row.record_id !== null && !(await repo.recordIsLive(tenant, row.record_id))) throw errors.notFound('Activity');
    if (!memberSees(caller, row)) throw errors.notFound('Activity');
    return row;
  }

  /** MEMBERs change and delete only their own activities. */
  function assertMayChange(caller: Caller, row: repo.ActivityRow): void {
    if (caller.role === 'MEMBER' && !isOwn(caller, row)) {
      throw errors.forbidden('MEMBERs can change only their own activities (as owner, creator or assignee).');
    }
  }

  async function assertMembers(tenant: TenantDb, ids: readonly string[], path: string): Promise<void> {
    const known = await Promise.all(ids.map((id) => members.exists(tenant, id)));
    const missing = ids.map((id, i) => ({ id, i })).filter((_, i) => !known[i]);
    if (missing.length) {
      throw errors.validation(`${path}: ${missing[0]!.id} is not a member of this account`,
        missing.map(({ id, i }) => ({ path: `/${path}/${i}`, message: `unknown member ${id}` })));
    }
  }

  async function assertRelated(tenant: TenantDb, caller: Caller, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const states = new Map((await repo.usableRecords(tenant, caller, ids)).map((r) => [r.record_id, r.is_deleted]));
    const problems = ids.flatMap((id, i) => {
      const deleted = states.get(id);
      if (deleted === undefined) return [{ path: `/relatedRecordIds/${i}`, message: `unknown record ${id}` }];
      return deleted ? [{ path: `/relatedRecordIds/${i}`, message: `record ${id} is in the trash` }] : [];
    });
    if (problems.length) throw errors.validation(`relatedRecordIds: ${problems[0]!.message}`, problems);
  }

  /** The record a request names: 404 unknown, 410 trashed (or its entity), 403 recordAccess; null for CALENDAR. */
  async function namedRecord(tenant: TenantDb, caller: Caller, recordId: string): Promise<{ recordId: string; entityId: string } | null> {
    if (recordId === CALENDAR) return null;
    const record = await records.get(tenant, caller, recordId);
    return { recordId, entityId: record.entityId };
  }

  return {
    async create(tenant, caller, input) {
      const metadata = checkMetadata(input.metadata ?? {});
      const scheduledAt = optionalInstant(input.scheduledAt, 'scheduledAt') ?? null;
      const dueDate = optionalInstant(input.dueDate, 'dueDate') ?? null;
      const completedAt = optionalInstant(input.completedAt, 'completedAt') ?? null;
      const ownerId = input.ownerId === undefined ? caller.memberId : input.ownerId;
      if (caller.role === 'MEMBER' && ownerId !== null && ownerId !== caller.memberId) {
        throw errors.forbidden('MEMBERs can create activities owned only by themselves.');
      }
      const record = await namedRecord(tenant, caller, input.recordId ?? CALENDAR);
      let entityId: string | null = input.entityId ?? null;
      if (record) {
        if (entityId !== null && entityId !== record.entityId) {
          throw invalid('entityId', `record ${record.recordId} belongs to entity ${record.entityId}, not ${entityId}`);
        }
        entityId = record.entityId;
      } else if (entityId !== null) {
        await entities.requireUsable(tenant, caller, entityId);
      }
      const assigned = assignees(input) ?? [];
      await assertMembers(tenant, assigned, input.assignedMemberIds !== undefined ? 'assignedMemberIds' : 'assignedMemberId');
      if (ownerId !== null && ownerId !== caller.memberId) await assertMembers(tenant, [ownerId], 'ownerId');
      const related = [...new Set(input.relatedRecordIds ?? [])];
      await assertRelated(tenant, caller, related);
      const now = new Date(clock());
      try {
        const row = await repo.insertActivity(tenant, {
          activity_id: newId('activity', now),
          workspace_id: caller.workspaceId,
          entity_id: entityId,
          record_id: record?.recordId ?? null,
          activity_type: input.activityType,
          subject: input.subject ?? null,
          description: input.description ?? null,
          related_record_ids: related,
          attachment_ids: input.attachmentIds ?? [],
          outcome: input.outcome ?? 'PENDING',
          outcome_note: input.outcomeNote ?? null,
          scheduled_at: scheduledAt,
          due_date: dueDate,
          completed_at: completedAt,
          assigned_member_ids: assigned,
          duration_minutes: input.durationMinutes ?? null,
          metadata,
          visibility: input.visibility ?? 'PUBLIC',
          owner_id: ownerId,
          created_by: caller.memberId,
          updated_by: caller.memberId,
          date_created: now,
          date_updated: now,
        });
        return toActivity(row);
      } catch (error) {
        // The record or entity was purged between the checks and the insert.
        if (isForeignKeyViolation(error)) throw errors.notFound('Record or entity');
        throw error;
      }
    },

    async get(tenant, caller, activityId) {
      return toActivity(await visible(tenant, caller, activityId));
    },

    async update(tenant, caller, activityId, input) {
      const metadata = input.metadata === undefined ? undefined : checkMetadata(input.metadata);
      const dates = {
        scheduled_at: optionalInstant(input.scheduledAt, 'scheduledAt'),
        due_date: optionalInstant(input.dueDate, 'dueDate'),
        completed_at: optionalInstant(input.completedAt, 'completedAt'),
      };
      const assigned = assignees(input);
      return tenant.transaction(async (tx) => {
        const current = await visible(tx, caller, activityId, { lock: true });
        assertMayChange(caller, current);
        if (input.ownerId !== undefined && input.ownerId !== current.owner_id) {
          if (caller.role === 'MEMBER') throw errors.forbidden('Changing an activity\'s ownerId needs the ADMIN role.');
          if (input.ownerId !== null) await assertMembers(tx, [input.ownerId], 'ownerId');
        }
        if (assigned !== undefined) await assertMembers(tx, assigned, input.assignedMemberIds !== undefined ? 'assignedMemberIds' : 'assignedMemberId');
        const related = input.relatedRecordIds === undefined ? undefined : [...new Set(input.relatedRecordIds)];
        if (related !== undefined) await assertRelated(tx, caller, related);
        const row = await repo.updateActivity(tx, activityId, {
          ...(input.activityType !== undefined ? { activity_type: input.activityType } : {}),
          ...(input.subject !== undefined ? { subject: input.subject } : {}),
          ...(input.description !== undefined ? { description: input.description } : {}),
          ...(related !== undefined ? { related_record_ids: related } : {}),
          ...(input.attachmentIds !== undefined ? { attachment_ids: input.attachmentIds } : {}),
          ...(input.outcome !== undefined ? { outcome: input.outcome } : {}),
          ...(input.outcomeNote !== undefined ? { outcome_note: input.outcomeNote } : {}),
          ...(dates.scheduled_at !== undefined ? { scheduled_at: dates.scheduled_at } : {}),
          ...(dates.due_date !== undefined ? { due_date: dates.due_date } : {}),
          ...(dates.completed_at !== undefined ? { completed_at: dates.completed_at } : {}),
          ...(assigned !== undefined ? { assigned_member_ids: assigned } : {}),
          ...(input.durationMinutes !== undefined ? { duration_minutes: input.durationMinutes } : {}),
          ...(metadata !== undefined ? { metadata } : {}),
          ...(input.visibility !== undefined ? { visibility: input.visibility } : {}),
          ...(input.ownerId !== undefined ? { owner_id: input.ownerId } : {}),
          updated_by: caller.memberId,
          date_updated: new Date(clock()),
        });
        return toActivity(row);
      });
    },

    async remove(tenant, caller, activityId) {
      return tenant.transaction(async (tx) => {
        const current = await visible(tx, caller, activityId, { lock: true });
        assertMayChange(caller, current);
        await repo.deleteActivity(tx, activityId);
        return { activityId };
      });
    },

    async list(tenant, caller, query) {
      // Each filter is checked as its own resource would answer (404 / 410 / 403).
      let recordId: string | null | undefined;
      if (query.recordId !== undefined) recordId = (await namedRecord(tenant, caller, query.recordId))?.recordId ?? null;
      if (query.entityId !== undefined) await entities.requireUsable(tenant, caller, query.entityId);
      const from = query.from === undefined ? undefined : instant(query.from, 'from');
      const to = query.to === undefined ? undefined : instant(query.to, 'to');
      if (from && to && from.getTime() > to.getTime()) throw invalid('to', 'must not be before from');
      if (query.dateField !== undefined && !from && !to) throw invalid('dateField', 'send it with from and/or to');
      const limit = query.limit ?? 20;
      const before = query.startKey ? decodeCursor(query.startKey, ['ac'], 1)[0] : undefined;
      const rows = await repo.pageActivities(tenant, caller, {
        recordId,
        entityId: query.entityId,
        activityType: query.activityType,
        range: from || to ? { column: DATE_COLUMNS[query.dateField ?? 'scheduledAt'], from, to } : undefined,
        before,
      }, limit + 1);
      const data = rows.slice(0, limit).map(toActivity);
      return rows.length > limit ? { data, nextKey: encodeCursor(['ac', data[data.length - 1]!.activityId]) } : { data };
    },

    async scheduled(tenant, caller, recordId, query) {
      const record = await namedRecord(tenant, caller, recordId);
      const from = query.from === undefined ? undefined : instant(query.from, 'from');
      const rows = await repo.scheduledActivities(tenant, caller, record?.recordId ?? null, from, query.limit ?? 20);
      return rows.map(toActivity);
    },
  };
}
