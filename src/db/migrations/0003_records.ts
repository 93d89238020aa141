import { sql, type Kysely } from 'kysely';

/**
 * Records (API.md §5): one row per record with its property values in one JSONB document
 * (`data`, keyed by property ID). docs/design/storage.md has the measurements behind the choice
 * (JSONB + GIN beats typed value tables on AND, and by two orders of magnitude on OR).
 *
 * - Property values are stored normalised (properties/field-values.ts): DATETIME as
 *   `YYYY-MM-DDTHH:mm:ss.sssZ` and DATE as `YYYY-MM-DD`, so text order is time order.
 * - Trash is a flag plus `date_deleted`; list indexes are partial on live rows.
 * - Keyset pages walk (entity, sort key, record_id) indexes; record IDs break ties.
 * - Name search (`contains`, fulltext) uses a trigram index: pg_trgm is a trusted contrib
 *   extension (PostgreSQL 13+), so a database owner without superuser can create it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE EXTENSION IF NOT EXISTS pg_trgm`.execute(db);
  await sql`
    CREATE TABLE records (
      account_id   text NOT NULL,
      record_id    text NOT NULL,
      entity_id    text NOT NULL,
      name         text NOT NULL DEFAULT '',
      data         jsonb NOT NULL DEFAULT '{}'::jsonb,
      tags         text[] NOT NULL DEFAULT '{}',
      owner_id     text,
      is_deleted   boolean NOT NULL DEFAULT false,
      date_deleted timestamptz,
      created_by   text,
      updated_by   text,
      date_created timestamptz NOT NULL DEFAULT now(),
      date_updated timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (account_id, record_id),
      FOREIGN KEY (account_id, entity_id) REFERENCES entities (account_id, entity_id)
    )`.execute(db);
  await sql`CREATE INDEX records_by_created ON records (account_id, entity_id, date_created, record_id) WHERE NOT is_deleted`.execute(db);
  await sql`CREATE INDEX records_by_updated ON records (account_id, entity_id, date_updated, record_id) WHERE NOT is_deleted`.execute(db);
  await sql`CREATE INDEX records_by_name ON records (account_id, entity_id, lower(name), record_id) WHERE NOT is_deleted`.execute(db);
  await sql`CREATE INDEX records_name_trgm ON records USING gin (name gin_trgm_ops)`.execute(db);
  await sql`CREATE INDEX records_by_owner ON records (account_id, entity_id, owner_id) WHERE NOT is_deleted`.execute(db);
  await sql`CREATE INDEX records_data ON records USING gin (data jsonb_path_ops)`.execute(db);
  await sql`CREATE INDEX records_tags ON records USING gin (tags)`.execute(db);
  await sql`CREATE INDEX records_trash ON records (account_id, entity_id, date_deleted) WHERE is_deleted`.execute(db);
}
