import type { Kysely } from 'kysely';
import { errors } from '../../errors.ts';
import type { DB } from '../../db/schema.ts';
import { systemDb, tenantDb, type TenantDb } from '../../db/tenant.ts';
import { newAccountId } from '../../lib/ids.ts';
import type { ApiKeysService } from '../api-keys/api-keys.service.ts';
import type { CreatedApiKey } from '../api-keys/api-keys.schemas.ts';
import type { Member } from '../members/members.schemas.ts';
import type { MembersService } from '../members/members.service.ts';
import * as repo from './accounts.repository.ts';

export interface NewAccount {
  accountId: string;
  name: string;
  owner: Member;
  key: CreatedApiKey;
}

export interface AccountsService {
  /** An account with its first OWNER and that OWNER's first API key, in one transaction. */
  create(input: { name: string; ownerName: string; ownerEmail?: string | null }): Promise<NewAccount>;
  get(tenant: TenantDb): Promise<{ accountId: string; name: string; dateCreated: string }>;
  anyExists(): Promise<boolean>;
}

/**
 * Account IDs carry only 8 random digits per day (API.md §1.4: 14 digits, led by yyMMdd), so two
 * accounts created the same day can draw the same one (even odds around 10,000 a day): a taken
 * ID is drawn again rather than failing the creation.
 */
const ACCOUNT_ID_ATTEMPTS = 5;

export interface AccountsServiceDeps {
  db: Kysely<DB>;
  members: MembersService;
  apiKeys: ApiKeysService;
  /** Account ID generator; tests pass a fixed sequence to exercise collisions. */
  newAccountId?: () => string;
}

export function createAccountsService(deps: AccountsServiceDeps): AccountsService {
  const { db, members, apiKeys } = deps;
  const nextAccountId = deps.newAccountId ?? (() => newAccountId());
  return {
    async create(input) {
      for (let attempt = 1; attempt <= ACCOUNT_ID_ATTEMPTS; attempt++) {
        const accountId = nextAccountId();
        const created = await tenantDb(db, accountId).transaction(async (tx) => {
          const account = await repo.insertAccount(tx, input.name);
          if (!account) return undefined; // taken: nothing was written, draw another ID
          const owner = await members.create(tx, { name: input.ownerName, email: input.ownerEmail ?? null, role: 'OWNER' });
          const key = await apiKeys.create(tx, owner.memberId, { name: 'initial key' });
          return { accountId: account.account_id, name: account.name, owner, key };
        });
        if (created) return created;
      }
      throw new Error(`no free account ID after ${ACCOUNT_ID_ATTEMPTS} attempts`);
    },

    async get(tenant) {
      const row = await repo.findAccount(tenant);
      if (!row) throw errors.notFound('Account');
      return { accountId: row.account_id, name: row.name, dateCreated: row.date_created.toISOString() };
    },

    anyExists: () => repo.anyAccountExists(systemDb(db)),
  };
}
