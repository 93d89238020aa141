import type { ColumnType, Generated } from 'kysely';

/** Timestamps are written as Date (or left to the default) and always read back as Date. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export type Role = 'OWNER' | 'ADMIN' | 'MEMBER';

export interface AccountsTable {
  account_id: string;
  name: string;
  date_created: Timestamp;
  date_updated: Timestamp;
}

export interface AccountPlansTable {
  account_id: string;
  /** Plan limits by key (API.md §1.8); a missing key means unlimited. */
  limits: ColumnType<Record<string, number | boolean>, string, string>;
  date_updated: Timestamp;
}

export interface MembersTable {
  account_id: string;
  member_id: string;
  name: string;
  email: string | null;
  role: Role;
  date_created: Timestamp;
  date_updated: Timestamp;
}

export interface ApiKeysTable {
  account_id: string;
  api_key: string;
  member_id: string;
  workspace_id: string | null;
  name: string | null;
  /** The secret sealed with the master key (lib/secret-box.ts), never the plain secret. */
  sealed_secret: string;
  created_by: string | null;
  date_created: Timestamp;
  last_used_at: Timestamp | null;
}

/** Signatures seen within the replay window, shared by every API node through the database. */
export interface RequestNoncesTable {
  account_id: string;
  nonce: string;
  expires_at: Timestamp;
}

/** Running counts behind plan limits; `scope` is '' for account-wide limits or an entity ID. */
export interface QuotaUsageTable {
  account_id: string;
  quota: string;
  scope: string;
  used: Generated<number>;
}

export interface DB {
  accounts: AccountsTable;
  account_plans: AccountPlansTable;
  members: MembersTable;
  api_keys: ApiKeysTable;
  request_nonces: RequestNoncesTable;
  quota_usage: QuotaUsageTable;
}

/** Every table that holds one tenant's rows; each has `account_id` leading its keys. */
export type TenantTable = keyof DB;
