import { sql, type RawBuilder, type SqlBool } from 'kysely';
import { errors } from '../../errors.ts';
import type { RecordField } from '../properties/properties.service.ts';
import { dataKey } from '../../query/data-key.ts';
import type { IndexedProperty } from './property-indexes.ts';
import { isId } from '../../lib/ids.ts';

/**
 * Sorting and keyset cursors. A page is "rows after the cursor's (sort value, record_id) in
 * sort order"; record IDs are unique, so no row is skipped or repeated while rows are inserted
 * or updated between pages, and page N costs what page 1 costs.
 *
 * Property values may be missing: those rows come after every valued row in both directions
 * (NULLs last), read as a second phase ordered by record_id alone. The cursor says which phase
 * it stopped in.
 */
export interface Sort {
  /** SQL of the sort key over `records`. */
  expr: RawBuilder<unknown>;
  direction: 'asc' | 'desc';
  /** Whether the key can be NULL (property values); system columns cannot. */
  nullable: boolean;
  /** Label that a cursor is bound to, so a cursor from another sort is refused. */
  label: string;
  /** Property sorts: the property (its sort indexes are built on demand, property-indexes.ts). */
  property?: IndexedProperty;
}

export interface Cursor {
  /**
   * The last row's sort value (null in the NULL phase): an ISO instant for the timestamps, the
   * lower-cased name, and for properties the JSON text of the jsonb value (`42`, `"2025-01-31"`).
   */
  value: string | number | null;
  recordId: string;
}

export function resolveSort(field: string | undefined, direction: 'asc' | 'desc' | undefined, fields: readonly RecordField[]): Sort {
  const dir = direction ?? 'desc';
  switch (field ?? 'dateCreated') {
    case 'dateCreated': return { expr: sql`records.date_created`, direction: dir, nullable: false, label: 'dateCreated' };
    case 'dateUpdated': return { expr: sql`records.date_updated`, direction: dir, nullable: false, label: 'dateUpdated' };
    // Code-point order (C collation): the same index serves the name sort and fulltext prefixes.
    case 'name': return { expr: sql`(lower(records.name) COLLATE "C")`, direction: dir, nullable: false, label: 'name' };
    default: {
      const property = isId('property', field!) ? fields.find((f) => f.propertyId === field) : undefined;
      if (!property) throw errors.validation(`sortField: "${String(field).slice(0, 64)}" is not dateCreated, dateUpdated, name or a property of this entity`, [{ path: 'sortField', message: 'unknown sort field' }]);
      // The jsonb value itself is the key (numbers compare numerically, strings by collation):
      // the same expression as the property's sort index (property-indexes.ts), and one that
      // cannot fail on any stored value, unlike a cast.
      const { propertyId, storageKey } = property;
      return { expr: sql`(records.data -> ${dataKey(storageKey)})`, direction: dir, nullable: true, label: propertyId, property: { propertyId, storageKey } };
    }
  }
}

export function encodeCursor(sort: Sort, cursor: Cursor): string {
  return Buffer.from(JSON.stringify([sort.label, cursor.value, cursor.recordId])).toString('base64url');
}

export function decodeCursor(sort: Sort, startKey: string | undefined): Cursor | undefined {
  if (startKey === undefined || startKey === '') return undefined;
  const invalid = () => errors.validation('startKey: not a nextKey of this list (or of another sort)', [{ path: 'startKey', message: 'invalid cursor' }]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(startKey, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== 3 || parsed[0] !== sort.label) throw invalid();
  const [, value, recordId] = parsed as [unknown, unknown, unknown];
  if (typeof recordId !== 'string' || recordId.length > 64) throw invalid();
  if (value !== null && typeof value !== 'string' && typeof value !== 'number') throw invalid();
  if (value === null && !sort.nullable) throw invalid();
  if (sort.property !== undefined && value !== null) {
    // A jsonb scalar's JSON text; anything else would only fail in SQL.
    if (typeof value !== 'string' || value.length > 4096) throw invalid();
    try {
      const parsed: unknown = JSON.parse(value);
      if (parsed === null) throw invalid();
    } catch {
      throw invalid();
    }
  }
  return { value, recordId };
}

const cmp = (sort: Sort) => sql.raw(sort.direction === 'asc' ? '>' : '<');
const dir = (sort: Sort) => sql.raw(sort.direction === 'asc' ? 'ASC' : 'DESC');

/**
 * The cursor comparisons lead with the entity, `(records.entity_id, key…) < (entity, cursor…)`,
 * which the query's `entity_id = entity` makes equivalent to `(key…) < (cursor…)`. Why: a
 * property's sort indexes are partial, `(account_id, entity_id, key, record_id) WHERE entity_id
 * = …`, and PostgreSQL drops the entity filter their predicate implies; a comparison without the
 * entity then cannot position the scan (the column before it is unbound), so a page deep in the
 * order read every index entry before the cursor: page 1,000 of a 1 M-record list, 121 ms in
 * `psql` against 4.8 ms with the entity in the row (docs/benchmarks.md, "Deep pages").
 *
 * Rows with a sort value, after the cursor (phase 1), in the entity's records.
 */
export function afterValued(sort: Sort, entityId: string, cursor: Cursor | undefined): RawBuilder<SqlBool> {
  const present = sort.nullable ? sql<SqlBool>`${sort.expr} IS NOT NULL` : sql<SqlBool>`TRUE`;
  if (!cursor) return present;
  if (cursor.value === null) return sql<SqlBool>`FALSE`; // the cursor is already in the NULL phase
  const value = sort.property !== undefined ? sql`${cursor.value}::jsonb`
    : sort.label === 'dateCreated' || sort.label === 'dateUpdated' ? sql`${cursor.value}::timestamptz` : sql`${cursor.value}`;
  return sql<SqlBool>`${present} AND (records.entity_id, ${sort.expr}, records.record_id) ${cmp(sort)} (${entityId}, ${value}, ${cursor.recordId})`;
}

/** Rows without a sort value, after the cursor (phase 2, nullable sorts only), in the entity's records. */
export function afterNull(sort: Sort, entityId: string, cursor: Cursor | undefined): RawBuilder<SqlBool> {
  const missing = sql<SqlBool>`${sort.expr} IS NULL`;
  if (!cursor || cursor.value !== null) return missing;
  return sql<SqlBool>`${missing} AND (records.entity_id, records.record_id) ${cmp(sort)} (${entityId}, ${cursor.recordId})`;
}

export function orderValued(sort: Sort): RawBuilder<unknown> {
  return sql`${sort.expr} ${dir(sort)}, records.record_id ${dir(sort)}`;
}

export function orderNull(sort: Sort): RawBuilder<unknown> {
  return sql`records.record_id ${dir(sort)}`;
}

/** What the page query selects as `sort_key` (for properties, the jsonb value's exact JSON text). */
export function cursorKey(sort: Sort): RawBuilder<unknown> {
  return sort.property !== undefined ? sql`(${sort.expr})::text` : sort.expr;
}

/** The cursor value of a row from the `sort_key` column the page query selects. */
export function cursorValue(sortKey: unknown): string | number | null {
  if (sortKey === null || sortKey === undefined) return null;
  if (sortKey instanceof Date) return sortKey.toISOString();
  return typeof sortKey === 'number' ? sortKey : String(sortKey);
}

/**
 * Scans (exports) walk an entity's records in (date_created, record_id) order, the
 * records_by_created index. The key keeps date_created to the microsecond (what the column
 * holds), so resuming after it neither repeats nor skips a row.
 */
export interface ScanKey {
  /** date_created as ISO-8601 UTC with microseconds. */
  at: string;
  recordId: string;
}

const SCAN_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export function encodeScanKey(key: ScanKey): string {
  return Buffer.from(JSON.stringify(['scan', key.at, key.recordId])).toString('base64url');
}

export function decodeScanKey(text: string | undefined): ScanKey | undefined {
  if (text === undefined || text === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 3 || parsed[0] !== 'scan' || typeof parsed[1] !== 'string' || !SCAN_AT.test(parsed[1])
    || typeof parsed[2] !== 'string' || parsed[2].length > 64) {
    throw errors.validation('startKey: not a key of this scan', [{ path: 'startKey', message: 'invalid scan key' }]);
  }
  return { at: parsed[1], recordId: parsed[2] };
}
