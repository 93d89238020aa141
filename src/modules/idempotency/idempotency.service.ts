import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.ts';
import { systemDb, type TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import * as repo from './idempotency.repository.ts';
import { deleteInBatches } from '../../lib/batches.ts';

/** How long a key is remembered after the request that claimed it (API contract: 24 h). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** A pending claim older than this is presumed orphaned (its process died) and may be taken over. */
export const DEFAULT_PENDING_TIMEOUT_MS = 60_000;

export interface StoredResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface IdempotentRequest {
  key: string;
  fingerprint: string;
  method: string;
  path: string;
}

export type Begin =
  /** The caller owns the key now: run the handler, then complete() or release() with this token. */
  | { kind: 'execute'; token: string }
  /** The key already has a response for this same request. */
  | { kind: 'replay'; response: StoredResponse }
  /** The key was used for a different request (method, path, API key or body). */
  | { kind: 'mismatch'; usedFor: string }
  /** The same request is running right now under another claim. */
  | { kind: 'in-progress'; retryAfterSeconds: number };

export interface IdempotencyService {
  begin(tenant: TenantDb, request: IdempotentRequest): Promise<Begin>;
  complete(tenant: TenantDb, key: string, token: string, response: StoredResponse): Promise<boolean>;
  release(tenant: TenantDb, key: string, token: string): Promise<void>;
  /** Deletes expired keys of every account; returns how many. */
  sweepExpired(): Promise<number>;
}

const SWEEP_BATCH = 5_000;

export function createIdempotencyService(deps: { db: Kysely<DB>; clock: Clock; pendingTimeoutMs?: number }): IdempotencyService {
  const pendingTimeoutMs = deps.pendingTimeoutMs ?? DEFAULT_PENDING_TIMEOUT_MS;

  return {
    async begin(tenant, request) {
      // A few rounds at most: each lost race means another request changed the row meanwhile.
      for (let attempt = 0; attempt < 5; attempt++) {
        const now = new Date(deps.clock());
        const claim: repo.Claim = {
          ...request,
          token: randomBytes(16).toString('hex'),
          now,
          expiresAt: new Date(now.getTime() + IDEMPOTENCY_TTL_MS),
        };
        if (await repo.insertPending(tenant, claim)) return { kind: 'execute', token: claim.token };
        const row = await repo.find(tenant, request.key);
        if (!row) continue; // swept between the insert and the read: insert again
        if (row.expires_at.getTime() <= now.getTime()) {
          // Older than 24 h: the key is new again, whatever it was used for.
          if (await repo.takeOver(tenant, row.lock_token, claim)) return { kind: 'execute', token: claim.token };
          continue;
        }
        if (row.fingerprint !== request.fingerprint) return { kind: 'mismatch', usedFor: `${row.request_method} ${row.request_path}` };
        if (row.state === 'completed') {
          return { kind: 'replay', response: { statusCode: row.status_code!, headers: row.response_headers ?? {}, body: row.response_body ?? '' } };
        }
        const age = now.getTime() - row.locked_at.getTime();
        if (age < pendingTimeoutMs) {
          return { kind: 'in-progress', retryAfterSeconds: Math.max(1, Math.min(5, Math.ceil((pendingTimeoutMs - age) / 1000))) };
        }
        // Pending for longer than any request may run: its process died between claiming the key
        // and storing the response. Take it over and execute (documented: at-least-once there).
        if (await repo.takeOver(tenant, row.lock_token, claim)) return { kind: 'execute', token: claim.token };
      }
      return { kind: 'in-progress', retryAfterSeconds: 1 };
    },

    complete: repo.complete,
    release: repo.release,

    sweepExpired: () => deleteInBatches(SWEEP_BATCH, (size) => repo.sweepExpired(systemDb(deps.db), new Date(deps.clock()), size)),
  };
}
