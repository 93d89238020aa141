import { sql, type Kysely } from 'kysely';

/**
 * The idempotency store (src/http/plugins/idempotency.ts, docs/reliability.md): one row per
 * (account, Idempotency-Key). A request claims its key by inserting a `pending` row (the primary
 * key makes concurrent duplicates collide), and the response it sent is stored on the same row
 * (`completed`) so that a retry gets exactly the same status, headers and body. Rows expire 24 h
 * after they were claimed and are swept by the server's maintenance timer.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE idempotency_keys (
      account_id       text NOT NULL,
      idempotency_key  text NOT NULL,
      fingerprint      text NOT NULL,
      request_method   text NOT NULL,
      request_path     text NOT NULL,
      state            text NOT NULL CHECK (state IN ('pending', 'completed')),
      lock_token       text NOT NULL,
      status_code      integer,
      response_headers jsonb,
      response_body    text,
      created_at       timestamptz NOT NULL,
      locked_at        timestamptz NOT NULL,
      expires_at       timestamptz NOT NULL,
      PRIMARY KEY (account_id, idempotency_key)
    )`.execute(db);
  await sql`CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE idempotency_keys`.execute(db);
}
