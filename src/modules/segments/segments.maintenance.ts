import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import type { ConditionEvaluation } from '../records/records.evaluation.ts';
import * as repo from './segments.repository.ts';

/**
 * CACHED segments keep their members in segment_members, changed in the transaction of every
 * write that can change them, so a read is never stale (API.md §7):
 * - records written (created, changed, trashed, restored): their membership in every active
 *   CACHED segment of their entity is re-evaluated in one statement and the difference applied
 *   (entries, exits, events, counts) in another;
 * - records deleted for good: their memberships end first;
 * - anything that can move every record (a property retyped, converted or deleted): the
 *   entity's CACHED segments are rebuilt.
 */
export interface SegmentMaintenance {
  /** Call after writing these records of the entity, inside the write's transaction. */
  recordsChanged(tx: TenantDb, entityId: string, recordIds: readonly string[]): Promise<void>;
  /** Call before deleting these records for good, inside the delete's transaction. */
  recordsDeleting(tx: TenantDb, recordIds: readonly string[]): Promise<void>;
  /** Call after a change that can move any record of the entity, inside its transaction. */
  entityChanged(tx: TenantDb, entityId: string): Promise<void>;
}

export interface SegmentMaintenanceInternals extends SegmentMaintenance {
  /** Recomputes a segment's members (locked by the caller's transaction or locked here). */
  rebuild(tx: TenantDb, segment: repo.SegmentRow, options: { events: boolean }): Promise<void>;
  /** Drops a segment's members (it stopped being an active CACHED segment); no events. */
  clear(tx: TenantDb, segment: repo.SegmentRow): Promise<void>;
}

export function createSegmentMaintenance(deps: { evaluation: ConditionEvaluation; clock: Clock }): SegmentMaintenanceInternals {
  const { evaluation, clock } = deps;

  async function rebuild(tx: TenantDb, segment: repo.SegmentRow, options: { events: boolean }) {
    await repo.lockForRebuild(tx, segment.segment_id);
    const matching = await evaluation.matchingIds(tx, segment.entity_id, segment.conditions);
    await repo.rebuildMembers(tx, segment.segment_id, matching, new Date(clock()), options);
  }

  return {
    rebuild,

    async clear(tx, segment) {
      await repo.rebuildMembers(tx, segment.segment_id, undefined, new Date(clock()), { events: false });
    },

    async recordsChanged(tx, entityId, recordIds) {
      if (recordIds.length === 0) return;
      const segments = await repo.cachedSegmentsOf(tx, entityId, 'share');
      if (segments.length === 0) return;
      const ids = [...new Set(recordIds)];
      const segmentIds = segments.map((s) => s.segment_id);
      const [matches, current] = await Promise.all([
        evaluation.evaluate(tx, entityId, segments.map((s) => s.conditions), ids),
        repo.membersAmong(tx, segmentIds, ids),
      ]);
      const entered: repo.MembershipChange[] = [];
      const exited: repo.MembershipChange[] = [];
      for (const recordId of ids) {
        const flags = matches.get(recordId); // undefined: trashed or gone, a member of nothing
        segmentIds.forEach((segmentId, i) => {
          const member = current.has(`${segmentId} ${recordId}`);
          const matched = flags?.[i] === true;
          if (matched && !member) entered.push({ segmentId, recordId });
          if (!matched && member) exited.push({ segmentId, recordId });
        });
      }
      await repo.applyMembershipChanges(tx, entered, exited, new Date(clock()));
    },

    async recordsDeleting(tx, recordIds) {
      const memberships = await repo.membershipsOf(tx, recordIds);
      await repo.applyMembershipChanges(tx, [], memberships, new Date(clock()));
    },

    async entityChanged(tx, entityId) {
      for (const segment of await repo.cachedSegmentsOf(tx, entityId, 'exclusive')) await rebuild(tx, segment, { events: true });
    },
  };
}
