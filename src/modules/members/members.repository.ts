import type { Selectable } from 'kysely';
import type { TenantDb } from '../../db/tenant.ts';
import type { MembersTable, Role } from '../../db/schema.ts';

export type MemberRow = Selectable<MembersTable>;

export function findMember(tenant: TenantDb, memberId: string): Promise<MemberRow | undefined> {
  return tenant.selectFrom('members').selectAll().where('member_id', '=', memberId).executeTakeFirst();
}

export function listMembers(tenant: TenantDb): Promise<MemberRow[]> {
  return tenant.selectFrom('members').selectAll().orderBy('date_created').orderBy('member_id').execute();
}

export function insertMember(tenant: TenantDb, row: { member_id: string; name: string; email: string | null; role: Role }): Promise<MemberRow> {
  return tenant.insertInto('members').values({ ...row, account_id: tenant.accountId }).returningAll().executeTakeFirstOrThrow();
}

export function updateMember(tenant: TenantDb, memberId: string, changes: Partial<Pick<MemberRow, 'name' | 'email' | 'role'>>): Promise<MemberRow | undefined> {
  return tenant.updateTable('members').set({ ...changes, date_updated: new Date() })
    .where('member_id', '=', memberId).returningAll().executeTakeFirst();
}

export async function deleteMember(tenant: TenantDb, memberId: string): Promise<void> {
  await tenant.deleteFrom('members').where('member_id', '=', memberId).execute();
}

/**
 * Reads a member and locks its row until the transaction ends: an API key being created for it
 * concurrently (its foreign key takes a share lock on this row) either commits first, and is
 * then seen and revoked, or waits and fails its foreign key check once the member is gone.
 */
export function lockMember(tenant: TenantDb, memberId: string): Promise<MemberRow | undefined> {
  return tenant.selectFrom('members').selectAll().where('member_id', '=', memberId).forUpdate().executeTakeFirst();
}

/**
 * The member's role when it exists, holding a share lock until the transaction ends: the member
 * can be neither deleted nor updated meanwhile, so a role change waits for the key being
 * created and then updates it too (a key-share lock, what a foreign key takes, would let the
 * role change through and leave the new key with the old role).
 */
export async function lockMemberForReference(tenant: TenantDb, memberId: string): Promise<Role | undefined> {
  const row = await tenant.selectFrom('members').select('role').where('member_id', '=', memberId).forShare().executeTakeFirst();
  return row?.role;
}

/** Locks the account's OWNER rows so "keep at least one OWNER" holds under concurrency. */
export async function lockOwners(tenant: TenantDb): Promise<string[]> {
  const rows = await tenant.selectFrom('members').select('member_id').where('role', '=', 'OWNER').forUpdate().execute();
  return rows.map((r) => r.member_id);
}
