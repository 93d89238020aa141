import { sql, type Kysely } from 'kysely';

/**
 * Two changes found by measurement and review after 0001–0003 shipped.
 *
 * Authentication in one round trip (api-keys.repository.ts authenticateKey): each key carries
 * its member's role, kept in step by the members service (a role change updates the member's
 * keys in the same transaction), so a request reads key, secret and role in the statement that
 * also claims its nonce, without reading the members table.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE api_keys ADD COLUMN member_role text`.execute(db);
  await sql`
    UPDATE api_keys SET member_role = members.role
    FROM members
    WHERE members.account_id = api_keys.account_id AND members.member_id = api_keys.member_id`.execute(db);
  await sql`ALTER TABLE api_keys ALTER COLUMN member_role SET NOT NULL`.execute(db);
  await sql`ALTER TABLE api_keys ADD CONSTRAINT api_keys_member_role_check CHECK (member_role IN ('OWNER', 'ADMIN', 'MEMBER'))`.execute(db);

  // The trash purge marks an entity before its first batch (trash.purge.ts): from then on a
  // restore is refused, so an entity can never come back with only part of its records.
  await sql`ALTER TABLE entities ADD COLUMN purge_started_at timestamptz`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE api_keys DROP COLUMN member_role`.execute(db);
  await sql`ALTER TABLE entities DROP COLUMN purge_started_at`.execute(db);
}
