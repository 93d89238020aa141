import { sql, type Kysely } from 'kysely';

/**
 * PostgreSQL row-level security on every tenant table, as defence in depth behind `tenantDb`
 * (docs/reliability.md, "Row-level security"). Each table with an `account_id` column gets
 *
 *   ENABLE + FORCE ROW LEVEL SECURITY (FORCE: the tables' owner, usually the role the server
 *   connects as, is bound by the policy too; only superusers and BYPASSRLS roles are not), and
 *   the policy `tenant_isolation`: a row is visible and writable when its account_id equals the
 *   session's `app.account_id`, or when the session is in system mode (`app.system` = 'on').
 *
 * The server keeps both settings equal to each query's scope (src/db/scope.ts). Tables are found
 * in the catalog, so this covers every table that exists when it runs (0001–0013). A later
 * migration that adds a tenant table must call `protectTenantTable` (0017, the current condition)
 * for it; the catalog check in test/integration/row-level-security.test.ts fails when a table
 * with account_id has no policy, and the server warns at start (src/db/row-level-security.ts).
 */

export const TENANT_POLICY = 'tenant_isolation';

/** The policy's condition as 0014 wrote it (USING and WITH CHECK alike); 0017 replaced it. */
export const TENANT_CONDITION_0014 =
  "account_id = current_setting('app.account_id', true) OR current_setting('app.system', true) = 'on'";

/** Enables and forces row-level security on `table` and (re)creates the tenant policy with `condition`. Idempotent. */
export async function applyTenantPolicy(db: Kysely<any>, table: string, condition: string): Promise<void> {
  const name = sql.table(table);
  await sql`ALTER TABLE ${name} ENABLE ROW LEVEL SECURITY`.execute(db);
  await sql`ALTER TABLE ${name} FORCE ROW LEVEL SECURITY`.execute(db);
  await sql`DROP POLICY IF EXISTS ${sql.id(TENANT_POLICY)} ON ${name}`.execute(db);
  await sql`CREATE POLICY ${sql.id(TENANT_POLICY)} ON ${name}
    USING (${sql.raw(condition)}) WITH CHECK (${sql.raw(condition)})`.execute(db);
}

/** Tables of the public schema that have an account_id column. */
export async function tenantTables(db: Kysely<any>): Promise<string[]> {
  const rows = await sql<{ name: string }>`
    SELECT c.relname AS name
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
      AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attname = 'account_id' AND a.attnum > 0 AND NOT a.attisdropped)
    ORDER BY c.relname`.execute(db);
  return rows.rows.map((r) => r.name);
}

export async function up(db: Kysely<any>): Promise<void> {
  for (const table of await tenantTables(db)) await applyTenantPolicy(db, table, TENANT_CONDITION_0014);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of await tenantTables(db)) {
    const name = sql.table(table);
    await sql`DROP POLICY IF EXISTS ${sql.id(TENANT_POLICY)} ON ${name}`.execute(db);
    await sql`ALTER TABLE ${name} NO FORCE ROW LEVEL SECURITY`.execute(db);
    await sql`ALTER TABLE ${name} DISABLE ROW LEVEL SECURITY`.execute(db);
  }
}
