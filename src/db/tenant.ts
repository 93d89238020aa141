import { sql, type QueryResult, type RawBuilder, type DeleteQueryBuilder, type DeleteResult, type InsertQueryBuilder, type InsertResult, type Kysely, type SelectQueryBuilder, type SqlBool, type UpdateQueryBuilder, type UpdateResult } from 'kysely';
import type { DB, TenantTable } from './schema.ts';
import { scopedToAccount } from './scope.ts';

/** The database or an open transaction (Kysely's Transaction is a Kysely). */
export type Executor = Kysely<DB>;

/**
 * The only door to tenant tables that modules get: every read, update and delete through it
 * is already filtered by `account_id`, and inserts go to tables whose rows must carry it.
 * A module that wants an unscoped query has to import Kysely itself, which review catches.
 */
export interface TenantDb {
  readonly accountId: string;
  selectFrom<T extends TenantTable>(table: T): SelectQueryBuilder<DB, T, {}>;
  updateTable<T extends TenantTable>(table: T): UpdateQueryBuilder<DB, T, T, UpdateResult>;
  deleteFrom<T extends TenantTable>(table: T): DeleteQueryBuilder<DB, T, DeleteResult>;
  insertInto<T extends TenantTable>(table: T): InsertQueryBuilder<DB, T, InsertResult>;
  /** Runs `work` in one transaction (joins the current one when already inside). */
  transaction<R>(work: (tx: TenantDb) => Promise<R>): Promise<R>;
  /**
   * A raw statement, for the few that builders cannot express (data-modifying WITH chains).
   * Not filtered: the statement itself must filter every table it touches by `accountId`
   * (pass it as a parameter). Uses of this method are what a reviewer reads twice. Under
   * row-level security it still runs as this account (docs/reliability.md), a second line only.
   */
  executeRaw<R>(statement: RawBuilder<R>): Promise<QueryResult<R>>;
}

/** `<table>.account_id = $1`, qualified so later joins stay unambiguous. */
const ownedBy = (table: string, accountId: string) => sql<SqlBool>`${sql.ref(`${table}.account_id`)} = ${accountId}`;

// TypeScript distributes a generic table name over every table's builder type; the casts pin
// the builder to the one table T (each of which has account_id, which the catalog test checks).
export function tenantDb(executor: Executor, accountId: string): TenantDb {
  // Every query built here also carries the account as its row-level-security scope (scope.ts):
  // on PostgreSQL with RLS enforced, a statement that forgets its account_id filter (a raw one,
  // a join, a subquery) still sees and writes only this account's rows.
  const scoped = scopedToAccount(executor, accountId);
  const tenant: TenantDb = {
    accountId,
    selectFrom: <T extends TenantTable>(table: T) =>
      (scoped.selectFrom(table) as unknown as SelectQueryBuilder<DB, T, {}>).where(ownedBy(table, accountId)),
    updateTable: <T extends TenantTable>(table: T) =>
      (scoped.updateTable(table) as unknown as UpdateQueryBuilder<DB, T, T, UpdateResult>).where(ownedBy(table, accountId)),
    deleteFrom: <T extends TenantTable>(table: T) =>
      (scoped.deleteFrom(table) as unknown as DeleteQueryBuilder<DB, T, DeleteResult>).where(ownedBy(table, accountId)),
    insertInto: (table) => scoped.insertInto(table),
    executeRaw: (statement) => statement.execute(scoped),
    transaction: (work) =>
      executor.isTransaction
        ? work(tenant)
        : executor.transaction().execute((tx) => work(tenantDb(tx, accountId))),
  };
  return tenant;
}

/**
 * `systemDb(db)`: cross-account work (sweeps, the job claim, an API key not seen yet).
 * `scopedToAccount(db, accountId)`: a raw handle whose statements run as the account under RLS,
 * without tenantDb's automatic filters (authentication's key lookup, which filters by key).
 */
export { scopedToAccount, systemDb } from './scope.ts';
