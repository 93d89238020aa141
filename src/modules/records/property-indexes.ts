import { sql, type Kysely } from 'kysely';
import type { DB } from '../../db/schema.ts';
import { systemDb, tenantDb } from '../../db/tenant.ts';
import { isStorageKey } from '../../query/data-key.ts';
import { isId } from '../../lib/ids.ts';

/**
 * Sort indexes per property, built on demand (docs/design/storage.md, "Property sort indexes").
 *
 * Property values live in one JSONB document, so no index made by a migration can order an
 * entity's records by one of its properties: without one, the first page of a list sorted by a
 * property reads and sorts every matching record (seconds at a million). When a list or search
 * sorts by a property of an entity holding at least `minRecords` live records, this module
 * builds, in the background and once per property, the two partial B-trees a keyset page walks:
 *
 *   records_s_<propertyId>  (account_id, entity_id, (data -> 'K'), record_id)
 *                           WHERE NOT is_deleted AND entity_id = 'E' AND (data -> 'K') IS NOT NULL  -- phase 1 (valued)
 *   records_n_<propertyId>  (account_id, entity_id, record_id)
 *                           WHERE NOT is_deleted AND entity_id = 'E' AND (data -> 'K') IS NULL      -- phase 2 (NULLs last)
 *
 * where K is the property's storage key (query/data-key.ts).
 *
 * - The key is the jsonb value itself (`data -> 'K'`), not a cast: jsonb compares numbers
 *   numerically and strings by collation, and an index expression that can never fail (unlike
 *   `(data ->> 'K')::numeric`) cannot make a write fail after a property changes type.
 * - Partial, on the entity: the first holds only its records that have the property, the second
 *   only those without a value. A short storage key ("3") is in every entity's records, so the
 *   entity has to be in the predicate. (Statements are planned with their parameters' values, so
 *   `entity_id = $1` proves it.) Other tenants' writes never touch either beyond evaluating the
 *   predicate.
 * - Both lead with account_id (tenant-distributable, docs/design/scaling.md).
 * - PostgreSQL builds them CONCURRENTLY (writes go on), one at a time per node, under an advisory
 *   lock so two nodes never race on the same index; a failed concurrent build leaves an invalid
 *   index, which the next attempt drops and rebuilds. PGlite (one connection) builds them inline.
 * - Until an index is valid, sorts by the property still answer correctly, only slower.
 * - A deleted property (there is no undelete) or one purged with its entity leaves its two
 *   indexes behind, and every write to records would still evaluate their predicates and, for
 *   the values the records keep, maintain their entries: `sweepOrphans` drops them (the server
 *   runs it hourly, docs/design/storage.md).
 */
export interface PropertyIndexes {
  /** A list/search sorted by this property: make sure its indexes exist (returns at once). */
  sortedBy(accountId: string, entityId: string, property: IndexedProperty): void;
  /** Whether this node knows the property's sort indexes to be built and valid. */
  ready(propertyId: string): boolean;
  /** Resolves when no build is queued or running (tests, shutdown). */
  idle(): Promise<void>;
  /** Drops the sort indexes of properties that are deleted or gone; returns the names dropped. */
  sweepOrphans(): Promise<string[]>;
}

export interface IndexedProperty {
  propertyId: string;
  storageKey: string;
}

export interface PropertyIndexesOptions {
  db: Kysely<DB>;
  /** Entities with fewer live records sort in memory fast enough; no index is built. Default 5,000. */
  minRecords?: number;
  /** How long a "too small" or failed answer is remembered before asking again. Default 60 s. */
  recheckMs?: number;
  onError?: (error: unknown, propertyId: string) => void;
}

type BuildJob = { accountId: string; entityId: string; property: IndexedProperty };

/** pg_advisory_lock key: crm-core's record-index builds, one at a time across nodes. */
const BUILD_LOCK = 0x63726d69;

export const sortIndexName = (propertyId: string) => `records_s_${propertyId}`;
export const nullIndexName = (propertyId: string) => `records_n_${propertyId}`;

/** The two statements for a property (IDs and key validated: they are spliced into DDL). */
export function propertyIndexDdl(entityId: string, { propertyId, storageKey }: IndexedProperty, concurrently: boolean): { name: string; create: string }[] {
  if (!isId('property', propertyId) || !isId('entity', entityId) || !isStorageKey(storageKey)) throw new Error('refusing to build an index for an unvalidated ID');
  const how = concurrently ? 'CONCURRENTLY ' : '';
  const value = `(data -> '${storageKey}')`;
  return [
    {
      name: sortIndexName(propertyId),
      create: `CREATE INDEX ${how}IF NOT EXISTS "${sortIndexName(propertyId)}" ON records (account_id, entity_id, ${value}, record_id) WHERE NOT is_deleted AND entity_id = '${entityId}' AND ${value} IS NOT NULL`,
    },
    {
      name: nullIndexName(propertyId),
      create: `CREATE INDEX ${how}IF NOT EXISTS "${nullIndexName(propertyId)}" ON records (account_id, entity_id, record_id) WHERE NOT is_deleted AND entity_id = '${entityId}' AND ${value} IS NULL`,
    },
  ];
}

export function createPropertyIndexes(options: PropertyIndexesOptions): PropertyIndexes {
  const { db } = options;
  const minRecords = options.minRecords ?? 5_000;
  const recheckMs = options.recheckMs ?? 60_000;
  /** Property → state: 'ready', or the time before which it is not asked about again. */
  const known = new Map<string, 'ready' | number>();
  const queue: BuildJob[] = [];
  let running: Promise<void> | undefined;
  let engine: Promise<'pglite' | 'postgres'> | undefined;

  const engineOf = () => (engine ??= sql<{ v: string }>`SELECT version() AS v`.execute(db)
    .then((r) => (r.rows[0]?.v.includes('PGlite') ? 'pglite' : 'postgres')));

  async function validIndexes(names: string[]): Promise<number> {
    const result = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE c.relname IN (${sql.join(names)}) AND i.indisvalid AND i.indisready`.execute(db);
    return result.rows[0]?.n ?? 0;
  }

  async function enoughRecords(accountId: string, entityId: string): Promise<boolean> {
    const result = await tenantDb(db, accountId).executeRaw(sql<{ n: number }>`
      SELECT count(*)::int AS n FROM (
        SELECT 1 FROM records WHERE account_id = ${accountId} AND entity_id = ${entityId} AND NOT is_deleted LIMIT ${minRecords}
      ) AS sample`);
    return (result.rows[0]?.n ?? 0) >= minRecords;
  }

  /**
   * Runs `ddl` (CONCURRENTLY statements, which cannot run in a transaction) on one pooled
   * connection holding the cluster-wide build lock, without a statement timeout; session settings
   * are reset after. False, and nothing run, when another node holds the lock.
   */
  async function underBuildLock(ddl: (conn: Kysely<DB>) => Promise<void>): Promise<boolean> {
    return db.connection().execute(async (conn) => {
      const [locked] = (await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(${BUILD_LOCK}) AS ok`.execute(conn)).rows;
      if (!locked?.ok) return false;
      try {
        await sql`SET statement_timeout = 0`.execute(conn);
        await ddl(conn);
        return true;
      } finally {
        await sql`RESET statement_timeout`.execute(conn).catch(() => {});
        await sql`SELECT pg_advisory_unlock(${BUILD_LOCK})`.execute(conn).catch(() => {});
      }
    });
  }

  async function build(job: BuildJob): Promise<void> {
    const ddl = propertyIndexDdl(job.entityId, job.property, (await engineOf()) === 'postgres');
    const names = ddl.map((d) => d.name);
    const { propertyId } = job.property;
    if (await validIndexes(names) === names.length) return void known.set(propertyId, 'ready');
    if (!(await enoughRecords(job.accountId, job.entityId))) return void known.set(propertyId, Date.now() + recheckMs);
    if ((await engineOf()) === 'pglite') {
      for (const d of ddl) await sql.raw(d.create).execute(db);
    } else {
      // When another node holds the lock it is building; this property is asked about again after recheckMs.
      await underBuildLock(async (conn) => {
        for (const d of ddl) {
          // Under the lock nobody else is building: an invalid index is a failed build's leftover.
          const [stale] = (await sql<{ n: number }>`
            SELECT count(*)::int AS n FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE c.relname = ${d.name} AND NOT (i.indisvalid AND i.indisready)`.execute(conn)).rows;
          if (stale?.n) await sql.raw(`DROP INDEX CONCURRENTLY IF EXISTS "${d.name}"`).execute(conn);
          await sql.raw(d.create).execute(conn);
        }
      });
    }
    known.set(propertyId, (await validIndexes(names)) === names.length ? 'ready' : Date.now() + recheckMs);
  }

  /**
   * Orphans: sort indexes on records whose property is deleted or no longer exists. The one read
   * across accounts here is of index names and property IDs (a sweep, like the trash purge's).
   */
  async function orphanIndexes(): Promise<{ name: string; propertyId: string }[]> {
    const indexes = (await sql<{ name: string }>`
      SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = 'records'::regclass`.execute(db)).rows
      .filter(({ name }) => name.startsWith('records_s_') || name.startsWith('records_n_'))
      .map(({ name }) => ({ name, propertyId: name.slice('records_s_'.length) }))
      .filter(({ propertyId }) => isId('property', propertyId));
    if (indexes.length === 0) return [];
    const live = new Set((await systemDb(db).selectFrom('properties').select('property_id')
      .where('property_id', 'in', [...new Set(indexes.map((i) => i.propertyId))])
      .where('is_deleted', '=', false).execute()).map((row) => row.property_id));
    return indexes.filter(({ propertyId }) => !live.has(propertyId));
  }

  async function sweepOrphans(): Promise<string[]> {
    const orphans = await orphanIndexes();
    if (orphans.length === 0) return [];
    if ((await engineOf()) === 'pglite') {
      for (const { name } of orphans) await sql.raw(`DROP INDEX IF EXISTS "${name}"`).execute(db);
    } else {
      // Under the build lock, so that no node is building one of these names meanwhile; when a
      // build holds it, the next sweep drops them.
      const dropped = await underBuildLock(async (conn) => {
        for (const { name } of orphans) await sql.raw(`DROP INDEX CONCURRENTLY IF EXISTS "${name}"`).execute(conn);
      });
      if (!dropped) return [];
    }
    for (const { propertyId } of orphans) known.delete(propertyId);
    return orphans.map(({ name }) => name);
  }

  async function drain(): Promise<void> {
    for (let job = queue.shift(); job; job = queue.shift()) {
      try {
        await build(job);
      } catch (error) {
        known.set(job.property.propertyId, Date.now() + recheckMs);
        options.onError?.(error, job.property.propertyId);
      }
    }
    running = undefined;
  }

  return {
    sortedBy(accountId, entityId, property) {
      const { propertyId } = property;
      const state = known.get(propertyId);
      if (state === 'ready' || (typeof state === 'number' && state > Date.now())) return;
      if (!isId('property', propertyId) || !isId('entity', entityId) || !isStorageKey(property.storageKey)) return;
      // Queued or running: not asked again meanwhile.
      known.set(propertyId, Number.POSITIVE_INFINITY);
      queue.push({ accountId, entityId, property });
      running ??= drain();
    },
    ready: (propertyId) => known.get(propertyId) === 'ready',
    async idle() {
      while (running) await running;
    },
    sweepOrphans,
  };
}
