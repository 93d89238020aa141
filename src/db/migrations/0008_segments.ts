import { sql, type Kysely } from 'kysely';

/**
 * Segments (API.md §7). Same rules as 0001: `account_id` leads every primary, unique and foreign key.
 *
 * - `segments.conditions` is the §6 condition group as the client sent it (validated on write,
 *   re-validated on every read against the entity's current properties: a segment whose
 *   property was deleted or changed type reads as `isValid: false` and matches nothing).
 * - `segment_members` holds the members of CACHED segments, maintained in the transaction of
 *   every write that can change them (segments.maintenance.ts), so a read is never stale.
 *   `member_count` is kept beside it in the same transactions: counting is O(1).
 *   Members go with their record (purge) and their segment (delete) by cascade; neither changes
 *   a count that matters: a purged record was trashed, and trashed records are never members.
 * - `segment_events` records every entry and exit (`segment.entered` / `segment.exited`),
 *   in order of `seq` within an account, for the events API and later webhooks.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE segments (
      account_id        text NOT NULL,
      segment_id        text NOT NULL,
      workspace_id      text,
      entity_id         text NOT NULL,
      name              text NOT NULL,
      description       text,
      color             text,
      conditions        jsonb NOT NULL,
      mode              text NOT NULL CHECK (mode IN ('REALTIME', 'CACHED')),
      priority          integer NOT NULL,
      is_active         boolean NOT NULL DEFAULT true,
      owner_id          text,
      member_count      integer NOT NULL DEFAULT 0,
      last_evaluated_at timestamptz,
      created_by        text,
      updated_by        text,
      date_created      timestamptz NOT NULL DEFAULT now(),
      date_updated      timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (account_id, segment_id),
      FOREIGN KEY (account_id, entity_id) REFERENCES entities (account_id, entity_id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX segments_by_entity ON segments (account_id, entity_id, priority)`.execute(db);

  await sql`
    CREATE TABLE segment_members (
      account_id   text NOT NULL,
      segment_id   text NOT NULL,
      record_id    text NOT NULL,
      date_entered timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (account_id, segment_id, record_id),
      FOREIGN KEY (account_id, segment_id) REFERENCES segments (account_id, segment_id) ON DELETE CASCADE,
      FOREIGN KEY (account_id, record_id) REFERENCES records (account_id, record_id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX segment_members_by_record ON segment_members (account_id, record_id)`.execute(db);

  await sql`
    CREATE TABLE segment_events (
      account_id  text NOT NULL,
      seq         bigint GENERATED ALWAYS AS IDENTITY,
      segment_id  text NOT NULL,
      record_id   text NOT NULL,
      event_type  text NOT NULL CHECK (event_type IN ('segment.entered', 'segment.exited')),
      occurred_at timestamptz NOT NULL,
      PRIMARY KEY (account_id, seq),
      FOREIGN KEY (account_id, segment_id) REFERENCES segments (account_id, segment_id) ON DELETE CASCADE
    )`.execute(db);
  await sql`CREATE INDEX segment_events_by_segment ON segment_events (account_id, segment_id, seq)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE segment_events`.execute(db);
  await sql`DROP TABLE segment_members`.execute(db);
  await sql`DROP TABLE segments`.execute(db);
}
