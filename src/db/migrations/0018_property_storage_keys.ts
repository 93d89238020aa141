import { sql, type Kysely } from 'kysely';

/**
 * Short storage keys for property values (docs/design/storage.md, "Storage keys").
 *
 * `records.data` was keyed by property ID: 32 characters per value, ~350 of a customer record's
 * ~500 bytes of JSONB. Every scan of records (realtime counts, aggregates, refreshes, exports)
 * read those bytes. A property now has a `storage_key`, the key of its values in `records.data`:
 * the entity's next number in base 36 ("1", "2", … "a", … "10"), from `entities.property_seq`, so
 * a key is never reused within an entity (deleted properties keep theirs, and their values).
 *
 * Existing properties keep their property ID as their key: their values stay where they are, no
 * record is rewritten. The two forms cannot collide (1–7 lowercase characters against 32).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE entities ADD COLUMN property_seq integer NOT NULL DEFAULT 0`.execute(db);
  await sql`ALTER TABLE properties ADD COLUMN storage_key text`.execute(db);
  await sql`UPDATE properties SET storage_key = property_id`.execute(db);
  await sql`ALTER TABLE properties ALTER COLUMN storage_key SET NOT NULL`.execute(db);
  await sql`CREATE UNIQUE INDEX properties_storage_key ON properties (account_id, entity_id, storage_key)`.execute(db);
}

/** Back to values keyed by property ID: records' short keys are renamed before the keys are forgotten. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    UPDATE records r SET data = (
      SELECT jsonb_object_agg(coalesce(p.property_id, e.key), e.value)
      FROM jsonb_each(r.data) AS e
      LEFT JOIN properties p ON p.account_id = r.account_id AND p.entity_id = r.entity_id AND p.storage_key = e.key)
    WHERE r.data <> '{}'::jsonb
      AND EXISTS (SELECT 1 FROM properties p
                  WHERE p.account_id = r.account_id AND p.entity_id = r.entity_id AND p.storage_key <> p.property_id AND r.data ? p.storage_key)`.execute(db);
  await sql`DROP INDEX properties_storage_key`.execute(db);
  await sql`ALTER TABLE properties DROP COLUMN storage_key`.execute(db);
  await sql`ALTER TABLE entities DROP COLUMN property_seq`.execute(db);
}
