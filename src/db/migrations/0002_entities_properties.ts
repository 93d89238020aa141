import { sql, type Kysely } from 'kysely';

/**
 * Entities (API.md §3) and properties (§4). Same rules as 0001: PostgreSQL 15 SQL, `account_id`
 * leads every primary, unique and foreign key.
 *
 * - Column order of an entity lives in ONE place: `entities.property_ids` (a jsonb array of the
 *   live property IDs, in table-column order). Property creates append to it and property
 *   deletes remove from it, in the same transaction and under the entity's row lock.
 * - Slugs are unique among live entities of (account, workspace): a partial unique index with
 *   NULLS NOT DISTINCT (PostgreSQL 15+), so two racing creates cannot both win, and trashed
 *   entities free their slug (a restore re-checks it).
 * - Properties are soft-deleted (`is_deleted`, values kept for a later restore); their name and
 *   key are unique among the entity's live properties only.
 * - `owner_id` has no foreign key to members on purpose: removing a member must not fail on the
 *   entities they own (the API checks ownerId on every write instead).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE entities (
      account_id      text NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
      entity_id       text NOT NULL,
      workspace_id    text,
      name            text NOT NULL,
      slug            text NOT NULL,
      description     text,
      property_ids    jsonb NOT NULL DEFAULT '[]'::jsonb,
      view_settings   jsonb NOT NULL,
      insight_widgets jsonb NOT NULL DEFAULT '[]'::jsonb,
      record_access   text NOT NULL DEFAULT 'PUBLIC' CHECK (record_access IN ('PUBLIC', 'ENTITY_OWNER_ONLY', 'ADMIN_ONLY')),
      owner_id        text NOT NULL,
      priority        integer NOT NULL DEFAULT 0,
      is_deleted      boolean NOT NULL DEFAULT false,
      date_deleted    timestamptz,
      created_by      text,
      updated_by      text,
      date_created    timestamptz NOT NULL DEFAULT now(),
      date_updated    timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (account_id, entity_id)
    )`.execute(db);
  await sql`
    CREATE UNIQUE INDEX entities_live_slug_key ON entities (account_id, workspace_id, slug) NULLS NOT DISTINCT
    WHERE NOT is_deleted`.execute(db);
  await sql`CREATE INDEX entities_live_order ON entities (account_id, priority, date_created) WHERE NOT is_deleted`.execute(db);
  await sql`CREATE INDEX entities_trash ON entities (account_id, date_deleted) WHERE is_deleted`.execute(db);

  await sql`
    CREATE TABLE properties (
      account_id        text NOT NULL,
      property_id       text NOT NULL,
      workspace_id      text,
      entity_id         text NOT NULL,
      name              text NOT NULL,
      description       text,
      field_type        text NOT NULL CHECK (field_type IN ('TEXT', 'TEXTAREA', 'NUMBER', 'PHONE', 'EMAIL', 'URL',
                          'CHECKBOX', 'MULTI_CHECKBOX', 'DATE', 'DATETIME', 'DROPDOWN', 'RADIO')),
      property_group_id text,
      options           jsonb NOT NULL DEFAULT '[]'::jsonb,
      is_masked         boolean NOT NULL DEFAULT false,
      key               text,
      is_deleted        boolean NOT NULL DEFAULT false,
      date_deleted      timestamptz,
      created_by        text,
      updated_by        text,
      date_created      timestamptz NOT NULL DEFAULT now(),
      date_updated      timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (account_id, property_id),
      FOREIGN KEY (account_id, entity_id) REFERENCES entities (account_id, entity_id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX properties_live_name_key ON properties (account_id, entity_id, name) WHERE NOT is_deleted`.execute(db);
  await sql`
    CREATE UNIQUE INDEX properties_live_key_key ON properties (account_id, entity_id, key)
    WHERE NOT is_deleted AND key IS NOT NULL`.execute(db);
  // GET /properties is newest first, across the account or for one entity.
  await sql`CREATE INDEX properties_live_by_date ON properties (account_id, date_created DESC) WHERE NOT is_deleted`.execute(db);
  await sql`CREATE INDEX properties_live_by_entity ON properties (account_id, entity_id, date_created DESC) WHERE NOT is_deleted`.execute(db);
}
