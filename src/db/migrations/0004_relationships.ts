import { sql, type Kysely } from 'kysely';

/**
 * Relationship types and relationships (API.md §8). Same rules as 0001: PostgreSQL 15 SQL,
 * `account_id` leads every primary, unique and foreign key.
 *
 * - A type's name is unique per (account, workspace, source entity, target entity) with NULLS NOT
 *   DISTINCT, so two racing creates cannot both win (the loser gets 409 ConflictException).
 * - Links are unique per (type, source record, target record); bulk inserts lean on that index
 *   with ON CONFLICT DO NOTHING. Self-links are refused by a CHECK as well as by the API.
 * - Links to a record go with the record when it is purged (ON DELETE CASCADE); the purge paths
 *   delete them explicitly first anyway, to give their `relationships.max` slots back. A type
 *   cannot be deleted while links use it (no cascade from types): DELETE …?cascade=true removes the
 *   links itself, for the same reason.
 * - Trash is not stored here: reads join live records and entities, so the links of a trashed
 *   record or entity disappear from every read and come back on restore untouched.
 * - Indexes: (source record, type, target) serves duplicates, "links from this record" and the
 *   cascade; (target record, type) the reverse direction; (type, relationship_id) keyset pages of
 *   one type and the "is this type in use" check.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE relationship_types (
      account_id           text NOT NULL,
      relationship_type_id text NOT NULL,
      workspace_id         text,
      name                 text NOT NULL,
      source_entity_id     text NOT NULL,
      target_entity_id     text NOT NULL,
      source_label         text,
      target_label         text,
      description          text,
      date_created         timestamptz NOT NULL DEFAULT now(),
      date_updated         timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (account_id, relationship_type_id),
      FOREIGN KEY (account_id, source_entity_id) REFERENCES entities (account_id, entity_id),
      FOREIGN KEY (account_id, target_entity_id) REFERENCES entities (account_id, entity_id)
    )`.execute(db);
  await sql`
    CREATE UNIQUE INDEX relationship_types_name_key
    ON relationship_types (account_id, workspace_id, name, source_entity_id, target_entity_id) NULLS NOT DISTINCT`.execute(db);
  await sql`CREATE INDEX relationship_types_by_source ON relationship_types (account_id, source_entity_id)`.execute(db);
  await sql`CREATE INDEX relationship_types_by_target ON relationship_types (account_id, target_entity_id)`.execute(db);

  await sql`
    CREATE TABLE relationships (
      account_id           text NOT NULL,
      relationship_id      text NOT NULL,
      relationship_type_id text NOT NULL,
      workspace_id         text,
      source_entity_id     text NOT NULL,
      source_record_id     text NOT NULL,
      target_entity_id     text NOT NULL,
      target_record_id     text NOT NULL,
      metadata             jsonb NOT NULL DEFAULT '{}'::jsonb,
      date_created         timestamptz NOT NULL DEFAULT now(),
      date_updated         timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (account_id, relationship_id),
      FOREIGN KEY (account_id, relationship_type_id) REFERENCES relationship_types (account_id, relationship_type_id),
      FOREIGN KEY (account_id, source_record_id) REFERENCES records (account_id, record_id) ON DELETE CASCADE,
      FOREIGN KEY (account_id, target_record_id) REFERENCES records (account_id, record_id) ON DELETE CASCADE,
      CHECK (source_record_id <> target_record_id)
    )`.execute(db);
  await sql`
    CREATE UNIQUE INDEX relationships_link_key
    ON relationships (account_id, source_record_id, relationship_type_id, target_record_id)`.execute(db);
  await sql`CREATE INDEX relationships_by_target ON relationships (account_id, target_record_id, relationship_type_id)`.execute(db);
  await sql`CREATE INDEX relationships_by_type ON relationships (account_id, relationship_type_id, relationship_id)`.execute(db);
}
