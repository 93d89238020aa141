import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { migrations } from '../../src/db/migrations/index.ts';
import { openTestDatabase } from '../helpers/database.ts';

/**
 * The tenancy rules every migration must follow (src/db/migrations/0001_foundation.ts, header),
 * read from the catalog of the migrated database so that tables added by later migrations are
 * covered without touching this file:
 * - every table in `public` (except Kysely's own) has `account_id text NOT NULL`;
 * - every primary key and unique index includes account_id (leading it is preferred: Citus
 *   distributes on it);
 * - every foreign key includes account_id on both sides, paired with each other.
 */

const KYSELY_TABLES = new Set(['kysely_migration', 'kysely_migration_lock']);
const FOUNDATION_TABLES = ['accounts', 'account_plans', 'members', 'api_keys', 'request_nonces', 'quota_usage'];

interface CatalogReport {
  tables: string[];
  violations: string[];
  /** Keys that include account_id but not as their first column (allowed, reported). */
  notLeading: string[];
}

type AnyDb = Kysely<any>;

/** pg_catalog only (no extensions, no information_schema quirks): the same answer on PostgreSQL 15 and PGlite. */
async function inspectCatalog(db: AnyDb): Promise<CatalogReport> {
  const tables = (await sql<{ table_name: string }>`
    SELECT c.relname AS table_name
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    ORDER BY c.relname`.execute(db)).rows.map((r) => r.table_name).filter((name) => !KYSELY_TABLES.has(name));

  const violations: string[] = [];
  const notLeading: string[] = [];

  // 1. account_id text NOT NULL on every tenant table.
  const columns = (await sql<{ table_name: string; type: string; not_null: boolean }>`
    SELECT c.relname AS table_name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND a.attname = 'account_id' AND a.attnum > 0 AND NOT a.attisdropped`.execute(db)).rows;
  const accountColumn = new Map(columns.map((c) => [c.table_name, c]));
  for (const table of tables) {
    const column = accountColumn.get(table);
    if (!column) violations.push(`${table}: no account_id column`);
    else {
      if (column.type !== 'text') violations.push(`${table}.account_id is ${column.type}, not text`);
      if (!column.not_null) violations.push(`${table}.account_id is nullable`);
    }
  }

  // 2. Every primary key and unique index (unique constraints are backed by one) includes account_id.
  //    Only key columns count (INCLUDE columns are payload); expressions appear as attnum 0.
  const uniques = (await sql<{ table_name: string; index_name: string; is_primary: boolean; columns: string[] }>`
    SELECT t.relname AS table_name, i.relname AS index_name, x.indisprimary AS is_primary,
           ARRAY(
             SELECT CASE WHEN k.attnum = 0 THEN '(expression)' ELSE a.attname::text END
             FROM unnest((x.indkey::int2[])[0:x.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, position)
             LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
             ORDER BY k.position
           ) AS columns
    FROM pg_catalog.pg_index x
    JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
    JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = 'public' AND x.indisunique
    ORDER BY t.relname, i.relname`.execute(db)).rows;
  const tableSet = new Set(tables);
  for (const index of uniques) {
    if (!tableSet.has(index.table_name)) continue;
    const kind = index.is_primary ? 'primary key' : 'unique index';
    const label = `${index.table_name}: ${kind} ${index.index_name} (${index.columns.join(', ')})`;
    if (!index.columns.includes('account_id')) violations.push(`${label} does not include account_id`);
    else if (index.columns[0] !== 'account_id') notLeading.push(label);
  }
  for (const table of tables) {
    if (!uniques.some((u) => u.table_name === table && u.is_primary)) violations.push(`${table}: no primary key`);
  }

  // 3. Every foreign key pairs the child's account_id with the parent's account_id.
  const foreignKeys = (await sql<{ table_name: string; name: string; parent: string; pairs: string[] }>`
    SELECT t.relname AS table_name, con.conname AS name, p.relname AS parent,
           ARRAY(
             SELECT ca.attname::text || '->' || pa.attname::text
             FROM unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(child_attnum, parent_attnum, position)
             JOIN pg_catalog.pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.child_attnum
             JOIN pg_catalog.pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.parent_attnum
             ORDER BY k.position
           ) AS pairs
    FROM pg_catalog.pg_constraint con
    JOIN pg_catalog.pg_class t ON t.oid = con.conrelid
    JOIN pg_catalog.pg_class p ON p.oid = con.confrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = 'public' AND con.contype = 'f'
    ORDER BY t.relname, con.conname`.execute(db)).rows;
  for (const fk of foreignKeys) {
    const label = `${fk.table_name}: foreign key ${fk.name} (${fk.pairs.join(', ')}) → ${fk.parent}`;
    if (!fk.pairs.includes('account_id->account_id')) violations.push(`${label} does not pair account_id with account_id`);
    else if (fk.pairs[0] !== 'account_id->account_id') notLeading.push(label);
  }

  return { tables, violations, notLeading };
}

describe('database catalog: tenancy rules hold for every table (Citus-ready)', () => {
  let database: Database;

  before(async () => {
    database = await openTestDatabase();
  });
  after(() => database.close());

  test('every table, key and foreign key is tenant-scoped', async (t) => {
    const report = await inspectCatalog(database.db);
    for (const table of FOUNDATION_TABLES) assert.ok(report.tables.includes(table), `found table ${table} (the query is not vacuous)`);
    assert.deepEqual(report.violations, []);
    for (const label of report.notLeading) t.diagnostic(`account_id included but not leading: ${label}`);
  });

  test('the inspection itself catches each kind of violation (tables planted in a rolled-back transaction)', async () => {
    const rollback = new Error('rollback');
    let report: CatalogReport | undefined;
    await database.db.transaction().execute(async (tx) => {
      await sql`CREATE TABLE zz_probe_parent (account_id text NOT NULL, id text NOT NULL, other text NOT NULL, PRIMARY KEY (account_id, id))`.execute(tx);
      await sql`CREATE UNIQUE INDEX zz_probe_parent_other ON zz_probe_parent (account_id, other)`.execute(tx);
      await sql`CREATE TABLE zz_probe_no_account (id text PRIMARY KEY)`.execute(tx);
      await sql`CREATE TABLE zz_probe_int_account (account_id bigint NOT NULL PRIMARY KEY)`.execute(tx);
      await sql`CREATE TABLE zz_probe_nullable (account_id text, id text NOT NULL, PRIMARY KEY (id))`.execute(tx);
      await sql`
        CREATE TABLE zz_probe_child (
          account_id text NOT NULL, id text NOT NULL, parent_id text NOT NULL, code text NOT NULL, other text NOT NULL,
          PRIMARY KEY (id, account_id),
          UNIQUE (code),
          FOREIGN KEY (parent_id) REFERENCES zz_probe_no_account (id),
          FOREIGN KEY (other, account_id) REFERENCES zz_probe_parent (account_id, other)
        )`.execute(tx);
      await sql`CREATE UNIQUE INDEX zz_probe_child_lower ON zz_probe_child (lower(code)) INCLUDE (account_id)`.execute(tx);
      report = await inspectCatalog(tx);
      throw rollback;
    }).catch((error: unknown) => { if (error !== rollback) throw error; });

    const found = report!.violations.filter((v) => v.startsWith('zz_probe'));
    const expectOne = (pattern: RegExp) =>
      assert.equal(found.filter((v) => pattern.test(v)).length, 1, `${pattern} in:\n${found.join('\n')}`);
    expectOne(/^zz_probe_no_account: no account_id column$/);
    expectOne(/^zz_probe_no_account: primary key .* does not include account_id$/);
    expectOne(/^zz_probe_int_account\.account_id is bigint, not text$/);
    expectOne(/^zz_probe_nullable\.account_id is nullable$/);
    expectOne(/^zz_probe_nullable: primary key .*\(id\) does not include account_id$/);
    expectOne(/^zz_probe_child: unique index zz_probe_child_code_key \(code\) does not include account_id$/);
    expectOne(/^zz_probe_child: unique index zz_probe_child_lower \(\(expression\)\) does not include account_id$/);
    expectOne(/^zz_probe_child: foreign key .*\(parent_id->id\) → zz_probe_no_account does not pair/);
    expectOne(/^zz_probe_child: foreign key .*\(other->account_id, account_id->other\) → zz_probe_parent does not pair/);
    assert.equal(found.length, 9, found.join('\n'));
    assert.ok(report!.notLeading.some((l) => l.startsWith('zz_probe_child: primary key')), 'a key with account_id second is reported as not leading');
    assert.ok(!report!.violations.some((v) => v.startsWith('zz_probe_parent')), 'the well-formed table passes');

    // Rolled back: the real schema is untouched.
    const after = await inspectCatalog(database.db);
    assert.ok(!after.tables.some((name) => name.startsWith('zz_probe')));
  });

  test('migrations are idempotent: a second migrateToLatest applies nothing and changes nothing', async () => {
    const before = await inspectCatalog(database.db);
    assert.deepEqual(await migrateToLatest(database.db), []);
    const applied = (await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(database.db)).rows.map((r) => r.name);
    assert.deepEqual(applied, Object.keys(migrations).sort(), 'every known migration is recorded once');
    assert.deepEqual(await inspectCatalog(database.db), before);
    // Two more starts racing each other (several API nodes booting): still nothing to apply.
    const raced = await Promise.all([migrateToLatest(database.db), migrateToLatest(database.db)]);
    assert.deepEqual(raced, [[], []]);
  });
});
