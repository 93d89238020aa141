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

/** Locks the account's OWNER rows so "keep at least one OWNER" holds under concurrency. */
export async function lockOwners(tenant: TenantDb): Promise<string[]> {
  const rows = await tenant.selectFrom('members').select('member_id').where('role', '=', 'OWNER').forUpdate().execute();
  return rows.map((r) => r.member_id);
}
