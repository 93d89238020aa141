import { sql, type Kysely } from 'kysely';

/**
 * Drops `records_data`, the GIN `jsonb_path_ops` index on records' `data` (0003).
 *
 * No query uses it: conditions compile to `->`/`->>` comparisons, which a `jsonb_path_ops` index
 * cannot answer (it serves `@>` only), and value lookups go through the per-property sort indexes
 * (records/property-indexes.ts). Yet every record write paid for it: one GIN entry per property
 * value, ~144 bytes per record on disk, and a share of the insert cost of bulk writes and imports
 * (docs/imports.md, "Speed"). An index that only costs is taken out; one can be added back with
 * a query that needs it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS records_data`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX records_data ON records USING gin (data jsonb_path_ops)`.execute(db);
}
