import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';

/** Inserts the tenant's account row; undefined when that account ID is already taken. */
export function insertAccount(tenant: TenantDb, name: string) {
  return tenant.insertInto('accounts').values({ account_id: tenant.accountId, name })
    .onConflict((oc) => oc.column('account_id').doNothing())
    .returningAll().executeTakeFirst();
}

export function findAccount(tenant: TenantDb) {
  return tenant.selectFrom('accounts').selectAll().executeTakeFirst();
}

/** Installation-wide question asked once at start: is this a brand-new database? */
export async function anyAccountExists(db: Kysely<DB>): Promise<boolean> {
  return (await db.selectFrom('accounts').select('account_id').limit(1).executeTakeFirst()) !== undefined;
}
