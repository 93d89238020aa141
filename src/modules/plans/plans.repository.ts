import { sql } from 'kysely';
import type { TenantDb } from '../../db/tenant.ts';
import type { PlanLimits } from './plan-limits.ts';

export async function getPlanLimits(tenant: TenantDb): Promise<PlanLimits> {
  const row = await tenant.selectFrom('account_plans').select('limits').executeTakeFirst();
  return (row?.limits ?? {}) as PlanLimits;
}

/**
 * Merges `changes` into the plan in one statement (so two concurrent changes both land);
 * a null value removes the limit (unlimited).
 */
export async function updatePlanLimits(tenant: TenantDb, changes: Record<string, number | boolean | null>): Promise<PlanLimits> {
  const set = JSON.stringify(Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== null)));
  const removed = Object.keys(changes).filter((key) => changes[key] === null);
  const removedArray = removed.length ? sql`ARRAY[${sql.join(removed)}]::text[]` : sql`'{}'::text[]`;
  const row = await tenant.insertInto('account_plans')
    .values({ account_id: tenant.accountId, limits: sql`${set}::jsonb - ${removedArray}` as unknown as string })
    .onConflict((oc) => oc.column('account_id').doUpdateSet({
      limits: sql`(account_plans.limits || ${set}::jsonb) - ${removedArray}` as unknown as string,
      date_updated: new Date(),
    }))
    .returning('limits')
    .executeTakeFirstOrThrow();
  return row.limits as PlanLimits;
}
