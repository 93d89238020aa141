import { createHash } from 'node:crypto';
import type { RawBuilder, SqlBool } from 'kysely';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import type { ConditionEvaluation } from '../records/records.evaluation.ts';
import type { RecordField } from '../properties/properties.service.ts';
import type { LinkQueries, RecordSet } from '../relationships/relationship-links.ts';
import * as repo from './segments.repository.ts';

/**
 * CACHED segments keep their members in segment_members, changed in the transaction of every
 * write that can change them, so a read is never stale (API.md §7):
 * - records written (created, changed, trashed, restored): their membership in every active
 *   CACHED segment of their entity is re-evaluated in one statement and the difference applied
 *   (entries, exits, events, counts) in another; and the records linked to them, for segments
 *   whose relationship conditions look across those links (their `where`, or the link's
 *   visibility, which follows the record's trash state);
 * - links created or deleted: both ends are re-evaluated;
 * - records deleted for good: their memberships end first, and their former link partners are
 *   re-evaluated once the links are gone;
 * - anything that can move every record (a property retyped, converted or deleted; an entity
 *   trashed or restored, which hides or shows its links; a relationship type deleted): the
 *   segments concerned are rebuilt.
 * Relationship conditions go one hop (a condition inside `where` cannot name another
 * relationship), so a record's own membership never depends on another segment's.
 */
export interface SegmentMaintenance {
  /** Call after writing these records of the entity, inside the write's transaction (with the entity's live properties when at hand). */
  recordsChanged(tx: TenantDb, entityId: string, recordIds: readonly string[], fields?: readonly RecordField[]): Promise<void>;
  /** Call before deleting these records (and their links) for good; call what it returns after. */
  recordsDeleting(tx: TenantDb, recordIds: readonly string[]): Promise<() => Promise<void>>;
  /** Call after a change that can move any record of the entity (its property definitions). */
  entityChanged(tx: TenantDb, entityId: string): Promise<void>;
  /** Call after the entity was trashed or restored: its links were hidden or shown. */
  entityVisibilityChanged(tx: TenantDb, entityId: string): Promise<void>;
  /** Call after links between these records were created or deleted. */
  linksChanged(tx: TenantDb, ends: readonly RecordSet[]): Promise<void>;
  /** Call after a relationship type and its links were deleted. */
  typeRemoved(tx: TenantDb, typeId: string): Promise<void>;
}

export interface SegmentMaintenanceInternals extends SegmentMaintenance {
  /** Recomputes a segment's members (locked here, FOR UPDATE). */
  rebuild(tx: TenantDb, segment: repo.MaintainedSegment, options: { events: boolean }): Promise<void>;
  /** Drops a segment's members (it stopped being an active CACHED segment); no events. */
  clear(tx: TenantDb, segment: repo.MaintainedSegment): Promise<void>;
}

export interface SegmentMaintenanceDeps {
  evaluation: ConditionEvaluation;
  clock: Clock;
  /** Late-bound: the relationships module is built after segments' dependencies. */
  links: () => LinkQueries;
}

const unique = <T>(values: Iterable<T>) => [...new Set(values)];

/** Compiled rules kept per process (see compiledRules); oldest dropped first beyond this. */
const COMPILED_RULES_MAX = 2_000;

const RELATIVE_DATE_OPERATORS = new Set(['withinLastDays', 'withinNextDays', 'olderThanDays']);

/** Whether stored (unvalidated) conditions use a relative date anywhere: their SQL depends on the clock. */
function mentionsRelativeDates(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(mentionsRelativeDates);
  if (typeof node !== 'object' || node === null) return false;
  const record = node as Record<string, unknown>;
  if (typeof record.operator === 'string' && RELATIVE_DATE_OPERATORS.has(record.operator)) return true;
  return mentionsRelativeDates(record.conditions) || mentionsRelativeDates(record.where);
}

/**
 * What a segment's compiled SQL depends on besides its own row: the entity's live properties
 * (IDs, types, option values). A digest of them, so a key stays short with hundreds of properties.
 */
function fieldsDigest(fields: readonly RecordField[]): string {
  const hash = createHash('sha1');
  for (const f of fields) hash.update(`${f.propertyId}\u0001${f.fieldType}\u0001${f.optionValues.join('\u0002')}\u0003`);
  return hash.digest('base64');
}

export function createSegmentMaintenance(deps: SegmentMaintenanceDeps): SegmentMaintenanceInternals {
  const { evaluation, clock } = deps;

  /**
   * Compiled rules, keyed by account, segment, the segment's row version and the digest of the
   * entity's live properties: the version moves with every change of the rules (updateSegment
   * is their only writer), the digest with every property change that could change their SQL,
   * so an entry is never stale, on this node or after a change made on another. Not cached:
   * segments with relationship conditions (their SQL also depends on the relationship types
   * and the related entity's properties) and rules with relative dates (on the clock).
   */
  const compiledRules = new Map<string, RawBuilder<SqlBool>>();

  async function compileRules(tx: TenantDb, entityId: string, segments: readonly repo.MaintainedSegment[], fields?: readonly RecordField[]): Promise<RawBuilder<SqlBool>[]> {
    const digest = fields === undefined ? undefined : fieldsDigest(fields);
    const keys = segments.map((s) => (digest !== undefined && s.depends_on_types.length === 0 && !mentionsRelativeDates(s.conditions)
      ? `${tx.accountId} ${s.segment_id} ${s.version} ${digest}` : undefined));
    const out = keys.map((key) => (key === undefined ? undefined : compiledRules.get(key)));
    const missing = out.flatMap((hit, i) => (hit === undefined ? [i] : []));
    if (missing.length > 0) {
      const fresh = await evaluation.compileAll(tx, entityId, missing.map((i) => segments[i]!.conditions), fields);
      missing.forEach((i, j) => {
        out[i] = fresh[j]!;
        const key = keys[i];
        if (key === undefined) return;
        compiledRules.set(key, fresh[j]!);
        if (compiledRules.size > COMPILED_RULES_MAX) compiledRules.delete(compiledRules.keys().next().value!);
      });
    }
    return out as RawBuilder<SqlBool>[];
  }

  async function rebuild(tx: TenantDb, segment: repo.MaintainedSegment, options: { events: boolean }) {
    await repo.lockForRebuild(tx, segment.segment_id);
    const matching = await evaluation.matchingIds(tx, segment.entity_id, segment.conditions);
    await repo.rebuildMembers(tx, segment.segment_id, matching, new Date(clock()), options);
  }

  /**
   * Re-evaluates records of one entity against the given segments of that entity and applies
   * the difference: one statement evaluates every segment's rules and reads the current
   * memberships; only when something moved, one more applies entries, exits, events and counts.
   */
  async function reevaluate(tx: TenantDb, entityId: string, segments: readonly repo.MaintainedSegment[], recordIds: readonly string[], fields?: readonly RecordField[]) {
    if (segments.length === 0 || recordIds.length === 0) return;
    const ids = unique(recordIds);
    const segmentIds = segments.map((s) => s.segment_id);
    const states = await repo.membershipState(tx, entityId, segmentIds, await compileRules(tx, entityId, segments, fields), ids);
    const entered: repo.MembershipChange[] = [];
    const exited: repo.MembershipChange[] = [];
    for (const { recordId, flags, memberOf } of states) {
      const current = new Set(memberOf);
      segmentIds.forEach((segmentId, i) => {
        const member = current.has(segmentId);
        const matched = flags?.[i] === true; // flags null: trashed or gone, a member of nothing
        if (matched && !member) entered.push({ segmentId, recordId });
        if (!matched && member) exited.push({ segmentId, recordId });
      });
    }
    await repo.applyMembershipChanges(tx, entered, exited, new Date(clock()));
  }

  /**
   * Re-evaluates each record set against its entity's segments among `segments` (already locked
   * by the caller). These are records the transaction does not write, so their entity's
   * properties are read without its record-values lock (see fieldsWithoutLock).
   */
  async function reevaluateSets(tx: TenantDb, segments: readonly repo.MaintainedSegment[], sets: readonly RecordSet[]) {
    for (const set of sets) {
      const mine = segments.filter((s) => s.entity_id === set.entityId);
      if (mine.length === 0 || set.recordIds.length === 0) continue;
      await reevaluate(tx, set.entityId, mine, set.recordIds, await evaluation.fieldsWithoutLock(tx, set.entityId));
    }
  }

  /** Of the segments with relationship conditions, those naming a type with `entityId` on a side; and those types. */
  async function dependentsOf(tx: TenantDb, entityId: string, candidates: readonly repo.MaintainedSegment[]) {
    const withDependencies = candidates.filter((s) => s.depends_on_types.length > 0);
    if (withDependencies.length === 0) return { segments: [], typeIds: [] };
    const touching = new Set(await deps.links().typesOfEntity(tx, entityId));
    const segments = withDependencies.filter((s) => s.depends_on_types.some((t) => touching.has(t)));
    return { segments, typeIds: unique(segments.flatMap((s) => s.depends_on_types.filter((t) => touching.has(t)))) };
  }

  async function rebuildAll(tx: TenantDb, filter: repo.MaintainedFilter) {
    for (const segment of await repo.maintainedSegments(tx, filter, 'exclusive')) await rebuild(tx, segment, { events: true });
  }

  return {
    rebuild,

    async clear(tx, segment) {
      await repo.rebuildMembers(tx, segment.segment_id, undefined, new Date(clock()), { events: false });
    },

    async recordsChanged(tx, entityId, recordIds, fields) {
      if (recordIds.length === 0) return;
      // One locking read finds both the entity's own segments and every segment that might look across links.
      const segments = await repo.maintainedSegments(tx, { ownOf: entityId, anyDependencies: true }, 'share');
      if (segments.length === 0) return;
      await reevaluate(tx, entityId, segments.filter((s) => s.entity_id === entityId), recordIds, fields);
      const dependents = await dependentsOf(tx, entityId, segments);
      if (dependents.segments.length === 0) return;
      await reevaluateSets(tx, dependents.segments, await deps.links().otherEnds(tx, recordIds, dependents.typeIds));
    },

    async recordsDeleting(tx, recordIds) {
      const memberships = await repo.membershipsOf(tx, recordIds);
      await repo.applyMembershipChanges(tx, [], memberships, new Date(clock()));
      const segments = await repo.maintainedSegments(tx, { anyDependencies: true }, 'share');
      if (segments.length === 0) return async () => {};
      const typeIds = unique(segments.flatMap((s) => s.depends_on_types));
      const deleted = new Set(recordIds);
      const partners = (await deps.links().otherEnds(tx, recordIds, typeIds))
        .map((set) => ({ entityId: set.entityId, recordIds: set.recordIds.filter((id) => !deleted.has(id)) }));
      // Once the links and the records are gone, their partners' relationship conditions are re-evaluated.
      return () => reevaluateSets(tx, segments, partners);
    },

    async entityChanged(tx, entityId) {
      const typeIds = await deps.links().typesOfEntity(tx, entityId);
      await rebuildAll(tx, { ownOf: entityId, dependingOnAny: typeIds });
    },

    async entityVisibilityChanged(tx, entityId) {
      const typeIds = await deps.links().typesOfEntity(tx, entityId);
      if (typeIds.length > 0) await rebuildAll(tx, { dependingOnAny: typeIds });
    },

    async linksChanged(tx, ends) {
      const entityIds = unique(ends.map((e) => e.entityId));
      for (const entityId of entityIds) {
        const segments = (await repo.maintainedSegments(tx, { ownOf: entityId }, 'share')).filter((s) => s.depends_on_types.length > 0);
        await reevaluateSets(tx, segments, ends.filter((e) => e.entityId === entityId));
      }
    },

    async typeRemoved(tx, typeId) {
      await rebuildAll(tx, { dependingOnAny: [typeId] });
    },
  };
}
