import { sql, type RawBuilder, type Selectable, type SqlBool } from 'kysely';
import type { RecordsTable } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';
import { afterNull, afterValued, cursorKey, cursorValue, orderNull, orderValued, type Cursor, type Sort } from './record-sort.ts';
import { dataKey } from '../../query/data-key.ts';
import { escapeLike } from '../../query/compile.ts';

export type RecordRow = Selectable<RecordsTable>;

/** `version = version + 1`: part of every UPDATE of records (optimistic concurrency, migration 0010). */
export const nextVersion = sql<number>`records.version + 1`;

export function findRecord(tenant: TenantDb, recordId: string, options: { lock?: boolean } = {}): Promise<RecordRow | undefined> {
  const query = tenant.selectFrom('records').selectAll().where('record_id', '=', recordId);
  return (options.lock ? query.forUpdate() : query).executeTakeFirst();
}

export function findRecords(tenant: TenantDb, recordIds: readonly string[]): Promise<RecordRow[]> {
  if (recordIds.length === 0) return Promise.resolve([]);
  return tenant.selectFrom('records').selectAll().where('record_id', 'in', recordIds).forUpdate().execute();
}

export type NewRecordRow = Omit<RecordRow, 'account_id' | 'is_deleted' | 'date_deleted' | 'data' | 'version'> & { data: Record<string, unknown> };

export function insertRecords(tenant: TenantDb, rows: NewRecordRow[]): Promise<RecordRow[]> {
  return tenant.insertInto('records')
    .values(rows.map((row) => ({ ...row, account_id: tenant.accountId, data: JSON.stringify(row.data) })))
    .returningAll()
    .execute();
}

export function updateRecord(tenant: TenantDb, recordId: string, changes: { name?: string; data?: Record<string, unknown>; tags?: string[]; owner_id?: string | null; updated_by: string; date_updated: Date }): Promise<RecordRow | undefined> {
  const { data, ...rest } = changes;
  return tenant.updateTable('records')
    .set({ ...rest, ...(data ? { data: JSON.stringify(data) } : {}), version: nextVersion })
    .where('record_id', '=', recordId)
    .returningAll()
    .executeTakeFirst();
}

export async function setDeleted(tenant: TenantDb, recordIds: readonly string[], deleted: boolean, at: Date): Promise<RecordRow[]> {
  if (recordIds.length === 0) return [];
  return tenant.updateTable('records')
    .set({ is_deleted: deleted, date_deleted: deleted ? at : null, version: nextVersion })
    .where('record_id', 'in', recordIds)
    .where('is_deleted', '=', !deleted)
    .returningAll()
    .execute();
}

export async function deleteRecords(tenant: TenantDb, recordIds: readonly string[]): Promise<number> {
  if (recordIds.length === 0) return 0;
  const result = await tenant.deleteFrom('records').where('record_id', 'in', recordIds).executeTakeFirst();
  return Number(result.numDeletedRows);
}

export interface PageQuery {
  entityId: string;
  where: RawBuilder<SqlBool>;
  /**
   * The same filter compiled for a statement over the whole entity (compile.ts, wholeEntity), for
   * the plain query: it runs when a probe could not find the page (a rare filter) or no index gives
   * the order, so it evaluates the filter on every record anyway. Absent: `where`.
   */
  wholeWhere?: RawBuilder<SqlBool>;
  /** Whether `where` filters at all (false: it is TRUE). */
  filtered?: boolean;
  /**
   * Whether an index delivers rows in this sort's order (system sorts always; property sorts
   * once their sort indexes are built). Enables the probe below.
   */
  ordered?: boolean;
  sort: Sort;
  cursor: Cursor | undefined;
  limit: number;
  trashed?: boolean;
  /** Page through this set of the entity's live records only (a CACHED segment's members). */
  set?: PageSet;
}

/**
 * A set of an entity's live records kept in a table of its own (a CACHED segment's members,
 * segments.repository.ts memberSet), paged through instead of the whole entity:
 * - dateCreated pages walk the set's own (record_created, record_id) index and join records by
 *   primary key: a page costs its rows, whatever share of the entity the set is;
 * - other sorts filter the records path with `filter`; when its probe finds no page (a set
 *   under ~1.6 % of the entity) and the set is `small`, the set is read whole and sorted, instead
 *   of walking the sort index, whose order may put every member last.
 */
export interface PageSet {
  /** `(SELECT record_id, record_created …)`: the set; record_created is the record's date_created. */
  rows: RawBuilder<unknown>;
  /** Membership in the set as a filter on `records`. */
  filter: RawBuilder<SqlBool>;
  /** Few enough rows (a few thousand) to read them all and sort. */
  small: boolean;
}

type PageRow = RecordRow & { sort_key: unknown };

/** A dateCreated page of a set: a range of the set's (record_created, record_id) index, records joined by primary key. */
async function pageSetByCreated(tenant: TenantDb, q: PageQuery, set: PageSet): Promise<{ rows: PageRow[]; next: Cursor | undefined }> {
  const dir = sql.raw(q.sort.direction === 'asc' ? 'ASC' : 'DESC');
  let query = tenant.selectFrom('records').selectAll('records').select(sql`records.date_created`.as('sort_key'))
    .innerJoin(set.rows.as('m'), (join) => join.on(sql<SqlBool>`m.record_id = records.record_id`))
    .where('entity_id', '=', q.entityId).where('is_deleted', '=', false).where(q.where);
  if (q.cursor) {
    query = query.where(sql<SqlBool>`(m.record_created, m.record_id) ${sql.raw(q.sort.direction === 'asc' ? '>' : '<')} (${q.cursor.value}::timestamptz, ${q.cursor.recordId})`);
  }
  const rows = await query.orderBy(sql`m.record_created ${dir}, m.record_id ${dir}`).limit(q.limit + 1).execute() as PageRow[];
  if (rows.length <= q.limit) return { rows, next: undefined };
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1]!;
  return { rows: page, next: { value: cursorValue(last.sort_key), recordId: last.record_id } };
}

/**
 * How many rows in sort order a probe may read before it gives up: a page of 21 at ≥ ~0.1 %
 * selectivity. It stops at the page, so a common filter reads a few dozen rows. A small set has a
 * cheaper way out (read it whole, PageSet), so its probe gives up after 64 × the page (≥ ~1.6 %).
 */
const PROBE_MAX = 20_000;
const SMALL_SET_PROBE_FACTOR = 64;

/**
 * Settings of a transaction whose statements must read rows in an index's order (probes, name
 * prefixes). Sorting priced out: an ordered LIMIT can then only be answered by the index that
 * delivers the order. Without statistics (a table never analyzed: PGlite always, PostgreSQL
 * before autovacuum's first ANALYZE, or never when it is off) the planner estimates an entity at
 * 1 row, so it reads all of it through the smallest index and sorts it: 10–60 ms at 13 k records,
 * growing with the entity, where the ordered index answers in under 1–8 ms.
 * JIT off: should a sort remain after all, its 1e10 "disabled" cost would make PostgreSQL
 * compile a query that reads a few thousand rows (350 ms measured).
 * Local to the transaction: pages are read outside any (one they joined would keep the settings).
 */
export const INDEX_ORDER_SETTINGS = sql`SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true)`;

/**
 * Settings of a transaction whose statement reads a bounded number of rows through an index (a
 * small set's page, the substring phase of a name search): no parallel workers. PostgreSQL prices
 * a worker at `parallel_setup_cost`, but a worker is a new process that page-faults every shared
 * buffer it touches for the first time. At 1 M records: reading a 4,138-member set (16 k buffer
 * hits) took 48–112 ms with one worker and 24 ms without; walking the name index for `민준` 56–248
 * ms in parallel and 8–11 ms serially (docs/benchmarks.md: "Small sets in other sorts", "Without parallel workers").
 */
const BOUNDED_READ_SETTINGS = sql`SELECT set_config('max_parallel_workers_per_gather', '0', true)`;

export interface Probe {
  where: RawBuilder<SqlBool>;
  /** Rows after the cursor in this phase (afterValued / afterNull). */
  after: RawBuilder<SqlBool>;
  /** The phase's order (orderValued / orderNull). */
  order: RawBuilder<unknown>;
  /** The sort key of the valued phase; undefined in the NULL phase (record_id alone). */
  key: RawBuilder<unknown> | undefined;
  direction: 'asc' | 'desc';
  size: number;
  want: number;
}

/**
 * One probe as one statement: the rows after the cursor in sort order (no filter: a range of the
 * sort index, ordered, LIMIT `size`), each numbered (`probe_rank`) and `where` evaluated on it
 * (`probe_hit`); returned: the first `want` matches in order, and the `size`-th row if reached
 * (its presence says the candidates did not run out). The rows are read one by one and the
 * statement stops at the page: a common filter reads a few dozen rows, whatever `size` is.
 *
 * Every level keeps the index's order as an output column (`probe_key`, record_id) and orders by
 * it, so the planner can see that no level needs a sort. The earlier shape joined the candidates
 * back to `records` by record_id; without statistics the planner made `records` the outer side,
 * walked the whole entity by date and re-sorted the candidates for every row it kept
 * (`Rows Removed by Join Filter: 278190`, 90–200 ms a probe at 13–25 k records, the soak's
 * advanced search); with statistics, a scan of the whole entity and a hash join (12 ms).
 */
export function probeStatement(tenant: TenantDb, q: PageQuery, probe: Probe): RawBuilder<PageRow & ProbeColumns> {
  const dir = sql.raw(probe.direction === 'asc' ? 'ASC' : 'DESC');
  const by = (alias: string) => probe.key === undefined
    ? sql`${sql.ref(`${alias}.record_id`)} ${dir}`
    : sql`${sql.ref(`${alias}.probe_key`)} ${dir}, ${sql.ref(`${alias}.record_id`)} ${dir}`;
  const candidates = tenant.selectFrom('records').selectAll()
    .select([
      sql`${cursorKey(q.sort)}`.as('sort_key'),
      sql`${probe.key ?? sql`NULL`}`.as('probe_key'),
      sql<boolean>`(${probe.where})`.as('probe_hit'),
    ])
    .where('entity_id', '=', q.entityId)
    .where('is_deleted', '=', q.trashed ?? false)
    .where(probe.after)
    .orderBy(probe.order)
    .limit(probe.size);
  return sql<PageRow & ProbeColumns>`SELECT probed.* FROM (
      SELECT candidate.*, row_number() OVER (ORDER BY ${by('candidate')}) AS probe_rank
      FROM (${candidates}) AS candidate ORDER BY ${by('candidate')}
    ) AS probed
    WHERE probed.probe_hit OR probed.probe_rank = ${probe.size}
    ORDER BY ${by('probed')}
    LIMIT ${probe.want}`;
}

type ProbeColumns = { probe_key: unknown; probe_hit: boolean | null; probe_rank: unknown };

/**
 * The probe of one phase, in a transaction with INDEX_ORDER_SETTINGS: the page, or undefined when
 * the probe could not prove it (the plain query decides then).
 */
async function probePage(tenant: TenantDb, q: PageQuery, probe: Probe): Promise<PageRow[] | undefined> {
  const rows = await tenant.transaction(async (tx) => {
    await tx.executeRaw(INDEX_ORDER_SETTINGS);
    return (await tx.executeRaw(probeStatement(tx, q, probe))).rows;
  });
  const exhausted = !rows.some((row) => Number(row.probe_rank) === probe.size);
  const page: PageRow[] = rows.filter((row) => row.probe_hit === true)
    .map(({ probe_key: _key, probe_hit: _hit, probe_rank: _rank, ...row }) => row);
  return page.length >= probe.want || exhausted ? page : undefined;
}

/**
 * One keyset page: valued rows after the cursor in sort order, then (for nullable sorts) rows
 * without a value. Fetches limit + 1 rows to know whether another page exists.
 *
 * A filtered page is first looked for by *probing* (when an index delivers the sort order): the
 * rows after the cursor are read from the sort index in order, with no filter (a LIMIT the
 * planner can only answer with that index), the filter applied to each, until the page is full
 * or PROBE_MAX rows were read. If that finds a page, or the rows ran out, it is the exact answer:
 * any matching row earlier in sort order was read. Otherwise the plain query runs and the
 * planner decides. Why: PostgreSQL has no statistics inside the JSONB document, so it estimates
 * a 3-condition filter at ~1 row and picks "scan everything, then sort" (650 ms at 1 M records)
 * where walking the sort index finds the page in a few hundred rows (docs/design/storage.md).
 */
export async function pageRecords(tenant: TenantDb, q: PageQuery): Promise<{ rows: PageRow[]; next: Cursor | undefined }> {
  const set = q.trashed ? undefined : q.set;
  if (set && q.sort.label === 'dateCreated') return pageSetByCreated(tenant, q, set);
  const inSet = (filter: RawBuilder<SqlBool>) => (!set ? filter : q.filtered === false ? set.filter : sql<SqlBool>`(${filter}) AND (${set.filter})`);
  const where = inSet(q.where);
  const scope = () => tenant.selectFrom('records')
    .where('entity_id', '=', q.entityId)
    .where('is_deleted', '=', q.trashed ?? false);
  const plain = () => scope().selectAll().select(sql`${cursorKey(q.sort)}`.as('sort_key')).where(inSet(q.wholeWhere ?? q.where));
  const probing = (q.filtered !== false || set !== undefined) && q.ordered === true;

  async function phase(after: RawBuilder<SqlBool>, order: RawBuilder<unknown>, want: number, valued: boolean): Promise<PageRow[]> {
    if (probing) {
      const size = set?.small ? Math.min(PROBE_MAX, want * SMALL_SET_PROBE_FACTOR) : PROBE_MAX;
      const page = await probePage(tenant, q, { where, after, order, key: valued ? q.sort.expr : undefined, direction: q.sort.direction, size, want });
      if (page) return page;
    }
    if (set?.small) {
      // Every record of the set read by primary key, their sort keys sorted (MATERIALIZED: not an
      // order to walk the sort index in), then the page's rows read again by primary key.
      const dir = sql.raw(q.sort.direction === 'asc' ? 'ASC' : 'DESC');
      const members = scope().select(['records.record_id', sql`${valued ? q.sort.expr : sql`NULL`}`.as('k')])
        .innerJoin(set.rows.as('m'), (join) => join.on(sql<SqlBool>`m.record_id = records.record_id`))
        .where(q.where).where(after);
      return tenant.transaction(async (tx) => {
        await tx.executeRaw(BOUNDED_READ_SETTINGS);
        return (await tx.executeRaw(sql<PageRow>`WITH page_set AS MATERIALIZED (${members})
          SELECT records.*, ${cursorKey(q.sort)} AS sort_key
          FROM (SELECT record_id FROM page_set ORDER BY ${valued ? sql`k ${dir}, ` : sql``}record_id ${dir} LIMIT ${want}) AS page
          JOIN records ON records.account_id = ${tenant.accountId} AND records.record_id = page.record_id
          ORDER BY ${order}`)).rows;
      });
    }
    return await plain().where(after).orderBy(order).limit(want).execute() as PageRow[];
  }

  const rows = await phase(afterValued(q.sort, q.entityId, q.cursor), orderValued(q.sort), q.limit + 1, true);
  if (q.sort.nullable && rows.length <= q.limit) {
    rows.push(...await phase(afterNull(q.sort, q.entityId, q.cursor), orderNull(q.sort), q.limit + 1 - rows.length, false));
  }
  if (rows.length <= q.limit) return { rows, next: undefined };
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1]!;
  return { rows: page, next: { value: cursorValue(last.sort_key), recordId: last.record_id } };
}

/**
 * Name matches for the fulltext endpoint: prefix matches first, then other substring matches,
 * each in (lower(name) COLLATE "C", record_id) order, in two bounded queries:
 * 1. Prefix matches walk the name index (`records_by_name_c`, migration 0005) from the prefix:
 *    LIKE 'p%' under the C collation is a range on that index, so the cost is the page, not the
 *    number of matches.
 * 2. Only if the page is not full: substring matches that are not prefix matches. The trigram
 *    index finds them for 3+ characters, the name-gram index (migration 0019) for 1 or 2; with the
 *    statistics of the indexed pieces, PostgreSQL walks the name order for a common pair (such as
 *    a given name) and reads the few holders of a rare one (a pair no name holds: nothing at all),
 *    without parallel workers (BOUNDED_READ_SETTINGS: its low estimates made it split the walk).
 *    A probe of the name order first (as record pages do) was measured slower for both.
 */
export async function searchByName(tenant: TenantDb, entityId: string, q: string, limit: number): Promise<RecordRow[]> {
  const text = escapeLike(q.toLowerCase());
  // The prefix range of the name index, whatever the statistics say (INDEX_ORDER_SETTINGS).
  const rows = await tenant.transaction(async (tx) => {
    await tx.executeRaw(INDEX_ORDER_SETTINGS);
    return namePrefixQuery(tx, entityId, text, limit).execute();
  });
  if (rows.length >= limit) return rows;
  // Not a range of the name index: the trigram or name-gram index and a sort may be the better plan here.
  const more = await tenant.transaction(async (tx) => {
    await tx.executeRaw(BOUNDED_READ_SETTINGS);
    let rest = byName(tx, entityId)
      .where(sql<SqlBool>`records.name ILIKE ${`%${text}%`}`)
      .where(sql<SqlBool>`NOT (lower(records.name) COLLATE "C" LIKE ${`${text}%`})`);
    // Lower-cased by PostgreSQL, as the indexed names are; implied by the ILIKE, so it loses nothing.
    if ([...q].length <= 2) rest = rest.where(sql<SqlBool>`crm_name_grams(lower(records.name)) @> crm_name_query_grams(lower(${q}))`);
    return rest.limit(limit - rows.length).execute();
  });
  return [...rows, ...more];
}

const byName = (tenant: TenantDb, entityId: string) => tenant.selectFrom('records').selectAll()
  .where('entity_id', '=', entityId)
  .where('is_deleted', '=', false)
  .orderBy(sql`lower(records.name) COLLATE "C"`)
  .orderBy('record_id');

/** Names starting with `text` (escaped for LIKE, lower-cased), in name order: run it with INDEX_ORDER_SETTINGS. */
export function namePrefixQuery(tenant: TenantDb, entityId: string, text: string, limit: number) {
  return byName(tenant, entityId).where(sql<SqlBool>`lower(records.name) COLLATE "C" LIKE ${`${text}%`}`).limit(limit);
}

/** IDs of the entity's live records matching `where`, at most `limit`, in record ID order. */
export async function selectRecordIds(tenant: TenantDb, entityId: string, where: RawBuilder<SqlBool>, limit: number): Promise<string[]> {
  const rows = await tenant.selectFrom('records').select('record_id')
    .where('entity_id', '=', entityId)
    .where('is_deleted', '=', false)
    .where(where)
    .orderBy('record_id')
    .limit(limit)
    .execute();
  return rows.map((row) => row.record_id);
}

/** First key of the two-key advisory lock on looked-up values ("CRM" + 3; properties.repository has 1 and 2). */
const VALUE_LOOKUP_LOCK = 0x43524d03;

/**
 * Locks each of `values` of the property until the transaction ends, in hash order (so that two
 * transactions locking overlapping values cannot deadlock on them). What it serialises: two
 * upserts of the same new value, each looking it up, finding nothing and creating a record. The
 * second now waits for the first to commit, and its lookup, a later statement, sees the record.
 * The second key is a hash: another value sharing it only waits, never mismatches.
 */
export async function lockValues(tenant: TenantDb, entityId: string, propertyId: string, values: readonly unknown[]): Promise<void> {
  if (values.length === 0) return;
  const keys = [...new Set(values.map((v) => `${tenant.accountId}/${entityId}/${propertyId}/${JSON.stringify(v)}`))];
  const locks = sql`(SELECT count(pg_advisory_xact_lock(${VALUE_LOOKUP_LOCK}::int4, h)) FROM (
      SELECT DISTINCT hashtext(k) AS h FROM unnest(${keys}::text[]) AS k ORDER BY h) AS value_hashes)`;
  // The lock function needs no table, but the tenant door needs one: the entity's own row.
  await tenant.selectFrom('entities').select(sql<string>`${locks}::text`.as('locked')).where('entity_id', '=', entityId).execute();
}

/**
 * Live records of the entity whose `data -> storageKey` equals one of `values` (JSON values), in
 * record ID order. The values are one array parameter (`= ANY`), which PostgreSQL hashes, so a
 * scan of the entity's records costs O(1) per record whatever the number of values; on a large
 * entity the property's sort index (records_s_<propertyId>, property-indexes.ts), whose key is
 * this very expression, answers it with index lookups instead. (Not the records_data GIN index:
 * right after bulk writes its pending list makes each probe cost ~1 ms.)
 */
export async function findLiveByValues(tenant: TenantDb, entityId: string, storageKey: string, values: readonly unknown[]): Promise<{ record_id: string; value: unknown }[]> {
  if (values.length === 0) return [];
  const value = sql<unknown>`(records.data -> ${dataKey(storageKey)})`;
  return tenant.selectFrom('records')
    .select(['record_id', value.as('value')])
    .where('entity_id', '=', entityId)
    .where('is_deleted', '=', false)
    .where(sql<SqlBool>`${value} IS NOT NULL`)
    .where(sql<SqlBool>`${value} = ANY (${values.map((v) => JSON.stringify(v))}::text[]::jsonb[])`)
    .orderBy('record_id')
    .execute();
}

/* ---------- Bulk writes: one statement per batch, the rows passed as one JSON document ---------- */

/**
 * Locks the records (those that exist in the account) in record_id order, so two bulk requests
 * over overlapping IDs take their row locks in the same order and cannot deadlock.
 */
export function lockRecordsInOrder(tenant: TenantDb, recordIds: readonly string[]): Promise<RecordRow[]> {
  if (recordIds.length === 0) return Promise.resolve([]);
  return tenant.selectFrom('records').selectAll().where('record_id', 'in', recordIds).orderBy('record_id').forUpdate().execute();
}

/** The same, reading only what delete and restore decide on. */
export function lockRecordStates(tenant: TenantDb, recordIds: readonly string[]): Promise<Pick<RecordRow, 'record_id' | 'entity_id' | 'is_deleted'>[]> {
  if (recordIds.length === 0) return Promise.resolve([]);
  return tenant.selectFrom('records').select(['record_id', 'entity_id', 'is_deleted']).where('record_id', 'in', recordIds).orderBy('record_id').forUpdate().execute();
}

export interface BulkNewRecord {
  record_id: string;
  entity_id: string;
  name: string;
  data: Record<string, unknown>;
  tags: string[];
  owner_id: string | null;
}

/**
 * Inserts many records in ONE statement with ONE parameter carrying the rows (jsonb_to_recordset):
 * a 1,000-row VALUES list would send 10,000 parameters for PostgreSQL to parse and plan.
 */
export async function insertRecordBatch(tenant: TenantDb, rows: readonly BulkNewRecord[], by: string, at: Date): Promise<void> {
  if (rows.length === 0) return;
  await tenant.insertInto('records')
    .columns(['account_id', 'record_id', 'entity_id', 'name', 'data', 'tags', 'owner_id', 'created_by', 'updated_by', 'date_created', 'date_updated'])
    .expression(sql`
      SELECT ${tenant.accountId}, v.record_id, v.entity_id, v.name, v.data, v.tags, v.owner_id, ${by}, ${by}, ${at}::timestamptz, ${at}::timestamptz
      FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        AS v(record_id text, entity_id text, name text, data jsonb, tags text[], owner_id text)`)
    .execute();
}

export interface BulkRecordChange {
  record_id: string;
  name: string;
  data: Record<string, unknown>;
  tags: string[];
  owner_id: string | null;
}

/**
 * Writes the new state of many (already locked) records in ONE statement. Every row carries its
 * complete new name/data/tags/owner, computed from the locked row, so the statement is the same
 * whichever fields each patch touched.
 */
export async function updateRecordBatch(tenant: TenantDb, rows: readonly BulkRecordChange[], by: string, at: Date): Promise<void> {
  if (rows.length === 0) return;
  const changes = sql`(
    SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      AS t(record_id text, name text, data jsonb, tags text[], owner_id text))`;
  await tenant.updateTable('records')
    .from(changes.as('v'))
    .set({
      name: sql<string>`v.name`,
      data: sql<string>`v.data`,
      tags: sql<string[]>`v.tags`,
      owner_id: sql<string | null>`v.owner_id`,
      updated_by: by,
      date_updated: at,
      version: nextVersion,
    })
    .where(sql<SqlBool>`records.record_id = v.record_id`)
    .execute();
}

/** Trashes or restores records without reading them back; returns how many changed. */
export async function markDeleted(tenant: TenantDb, recordIds: readonly string[], deleted: boolean, at: Date): Promise<number> {
  if (recordIds.length === 0) return 0;
  const result = await tenant.updateTable('records')
    .set({ is_deleted: deleted, date_deleted: deleted ? at : null, version: nextVersion })
    .where('record_id', 'in', recordIds)
    .where('is_deleted', '=', !deleted)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/* ---------- Condition evaluation for segments (counts, membership, explain) ---------- */

/**
 * Settings of a transaction whose statement reads every record of an entity (counts, aggregates):
 * JIT off. Over 1 M records such a statement costs more than `jit_above_cost`, so PostgreSQL
 * compiles it in the leader and in each parallel worker (~40 ms apiece), and the compiled filter
 * is no faster: it calls the same JSONB functions. A realtime segment count over 1 M records,
 * under row-level security: median 661 ms with JIT, 502 ms without (docs/benchmarks.md).
 */
export const FULL_SCAN_SETTINGS = sql`SELECT set_config('jit', 'off', true)`;

/** Exact number of the entity's live records matching `where` (in a transaction with FULL_SCAN_SETTINGS). */
export async function countRecords(tenant: TenantDb, entityId: string, where: RawBuilder<SqlBool>): Promise<number> {
  const row = await tenant.transaction(async (tx) => {
    await tx.executeRaw(FULL_SCAN_SETTINGS);
    return tx.selectFrom('records').select((eb) => eb.fn.countAll<string>().as('n'))
      .where('entity_id', '=', entityId).where(sql<SqlBool>`NOT records.is_deleted`).where(where)
      .executeTakeFirstOrThrow();
  });
  return Number(row.n);
}

/**
 * For each of the given records that is live in the entity, whether it matches each condition:
 * `flags[i]` is condition i. One statement whatever the number of conditions.
 */
export async function evaluateRecords(tenant: TenantDb, entityId: string, recordIds: readonly string[], conditions: readonly RawBuilder<SqlBool>[]): Promise<Map<string, boolean[]>> {
  const result = new Map<string, boolean[]>();
  if (recordIds.length === 0 || conditions.length === 0) return result;
  const rows = await tenant.selectFrom('records')
    .select('records.record_id')
    .select(sql<boolean[]>`ARRAY[${sql.join(conditions.map((c) => sql`coalesce((${c}), false)`))}]::boolean[]`.as('flags'))
    .where('entity_id', '=', entityId).where(sql<SqlBool>`NOT records.is_deleted`)
    .where('record_id', 'in', [...recordIds])
    .execute();
  for (const row of rows) result.set(row.record_id, row.flags);
  return result;
}

/** `SELECT record_id, record_created` (date_created) of the entity's live records matching `where`, for an INSERT … SELECT. */
export function matchingRecordIds(tenant: TenantDb, entityId: string, where: RawBuilder<SqlBool>) {
  return tenant.selectFrom('records').select(['records.record_id', 'records.date_created as record_created'])
    .where('entity_id', '=', entityId).where(sql<SqlBool>`NOT records.is_deleted`).where(where);
}

/* ---------- Scans (exports): keyset pages in (date_created, record_id) order ---------- */

/** Live records of the entity matching `where`, counted up to `max` when given (exact below it). */
export async function countRecordsUpTo(tenant: TenantDb, entityId: string, where: RawBuilder<SqlBool>, max?: number): Promise<number> {
  if (max === undefined) return countRecords(tenant, entityId, where);
  const rows = await tenant.selectFrom('records').select(sql<number>`1`.as('one'))
    .where('entity_id', '=', entityId).where(sql<SqlBool>`NOT records.is_deleted`).where(where)
    .limit(max)
    .execute();
  return rows.length;
}

/**
 * The next `limit` live records matching `where` after `after`, in (date_created, record_id)
 * order: a range on records_by_created, so page N costs what page 1 costs. `scan_at` is the
 * row's date_created to the microsecond, for the next key.
 *
 * The page runs in its own transaction with `SET LOCAL enable_sort = off`: without statistics
 * (PGlite never analyzes: no autovacuum) the planner estimates ~1 matching row and picks
 * "another index, then sort everything" — 170 ms a page at 50 k records, growing with the entity,
 * where walking records_by_created takes 14 ms. With sorting priced out, the index that delivers
 * the order is the plan on both engines.
 */
export function scanRecords(tenant: TenantDb, entityId: string, where: RawBuilder<SqlBool>, after: { at: string; recordId: string } | undefined, limit: number): Promise<(RecordRow & { scan_at: string })[]> {
  return tenant.transaction(async (tx) => {
    await tx.executeRaw(sql`SET LOCAL enable_sort = off`);
    let query = tx.selectFrom('records').selectAll()
      .select(sql<string>`to_char(records.date_created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('scan_at'))
      .where('entity_id', '=', entityId).where(sql<SqlBool>`NOT records.is_deleted`).where(where);
    if (after) query = query.where(sql<SqlBool>`(records.date_created, records.record_id) > (${after.at}::timestamptz, ${after.recordId})`);
    return query.orderBy('records.date_created').orderBy('records.record_id').limit(limit).execute();
  });
}
