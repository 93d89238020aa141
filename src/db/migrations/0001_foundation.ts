import { sql, type Kysely } from 'kysely';

/**
 * Tenancy, members, API keys, replay nonces and quota counters.
 * Rules for every migration: SQL valid on PostgreSQL 15 (and so on PGlite's 18), every tenant
 * table carries `account_id text` and every primary/unique key and foreign key leads with it
 * (Citus distribution on account_id; test/integration/catalog.test.ts enforces this).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE accounts (
      account_id   text PRIMARY KEY CHECK (account_id ~ '^[0-9]{14}$'),
      name         text NOT NULL,
      date_created timestamptz NOT NULL DEFAULT now(),
      date_updated timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  await sql`
    CREATE TABLE account_plans (
      account_id   text PRIMARY KEY REFERENCES accounts (account_id) ON DELETE CASCADE,
      limits       jsonb NOT NULL DEFAULT '{}'::jsonb,
      date_updated timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  await sql`
    CREATE TABLE members (
      account_id   text NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
      member_id    text NOT NULL,
      name         text NOT NULL,
      email        text,
      role         text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER')),
      date_created timestamptz NOT NULL DEFAULT now(),
      date_updated timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (account_id, member_id)
    )`.execute(db);
  await sql`CREATE UNIQUE INDEX members_email_key ON members (account_id, lower(email)) WHERE email IS NOT NULL`.execute(db);

  await sql`
    CREATE TABLE api_keys (
      account_id    text NOT NULL,
      api_key       text NOT NULL,
      member_id     text NOT NULL,
      workspace_id  text,
      name          text,
      sealed_secret text NOT NULL,
      created_by    text,
      date_created  timestamptz NOT NULL DEFAULT now(),
      last_used_at  timestamptz,
      PRIMARY KEY (account_id, api_key),
      FOREIGN KEY (account_id, member_id) REFERENCES members (account_id, member_id)
    )`.execute(db);
  // Authentication looks a key up before it knows the account (see docs/design/scaling.md).
  await sql`CREATE INDEX api_keys_by_key ON api_keys (api_key)`.execute(db);

  await sql`
    CREATE TABLE request_nonces (
      account_id text NOT NULL,
      nonce      text NOT NULL,
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (account_id, nonce)
    )`.execute(db);
  await sql`CREATE INDEX request_nonces_expiry ON request_nonces (expires_at)`.execute(db);

  await sql`
    CREATE TABLE quota_usage (
      account_id text NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
      quota      text NOT NULL,
      scope      text NOT NULL DEFAULT '',
      used       integer NOT NULL DEFAULT 0 CHECK (used >= 0),
      PRIMARY KEY (account_id, quota, scope)
    )`.execute(db);
}
