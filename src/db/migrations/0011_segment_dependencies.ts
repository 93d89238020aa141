import { sql, type Kysely } from 'kysely';

/**
 * CACHED segments with relationship conditions (segments.maintenance.ts): each segment lists the
 * relationship types its conditions name, so a write to records on the other side of those types
 * (or to their links) finds the segments it can move. Before this migration CACHED segments could
 * not use relationship conditions, so every existing row's list is rightly empty.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE segments ADD COLUMN depends_on_types text[] NOT NULL DEFAULT '{}'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE segments DROP COLUMN depends_on_types`.execute(db);
}
