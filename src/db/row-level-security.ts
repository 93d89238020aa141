import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from './database.ts';
import { TENANT_POLICY, tenantTables } from './migrations/0014_row_level_security.ts';
import type { ScopeMode } from './scope.ts';

/**
 * Makes row-level security (migrations/0014_row_level_security.ts, scope.ts) apply, or not, as
 * DATABASE_RLS asks, to the role the server runs as. Called once at start, after migrations.
 *
 * PostgreSQL: policies bind every role except superusers and BYPASSRLS roles; FORCE makes them
 * bind the tables' owner too. So:
 * - a superuser / BYPASSRLS role: nothing can be enforced (warned when DATABASE_RLS is on); the
 *   driver then skips set_config entirely (`none`);
 * - DATABASE_RLS on: the tables this role owns are FORCEd (0014 already did; this repairs a
 *   database where `off` removed it) and every query runs in its own scope (`per-query`);
 * - DATABASE_RLS off: FORCE is removed from the tables this role owns (so the owner is not bound
 *   and the planner adds no policy condition), and every connection is put in system mode once
 *   (`system`), so tables this role does not own stay fully visible although policies bind it.
 *   FORCE is a property of the table, shared by every node: keep DATABASE_RLS the same on all.
 *
 * PGlite: the embedded database runs as its superuser, `postgres`. With DATABASE_RLS on, the
 * server switches its one session to a NOLOGIN role `crm_app` that owns the tables (created on
 * first use; ownership moves to it after each migration run, which is done as `postgres`), so
 * the policies bind it exactly as on PostgreSQL.
 */
export interface RowLevelSecurityStatus {
  /** Whether the policies bind the server's queries. */
  enforced: boolean;
  /** The role queries run as. */
  role: string;
  mode: ScopeMode;
  /** Tenant tables (with account_id) that have no tenant policy or RLS disabled: a migration bug. */
  unprotected: string[];
  /** Why RLS is not enforced, when it is not. */
  reason?: string;
  /** What an operator should hear about (logged by the server at start: reportRowLevelSecurity). */
  warnings: string[];
  /** LEAKPROOF_FUNCTIONS not marked: record queries that lose their index conditions while RLS is enforced. */
  leaky: string[];
}

/** The NOLOGIN role PGlite's session switches to (PGlite only). */
export const PGLITE_APP_ROLE = 'crm_app';

/**
 * Functions in the records queries' index conditions that are not marked LEAKPROOF: built-ins, and
 * crm_name_grams (migration 0019). Under RLS the planner may not evaluate a non-leakproof condition
 * before the policy's, so it cannot use it as an index condition: the name-prefix fulltext
 * (lower(name) LIKE) and its contains phase (name ILIKE, trigram index; the name-gram index for 1–2
 * characters), keyset pages over a property sort index ((entity_id, data -> 'P', record_id) > …), name-sorted
 * pages and tag filters (@>, &&) turn into scans of the whole entity (measured in docs/reliability.md).
 * Marking them LEAKPROOF (superuser only) restores the plans. None of them raises an error that
 * depends on a row's value, and leakproofness only matters against someone who writes SQL, who
 * could set app.system himself: in this threat model (a query that forgot its filter) the mark
 * costs nothing.
 */
export const LEAKPROOF_FUNCTIONS = [
  'pg_catalog.lower(text)',
  'pg_catalog.textlike(text, text)',
  'pg_catalog.texticlike(text, text)',
  'pg_catalog.jsonb_object_field(jsonb, text)',
  'pg_catalog.jsonb_eq(jsonb, jsonb)',
  'pg_catalog.jsonb_lt(jsonb, jsonb)',
  'pg_catalog.jsonb_le(jsonb, jsonb)',
  'pg_catalog.jsonb_gt(jsonb, jsonb)',
  'pg_catalog.jsonb_ge(jsonb, jsonb)',
  'pg_catalog.arraycontains(anyarray, anyarray)',
  'pg_catalog.arrayoverlap(anyarray, anyarray)',
  'crm_name_grams(text)',
] as const;

/** The statements a superuser runs once per database (docs/reliability.md). */
export function leakproofStatements(functions: readonly string[] = LEAKPROOF_FUNCTIONS): string[] {
  return functions.map((fn) => `ALTER FUNCTION ${fn} LEAKPROOF;`);
}

/** Those of LEAKPROOF_FUNCTIONS that are not marked in this database. */
export async function leakyFunctions(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ fn: string; leakproof: boolean }>`
    SELECT f.fn, p.proleakproof AS leakproof
    FROM unnest(${[...LEAKPROOF_FUNCTIONS]}::text[]) AS f(fn)
    JOIN pg_catalog.pg_proc p ON p.oid = f.fn::regprocedure`.execute(db);
  return rows.filter((r) => !r.leakproof).map((r) => r.fn);
}

/** How long the start waits for a table lock to change FORCE before giving up (warned, not fatal). */
const LOCK_TIMEOUT = '5s';

type Log = Pick<Logger, 'info' | 'warn'>;

interface RoleInfo {
  role: string;
  bypass: boolean;
}

async function currentRole(db: Kysely<any>): Promise<RoleInfo> {
  const { rows } = await sql<{ role: string; bypass: boolean }>`
    SELECT current_user AS role, (r.rolsuper OR r.rolbypassrls) AS bypass
    FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`.execute(db);
  return rows[0] ?? { role: 'unknown', bypass: false };
}

interface TableState {
  name: string;
  owned: boolean;
  enabled: boolean;
  forced: boolean;
  policy: boolean;
}

async function tableStates(db: Kysely<any>): Promise<TableState[]> {
  const tenant = new Set(await tenantTables(db));
  const { rows } = await sql<TableState>`
    SELECT c.relname AS name, pg_catalog.pg_has_role(c.relowner, 'USAGE') AS owned,
           c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
           EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polname = ${TENANT_POLICY}) AS policy
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    ORDER BY c.relname`.execute(db);
  return rows.filter((t) => tenant.has(t.name));
}

/** Sets FORCE on or off where it differs, each table under a short lock timeout. */
async function setForce(db: Kysely<any>, tables: TableState[], force: boolean, warnings: string[]): Promise<void> {
  for (const table of tables) {
    if (!table.owned || table.forced === force) continue;
    try {
      await db.transaction().execute(async (tx) => {
        await sql`SET LOCAL lock_timeout = ${sql.lit(LOCK_TIMEOUT)}`.execute(tx);
        await sql`ALTER TABLE ${sql.table(table.name)} ${sql.raw(force ? 'FORCE' : 'NO FORCE')} ROW LEVEL SECURITY`.execute(tx);
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      warnings.push(`could not ${force ? 'force' : 'unforce'} row-level security on ${table.name} (${message}); retried at the next start`);
    }
  }
}

async function preparePGliteRole(db: Kysely<any>): Promise<void> {
  await sql.raw(`DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${PGLITE_APP_ROLE}') THEN
        CREATE ROLE ${PGLITE_APP_ROLE} NOLOGIN;
      END IF;
    END $$`).execute(db);
  await sql.raw(`GRANT USAGE, CREATE ON SCHEMA public TO ${PGLITE_APP_ROLE}`).execute(db);
  // Every table of the schema (Kysely's migration tables too): the owner may build indexes
  // (records' property sort indexes) and FORCE binds it to the policies.
  const { rows } = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND pg_catalog.pg_get_userbyid(c.relowner) <> ${PGLITE_APP_ROLE}`.execute(db);
  for (const { name } of rows) await sql`ALTER TABLE ${sql.table(name)} OWNER TO ${sql.id(PGLITE_APP_ROLE)}`.execute(db);
  // The embedded database is ours alone: mark the functions a superuser would (see LEAKPROOF_FUNCTIONS).
  for (const statement of leakproofStatements(await leakyFunctions(db))) await sql.raw(statement).execute(db);
  await sql.raw(`SET ROLE ${PGLITE_APP_ROLE}`).execute(db);
}

export async function configureRowLevelSecurity(
  database: Pick<Database, 'db' | 'driver' | 'scope'>,
  options: { enabled: boolean; logger?: Log },
): Promise<RowLevelSecurityStatus> {
  const status = await configure(database, options.enabled);
  if (options.logger) reportRowLevelSecurity(status, options.enabled, options.logger);
  return status;
}

/** Logs what configureRowLevelSecurity found (the server, at start; CLI commands stay quiet). */
export function reportRowLevelSecurity(status: RowLevelSecurityStatus, enabled: boolean, log: Log): void {
  for (const warning of status.warnings) log.warn({ role: status.role }, warning);
  if (status.enforced) log.info({ role: status.role }, 'row-level security enforced: every query runs as its account');
  else if (!enabled) log.info({ role: status.role }, 'row-level security off (DATABASE_RLS=off)');
}

async function configure(database: Pick<Database, 'db' | 'driver' | 'scope'>, enabled: boolean): Promise<RowLevelSecurityStatus> {
  const { db } = database;
  const warnings: string[] = [];
  if (database.driver === 'pglite' && enabled) {
    const { role } = await currentRole(db);
    if (role !== PGLITE_APP_ROLE) await preparePGliteRole(db);
  }
  const { role, bypass } = await currentRole(db);
  const tables = await tableStates(db);
  const unprotected = tables.filter((t) => !t.enabled || !t.policy).map((t) => t.name);
  if (unprotected.length) {
    warnings.push(`tenant tables without row-level security: ${unprotected.join(', ')} (a migration must call protectTenantTable for them)`);
  }

  if (bypass) {
    database.scope.mode = 'none';
    const reason = `role ${role} is a superuser or has BYPASSRLS, which row-level security never binds`;
    if (enabled) {
      warnings.push(`row-level security is NOT enforced: ${reason}; ` +
        'connect as a non-superuser role that owns the tables (docs/reliability.md, "Row-level security")');
    }
    return { enforced: false, role, mode: 'none', unprotected, reason, warnings, leaky: [] };
  }

  await setForce(db, tables, enabled, warnings);
  if (enabled) {
    database.scope.mode = 'per-query';
    const after = await tableStates(db);
    const loose = after.filter((t) => t.owned && !t.forced).map((t) => t.name);
    if (loose.length) warnings.push(`row-level security is not forced on ${loose.join(', ')}: their owner (this role) is not bound`);
    const enforced = loose.length === 0 && unprotected.length === 0;
    const leaky = await leakyFunctions(db);
    if (leaky.length) {
      warnings.push(`row-level security keeps ${leaky.length} built-in functions from index conditions, so name-prefix search, ` +
        'property-sorted pages and tag filters scan whole entities; a superuser can lift it once per database with: ' +
        leakproofStatements(leaky).join(' ') + ' (docs/reliability.md, "Row-level security")');
    }
    return { enforced, role, mode: 'per-query', unprotected, warnings, leaky, ...(enforced ? {} : { reason: 'some tenant tables are not protected' }) };
  }

  database.scope.mode = 'system';
  const bound = tables.filter((t) => !t.owned).map((t) => t.name);
  if (bound.length) {
    warnings.push(`DATABASE_RLS is off but policies bind role ${role} on tables it does not own (${bound.join(', ')}): ` +
      'the server runs in system mode (all rows visible), and the planner still adds the policy condition');
  }
  return { enforced: false, role, mode: 'system', unprotected, reason: 'DATABASE_RLS is off', warnings, leaky: [] };
}
