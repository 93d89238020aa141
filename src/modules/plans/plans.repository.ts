import type { TenantDb } from '../../db/tenant.ts';
import type { PlanLimits } from './plan-limits.ts';

export async function getPlanLimits(tenant: TenantDb): Promise<PlanLimits> {
  const row = await tenant.selectFrom('account_plans').select('limits').executeTakeFirst();
  return (row?.limits ?? {}) as PlanLimits;
}

/** Merges `changes` into the plan; a null value removes the limit (unlimited). */
export async function updatePlanLimits(tenant: TenantDb, changes: Record<string, number | boolean | null>): Promise<PlanLimits> {
  const current: Record<string, unknown> = { ...(await getPlanLimits(tenant)) };
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete current[key];
    else current[key] = value;
  }
  const limits = JSON.stringify(current);
  await tenant.insertInto('account_plans')
    .values({ account_id: tenant.accountId, limits })
    .onConflict((oc) => oc.column('account_id').doUpdateSet({ limits, date_updated: new Date() }))
    .execute();
  return current as PlanLimits;
}
