import { sql, type Kysely } from 'kysely';

/**
 * Activities and events (API.md §9). Same rules as 0001: PostgreSQL 15 SQL, `account_id` leads
 * every primary, unique and foreign key.
 *
 * - An activity hangs off a record, or is a standalone calendar item (`recordId: "CALENDAR"` in
 *   the API, `record_id IS NULL` here) optionally filed under an entity. Both foreign keys cascade:
 *   purging a record (or, for calendar items, an entity) removes its activities.
 * - Events always hang off a record; purging the record removes them (ON DELETE CASCADE). The
 *   entity is implied by the record (checked on write), so there is no second foreign key to pay
 *   for on every ingested row.
 * - Trash is not stored here: reads join live records and entities, so a trashed record's
 *   activities and events disappear from every read and come back on restore untouched.
 * - Indexes: activities by (record, id) and (entity, id) serve the keyset pages newest first and
 *   the cascades; events by (record | entity, occurred_at, id) serve their keyset pages (newest
 *   occurrence first), the cascade and the per-record summaries; (entity, event_type, category)
 *   serves entity-wide summaries.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE activities (
      account_id          text NOT NULL,
      activity_id         text NOT NULL,
      workspace_id        text,
      entity_id           text,
      record_id           text,
      activity_type       text NOT NULL CHECK (activity_type IN ('CALL', 'EMAIL', 'MEETING', 'NOTE', 'TASK', 'MESSAGE', 'OTHER')),
      subject             text,
      description         text,
      related_record_ids  text[] NOT NULL DEFAULT '{}',
      attachment_ids      text[] NOT NULL DEFAULT '{}',
      outcome             text CHECK (outcome IN ('COMPLETED', 'CANCELLED', 'RESCHEDULED', 'NO_ANSWER', 'PENDING')),
      outcome_note        text,
      scheduled_at        timestamptz,
      due_date            timestamptz,
      completed_at        timestamptz,
      assigned_member_ids text[] NOT NULL DEFAULT '{}',
      duration_minutes    integer,
      metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
      visibility          text NOT NULL CHECK (visibility IN ('PRIVATE', 'PUBLIC')),
      owner_id            text,
      created_by          text,
      updated_by          text,
      date_created        timestamptz NOT NULL DEFAULT now(),
      date_updated        timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (account_id, activity_id),
      FOREIGN KEY (account_id, record_id) REFERENCES records (account_id, record_id) ON DELETE CASCADE,
      FOREIGN KEY (account_id, entity_id) REFERENCES entities (account_id, entity_id) ON DELETE CASCADE,
      CHECK (record_id IS NULL OR entity_id IS NOT NULL)
    )`.execute(db);
  await sql`CREATE INDEX activities_by_record ON activities (account_id, record_id, activity_id)`.execute(db);
  await sql`CREATE INDEX activities_by_entity ON activities (account_id, entity_id, activity_id)`.execute(db);

  await sql`
    CREATE TABLE events (
      account_id   text NOT NULL,
      event_id     text NOT NULL,
      entity_id    text NOT NULL,
      record_id    text NOT NULL,
      event_type   text NOT NULL,
      category     text,
      label        text,
      value        double precision,
      properties   jsonb NOT NULL DEFAULT '{}'::jsonb,
      occurred_at  timestamptz NOT NULL,
      date_created timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (account_id, event_id),
      FOREIGN KEY (account_id, record_id) REFERENCES records (account_id, record_id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX events_by_record ON events (account_id, record_id, occurred_at, event_id)`.execute(db);
  await sql`CREATE INDEX events_by_entity ON events (account_id, entity_id, occurred_at, event_id)`.execute(db);
  await sql`CREATE INDEX events_by_type ON events (account_id, entity_id, event_type, category)`.execute(db);
}
