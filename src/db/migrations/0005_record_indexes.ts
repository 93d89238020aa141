import { sql, type Kysely } from 'kysely';

/**
 * Record read paths at a million records (issue 4; numbers in docs/design/storage.md):
 *
 * - The name index becomes `(account_id, entity_id, lower(name) COLLATE "C", record_id)`: under
 *   the C collation `lower(name) LIKE 'p%'` is a range on it, so a fulltext prefix page walks
 *   20 index entries instead of collecting every trigram match and sorting them; the name sort
 *   (code-point order) uses the same index, so the old default-collation one is dropped.
 *
 * Per-property sort indexes are not created here: property IDs are data, so they are built on
 * demand (src/modules/records/property-indexes.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX records_by_name_c ON records (account_id, entity_id, (lower(name) COLLATE "C"), record_id) WHERE NOT is_deleted`.execute(db);
  await sql`DROP INDEX records_by_name`.execute(db);
}
