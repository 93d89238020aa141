import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { errors } from '../../errors.ts';
import { isForeignKeyViolation } from '../../db/errors.ts';
import type { DB, Role } from '../../db/schema.ts';
import { scopedToAccount, systemDb, tenantDb, type TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { parseAuthorization, signatureMatches } from '../../lib/hmac-signature.ts';
import { parseInstant } from '../../lib/iso-instant.ts';
import { newApiKey, newApiSecret } from '../../lib/ids.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import type { MembersService } from '../members/members.service.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import * as repo from './api-keys.repository.ts';
import type { ApiKey, CreateApiKeyBody, CreatedApiKey } from './api-keys.schemas.ts';

/** Solapi's window: a date further than this from server time is refused, and a signature is remembered this long. */
export const SIGNATURE_WINDOW_MS = 15 * 60 * 1000;
const SALT_MIN = 12;
const SALT_MAX = 64;

/** Who is calling: the key's member in the key's account (API.md §1.2). */
export interface Caller {
  accountId: string;
  memberId: string;
  role: Role;
  apiKey: string;
  workspaceId: string | null;
}

export interface ApiKeysService {
  authenticate(authorization: string | undefined): Promise<Caller>;
  create(tenant: TenantDb, createdBy: string | null, input: CreateApiKeyBody): Promise<CreatedApiKey>;
  list(tenant: TenantDb): Promise<ApiKey[]>;
  revoke(tenant: TenantDb, apiKey: string): Promise<void>;
  revokeAllOf(tenant: TenantDb, memberId: string): Promise<void>;
  /** The member's role changed (called in the same transaction): its keys authenticate with the new one. */
  memberRoleChanged(tenant: TenantDb, memberId: string, role: Role): Promise<void>;
  sweepNonces(): Promise<number>;
}

export interface ApiKeysServiceDeps {
  db: Kysely<DB>;
  secretBox: SecretBox;
  clock: Clock;
  members: MembersService;
  quota: QuotaService;
}

function toApiKey(row: repo.ApiKeyRow): ApiKey {
  return {
    apiKey: row.api_key,
    accountId: row.account_id,
    memberId: row.member_id,
    workspaceId: row.workspace_id,
    name: row.name,
    createdBy: row.created_by,
    dateCreated: row.date_created.toISOString(),
    lastUsedAt: row.last_used_at ? row.last_used_at.toISOString() : null,
  };
}

/** Unknown keys are checked against this, so they cost the same time as a wrong signature. */
const DUMMY_SECRET = newApiSecret();

/** How many API key → account pairs authentication remembers (per process). */
const KEY_ACCOUNTS_MAX = 10_000;

export function createApiKeysService(deps: ApiKeysServiceDeps): ApiKeysService {
  const { db, secretBox, clock, members, quota } = deps;
  /**
   * Row-level security (docs/reliability.md): a key's lookup runs as the account the key was
   * last found in, so a connection that served that account needs no set_config round trip; only
   * a key not seen yet is looked up in system scope. A key never changes account, and a deleted
   * one is simply not found (and forgotten).
   */
  const keyAccounts = new Map<string, string>();
  const lookupScope = (apiKey: string) => {
    const accountId = keyAccounts.get(apiKey);
    return accountId === undefined ? systemDb(db) : scopedToAccount(db, accountId);
  };
  const remember = (apiKey: string, accountId: string) => {
    if (keyAccounts.get(apiKey) === accountId) return;
    if (keyAccounts.size >= KEY_ACCOUNTS_MAX) keyAccounts.delete(keyAccounts.keys().next().value!);
    keyAccounts.set(apiKey, accountId);
  };

  return {
    async authenticate(authorization) {
      const auth = parseAuthorization(authorization);
      if (!auth) throw errors.unauthorized();
      if (auth.salt.length < SALT_MIN || auth.salt.length > SALT_MAX) {
        throw errors.unauthorized(`salt must be ${SALT_MIN} to ${SALT_MAX} characters.`);
      }
      const signedAt = parseInstant(auth.date);
      if (signedAt === null) throw errors.unauthorized('date must be an ISO-8601 instant.');
      const now = clock();
      if (Math.abs(now - signedAt) > SIGNATURE_WINDOW_MS) throw errors.timeSkewed();

      // Remembered until the date itself leaves the window: after that the skew check refuses it anyway.
      const nonce = createHash('sha256').update(`${auth.apiKey}\n${auth.date}\n${auth.salt}`).digest('hex');
      const row = await repo.authenticateKey(lookupScope(auth.apiKey), auth.apiKey, nonce, new Date(signedAt + SIGNATURE_WINDOW_MS + 60_000));
      if (!row) {
        keyAccounts.delete(auth.apiKey);
        signatureMatches(DUMMY_SECRET, auth);
        throw errors.invalidApiKey();
      }
      remember(row.api_key, row.account_id);
      const tenant = tenantDb(db, row.account_id);
      if (!signatureMatches(secretBox.open(row.sealed_secret, row.api_key), auth)) {
        if (row.claimed) await repo.releaseNonce(tenant, nonce);
        throw errors.signatureMismatch();
      }
      if (!row.claimed) throw errors.duplicatedSignature();
      // lastUsedAt is informational: written at most once a minute, not on every request.
      if (!row.last_used_at || now - row.last_used_at.getTime() > 60_000) await repo.touchLastUsed(tenant, row.api_key, new Date(now));
      return { accountId: row.account_id, memberId: row.member_id, role: row.member_role, apiKey: row.api_key, workspaceId: row.workspace_id };
    },

    async create(tenant, createdBy, input) {
      const memberId = input.memberId ?? createdBy;
      if (!memberId) throw errors.validation('memberId is required.', [{ path: '/memberId', message: 'required' }]);
      const apiSecret = newApiSecret();
      const unknownMember = () =>
        errors.validation(`memberId ${memberId} is not a member of this account.`, [{ path: '/memberId', message: 'unknown member' }]);
      return tenant.transaction(async (tx) => {
        // The member is locked first (then the quota counter, as members.remove does), so a
        // racing removal either sees this key and revokes it, or makes this create a 400.
        const role = await members.lockForReference(tx, memberId);
        if (!role) throw unknownMember();
        await quota.reserve(tx, 'apiKeys.max');
        const apiKey = newApiKey();
        const row = await repo.insertKey(tx, {
          api_key: apiKey,
          member_id: memberId,
          member_role: role,
          workspace_id: input.workspaceId ?? null,
          name: input.name ?? null,
          sealed_secret: secretBox.seal(apiSecret, apiKey),
          created_by: createdBy,
        });
        return { ...toApiKey(row), apiSecret };
      }).catch((error: unknown) => {
        // Belt and braces: a foreign key failure still means the member is gone.
        if (isForeignKeyViolation(error)) throw unknownMember();
        throw error;
      });
    },

    async list(tenant) {
      return (await repo.listKeys(tenant)).map(toApiKey);
    },

    async revoke(tenant, apiKey) {
      await tenant.transaction(async (tx) => {
        if ((await repo.deleteKeys(tx, [apiKey])) === 0) throw errors.notFound('API key');
        await quota.release(tx, 'apiKeys.max');
      });
    },

    async revokeAllOf(tenant, memberId) {
      const keys = await repo.listKeysOfMember(tenant, memberId);
      const removed = await repo.deleteKeys(tenant, keys.map((k) => k.api_key));
      if (removed > 0) await quota.release(tenant, 'apiKeys.max', removed);
    },

    memberRoleChanged: repo.setMemberRole,

    sweepNonces() {
      return repo.sweepExpiredNonces(systemDb(db), new Date(clock()));
    },
  };
}
