import { sql, type RawBuilder, type SqlBool } from 'kysely';
import type { Catalog } from './validate.ts';
import { fieldOf } from './validate.ts';
import type { Condition, ConditionGroup, ResolvedField } from './types.ts';
import { isRelationshipField, relationshipConditionSql, relationshipSetSql } from './relationship-conditions.ts';
import { dataKey } from './data-key.ts';

/**
 * Validated condition tree → one parameterised SQL boolean over a records row.
 *
 * Every value is a bound parameter. The only text spliced into the SQL is a property's storage
 * key, resolved from a property validated to be of this entity, and only in one of its two shapes
 * (data-key.ts): a literal key (`data->>'k'`) is what lets PostgreSQL use expression indexes on it.
 *
 * Semantics (docs/query-language.md): text matching is case-insensitive; negative operators
 * (neq, notIn, notContains, hasNoneOf) include records that have no value; isEmpty covers a
 * missing value, '' and []; relative dates are evaluated in UTC against `now`.
 */
export interface CompileOptions {
  /** The SQL alias of the records table. */
  alias?: string;
  /** Epoch ms that relative date operators count from. */
  now: number;
  /**
   * For a statement that evaluates the group on every record of the entity (counts, rebuilds,
   * aggregates) in its WHERE clause, never in a select list or per record: relationship
   * conditions reached through AND only become semi/anti-joins on the records that match them,
   * computed once for the account (relationship-conditions.ts, relationshipSetSql).
   */
  wholeEntity?: { accountId: string };
}

type Resolved = Required<Omit<CompileOptions, 'wholeEntity'>> & Pick<CompileOptions, 'wholeEntity'>;

const DAY_MS = 86_400_000;
/** `%`, `_` and `\` are wildcards/escape in LIKE patterns; a user's text must match literally. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

const list = (values: readonly unknown[]) => sql.join(values.map((v) => sql`${v}`));
const textArray = (values: readonly unknown[]) => sql`ARRAY[${list(values)}]::text[]`;

function dayString(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The field as SQL, in the form its kind is compared in. */
function operand(field: ResolvedField, alias: string) {
  if (field.source === 'column') return sql.ref(`${alias}.${field.column}`);
  const key = dataKey(field.storageKey);
  const data = sql.ref(`${alias}.data`);
  switch (field.kind) {
    case 'number':
      return sql`(${data}->>${key})::numeric`;
    case 'checkbox':
    case 'multi':
      return sql`(${data}->${key})`;
    default:
      return sql`(${data}->>${key})`;
  }
}

/**
 * No character of `s` has a case (Hangul, CJK, digits, punctuation): no other text lower-cases to
 * it, so `lower(x) = s` holds exactly when `x = s`, and the comparison skips a lower() per row
 * (~90 ms of a count over 1 M records, against ~40 ms for the plain comparison).
 */
const caseless = (s: string) => s.toLowerCase() === s && s.toUpperCase() === s;

function textCondition(v: RawBuilder<unknown>, operator: Condition['operator'], value: unknown): RawBuilder<SqlBool> {
  const plain = Array.isArray(value) ? value.every((s: string) => caseless(s)) : typeof value === 'string' && caseless(value);
  const folded = plain ? v : sql`lower(${v})`;
  const other = plain ? sql`${value}` : sql`lower(${value})`;
  switch (operator) {
    case 'eq': return sql`${folded} = ${other}`;
    case 'neq': return sql`(${v} IS NULL OR ${folded} <> ${other})`;
    case 'contains': return sql`${v} ILIKE ${`%${escapeLike(value as string)}%`}`;
    case 'notContains': return sql`(${v} IS NULL OR ${v} NOT ILIKE ${`%${escapeLike(value as string)}%`})`;
    case 'startsWith': return sql`${v} ILIKE ${`${escapeLike(value as string)}%`}`;
    case 'endsWith': return sql`${v} ILIKE ${`%${escapeLike(value as string)}`}`;
    case 'in': return sql`${folded} IN (${list((value as string[]).map((s) => s.toLowerCase()))})`;
    case 'notIn': return sql`(${v} IS NULL OR ${folded} NOT IN (${list((value as string[]).map((s) => s.toLowerCase()))}))`;
    case 'isEmpty': return sql`(${v} IS NULL OR ${v} = '')`;
    case 'isNotEmpty': return sql`(${v} IS NOT NULL AND ${v} <> '')`;
    default: throw new Error(`operator ${operator} is not for text`);
  }
}

/** Numbers, option values, dates (as YYYY-MM-DD text) and datetimes share the ordered operators. */
function orderedCondition(v: RawBuilder<unknown>, operator: Condition['operator'], value: unknown, cast: (x: unknown) => RawBuilder<unknown>): RawBuilder<SqlBool> {
  switch (operator) {
    case 'eq': return sql`${v} = ${cast(value)}`;
    case 'neq': return sql`(${v} IS NULL OR ${v} <> ${cast(value)})`;
    case 'gt': return sql`${v} > ${cast(value)}`;
    case 'gte': return sql`${v} >= ${cast(value)}`;
    case 'lt': return sql`${v} < ${cast(value)}`;
    case 'lte': return sql`${v} <= ${cast(value)}`;
    case 'between': {
      const [from, to] = value as [unknown, unknown];
      return sql`(${v} >= ${cast(from)} AND ${v} <= ${cast(to)})`;
    }
    case 'in': return sql`${v} IN (${sql.join((value as unknown[]).map(cast))})`;
    case 'notIn': return sql`(${v} IS NULL OR ${v} NOT IN (${sql.join((value as unknown[]).map(cast))}))`;
    case 'isEmpty': return sql`${v} IS NULL`;
    case 'isNotEmpty': return sql`${v} IS NOT NULL`;
    default: throw new Error(`operator ${operator} is not ordered`);
  }
}

/** withinLastDays/withinNextDays/olderThanDays → a range on the same scale as the stored values. */
function relativeRange(operator: Condition['operator'], days: number, now: number, kind: 'date' | 'datetime'): { operator: 'between' | 'lt'; value: unknown } {
  const at = (ms: number) => (kind === 'date' ? dayString(ms) : new Date(ms).toISOString());
  switch (operator) {
    case 'withinLastDays': return { operator: 'between', value: [at(now - days * DAY_MS), at(now)] };
    case 'withinNextDays': return { operator: 'between', value: [at(now), at(now + days * DAY_MS)] };
    default: return { operator: 'lt', value: at(now - days * DAY_MS) };
  }
}

function conditionSql(condition: Condition, catalog: Catalog, options: Resolved, conjunct: boolean): RawBuilder<SqlBool> {
  if (isRelationshipField(condition.field)) {
    const compileWhere = (where: ConditionGroup, related: Catalog, alias: string) => compileConditionGroup(where, related, { alias, now: options.now });
    // Inside an OR (or a NOT) a semi-join cannot be planned as one: the set form is for conjuncts.
    return options.wholeEntity && conjunct
      ? relationshipSetSql(condition, catalog, options.alias, options.wholeEntity.accountId, compileWhere)
      : relationshipConditionSql(condition, catalog, options.alias, compileWhere);
  }
  const field = fieldOf(condition, catalog);
  const v = operand(field, options.alias);
  const { operator, value } = condition;
  const plain = (x: unknown) => sql`${x}`;
  switch (field.kind) {
    case 'text':
      return textCondition(v, operator, value);
    case 'number':
      return orderedCondition(v, operator, value, plain);
    case 'choice':
      return operator === 'isEmpty' || operator === 'isNotEmpty'
        ? textCondition(v, operator, value)
        : orderedCondition(v, operator, value, plain);
    case 'date':
    case 'datetime': {
      // System timestamps are timestamptz columns; stored property values are normalised text.
      const cast = field.source === 'column' ? (x: unknown) => sql`${x}::timestamptz` : plain;
      if (operator === 'withinLastDays' || operator === 'withinNextDays' || operator === 'olderThanDays') {
        const range = relativeRange(operator, value as number, options.now, field.kind);
        return orderedCondition(v, range.operator, range.value, cast);
      }
      return orderedCondition(v, operator, value, cast);
    }
    case 'checkbox':
      if (operator === 'eq') return sql`${v} = ${sql.raw(value ? `'true'::jsonb` : `'false'::jsonb`)}`;
      return operator === 'isEmpty' ? sql`${v} IS NULL` : sql`${v} IS NOT NULL`;
    case 'multi': {
      const isArrayColumn = field.source === 'column';
      const empty = isArrayColumn ? sql<SqlBool>`cardinality(${v}) = 0` : sql<SqlBool>`(${v} IS NULL OR ${v} = '[]'::jsonb)`;
      const any = () => (isArrayColumn ? sql<SqlBool>`${v} && ${textArray(value as string[])}` : sql<SqlBool>`${v} ?| ${textArray(value as string[])}`);
      switch (operator) {
        case 'hasAnyOf': return any();
        case 'hasAllOf': return isArrayColumn ? sql`${v} @> ${textArray(value as string[])}` : sql`${v} ?& ${textArray(value as string[])}`;
        case 'hasNoneOf': return isArrayColumn ? sql<SqlBool>`NOT (${any()})` : sql<SqlBool>`(${v} IS NULL OR NOT (${any()}))`;
        case 'isEmpty': return empty;
        case 'isNotEmpty': return sql`NOT ${empty}`;
        default: throw new Error(`operator ${operator} is not for multi-choice`);
      }
    }
  }
}

function isGroup(node: Condition | ConditionGroup): node is ConditionGroup {
  return 'conditions' in node;
}

/** Compiles a validated group (see validateConditionGroup) to a SQL boolean. */
export function compileConditionGroup(group: ConditionGroup, catalog: Catalog, options: CompileOptions): RawBuilder<SqlBool> {
  return groupSql(group, catalog, { alias: options.alias ?? 'records', now: options.now, wholeEntity: options.wholeEntity }, true);
}

/** `conjunct`: the group is reached from the root through AND groups only (the root is). */
function groupSql(group: ConditionGroup, catalog: Catalog, resolved: Resolved, conjunct: boolean): RawBuilder<SqlBool> {
  const inner = conjunct && (group.operator === 'AND' || group.conditions.length === 1);
  const parts = group.conditions.map((node) =>
    isGroup(node) ? groupSql(node, catalog, resolved, inner) : conditionSql(node, catalog, resolved, inner));
  // An empty AND matches everything, an empty OR nothing (the identities of each operator).
  if (parts.length === 0) return group.operator === 'AND' ? sql<SqlBool>`TRUE` : sql<SqlBool>`FALSE`;
  return sql<SqlBool>`(${sql.join(parts, sql.raw(group.operator === 'AND' ? ' AND ' : ' OR '))})`;
}
