import { sql, type Kysely, type Selectable } from 'kysely';
import type { ApiKeysTable, DB, Role } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';

export type ApiKeyRow = Selectable<ApiKeysTable>;

/** A key as authentication reads it, and whether this request's nonce was newly recorded. */
export type AuthKeyRow = ApiKeyRow & { claimed: boolean };

/**
 * Authentication's one round trip: finds the key (the one lookup that cannot be scoped: a
 * request names its key before anyone knows its account; keys are random, 67 bits, so the key
 * alone identifies one row) and in the same statement records the request's nonce for the
 * key's account. `claimed` is false when the nonce was already there (a replay). The caller
 * verifies the signature afterwards and calls releaseNonce when it does not match, so an
 * unauthenticated request leaves nothing behind.
 *
 * The nonce commits with synchronous_commit off (set transaction-locally, only when a row is
 * inserted): it skips the WAL flush that would otherwise double the cost of every request.
 * The trade-off, written in docs/design/storage.md: if PostgreSQL itself crashes, nonces of the
 * last few hundred milliseconds can be forgotten, and those signatures could be replayed within
 * their 15-minute window. Acknowledged data writes are unaffected: they run in their own
 * transactions with the server's setting.
 */
export async function authenticateKey(db: Kysely<DB>, apiKey: string, nonce: string, expiresAt: Date): Promise<AuthKeyRow | undefined> {
  // A data-modifying WITH runs exactly once whether or not the outer query reads it.
  const result = await sql<AuthKeyRow>`
    WITH key AS (SELECT * FROM api_keys WHERE api_key = ${apiKey}),
    claim AS (
      INSERT INTO request_nonces (account_id, nonce, expires_at)
      SELECT account_id, ${nonce}, ${expiresAt} FROM key
      ON CONFLICT (account_id, nonce) DO NOTHING
      RETURNING set_config('synchronous_commit', 'off', true)
    )
    SELECT key.*, EXISTS (SELECT FROM claim) AS claimed FROM key`.execute(db);
  return result.rows[0];
}

/** Forgets a nonce recorded for a request whose signature then failed. */
export async function releaseNonce(tenant: TenantDb, nonce: string): Promise<void> {
  await tenant.deleteFrom('request_nonces').where('nonce', '=', nonce).execute();
}

/** Keeps the keys' copy of their member's role equal to the member's (members service hook). */
export async function setMemberRole(tenant: TenantDb, memberId: string, role: Role): Promise<void> {
  await tenant.updateTable('api_keys').set({ member_role: role }).where('member_id', '=', memberId).execute();
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
