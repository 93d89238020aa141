import type { Kysely } from 'kysely';
import type { DB } from './db/schema.ts';
import type { Clock } from './lib/clock.ts';
import type { SecretBox } from './lib/secret-box.ts';
import { createAccountsService, type AccountsService } from './modules/accounts/accounts.service.ts';
import { createApiKeysService, type ApiKeysService } from './modules/api-keys/api-keys.service.ts';
import { createEntitiesService, type EntitiesService } from './modules/entities/entities.service.ts';
import { createMembersService, type MembersService } from './modules/members/members.service.ts';
import { createQuotaService, type QuotaService } from './modules/plans/quota.service.ts';
import { createPropertiesService, type PropertiesService } from './modules/properties/properties.service.ts';
import { createRecordsService, type RecordsService } from './modules/records/records.service.ts';

export interface Services {
  accounts: AccountsService;
  members: MembersService;
  apiKeys: ApiKeysService;
  quota: QuotaService;
  entities: EntitiesService;
  properties: PropertiesService;
  records: RecordsService;
}

/** The composition root: every service built once, wired to the ones it calls. */
export function createServices(deps: { db: Kysely<DB>; secretBox: SecretBox; clock: Clock }): Services {
  const quota = createQuotaService();
  // Members and API keys call each other (a removed member's keys are revoked), so the
  // members service reaches the API keys service through a late-bound hook.
  const hooks: { apiKeys?: ApiKeysService } = {};
  const members = createMembersService({
    beforeRemove: (tenant, memberId) => hooks.apiKeys!.revokeAllOf(tenant, memberId),
    afterRoleChange: (tenant, memberId, role) => hooks.apiKeys!.memberRoleChanged(tenant, memberId, role),
  });
  const apiKeys = createApiKeysService({ ...deps, members, quota });
  hooks.apiKeys = apiKeys;
  const accounts = createAccountsService({ db: deps.db, members, apiKeys });
  // Properties hang off entities; entities read their live properties back through a late-bound hook.
  // (The hook runs only on requests, after `properties` below is initialised.)
  const entities = createEntitiesService({ members, quota, liveProperties: (tenant, entityId) => properties.liveInfo(tenant, entityId) });
  const properties = createPropertiesService({ entities, quota });
  const records = createRecordsService({ entities, properties, members, quota, clock: deps.clock });
  return { accounts, members, apiKeys, quota, entities, properties, records };
}
