import { sql, type Expression, type Insertable, type RawBuilder, type Selectable, type SqlBool, type Updateable } from 'kysely';
import type { SegmentsTable } from '../../db/schema.ts';
import { prepared } from '../../db/prepared-statements.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import { accessibleBy, inWorkspaceOf } from '../entities/entities.repository.ts';
import type { PageSet } from '../records/records.repository.ts';

export type SegmentRow = Selectable<SegmentsTable>;
export type NewSegmentRow = Omit<Insertable<SegmentsTable>, 'account_id'>;

export function findSegment(tenant: TenantDb, segmentId: string, options: { lock?: boolean } = {}): Promise<SegmentRow | undefined> {
  let query = tenant.selectFrom('segments').selectAll().where('segment_id', '=', segmentId);
  if (options.lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

/** Segments of one entity (already checked usable), or of every live entity the caller may use; by priority. */
export function listSegments(tenant: TenantDb, caller: Caller, entityId: string | undefined, cap: number): Promise<SegmentRow[]> {
  let query = tenant.selectFrom('segments').selectAll();
  if (entityId) {
    query = query.where('entity_id', '=', entityId);
  } else {
    const usable = tenant.selectFrom('entities').select('entities.entity_id')
      .where(sql<SqlBool>`NOT entities.is_deleted`).where(inWorkspaceOf(caller)).where(accessibleBy(caller));
    query = query.where('entity_id', 'in', usable);
  }
  if (caller.workspaceId !== null) {
    query = query.where((eb) => eb.or([eb('workspace_id', '=', caller.workspaceId), eb('workspace_id', 'is', null)]));
  }
  return query.orderBy('priority').orderBy('date_created').orderBy('segment_id').limit(cap).execute();
}

export async function nextPriority(tenant: TenantDb, entityId: string): Promise<number> {
  const row = await tenant.selectFrom('segments').select(sql<number>`coalesce(max(priority), -1) + 1`.as('next'))
    .where('entity_id', '=', entityId).executeTakeFirst();
  return Number(row?.next ?? 0);
}

export function insertSegment(tenant: TenantDb, row: NewSegmentRow): Promise<SegmentRow> {
  return tenant.insertInto('segments').values({ ...row, account_id: tenant.accountId }).returningAll().executeTakeFirstOrThrow();
}

export function updateSegment(tenant: TenantDb, segmentId: string, changes: Updateable<SegmentsTable>): Promise<SegmentRow> {
  // version: the ETag (migration 0010). Only this client-driven update moves it: memberCount and
  // lastEvaluatedAt are derived, and their maintenance statements below leave it alone.
  return tenant.updateTable('segments').set({ ...changes, version: sql<number>`segments.version + 1` })
    .where('segment_id', '=', segmentId).returningAll().executeTakeFirstOrThrow();
}

export async function deleteSegment(tenant: TenantDb, segmentId: string): Promise<void> {
  await tenant.deleteFrom('segments').where('segment_id', '=', segmentId).execute();
}

/* ---------- CACHED membership ---------- */

/** What maintenance needs of a segment (rules, and what they depend on). */
export type MaintainedSegment = Pick<SegmentRow, 'segment_id' | 'entity_id' | 'conditions' | 'version' | 'depends_on_types'>;

export interface MaintainedFilter {
  /** Segments of this entity. */
  ownOf?: string;
  /** Segments naming any of these relationship types. */
  dependingOnAny?: readonly string[];
  /** Segments naming any relationship type at all. */
  anyDependencies?: boolean;
}

/**
 * Active CACHED segments matching any part of `filter`, in segment order, locked. `share`
 * (writers) takes a key-share lock: writers do not block each other, but a rebuild (`exclusive`,
 * FOR UPDATE) waits for them and they for it, so a rebuild never works from a snapshot a writer
 * has changed. One statement per caller, always in segment order: no lock-order deadlocks.
 */
export function maintainedSegments(tenant: TenantDb, filter: MaintainedFilter, lock: 'share' | 'exclusive'): Promise<MaintainedSegment[]> {
  // Only what maintenance reads: a record write runs this for every CACHED segment of the entity.
  const query = tenant.selectFrom('segments').select(['segment_id', 'entity_id', 'conditions', 'version', 'depends_on_types'])
    .where('mode', '=', 'CACHED').where('is_active', '=', true)
    .where((eb) => eb.or([
      ...(filter.ownOf !== undefined ? [eb('entity_id', '=', filter.ownOf)] : []),
      ...(filter.dependingOnAny?.length ? [sql<SqlBool>`depends_on_types && ${sql`ARRAY[${sql.join(filter.dependingOnAny)}]::text[]`}`] : []),
      ...(filter.anyDependencies ? [sql<SqlBool>`cardinality(depends_on_types) > 0`] : []),
      sql<SqlBool>`false`,
    ]))
    .orderBy('segment_id');
  return (lock === 'share' ? query.forKeyShare() : query.forUpdate()).execute();
}

/** Locks one segment for a rebuild (see maintainedSegments). */
export async function lockForRebuild(tenant: TenantDb, segmentId: string): Promise<void> {
  await tenant.selectFrom('segments').select('segment_id').where('segment_id', '=', segmentId).forUpdate().execute();
}

/** Every membership of these records (their exits, when they are deleted for good). */
export function membershipsOf(tenant: TenantDb, recordIds: readonly string[]): Promise<MembershipChange[]> {
  if (recordIds.length === 0) return Promise.resolve([]);
  return tenant.selectFrom('segment_members').select(['segment_id as segmentId', 'record_id as recordId'])
    .where('record_id', 'in', [...recordIds]).execute();
}

/** Which of `recordIds` are members of which of `segmentIds`: a set of `${segmentId} ${recordId}`. */
export async function membersAmong(tenant: TenantDb, segmentIds: readonly string[], recordIds: readonly string[]): Promise<Set<string>> {
  if (segmentIds.length === 0 || recordIds.length === 0) return new Set();
  const rows = await tenant.selectFrom('segment_members').select(['segment_id', 'record_id'])
    .where('segment_id', 'in', [...segmentIds]).where('record_id', 'in', [...recordIds]).execute();
  return new Set(rows.map((r) => `${r.segment_id} ${r.record_id}`));
}

/** One record's evaluation against the segments being maintained, and where it is a member now. */
export interface MembershipState {
  recordId: string;
  /** flags[i]: whether the record matches segment i's rules; null when it is not live in the entity (a member of nothing). */
  flags: boolean[] | null;
  /** Which of the segments it is a member of now. */
  memberOf: string[];
}

/**
 * In one statement, for each record: whether it matches each segment's compiled rules
 * (`conditions[i]` is segment i's) and which of the segments it is a member of now. Records that
 * are trashed, gone or of another entity match nothing (their memberships are exits).
 * Every table is scoped to the account here (executeRaw); relationship conditions take the
 * account from the outer records row.
 *
 * One record (every single-record write) is a prepared statement (db/prepared-statements.ts):
 * the rules are in the select list, so no parameter changes its plan, and a record update stops
 * paying PostgreSQL's parse and plan of 20 segments' rules each time. Several records come as
 * an array to unnest, whose length the generic plan cannot know: planned each time.
 */
export async function membershipState(tenant: TenantDb, entityId: string, segmentIds: readonly string[], conditions: readonly RawBuilder<SqlBool>[], recordIds: readonly string[]): Promise<MembershipState[]> {
  if (segmentIds.length === 0 || recordIds.length === 0) return [];
  const account = tenant.accountId;
  const single = recordIds.length === 1;
  const input = single ? sql`(SELECT ${recordIds[0]}::text AS record_id)` : sql`unnest(${[...recordIds]}::text[])`;
  const statement = sql<{ record_id: string; flags: boolean[] | null; member_of: string[] }>`
    SELECT i.record_id,
      CASE WHEN records.record_id IS NULL THEN NULL
        ELSE ARRAY[${sql.join(conditions.map((c) => sql`coalesce((${c}), false)`))}]::boolean[] END AS flags,
      ARRAY(SELECT sm.segment_id FROM segment_members sm
        WHERE sm.account_id = ${account} AND sm.record_id = i.record_id AND sm.segment_id = ANY(${[...segmentIds]}::text[])) AS member_of
    FROM ${input} AS i(record_id)
    LEFT JOIN records ON records.account_id = ${account} AND records.record_id = i.record_id
      AND records.entity_id = ${entityId} AND NOT records.is_deleted`;
  const result = await tenant.executeRaw(single ? prepared(statement) : statement);
  return result.rows.map((r) => ({ recordId: r.record_id, flags: r.flags, memberOf: r.member_of }));
}

export interface MembershipChange {
  segmentId: string;
  recordId: string;
}

/**
 * Applies entries and exits in one statement: the changed segments' counters locked first, in
 * segment order (two writers changing the same segments cannot deadlock), then members inserted
 * (with their record's date_created, read from the record itself) and deleted, one event each,
 * member_count moved by the difference.
 */
export async function applyMembershipChanges(tenant: TenantDb, entered: readonly MembershipChange[], exited: readonly MembershipChange[], now: Date): Promise<void> {
  if (entered.length === 0 && exited.length === 0) return;
  await tenant.executeRaw(membershipChangesStatement(tenant.accountId, entered, exited, now));
}

/**
 * The statement of applyMembershipChanges. The changes arrive as parallel text arrays, so each
 * join key is a plain column: under row-level security PostgreSQL will not make a key computed by
 * a function that is not LEAKPROOF (such as `->>` on a JSON parameter) an index condition, and the
 * lookup of the entering record became a scan of every record of the account (~350 ms at 1 M).
 */
export function membershipChangesStatement(account: string, entered: readonly MembershipChange[], exited: readonly MembershipChange[], now: Date) {
  const changed = [...new Set([...entered, ...exited].map((c) => c.segmentId))].sort();
  const column = (changes: readonly MembershipChange[], key: keyof MembershipChange) => sql`${changes.map((c) => c[key])}::text[]`;
  // `locked` (a CTE: evaluated once, by its first reader) is a one-time filter of every statement
  // that writes: PostgreSQL evaluates such a filter before its plan produces the first row, so
  // every counter is locked, in segment order, before any member, event or counter is written.
  return sql`
    WITH locked AS (
      SELECT segment_id FROM segments WHERE account_id = ${account} AND segment_id = ANY(${changed}::text[])
      ORDER BY segment_id FOR NO KEY UPDATE
    ),
    ins AS (
      INSERT INTO segment_members (account_id, segment_id, record_id, record_created, date_entered)
      SELECT ${account}, e.segment_id, r.record_id, r.date_created, ${now}::timestamptz
      FROM unnest(${column(entered, 'segmentId')}, ${column(entered, 'recordId')}) AS e(segment_id, record_id)
      JOIN records r ON r.account_id = ${account} AND r.record_id = e.record_id
      WHERE (SELECT count(*) FROM locked) >= 0
      ON CONFLICT DO NOTHING
      RETURNING segment_id, record_id
    ),
    del AS (
      DELETE FROM segment_members m
      USING unnest(${column(exited, 'segmentId')}, ${column(exited, 'recordId')}) AS x(segment_id, record_id)
      WHERE m.account_id = ${account} AND m.segment_id = x.segment_id AND m.record_id = x.record_id
        AND (SELECT count(*) FROM locked) >= 0
      RETURNING m.segment_id, m.record_id
    ),
    events AS (
      INSERT INTO segment_events (account_id, segment_id, record_id, event_type, occurred_at)
      SELECT ${account}, segment_id, record_id, 'segment.entered', ${now}::timestamptz FROM ins
      UNION ALL
      SELECT ${account}, segment_id, record_id, 'segment.exited', ${now}::timestamptz FROM del
    ),
    deltas AS (
      SELECT segment_id, sum(d) AS d FROM (
        SELECT segment_id, 1 AS d FROM ins UNION ALL SELECT segment_id, -1 FROM del
      ) AS changes GROUP BY segment_id
    )
    UPDATE segments s SET member_count = s.member_count + deltas.d
    FROM deltas WHERE s.account_id = ${account} AND s.segment_id = deltas.segment_id
      AND (SELECT count(*) FROM locked) >= 0`;
}

/**
 * Rebuilds a segment's members from `matching` (a SELECT of record_id, record_created) in one statement: exits
 * for members that no longer match, entries for new matches, the exact count, lastEvaluatedAt.
 * `matching` undefined empties the segment (it stopped being maintained); lastEvaluatedAt is then cleared.
 */
export async function rebuildMembers(tenant: TenantDb, segmentId: string, matching: Expression<unknown> | undefined, now: Date, options: { events: boolean }): Promise<void> {
  const account = tenant.accountId;
  const source = matching ?? sql`SELECT NULL::text AS record_id, NULL::timestamptz AS record_created WHERE false`;
  // The difference comes from a FULL JOIN of what matches and what is stored: PostgreSQL runs a
  // FULL JOIN only as a hash or merge join, never as the nested loop its (JSONB-blind) row
  // estimates would otherwise pick for an anti-join, which made rebuilds quadratic.
  await tenant.executeRaw(sql`
    WITH matching AS MATERIALIZED (${source}),
    stored AS MATERIALIZED (
      SELECT record_id FROM segment_members WHERE account_id = ${account} AND segment_id = ${segmentId}
    ),
    diff AS MATERIALIZED (
      SELECT coalesce(matching.record_id, stored.record_id) AS record_id, matching.record_created,
             matching.record_id IS NOT NULL AS matched, stored.record_id IS NOT NULL AS member
      FROM matching FULL JOIN stored ON stored.record_id = matching.record_id
    ),
    del AS (
      DELETE FROM segment_members m USING diff
      WHERE m.account_id = ${account} AND m.segment_id = ${segmentId}
        AND m.record_id = diff.record_id AND diff.member AND NOT diff.matched
      RETURNING m.record_id
    ),
    ins AS (
      INSERT INTO segment_members (account_id, segment_id, record_id, record_created, date_entered)
      SELECT ${account}, ${segmentId}, record_id, record_created, ${now}::timestamptz FROM diff WHERE diff.matched AND NOT diff.member
      ON CONFLICT DO NOTHING
      RETURNING record_id
    ),
    events AS (
      INSERT INTO segment_events (account_id, segment_id, record_id, event_type, occurred_at)
      SELECT ${account}, ${segmentId}, record_id, 'segment.entered', ${now}::timestamptz FROM ins WHERE ${options.events}::boolean
      UNION ALL
      SELECT ${account}, ${segmentId}, record_id, 'segment.exited', ${now}::timestamptz FROM del WHERE ${options.events}::boolean
    )
    UPDATE segments SET member_count = (SELECT count(*) FROM diff WHERE diff.matched),
      last_evaluated_at = ${matching === undefined ? null : now}::timestamptz
    WHERE account_id = ${account} AND segment_id = ${segmentId}`);
}

/**
 * Up to this many members, a page in a sort other than dateCreated may read every member and
 * sort them (when the records' sort index finds no page quickly): a few thousand primary-key
 * lookups, where walking the sort index of 1 M records could reach the segment's records last.
 */
export const SORTED_MEMBERS_MAX = 5_000;

/** The members of a CACHED segment as a set to page through (records.repository.ts PageSet). */
export function memberSet(tenant: TenantDb, segment: Pick<SegmentRow, 'segment_id' | 'member_count'>): PageSet {
  return {
    rows: sql`(SELECT sm.record_id, sm.record_created FROM segment_members sm
      WHERE sm.account_id = ${tenant.accountId} AND sm.segment_id = ${segment.segment_id})`,
    filter: memberFilter(tenant, segment.segment_id),
    small: segment.member_count <= SORTED_MEMBERS_MAX,
  };
}

/** A records filter: the record is a member of the CACHED segment (embedded in records' own query). */
export function memberFilter(tenant: TenantDb, segmentId: string): RawBuilder<SqlBool> {
  return sql<SqlBool>`EXISTS (SELECT 1 FROM segment_members sm
    WHERE sm.account_id = ${tenant.accountId} AND sm.segment_id = ${segmentId} AND sm.record_id = records.record_id)`;
}

export function listEvents(tenant: TenantDb, segmentId: string, afterSeq: string | undefined, limit: number) {
  let query = tenant.selectFrom('segment_events').selectAll().where('segment_id', '=', segmentId);
  if (afterSeq !== undefined) query = query.where('seq', '>', afterSeq);
  return query.orderBy('seq').limit(limit).execute();
}
