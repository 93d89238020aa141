import { sql, type Kysely } from 'kysely';

/**
 * Pages of CACHED segment members driven from `segment_members` (issue 6, docs/segments.md).
 *
 * A member row carries its record's `date_created` (`record_created`; immutable, so it never
 * needs maintaining), indexed `(account_id, segment_id, record_created, record_id)`. A page in the
 * default sort (dateCreated, newest first, record ID breaking ties) is then a range scan of that
 * index (read backwards) joined to records by primary key: 21 index entries and 21 record
 * lookups, instead of walking the entity's sort index and probing membership for every record
 * (a 4.5 % segment of 1 M records needed ~470 probes per page). The same index, read forwards,
 * serves the ascending sort.
 *
 * Existing members are backfilled from their records (the foreign key guarantees one each).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE segment_members ADD COLUMN record_created timestamptz`.execute(db);
  await sql`
    UPDATE segment_members m SET record_created = r.date_created
    FROM records r WHERE r.account_id = m.account_id AND r.record_id = m.record_id`.execute(db);
  await sql`ALTER TABLE segment_members ALTER COLUMN record_created SET NOT NULL`.execute(db);
  await sql`CREATE INDEX segment_members_by_created ON segment_members (account_id, segment_id, record_created, record_id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX segment_members_by_created`.execute(db);
  await sql`ALTER TABLE segment_members DROP COLUMN record_created`.execute(db);
}
