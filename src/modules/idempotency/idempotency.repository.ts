import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, IdempotencyKeysTable } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';

export type IdempotencyRow = Omit<Selectable<IdempotencyKeysTable>, 'account_id'>;

export interface Claim {
  key: string;
  fingerprint: string;
  method: string;
  path: string;
  token: string;
  now: Date;
  expiresAt: Date;
}

/** Inserts a pending row; false when the key is already present (another request has it). */
export async function insertPending(tenant: TenantDb, claim: Claim): Promise<boolean> {
  const row = await tenant.insertInto('idempotency_keys')
    .values({
      account_id: tenant.accountId,
      idempotency_key: claim.key,
      fingerprint: claim.fingerprint,
      request_method: claim.method,
      request_path: claim.path,
      state: 'pending',
      lock_token: claim.token,
      created_at: claim.now,
      locked_at: claim.now,
      expires_at: claim.expiresAt,
    })
    .onConflict((oc) => oc.columns(['account_id', 'idempotency_key']).doNothing())
    .returning('idempotency_key')
    .executeTakeFirst();
  return row !== undefined;
}

export function find(tenant: TenantDb, key: string): Promise<IdempotencyRow | undefined> {
  return tenant.selectFrom('idempotency_keys')
    .select([
      'idempotency_key', 'fingerprint', 'request_method', 'request_path', 'state', 'lock_token', 'status_code',
      'response_headers', 'response_body', 'created_at', 'locked_at', 'expires_at',
    ])
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
}

/**
 * Replaces a row seen as `previousToken` by a fresh pending claim: used for expired rows and
 * for pending rows whose owner stopped answering. The token comparison makes it a compare-and-set,
 * so of several requests racing for the same stale row exactly one wins.
 */
export async function takeOver(tenant: TenantDb, previousToken: string, claim: Claim): Promise<boolean> {
  const result = await tenant.updateTable('idempotency_keys')
    .set({
      fingerprint: claim.fingerprint,
      request_method: claim.method,
      request_path: claim.path,
      state: 'pending',
      lock_token: claim.token,
      status_code: null,
      response_headers: null,
      response_body: null,
      created_at: claim.now,
      locked_at: claim.now,
      expires_at: claim.expiresAt,
    })
    .where('idempotency_key', '=', claim.key)
    .where('lock_token', '=', previousToken)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Stores the response on the caller's own pending claim; false when the claim is no longer theirs. */
export async function complete(
  tenant: TenantDb,
  key: string,
  token: string,
  response: { statusCode: number; headers: Record<string, string>; body: string },
): Promise<boolean> {
  const result = await tenant.updateTable('idempotency_keys')
    .set({
      state: 'completed',
      status_code: response.statusCode,
      response_headers: JSON.stringify(response.headers),
      response_body: response.body,
    })
    .where('idempotency_key', '=', key)
    .where('lock_token', '=', token)
    .where('state', '=', 'pending')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Drops the caller's own pending claim (the request failed with a 5xx: the client may retry). */
export async function release(tenant: TenantDb, key: string, token: string): Promise<void> {
  await tenant.deleteFrom('idempotency_keys')
    .where('idempotency_key', '=', key)
    .where('lock_token', '=', token)
    .where('state', '=', 'pending')
    .execute();
}

/** Maintenance (every account): deletes rows past their expiry, at most `batch` per call. */
export async function sweepExpired(db: Kysely<DB>, now: Date, batch: number): Promise<number> {
  const result = await db.deleteFrom('idempotency_keys')
    .where(sql<boolean>`(account_id, idempotency_key) IN (
      SELECT account_id, idempotency_key FROM idempotency_keys WHERE expires_at < ${now} LIMIT ${batch})`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
