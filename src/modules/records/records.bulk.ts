import { AppError, errors } from '../../errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { newId } from '../../lib/ids.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { MembersService } from '../members/members.service.ts';
import type { CountLimit } from '../plans/plan-limits.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import { purgeLinksOfRecords } from '../relationships/relationships.purge.ts';
import * as repo from './records.repository.ts';
import type { RecordField } from '../properties/properties.service.ts';
import type { BulkDeleteBody, BulkFailure, BulkRestoreBody, BulkResult, BulkUpdateItem, CreateRecordBody } from './records.schemas.ts';

/**
 * Bulk record writes (API.md §5): create, update, delete (soft or permanent) and restore, up to
 * BULK_MAX items each, with per-item results.
 *
 * Every bulk request is ONE transaction in two phases:
 * 1. Decide: every item is checked exactly as its single-record endpoint would check it (the
 *    record exists in the account, the entity is usable by the caller — 404/410/403 —, data
 *    values fit their properties, the owner is a member, the record's state fits the action).
 *    A failing item is recorded with the errorCode and message it would have had on its own and
 *    contributes nothing to the write; nothing is written during this phase.
 * 2. Write: the items that passed are written together, with one multi-row statement per action.
 *    So a bad item never half-writes (not even one of its own fields), and good items succeed
 *    whatever their neighbours contain.
 *
 * Schema violations of the request itself (not JSON, an item of the wrong shape, more than
 * BULK_MAX items) are still a 400 for the whole request, before anything is decided.
 *
 * Plan limit `records.max`: bulk create takes as many slots as remain (reserveUpTo) for the items
 * that passed phase 1, in request order; the rest fail with PlanQuotaExceeded. The slots are taken
 * after the insert (so the counter row is locked only briefly before commit), and rows past the
 * limit are deleted again in the same transaction: nobody ever sees them. Soft delete keeps
 * slots (a trashed record counts until it is purged, as with DELETE /records/{id}), so restore
 * needs none; permanent delete frees them in the same transaction.
 */
export interface BulkCreateOptions {
  /**
   * Awaited after the rows are inserted and before `records.max` slots are taken (the first lock
   * shared with other writers of the account). Imports write batches side by side and use it to
   * let each batch settle only after the one before it committed.
   */
  beforeSlots?: () => Promise<void>;
}

export interface BulkOperations {
  bulkCreate(tenant: TenantDb, caller: Caller, items: CreateRecordBody[], options?: BulkCreateOptions): Promise<BulkResult>;
  bulkUpdate(tenant: TenantDb, caller: Caller, items: BulkUpdateItem[]): Promise<BulkResult>;
  bulkDelete(tenant: TenantDb, caller: Caller, body: BulkDeleteBody): Promise<BulkResult>;
  bulkRestore(tenant: TenantDb, caller: Caller, body: BulkRestoreBody): Promise<BulkResult>;
}

export interface BulkDeps {
  members: MembersService;
  quota: QuotaService;
  clock: Clock;
  hooks: RecordWriteHooks;
}

/**
 * Told about every record write, inside its transaction (segments keep CACHED members with it).
 * `recordsChanged` after records were created, changed, trashed or restored; `recordsDeleting`
 * before records are deleted for good.
 */
export interface RecordWriteHooks {
  recordsChanged(tx: TenantDb, entityId: string, recordIds: readonly string[], fields?: readonly RecordField[]): Promise<void>;
  /** Returns what to call once the records (and their links) are gone. */
  recordsDeleting(tx: TenantDb, recordIds: readonly string[]): Promise<() => Promise<void>>;
}

/** recordsChanged once per entity of the written records. */
export async function notifyChanged(hooks: RecordWriteHooks, tx: TenantDb, written: Iterable<{ entityId: string; recordId: string }>): Promise<void> {
  const byEntity = new Map<string, string[]>();
  for (const { entityId, recordId } of written) {
    const ids = byEntity.get(entityId);
    if (ids) ids.push(recordId);
    else byEntity.set(entityId, [recordId]);
  }
  for (const [entityId, ids] of byEntity) await hooks.recordsChanged(tx, entityId, ids);
}

/** What the records service lends the bulk operations, so both apply the same rules. */
export interface BulkHelpers<V> {
  /** The entity as records see it; throws 404/410/403 like every record endpoint. */
  view(tenant: TenantDb, caller: Caller, entityId: string): Promise<V>;
  /** Validates and normalises `data` against the view's live properties; throws a 400 naming each property. Returns the values keyed by storage key, like `current` (the stored values). */
  normalizeData(v: V, data: Record<string, unknown>, current?: Record<string, unknown>): Record<string, unknown>;
}

type ItemFailure = Omit<BulkFailure, 'index' | 'recordId'>;

/** An item's failure as its single endpoint would have reported it. Anything but an AppError (a database failure) fails the request. */
function failureOf(error: unknown): ItemFailure {
  if (!(error instanceof AppError)) throw error;
  return { errorCode: error.code, errorMessage: error.message, ...(error.details?.length ? { details: error.details } : {}) };
}

/** One lookup per distinct key per request; a rejection is remembered too (and never unhandled). */
function memo<T>(load: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const cache = new Map<string, Promise<T>>();
  return (key) => {
    let promise = cache.get(key);
    if (!promise) {
      promise = load(key);
      promise.catch(() => {});
      cache.set(key, promise);
    }
    return promise;
  };
}

function unknownOwner(ownerId: string): AppError {
  return errors.validation(`ownerId: ${ownerId} is not a member of this account`, [{ path: 'ownerId', message: 'unknown member' }]);
}

/**
 * Takes as many of `wanted` slots of a count limit as remain, inside the caller's transaction,
 * and says how many it got. Built on QuotaService.reserve, which is all-or-nothing: when it
 * refuses, its PlanQuotaExceeded carries `used` and `max`, and it has left the account's counter
 * row locked (an INSERT … ON CONFLICT DO UPDATE locks the conflicting row even when its WHERE
 * refuses the update), so asking again for exactly the room left succeeds. If the counter moved
 * anyway (a first reservation that inserted nothing, or a limit above the request), it asks
 * again for less; every retry asks for fewer slots, so the loop ends.
 *
 * `refusal` is the PlanQuotaExceeded the items beyond `granted` fail with (undefined when all fit).
 */
export async function reserveUpTo(quota: QuotaService, tx: TenantDb, limit: CountLimit, wanted: number): Promise<{ granted: number; refusal: AppError | undefined }> {
  let ask = wanted;
  let used = 0;
  let max = 0;
  let refused = false;
  while (ask > 0) {
    try {
      await quota.reserve(tx, limit, ask);
      break;
    } catch (error) {
      const detail = error instanceof AppError && error.code === 'PlanQuotaExceeded' ? error.details?.[0] : undefined;
      if (!detail || typeof detail.used !== 'number' || typeof detail.max !== 'number') throw error;
      refused = true;
      used = detail.used;
      max = detail.max;
      ask = Math.min(Math.max(0, max - used), ask - 1);
    }
  }
  const granted = Math.max(ask, 0);
  return { granted, refusal: refused ? errors.quotaExceeded(limit, Math.min(max, used + granted), max) : undefined };
}

export function createBulkOperations<V extends { entityId: string }>(deps: BulkDeps, helpers: BulkHelpers<V>): BulkOperations {
  const { members, quota, clock, hooks } = deps;

  return {
    async bulkCreate(tenant, caller, items, options) {
      return tenant.transaction(async (tx) => {
        const now = new Date(clock());
        const viewOf = memo((entityId) => helpers.view(tx, caller, entityId));
        const isMember = memo((memberId) => members.exists(tx, memberId));
        const failed: BulkFailure[] = [];
        const valid: { index: number; row: repo.BulkNewRecord }[] = [];

        for (const [index, item] of items.entries()) {
          try {
            const v = await viewOf(item.entityId);
            const data = helpers.normalizeData(v, item.data ?? {});
            const ownerId = item.ownerId === undefined ? caller.memberId : item.ownerId;
            if (ownerId && !(await isMember(ownerId))) throw unknownOwner(ownerId);
            valid.push({
              index,
              row: {
                record_id: newId('record', now),
                entity_id: v.entityId,
                name: item.name ?? '',
                data,
                tags: [...new Set(item.tags ?? [])],
                owner_id: ownerId,
              },
            });
          } catch (error) {
            failed.push({ index, ...failureOf(error) });
          }
        }

        // Items past the room the account has now are refused before anything is written, so a
        // client sending bulk creates at its limit leaves no rows to delete behind.
        const room = await quota.room(tx, 'records.max');
        const writing = valid.slice(0, room.left);
        for (const { index } of valid.slice(writing.length)) failed.push({ index, ...failureOf(room.refusal()) });
        // The rows go in before slots are taken: the account's counter row is then locked only
        // from here to commit, so bulk creates running side by side insert in parallel.
        await repo.insertRecordBatch(tx, writing.map((c) => c.row), caller.memberId, now);
        await options?.beforeSlots?.();
        // Slots go to the written items in request order; the room may have shrunk meanwhile, and
        // the items past it are taken out again.
        const { granted, refusal } = await reserveUpTo(quota, tx, 'records.max', writing.length);
        const created = writing.slice(0, granted);
        const refused = writing.slice(granted);
        for (const { index } of refused) failed.push({ index, ...failureOf(refusal) });
        await repo.deleteRecords(tx, refused.map((c) => c.row.record_id));
        await notifyChanged(hooks, tx, created.map((c) => ({ entityId: c.row.entity_id, recordId: c.row.record_id })));

        failed.sort((a, b) => a.index! - b.index!);
        return { succeeded: created.length, failed, recordIds: created.map((c) => c.row.record_id) };
      });
    },

    async bulkUpdate(tenant, caller, items) {
      return tenant.transaction(async (tx) => {
        const now = new Date(clock());
        const viewOf = memo((entityId) => helpers.view(tx, caller, entityId));
        const isMember = memo((memberId) => members.exists(tx, memberId));
        const rows = new Map((await repo.lockRecordsInOrder(tx, [...new Set(items.map((i) => i.recordId))])).map((r) => [r.record_id, r]));
        const firstIndex = new Map<string, number>();
        const failed: BulkFailure[] = [];
        const changes: repo.BulkRecordChange[] = [];

        for (const [index, item] of items.entries()) {
          try {
            const earlier = firstIndex.get(item.recordId);
            if (earlier !== undefined) {
              throw errors.validation(`recordId: ${item.recordId} is already patched by item ${earlier}; send one patch per record`,
                [{ path: `records/${index}/recordId`, message: 'duplicate recordId' }]);
            }
            firstIndex.set(item.recordId, index);
            const row = rows.get(item.recordId);
            if (!row) throw errors.notFound('Record');
            const v = await viewOf(row.entity_id);
            if (row.is_deleted) throw errors.gone('Record');

            let data = row.data;
            if (item.data) {
              // Merged key by key; null clears. Values of deleted properties are kept (restorable).
              data = { ...row.data };
              for (const [key, value] of Object.entries(helpers.normalizeData(v, item.data, row.data))) {
                if (value === null) delete data[key];
                else data[key] = value;
              }
            }
            if (item.ownerId && !(await isMember(item.ownerId))) throw unknownOwner(item.ownerId);
            changes.push({
              record_id: row.record_id,
              name: item.name ?? row.name,
              data,
              tags: item.tags === undefined ? row.tags : [...new Set(item.tags)],
              owner_id: item.ownerId === undefined ? row.owner_id : item.ownerId,
            });
          } catch (error) {
            failed.push({ index, recordId: item.recordId, ...failureOf(error) });
          }
        }

        await repo.updateRecordBatch(tx, changes, caller.memberId, now);
        await notifyChanged(hooks, tx, changes.map((c) => ({ entityId: rows.get(c.record_id)!.entity_id, recordId: c.record_id })));
        return { succeeded: changes.length, failed };
      });
    },

    async bulkDelete(tenant, caller, { recordIds, permanent = false }) {
      return tenant.transaction(async (tx) => {
        const { eligible, failed, entityOf } = await decide(tx, caller, recordIds, (row) => {
          // Permanent delete also empties the trash; a soft delete of a trashed record is 410 as on its own.
          if (!permanent && row.is_deleted) throw errors.gone('Record');
          return true;
        });
        if (permanent) {
          // The records are locked (decide); the counters are locked before any segment's members
          // move (QuotaService's lock order). Their links go first, giving relationships.max back.
          await quota.lockCounters(tx, ['relationships.max', 'records.max']);
          const afterDelete = await hooks.recordsDeleting(tx, eligible);
          await purgeLinksOfRecords(tx, quota, eligible);
          const removed = await repo.deleteRecords(tx, eligible);
          await quota.release(tx, 'records.max', removed);
          await afterDelete();
        } else {
          await repo.markDeleted(tx, eligible, true, new Date(clock()));
          await notifyChanged(hooks, tx, eligible.map((recordId) => ({ entityId: entityOf(recordId), recordId })));
        }
        return { succeeded: eligible.length, failed };
      });
    },

    async bulkRestore(tenant, caller, { recordIds }) {
      return tenant.transaction(async (tx) => {
        // Restoring a live record succeeds without change, as POST /records/{id}/restore does.
        const { eligible, unchanged, failed, entityOf } = await decide(tx, caller, recordIds, (row) => row.is_deleted);
        await repo.markDeleted(tx, eligible, false, new Date(clock()));
        await notifyChanged(hooks, tx, eligible.map((recordId) => ({ entityId: entityOf(recordId), recordId })));
        return { succeeded: eligible.length + unchanged.length, failed };
      });
    },
  };

  /**
   * Phase 1 of delete/restore: locks the named records (each ID once) and checks each as its
   * single endpoint would: 404 unknown, 404/410/403 through its entity, then `accept` (which may
   * throw, or return false for "succeeds without a write").
   */
  async function decide(tx: TenantDb, caller: Caller, recordIds: readonly string[], accept: (row: { is_deleted: boolean }) => boolean) {
    const ids = [...new Set(recordIds)];
    const viewOf = memo((entityId) => helpers.view(tx, caller, entityId));
    const rows = new Map((await repo.lockRecordStates(tx, ids)).map((r) => [r.record_id, r]));
    const eligible: string[] = [];
    const unchanged: string[] = [];
    const failed: BulkFailure[] = [];
    for (const recordId of ids) {
      try {
        const row = rows.get(recordId);
        if (!row) throw errors.notFound('Record');
        await viewOf(row.entity_id);
        if (accept(row)) eligible.push(recordId);
        else unchanged.push(recordId);
      } catch (error) {
        failed.push({ recordId, ...failureOf(error) });
      }
    }
    return { eligible, unchanged, failed, entityOf: (recordId: string) => rows.get(recordId)!.entity_id };
  }
}
