import { sql } from 'kysely';
import { errors, type AppError } from '../../errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import { COUNT_LIMITS, type CountLimit, type PlanLimits } from './plan-limits.ts';
import { getPlanLimits, updatePlanLimits } from './plans.repository.ts';
import { planProblems } from './plan-limits.ts';

/**
 * Race-free plan limits. Usage is a counter row per (account, limit, scope) that is moved in
 * the same transaction as the write it accounts for, by one conditional upsert: the row lock
 * serialises racing creates, so two requests can never both take the last slot, and a rolled
 * back write gives its slot back.
 *
 * Lock order. A counter row stays locked until commit, so every writer takes its locks in one
 * order, or two of them can wait on each other until PostgreSQL aborts one (a 500):
 *   existing records' rows → quota counters (relationships.max before records.max) → segment counters.
 * A write takes its slots after locking or referencing the records it touches (a link is inserted,
 * so its foreign keys share-lock both records, before its slot is taken) and before moving any
 * segment's members; a delete that gives slots back after moving members locks the counters first
 * (`lockCounters`).
 */
export interface QuotaService {
  /** Takes `count` slots or throws PlanQuotaExceeded. Call inside the write's transaction. */
  reserve(tenant: TenantDb, limit: CountLimit, count?: number, scope?: string): Promise<void>;
  /**
   * Locks these counters now, in the order given, for a transaction that gives their slots back
   * only after moving segment members (see the lock order above).
   */
  lockCounters(tenant: TenantDb, limits: readonly CountLimit[]): Promise<void>;
  /** Gives slots back (deletes, purges). */
  release(tenant: TenantDb, limit: CountLimit, count?: number, scope?: string): Promise<void>;
  /**
   * Slots left as last committed, read without a lock (Infinity when unlimited), and the refusal
   * of items past them once they are all taken. A caller may refuse what cannot fit before
   * writing; it still reserves what it writes, as the room can shrink meanwhile.
   */
  room(tenant: TenantDb, limit: CountLimit, scope?: string): Promise<{ left: number; refusal: () => AppError }>;
  usage(tenant: TenantDb): Promise<{ limits: PlanLimits; used: Map<string, number> }>;
  /** Operator action (CLI): merge limit changes into the plan; null makes a limit unlimited. */
  setLimits(tenant: TenantDb, changes: Record<string, number | boolean | null>): Promise<PlanLimits>;
}

function scopeOf(limit: CountLimit, scope: string | undefined): string {
  if (COUNT_LIMITS[limit].scope === 'entity' && !scope) throw new Error(`${limit} needs an entity scope`);
  return scope ?? '';
}

/** Slot counts are whole and non-negative: a negative reserve would be a release in disguise. */
function assertCount(count: number): void {
  if (!Number.isInteger(count) || count < 0) throw new Error(`quota count must be a non-negative integer, got ${count}`);
}

async function usedOf(tenant: TenantDb, limit: CountLimit, scopeKey: string): Promise<number> {
  const row = await tenant.selectFrom('quota_usage').select('used').where('quota', '=', limit).where('scope', '=', scopeKey).executeTakeFirst();
  return row?.used ?? 0;
}

export function createQuotaService(): QuotaService {
  return {
    async reserve(tenant, limit, count = 1, scope) {
      assertCount(count);
      const scopeKey = scopeOf(limit, scope);
      if (count === 0) return;
      const max = (await getPlanLimits(tenant))[limit];
      const currentUse = () => usedOf(tenant, limit, scopeKey);
      if (max === undefined || max === null) {
        // Unlimited: still count, so usage is right if a limit is set later.
        await tenant.insertInto('quota_usage')
          .values({ account_id: tenant.accountId, quota: limit, scope: scopeKey, used: count })
          .onConflict((oc) => oc.columns(['account_id', 'quota', 'scope']).doUpdateSet({ used: sql`quota_usage.used + ${count}` }))
          .execute();
        return;
      }
      // More than the whole limit can never fit. Refused without writing anything, so a caller
      // that is not inside a transaction cannot leave a counter above its real usage behind.
      if (count > max) throw errors.quotaExceeded(limit, await currentUse(), max);
      // The first row is inserted (count <= max, checked above); an existing row is bumped only
      // while it stays within the limit. The row lock serialises racing reservations.
      const taken = await tenant.insertInto('quota_usage')
        .values({ account_id: tenant.accountId, quota: limit, scope: scopeKey, used: count })
        .onConflict((oc) =>
          oc.columns(['account_id', 'quota', 'scope'])
            .doUpdateSet({ used: sql`quota_usage.used + ${count}` })
            .where(sql<boolean>`quota_usage.used + ${count} <= ${max}`))
        .returning('used')
        .executeTakeFirst();
      if (taken) return;
      throw errors.quotaExceeded(limit, await currentUse(), max);
    },

    async room(tenant, limit, scope) {
      const max = (await getPlanLimits(tenant))[limit];
      if (max === undefined || max === null) return { left: Infinity, refusal: () => { throw new Error(`${limit} is unlimited`); } };
      const used = await usedOf(tenant, limit, scopeOf(limit, scope));
      return { left: Math.max(0, max - used), refusal: () => errors.quotaExceeded(limit, max, max) };
    },

    async lockCounters(tenant, limits) {
      for (const limit of limits) {
        await tenant.selectFrom('quota_usage').select('used').where('quota', '=', limit).where('scope', '=', scopeOf(limit, undefined)).forUpdate().execute();
      }
    },

    async release(tenant, limit, count = 1, scope) {
      assertCount(count);
      if (count === 0) return;
      await tenant.updateTable('quota_usage')
        .set({ used: sql`greatest(quota_usage.used - ${count}, 0)` })
        .where('quota', '=', limit).where('scope', '=', scopeOf(limit, scope))
        .execute();
    },

    async usage(tenant) {
      const rows = await tenant.selectFrom('quota_usage').select(['quota', 'scope', 'used']).execute();
      const used = new Map<string, number>();
      // Per-entity limits report the fullest entity: that is the one closest to its limit.
      for (const row of rows) used.set(row.quota, Math.max(used.get(row.quota) ?? 0, row.used));
      return { limits: await getPlanLimits(tenant), used };
    },

    async setLimits(tenant, changes) {
      const problems = planProblems(changes);
      if (problems.length) throw errors.validation(problems.join('; '));
      return updatePlanLimits(tenant, changes);
    },
  };
}
