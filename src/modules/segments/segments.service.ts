import { sql, type RawBuilder, type SqlBool } from 'kysely';
import { errors } from '../../errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { newId } from '../../lib/ids.ts';
import { assertPrecondition, withVersion, type Precondition } from '../../lib/versioning.ts';
import type { Condition, ConditionGroup } from '../../query/types.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { EntitiesService } from '../entities/entities.service.ts';
import type { MembersService } from '../members/members.service.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import type { ConditionEvaluation, ExplainedNode, Resolved } from '../records/records.evaluation.ts';
import type { PageSet } from '../records/records.repository.ts';
import type { RecordPage, RecordsService } from '../records/records.service.ts';
import type { CrmRecord } from '../records/records.schemas.ts';
import { createSegmentMaintenance, type SegmentMaintenance } from './segments.maintenance.ts';
import * as repo from './segments.repository.ts';
import type { LinkQueries } from '../relationships/relationship-links.ts';
import {
  PREVIEW_SAMPLE, SEGMENT_LIST_CAP,
  type CreateSegmentBody, type Segment, type SegmentRecordsQuery, type UpdateSegmentBody,
} from './segments.schemas.ts';

export interface SegmentEventItem {
  eventType: 'segment.entered' | 'segment.exited';
  segmentId: string;
  recordId: string;
  occurredAt: string;
  seq: string;
}

export interface SegmentsService extends SegmentMaintenance {
  list(tenant: TenantDb, caller: Caller, entityId?: string): Promise<Segment[]>;
  get(tenant: TenantDb, caller: Caller, segmentId: string): Promise<Segment>;
  create(tenant: TenantDb, caller: Caller, input: CreateSegmentBody): Promise<Segment>;
  /** `ifMatch`: the client's If-Match, checked against the locked row (412 PreconditionFailed). */
  update(tenant: TenantDb, caller: Caller, segmentId: string, input: UpdateSegmentBody, options?: { ifMatch?: Precondition }): Promise<Segment>;
  remove(tenant: TenantDb, caller: Caller, segmentId: string, options?: { ifMatch?: Precondition }): Promise<void>;
  records(tenant: TenantDb, caller: Caller, segmentId: string, query: SegmentRecordsQuery): Promise<RecordPage>;
  count(tenant: TenantDb, caller: Caller, segmentId: string): Promise<number>;
  preview(tenant: TenantDb, caller: Caller, input: { entityId: string; conditions: unknown }): Promise<{ count: number; sample: CrmRecord[] }>;
  explain(tenant: TenantDb, caller: Caller, segmentId: string, recordId: string): Promise<{ segmentId: string; recordId: string; isMember: boolean; isValid: boolean; tree: ExplainedNode | null }>;
  refresh(tenant: TenantDb, caller: Caller, segmentId: string): Promise<Segment>;
  events(tenant: TenantDb, caller: Caller, segmentId: string, query: { limit?: number; startKey?: string }): Promise<{ data: SegmentEventItem[]; nextKey?: string }>;
  /** GET /records?segmentId=: the records filter of a segment of `entityId` the caller may read. */
  recordFilter(tenant: TenantDb, caller: Caller, segmentId: string, entityId: string): Promise<RawBuilder<SqlBool>>;
}

export interface SegmentsServiceDeps {
  entities: EntitiesService;
  members: MembersService;
  quota: QuotaService;
  records: RecordsService;
  evaluation: ConditionEvaluation;
  clock: Clock;
  /** Late-bound: what the relationships module answers about links (it is built after segments' dependencies). */
  links: () => LinkQueries;
}

const RELATIVE_DATE_OPERATORS = new Set(['withinLastDays', 'withinNextDays', 'olderThanDays']);

const RELATIONSHIP_FIELD = 'relationship.';

/** The relationship types a validated group's conditions name (what CACHED members depend on across links). */
function relationshipTypesOf(group: ConditionGroup): string[] {
  const found = new Set<string>();
  for (const node of group.conditions) {
    if ('conditions' in node) relationshipTypesOf(node).forEach((t) => found.add(t));
    else if (node.field.startsWith(RELATIONSHIP_FIELD)) found.add(node.field.slice(RELATIONSHIP_FIELD.length));
  }
  return [...found];
}

/** Whether any node (nested relationship `where` groups included) uses a relative date operator. */
function usesRelativeDates(group: ConditionGroup): boolean {
  return group.conditions.some((node) => 'conditions' in node
    ? usesRelativeDates(node)
    : RELATIVE_DATE_OPERATORS.has((node as Condition).operator) || (node.where !== undefined && usesRelativeDates(node.where)));
}

/** Members of a CACHED segment change only with writes; time-relative rules would go stale. */
function assertCacheable(group: ConditionGroup): void {
  if (usesRelativeDates(group)) {
    throw errors.validation('mode: CACHED segments cannot use withinLastDays, withinNextDays or olderThanDays (their members change with time, not with writes); use REALTIME',
      [{ path: 'mode', message: 'relative date operators need REALTIME' }]);
  }
}

export function createSegmentsService(deps: SegmentsServiceDeps): SegmentsService {
  const { entities, members, quota, records, evaluation, clock } = deps;
  const maintenance = createSegmentMaintenance({ evaluation, clock, links: deps.links });

  async function toSegment(tenant: TenantDb, row: repo.SegmentRow, known?: Resolved): Promise<Segment> {
    const resolved = known ?? await evaluation.resolve(tenant, row.entity_id, row.conditions);
    // Tagged with the row version: the ETag, never a body field.
    return withVersion({
      segmentId: row.segment_id,
      accountId: row.account_id,
      workspaceId: row.workspace_id,
      entityId: row.entity_id,
      name: row.name,
      description: row.description,
      color: row.color,
      conditions: row.conditions as Segment['conditions'],
      mode: row.mode,
      priority: row.priority,
      isActive: row.is_active,
      ownerId: row.owner_id,
      isValid: resolved.valid,
      ...(resolved.valid ? {} : { invalidReason: resolved.reason }),
      ...(isMaintained(row)
        ? { memberCount: row.member_count, lastEvaluatedAt: row.last_evaluated_at ? row.last_evaluated_at.toISOString() : null }
        : {}),
      createdBy: row.created_by,
      updatedBy: row.updated_by,
      dateCreated: row.date_created.toISOString(),
      dateUpdated: row.date_updated.toISOString(),
    }, row.version);
  }

  /** A segment the caller may read: 404 unknown or outside the key's workspace; its entity's 410/403. */
  async function load(tenant: TenantDb, caller: Caller, segmentId: string, options: { lock?: boolean } = {}) {
    const row = await repo.findSegment(tenant, segmentId, options);
    const outside = row && caller.workspaceId !== null && row.workspace_id !== null && row.workspace_id !== caller.workspaceId;
    if (!row || outside) throw errors.notFound('Segment');
    await entities.requireUsable(tenant, caller, row.entity_id);
    return row;
  }

  /** Deleting and changing a segment: its creator, or an OWNER (API.md §1.7). */
  function assertMayChange(caller: Caller, row: repo.SegmentRow): void {
    if (caller.role !== 'OWNER' && row.created_by !== caller.memberId) {
      throw errors.forbidden('Only the segment\'s creator or an OWNER may change or delete it.');
    }
  }

  async function assertMember(tenant: TenantDb, ownerId: string | null | undefined): Promise<void> {
    if (ownerId && !(await members.exists(tenant, ownerId))) {
      throw errors.validation(`ownerId: ${ownerId} is not a member of this account.`, [{ path: '/ownerId', message: 'unknown member' }]);
    }
  }

  /** MEMBERs may not filter on masked properties (API.md §1.7): a count or explain would reveal their values. */
  const assertUnmaskedUse = (tenant: TenantDb, caller: Caller, entityId: string, group: ConditionGroup) =>
    evaluation.assertMayFilter(tenant, caller, entityId, group);

  /** Live membership is kept only for active CACHED segments; a read of any other evaluates. */
  const isMaintained = (row: repo.SegmentRow) => row.mode === 'CACHED' && row.is_active;

  /**
   * What a read selects: the stored members of an active CACHED segment (a set to page through,
   * or its filter), else the rules compiled. Rules that no longer fit (a property or relationship
   * type gone) match nothing: a REALTIME segment compiles to `false`, and every change that makes
   * a CACHED segment's rules unfit rebuilds it, emptying it (property changes, type deletes, a
   * related entity trashed, the retention purge of a type's entity).
   */
  async function selectionOf(tenant: TenantDb, row: repo.SegmentRow): Promise<{ set: PageSet } | { where: RawBuilder<SqlBool> }> {
    if (isMaintained(row)) return { set: repo.memberSet(tenant, row) };
    return { where: (await evaluation.conditionsSql(tenant, row.entity_id, row.conditions)) ?? sql<SqlBool>`false` };
  }

  /** The records filter of a segment (GET /records?segmentId=, selectors). */
  async function filterOf(tenant: TenantDb, row: repo.SegmentRow): Promise<RawBuilder<SqlBool>> {
    const selection = await selectionOf(tenant, row);
    return 'set' in selection ? selection.set.filter : selection.where;
  }

  return {
    ...maintenance,

    async list(tenant, caller, entityId) {
      if (entityId) await entities.requireUsable(tenant, caller, entityId);
      const rows = await repo.listSegments(tenant, caller, entityId, SEGMENT_LIST_CAP);
      // Validity is checked per entity in one go: a list of 500 segments reads each entity's properties once.
      const byEntity = new Map<string, repo.SegmentRow[]>();
      for (const row of rows) byEntity.set(row.entity_id, [...(byEntity.get(row.entity_id) ?? []), row]);
      const resolved = new Map<repo.SegmentRow, Resolved>();
      for (const [entityId, group] of byEntity) {
        (await evaluation.resolveAll(tenant, entityId, group.map((r) => r.conditions))).forEach((r, i) => resolved.set(group[i]!, r));
      }
      return Promise.all(rows.map((row) => toSegment(tenant, row, resolved.get(row))));
    },

    async get(tenant, caller, segmentId) {
      return toSegment(tenant, await load(tenant, caller, segmentId));
    },

    async create(tenant, caller, input) {
      await entities.requireUsable(tenant, caller, input.entityId);
      const group = await evaluation.checkConditions(tenant, input.entityId, input.conditions);
      await assertUnmaskedUse(tenant, caller, input.entityId, group);
      const mode = input.mode ?? 'REALTIME';
      if (mode === 'CACHED') assertCacheable(group);
      await assertMember(tenant, input.ownerId);
      const row = await tenant.transaction(async (tx) => {
        await quota.reserve(tx, 'segments.maxPerEntity', 1, input.entityId);
        const now = new Date(clock());
        const created = await repo.insertSegment(tx, {
          segment_id: newId('segment', now),
          workspace_id: caller.workspaceId,
          entity_id: input.entityId,
          name: input.name,
          description: input.description ?? null,
          color: input.color ?? null,
          conditions: JSON.stringify(input.conditions),
          depends_on_types: relationshipTypesOf(group),
          mode,
          priority: input.priority ?? (await repo.nextPriority(tx, input.entityId)),
          is_active: input.isActive ?? true,
          owner_id: input.ownerId === undefined ? caller.memberId : input.ownerId,
          created_by: caller.memberId,
          updated_by: caller.memberId,
          date_created: now,
          date_updated: now,
        });
        // The first members are not "entries": a new segment records no events.
        if (isMaintained(created)) await maintenance.rebuild(tx, created, { events: false });
        return (await repo.findSegment(tx, created.segment_id))!;
      });
      return toSegment(tenant, row);
    },

    async update(tenant, caller, segmentId, input, options = {}) {
      const row = await tenant.transaction(async (tx) => {
        const current = await load(tx, caller, segmentId, { lock: true });
        assertMayChange(caller, current);
        assertPrecondition(options.ifMatch, current.version, 'The segment');
        const conditions = input.conditions ?? current.conditions;
        const mode = input.mode ?? current.mode;
        let dependsOn: string[] | undefined;
        if (input.conditions !== undefined || input.mode !== undefined) {
          const group = await evaluation.checkConditions(tx, current.entity_id, conditions);
          await assertUnmaskedUse(tx, caller, current.entity_id, group);
          if (mode === 'CACHED') assertCacheable(group);
          dependsOn = relationshipTypesOf(group);
        }
        await assertMember(tx, input.ownerId);
        const updated = await repo.updateSegment(tx, segmentId, {
          ...(input.name !== undefined ? { name: input.name } : {}),
          ...(input.description !== undefined ? { description: input.description } : {}),
          ...(input.color !== undefined ? { color: input.color } : {}),
          ...(input.conditions !== undefined ? { conditions: JSON.stringify(input.conditions) } : {}),
          ...(dependsOn !== undefined ? { depends_on_types: dependsOn } : {}),
          ...(input.priority !== undefined ? { priority: input.priority } : {}),
          ...(input.isActive !== undefined ? { is_active: input.isActive } : {}),
          ...(input.ownerId !== undefined ? { owner_id: input.ownerId } : {}),
          mode,
          updated_by: caller.memberId,
          date_updated: new Date(clock()),
        });
        const membershipMayChange = input.conditions !== undefined || input.mode !== undefined || input.isActive !== undefined;
        if (membershipMayChange) {
          // Entries and exits caused by new rules are real and recorded; starting to cache is not.
          if (isMaintained(updated)) await maintenance.rebuild(tx, updated, { events: isMaintained(current) });
          else await maintenance.clear(tx, updated);
        }
        return (await repo.findSegment(tx, segmentId))!;
      });
      return toSegment(tenant, row);
    },

    async remove(tenant, caller, segmentId, options = {}) {
      await tenant.transaction(async (tx) => {
        const row = await load(tx, caller, segmentId, { lock: true });
        assertMayChange(caller, row);
        assertPrecondition(options.ifMatch, row.version, 'The segment');
        await repo.deleteSegment(tx, segmentId);
        await quota.release(tx, 'segments.maxPerEntity', 1, row.entity_id);
      });
    },

    async records(tenant, caller, segmentId, query) {
      const row = await load(tenant, caller, segmentId);
      const list = { ...query, entityId: row.entity_id };
      // Stored members are paged from segment_members itself (the default sort is a range of its index).
      const selection = await selectionOf(tenant, row);
      return 'set' in selection ? records.list(tenant, caller, list, undefined, selection.set) : records.list(tenant, caller, list, selection.where);
    },

    async count(tenant, caller, segmentId) {
      const row = await load(tenant, caller, segmentId);
      if (isMaintained(row)) return row.member_count;
      const where = (await evaluation.conditionsSqlForms(tenant, row.entity_id, row.conditions))?.wholeEntity;
      return where ? evaluation.countWhere(tenant, row.entity_id, where) : 0;
    },

    async preview(tenant, caller, input) {
      await entities.requireUsable(tenant, caller, input.entityId);
      await assertUnmaskedUse(tenant, caller, input.entityId, await evaluation.checkConditions(tenant, input.entityId, input.conditions));
      const forms = (await evaluation.conditionsSqlForms(tenant, input.entityId, input.conditions))!;
      const [count, page] = await Promise.all([
        evaluation.countWhere(tenant, input.entityId, forms.wholeEntity),
        records.list(tenant, caller, { entityId: input.entityId, limit: PREVIEW_SAMPLE, sortField: 'dateCreated', sortDirection: 'desc' }, forms.perRecord),
      ]);
      return { count, sample: page.data };
    },

    async explain(tenant, caller, segmentId, recordId) {
      const row = await load(tenant, caller, segmentId);
      await records.get(tenant, caller, recordId); // 404/410/403 as reading the record would
      const resolved = await evaluation.resolve(tenant, row.entity_id, row.conditions);
      if (resolved.valid) await assertUnmaskedUse(tenant, caller, row.entity_id, resolved.group);
      const tree = resolved.valid ? await evaluation.explain(tenant, row.entity_id, resolved.group, recordId) : undefined;
      if (resolved.valid && tree === undefined) throw errors.validation(`Record ${recordId} is not a record of this segment's entity.`, [{ path: 'recordId', message: 'another entity' }]);
      const isMember = isMaintained(row)
        ? (await repo.membersAmong(tenant, [segmentId], [recordId])).size === 1
        : tree?.passed === true;
      return { segmentId, recordId, isMember, isValid: resolved.valid, tree: tree ?? null };
    },

    async refresh(tenant, caller, segmentId) {
      const row = await tenant.transaction(async (tx) => {
        const current = await load(tx, caller, segmentId, { lock: true });
        assertMayChange(caller, current);
        if (!isMaintained(current)) throw errors.validation('Only an active CACHED segment has members to rebuild.', [{ path: 'mode', message: 'not CACHED' }]);
        await maintenance.rebuild(tx, current, { events: true });
        return (await repo.findSegment(tx, segmentId))!;
      });
      return toSegment(tenant, row);
    },

    async events(tenant, caller, segmentId, query) {
      await load(tenant, caller, segmentId);
      const limit = query.limit ?? 50;
      if (query.startKey !== undefined && !/^\d{1,19}$/.test(query.startKey)) {
        throw errors.validation('startKey: not a key this list gave out', [{ path: 'startKey', message: 'malformed' }]);
      }
      const rows = await repo.listEvents(tenant, segmentId, query.startKey, limit + 1);
      const data = rows.slice(0, limit).map((r) => ({
        eventType: r.event_type, segmentId: r.segment_id, recordId: r.record_id, occurredAt: r.occurred_at.toISOString(), seq: String(r.seq),
      }));
      return rows.length > limit ? { data, nextKey: data[data.length - 1]!.seq } : { data };
    },

    async recordFilter(tenant, caller, segmentId, entityId) {
      const row = await load(tenant, caller, segmentId);
      if (row.entity_id !== entityId) {
        throw errors.validation(`segmentId: segment ${segmentId} belongs to another entity`, [{ path: 'segmentId', message: 'another entity' }]);
      }
      return filterOf(tenant, row);
    },
  };
}
