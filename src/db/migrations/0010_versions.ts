import { sql, type Kysely } from 'kysely';

/**
 * Optimistic concurrency (docs/reliability.md, "Optimistic concurrency"): a row version on every
 * resource a client edits with PATCH/DELETE. Every UPDATE that changes one of these rows sets
 * `version = version + 1` in the same statement; the API sends it as `ETag: "<version>"` and
 * refuses a PATCH/DELETE whose `If-Match` names another version (412 PreconditionFailed).
 *
 * Existing rows start at 1. Adding a NOT NULL column with a constant default is a catalog-only
 * change on PostgreSQL 11+ (no table rewrite), so this is quick even on a large `records` table.
 */
const TABLES = ['records', 'entities', 'properties', 'segments'] as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const table of TABLES) {
    await sql`ALTER TABLE ${sql.table(table)} ADD COLUMN version integer NOT NULL DEFAULT 1`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of TABLES) {
    await sql`ALTER TABLE ${sql.table(table)} DROP COLUMN version`.execute(db);
  }
}
