import type { Kysely } from 'kysely';
import { errors } from '../../errors.ts';
import type { DB } from '../../db/schema.ts';
import { tenantDb, type TenantDb } from '../../db/tenant.ts';
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

export function createAccountsService(deps: { db: Kysely<DB>; members: MembersService; apiKeys: ApiKeysService }): AccountsService {
  const { db, members, apiKeys } = deps;
  return {
    async create(input) {
      const accountId = newAccountId();
      return tenantDb(db, accountId).transaction(async (tx) => {
        const account = await repo.insertAccount(tx, input.name);
        const owner = await members.create(tx, { name: input.ownerName, email: input.ownerEmail ?? null, role: 'OWNER' });
        const key = await apiKeys.create(tx, owner.memberId, { name: 'initial key' });
        return { accountId: account.account_id, name: account.name, owner, key };
      });
    },

    async get(tenant) {
      const row = await repo.findAccount(tenant);
      if (!row) throw errors.notFound('Account');
      return { accountId: row.account_id, name: row.name, dateCreated: row.date_created.toISOString() };
    },

    anyExists: () => repo.anyAccountExists(db),
  };
}
