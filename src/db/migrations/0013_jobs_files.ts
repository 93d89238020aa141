import { sql, type Kysely } from 'kysely';

/**
 * Durable background jobs and stored files (exports, imports). Same rules as 0001: PostgreSQL 15
 * SQL, `account_id` leads every primary, unique and foreign key.
 *
 * - `jobs`: one row per job. A worker claims a `pending` job, or a `processing` one whose lease
 *   ran out (its process died), with FOR UPDATE SKIP LOCKED and stamps `lease_owner` /
 *   `lease_until`; while it runs it renews the lease. `checkpoint` is the handler's own resume
 *   state, saved with its progress (in the same transaction as the work when the handler wants).
 *   `expires_at` is when the row (and its output) may be swept: 24 h after success, 7 days after
 *   failure (Solapi's export status retention).
 *   Indexes: `jobs_claimable` serves the worker's scan across accounts; it is small (only
 *   unfinished jobs) because finished jobs drop out of the partial index.
 * - `files` + `file_chunks`: the bytes of a file in ~1 MiB bytea chunks, so a file is written
 *   and read in constant memory and every stateless API node can serve it. A file becomes
 *   readable only when `complete`; it is deleted (chunks cascade) after `expires_at`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE jobs (
      account_id    text NOT NULL,
      job_id        uuid NOT NULL,
      kind          text NOT NULL,
      status        text NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
      params        jsonb NOT NULL,
      progress      integer NOT NULL DEFAULT 0,
      total         integer,
      checkpoint    jsonb,
      result        jsonb,
      error         text,
      attempts      integer NOT NULL DEFAULT 0,
      lease_owner   text,
      lease_until   timestamptz,
      created_by    text,
      date_created  timestamptz NOT NULL,
      date_updated  timestamptz NOT NULL,
      date_finished timestamptz,
      expires_at    timestamptz,
      PRIMARY KEY (account_id, job_id)
    )`.execute(db);
  await sql`CREATE INDEX jobs_claimable ON jobs (date_created) WHERE status IN ('pending', 'processing')`.execute(db);
  await sql`CREATE INDEX jobs_expiry ON jobs (expires_at) WHERE expires_at IS NOT NULL`.execute(db);

  await sql`
    CREATE TABLE files (
      account_id   text NOT NULL,
      file_id      text NOT NULL,
      name         text NOT NULL,
      content_type text NOT NULL,
      size         bigint NOT NULL DEFAULT 0,
      complete     boolean NOT NULL DEFAULT false,
      created_by   text,
      date_created timestamptz NOT NULL,
      expires_at   timestamptz NOT NULL,
      PRIMARY KEY (account_id, file_id)
    )`.execute(db);
  await sql`CREATE INDEX files_expiry ON files (expires_at)`.execute(db);
  await sql`
    CREATE TABLE file_chunks (
      account_id text NOT NULL,
      file_id    text NOT NULL,
      seq        integer NOT NULL,
      data       bytea NOT NULL,
      PRIMARY KEY (account_id, file_id, seq),
      FOREIGN KEY (account_id, file_id) REFERENCES files (account_id, file_id) ON DELETE CASCADE
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE file_chunks`.execute(db);
  await sql`DROP TABLE files`.execute(db);
  await sql`DROP TABLE jobs`.execute(db);
}
