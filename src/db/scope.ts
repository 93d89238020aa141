import {
  CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryCompiler,
  type QueryResult,
  type RootOperationNode,
  type TransactionSettings,
  type UnknownRow,
} from 'kysely';
import type { AbortableOperationOptions } from 'kysely';

/**
 * Who a query runs for, as PostgreSQL row-level security sees it (docs/reliability.md,
 * "Row-level security"; policies in migrations/0014_row_level_security.ts).
 *
 * Every tenant table has the policy
 *   account_id = current_setting('app.account_id', true) OR current_setting('app.system', true) = 'on'
 * so a query sees and writes only the rows of the account its session names, unless the session
 * is in system mode. The two settings are session state of one pooled connection; this module
 * keeps them equal to the query's scope:
 *
 * - A query's scope travels with the query itself: `tenantDb(db, accountId)` builds every query
 *   from `db.withPlugin(scope)`, whose plugin stamps the scope on the query's root node, and
 *   `systemDb(db)` does the same with the system scope. The stamp is read back from the compiled
 *   query just before it is sent, so it cannot be confused by what else runs concurrently (no
 *   ambient state, no AsyncLocalStorage). The last scope plugin wins: `tenantDb(systemDb(db), A)`
 *   runs as A.
 * - A query without a stamp (built on the bare `db`) runs with neither an account nor system
 *   mode: under enforced RLS it sees no tenant rows and can write none. Cross-account work must
 *   say so with `systemDb`.
 * - The wrapping driver remembers, per physical connection, the scope its settings hold and
 *   issues `SELECT set_config('app.account_id', $1, false), set_config('app.system', $2, false)`
 *   only when the next query's scope differs: one extra round trip per change, none while a
 *   connection keeps serving the same account (a single-tenant deployment, a transaction).
 * - The remembered scope is forgotten (so re-set before the next query) whenever it may no longer
 *   hold: the set_config itself failed, or a transaction or savepoint rolled back (PostgreSQL
 *   undoes a session-level set_config made inside a transaction that rolls back).
 * - Queries on one connection are serialised by this wrapper, so a set_config and the query it
 *   prepares can never be interleaved with another scope's.
 */
export type Scope = { readonly account: string } | 'system';

/**
 * How the driver treats scopes:
 * - `per-query`: every query runs with its own scope (RLS enforced where the role is subject to it);
 * - `system`: every connection is put in system mode once (DATABASE_RLS=off: tenant tables are
 *   all visible even where policies still apply, e.g. a role that is not the tables' owner);
 * - `none`: no set_config at all (the role bypasses RLS anyway: superuser or BYPASSRLS).
 */
export type ScopeMode = 'per-query' | 'system' | 'none';

/** Mutable: row-level-security.ts switches it once it knows the connected role (at start). */
export interface ScopeControl {
  mode: ScopeMode;
}

const SCOPE = Symbol('crm-core.scope');
type Stamped = RootOperationNode & { [SCOPE]?: Scope };

class ScopePlugin implements KyselyPlugin {
  readonly #scope: Scope;
  constructor(scope: Scope) {
    this.#scope = scope;
  }
  transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
    // A fresh node per execution: the stamp belongs to this compilation only.
    return Object.freeze({ ...node, [SCOPE]: this.#scope }) as RootOperationNode;
  }
  async transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return result;
  }
}

/** `db` whose every query (builders, raw SQL, transactions begun on it) runs for `accountId`. */
export function scopedToAccount<DB>(db: Kysely<DB>, accountId: string): Kysely<DB> {
  return db.withPlugin(new ScopePlugin({ account: accountId }));
}

const systemHandles = new WeakMap<object, Kysely<any>>();

/**
 * `db` for cross-account work (sweeps, the API-key lookup before the account is known, the job
 * claim, the trash purge's account listing, migrations): RLS lets it see every account's rows.
 * Every call site is a place a reviewer reads twice; docs/reliability.md lists them.
 */
export function systemDb<DB>(db: Kysely<DB>): Kysely<DB> {
  // A test double standing in for Kysely (e.g. one whose selectFrom throws) has no plugins to take.
  if (typeof (db as Partial<Kysely<DB>>).withPlugin !== 'function') return db;
  let handle = systemHandles.get(db);
  if (!handle) {
    handle = db.withPlugin(new ScopePlugin('system'));
    systemHandles.set(db, handle);
  }
  return handle as Kysely<DB>;
}

/** The scope a compiled query was stamped with; undefined when it was built on the bare handle. */
export function scopeOfQuery(query: CompiledQuery): Scope | undefined {
  return (query.query as Stamped | undefined)?.[SCOPE];
}

/** Connection-state key of a scope: what app.account_id / app.system must hold. */
type StateKey = string;
const NONE: StateKey = '-';
const SYSTEM: StateKey = 'system';
const keyOf = (scope: Scope | undefined): StateKey =>
  scope === undefined ? NONE : scope === 'system' ? SYSTEM : `account:${scope.account}`;

function setConfigFor(key: StateKey): CompiledQuery {
  const account = key.startsWith('account:') ? key.slice('account:'.length) : '';
  return CompiledQuery.raw(
    "SELECT set_config('app.account_id', $1, false), set_config('app.system', $2, false)",
    [account, key === SYSTEM ? 'on' : 'off'],
  );
}

/** Counters for tests and benchmarks: how many set_config round trips the driver made. */
export interface ScopeStats {
  switches: number;
}

class ScopedConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection;
  readonly #control: ScopeControl;
  readonly #stats: ScopeStats;
  /** What this connection's settings hold; undefined = unknown (re-set before the next query). */
  current: StateKey | undefined = undefined;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(inner: DatabaseConnection, control: ScopeControl, stats: ScopeStats) {
    this.inner = inner;
    this.#control = control;
    this.#stats = stats;
  }

  #wanted(query: CompiledQuery): StateKey | undefined {
    switch (this.#control.mode) {
      case 'none': return undefined;
      case 'system': return SYSTEM;
      default: return keyOf(scopeOfQuery(query));
    }
  }

  /** Runs `work` after everything queued on this connection, in order. */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(work, work);
    this.#tail = run.catch(() => {});
    return run;
  }

  async #ensure(wanted: StateKey | undefined, options?: AbortableOperationOptions): Promise<void> {
    if (wanted === undefined || this.current === wanted) return;
    this.current = undefined; // unknown until the statement has succeeded
    this.#stats.switches++;
    await this.inner.executeQuery(setConfigFor(wanted), options);
    this.current = wanted;
  }

  executeQuery<R>(compiledQuery: CompiledQuery, options?: AbortableOperationOptions): Promise<QueryResult<R>> {
    const wanted = this.#wanted(compiledQuery);
    return this.#serial(async () => {
      await this.#ensure(wanted, options);
      return this.inner.executeQuery<R>(compiledQuery, options);
    });
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize: number, options?: AbortableOperationOptions): AsyncIterableIterator<QueryResult<R>> {
    await this.#serial(() => this.#ensure(this.#wanted(compiledQuery), options));
    yield* this.inner.streamQuery<R>(compiledQuery, chunkSize, options);
  }

  /**
   * A transaction statement (BEGIN, COMMIT, ROLLBACK, savepoints), queued behind this
   * connection's other work. The remembered scope is forgotten when the statement may have
   * undone the settings: always for rollbacks, on failure for the others (a COMMIT of an aborted
   * transaction rolls back).
   */
  async control(work: (inner: DatabaseConnection) => Promise<void>, forget: 'always' | 'on-error'): Promise<void> {
    return this.#serial(async () => {
      try {
        await work(this.inner);
      } catch (error) {
        this.current = undefined;
        throw error;
      }
      if (forget === 'always') this.current = undefined;
    });
  }
}

// Optional methods, present only when the inner connection has them.
for (const method of ['cancelQuery', 'collectSessionInfo', 'killSession'] as const) {
  Object.defineProperty(ScopedConnection.prototype, method, {
    get(this: ScopedConnection) {
      const fn = (this.inner as Partial<DatabaseConnection>)[method];
      return fn ? fn.bind(this.inner) : undefined;
    },
  });
}

class ScopedDriver implements Driver {
  readonly #inner: Driver;
  readonly #control: ScopeControl;
  readonly #stats: ScopeStats;
  /** One wrapper per physical connection, so its remembered scope lives as long as it does. */
  readonly #wrappers = new WeakMap<DatabaseConnection, ScopedConnection>();

  constructor(inner: Driver, control: ScopeControl, stats: ScopeStats) {
    this.#inner = inner;
    this.#control = control;
    this.#stats = stats;
  }

  init(options?: AbortableOperationOptions): Promise<void> {
    return this.#inner.init(options);
  }

  async acquireConnection(options?: AbortableOperationOptions): Promise<DatabaseConnection> {
    const inner = await this.#inner.acquireConnection(options);
    let wrapper = this.#wrappers.get(inner);
    if (!wrapper) {
      wrapper = new ScopedConnection(inner, this.#control, this.#stats);
      this.#wrappers.set(inner, wrapper);
    }
    return wrapper;
  }

  releaseConnection(connection: DatabaseConnection, options?: AbortableOperationOptions): Promise<void> {
    return this.#inner.releaseConnection(unwrap(connection), options);
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return scoped(connection).control((inner) => this.#inner.beginTransaction(inner, settings), 'on-error');
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return scoped(connection).control((inner) => this.#inner.commitTransaction(inner), 'on-error');
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return scoped(connection).control((inner) => this.#inner.rollbackTransaction(inner), 'always');
  }

  savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    const savepoint = this.#inner.savepoint?.bind(this.#inner);
    if (!savepoint) throw new Error('savepoints are not supported by this driver');
    return scoped(connection).control((inner) => savepoint(inner, name, compile), 'on-error');
  }

  rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    const rollback = this.#inner.rollbackToSavepoint?.bind(this.#inner);
    if (!rollback) throw new Error('savepoints are not supported by this driver');
    return scoped(connection).control((inner) => rollback(inner, name, compile), 'always');
  }

  releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    const release = this.#inner.releaseSavepoint?.bind(this.#inner);
    if (!release) throw new Error('savepoints are not supported by this driver');
    return scoped(connection).control((inner) => release(inner, name, compile), 'on-error');
  }

  destroy(options?: AbortableOperationOptions): Promise<void> {
    return this.#inner.destroy(options);
  }
}

function unwrap(connection: DatabaseConnection): DatabaseConnection {
  return connection instanceof ScopedConnection ? connection.inner : connection;
}

function scoped(connection: DatabaseConnection): ScopedConnection {
  if (!(connection instanceof ScopedConnection)) throw new Error('a connection of another driver was passed to the scoped driver');
  return connection;
}

/**
 * Wraps a dialect so its connections keep app.account_id / app.system equal to each query's
 * scope (see the top of this file). `control.mode` may be changed at any time; it applies to the
 * next query.
 */
export function scopedDialect(inner: Dialect, control: ScopeControl, stats: ScopeStats = { switches: 0 }): Dialect {
  return {
    createDriver: (): Driver => new ScopedDriver(inner.createDriver(), control, stats),
    createQueryCompiler: (): QueryCompiler => inner.createQueryCompiler(),
    createAdapter: (): DialectAdapter => inner.createAdapter(),
    createIntrospector: (db: Kysely<any>): DatabaseIntrospector => inner.createIntrospector(db),
  };
}
