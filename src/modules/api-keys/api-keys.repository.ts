import { sql, type Kysely, type Selectable } from 'kysely';
import type { ApiKeysTable, DB } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';

export type ApiKeyRow = Selectable<ApiKeysTable>;

/**
 * The one tenant lookup that cannot be scoped: a request names its key before anyone knows
 * its account. Keys are random (67 bits), so the key alone identifies one row.
 */
export function findKeyForAuth(db: Kysely<DB>, apiKey: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom('api_keys').selectAll().where('api_key', '=', apiKey).executeTakeFirst();
}

/**
 * Records a signature; false when it was already seen (a replay).
 *
 * The insert commits with synchronous_commit off (set transaction-locally in the same
 * statement, so it touches nothing else): it skips the WAL flush that would otherwise double
 * the cost of every authenticated request. The trade-off, written in docs/design/storage.md:
 * if PostgreSQL itself crashes, nonces of the last few hundred milliseconds can be forgotten,
 * and those signatures could be replayed within their 15-minute window. Acknowledged data
 * writes are unaffected: they run in their own transactions with the server's setting.
 */
export async function claimNonce(tenant: TenantDb, nonce: string, expiresAt: Date): Promise<boolean> {
  // RETURNING runs only for an inserted row: exactly when there is something to commit.
  const claimed = await tenant.insertInto('request_nonces')
    .values({ account_id: tenant.accountId, nonce, expires_at: expiresAt })
    .onConflict((oc) => oc.columns(['account_id', 'nonce']).doNothing())
    .returning(sql<string>`set_config('synchronous_commit', 'off', true)`.as('commit_mode'))
    .executeTakeFirst();
  return claimed !== undefined;
}

/** Maintenance across all accounts: forget signatures whose replay window has closed. */
export async function sweepExpiredNonces(db: Kysely<DB>, now: Date): Promise<number> {
  const result = await db.deleteFrom('request_nonces').where('expires_at', '<', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}

export function touchLastUsed(tenant: TenantDb, apiKey: string, now: Date): Promise<unknown> {
  return tenant.updateTable('api_keys').set({ last_used_at: now }).where('api_key', '=', apiKey).execute();
}

export function listKeys(tenant: TenantDb): Promise<ApiKeyRow[]> {
  return tenant.selectFrom('api_keys').selectAll().orderBy('date_created').orderBy('api_key').execute();
}

export function listKeysOfMember(tenant: TenantDb, memberId: string): Promise<ApiKeyRow[]> {
  return tenant.selectFrom('api_keys').selectAll().where('member_id', '=', memberId).execute();
}

export function insertKey(tenant: TenantDb, row: Omit<ApiKeyRow, 'account_id' | 'date_created' | 'last_used_at'>): Promise<ApiKeyRow> {
  return tenant.insertInto('api_keys').values({ ...row, account_id: tenant.accountId }).returningAll().executeTakeFirstOrThrow();
}

export async function deleteKeys(tenant: TenantDb, apiKeys: string[]): Promise<number> {
  if (apiKeys.length === 0) return 0;
  const result = await tenant.deleteFrom('api_keys').where('api_key', 'in', apiKeys).executeTakeFirst();
  return Number(result.numDeletedRows);
}
