import type { Kysely } from 'kysely';
import { TENANT_CONDITION_0014, applyTenantPolicy, tenantTables } from './0014_row_level_security.ts';

/**
 * The tenant policy of 0014 with each session setting read once per statement instead of once
 * per row. Same rule, same rows.
 *
 * PostgreSQL does not fold `current_setting(…)` into a constant: in 0014's form a statement called
 * it for every row it read, ~85 ns a row, so a realtime segment count over 1 M records spent
 * ~85 ms of CPU on the policy (docs/reliability.md, "What it costs"). As a scalar
 * sub-select it becomes an InitPlan: evaluated once when the statement starts and handed to the
 * scan (and to parallel workers) as a parameter. Settings change only between statements
 * (src/db/scope.ts), so reading them once is exact.
 */
export const TENANT_CONDITION =
  "account_id = (SELECT current_setting('app.account_id', true)) OR (SELECT current_setting('app.system', true)) = 'on'";

/** Row-level security and the tenant policy on `table`. A migration that adds a tenant table calls it. */
export async function protectTenantTable(db: Kysely<any>, table: string): Promise<void> {
  await applyTenantPolicy(db, table, TENANT_CONDITION);
}

export async function up(db: Kysely<any>): Promise<void> {
  for (const table of await tenantTables(db)) await protectTenantTable(db, table);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of await tenantTables(db)) await applyTenantPolicy(db, table, TENANT_CONDITION_0014);
}
