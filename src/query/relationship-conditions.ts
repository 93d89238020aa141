import { sql, type RawBuilder, type SqlBool } from 'kysely';
import { errors } from '../errors.ts';
import type { EvaluableRecord } from './evaluate.ts';
import { RELATIONSHIP_OPERATORS, type Condition, type ConditionGroup, type RelationshipOperator } from './types.ts';
import type { Catalog } from './validate.ts';

/**
 * `relationship.<relationshipTypeId>` conditions (API.md §6 [X]): records that have (`exists`),
 * lack (`notExists`), or have at least / at most n (`countGte`, `countLte`) live related records
 * of a type, optionally counting only the related records that match a nested `where` group.
 *
 *   { "field": "relationship.CRMRT1…", "operator": "countGte", "value": 3,
 *     "where": { "operator": "AND", "conditions": [{ "field": "data.CRMPP1…", "operator": "eq", "value": "NEGOTIATION" }] } }
 *
 * validate.ts, compile.ts and evaluate.ts hand these conditions to this file. What a type means
 * for an entity (which side it is on, the related entity's properties) is loaded by the
 * relationships module before validation and travels in the catalog (`catalog.relationships`).
 *
 * Semantics: only live related records count (a trashed record's links are hidden, API.md §5), and
 * for a workspace-bound caller only its workspace's and account-wide links;
 * for a type from an entity to itself both directions count; `where` is a group over the related
 * record with the full condition language except further relationship conditions (one hop).
 */

export type RelationshipSide = 'source' | 'target';

/** What a relationship type is for the filtered entity. */
export interface RelationshipField {
  relationshipTypeId: string;
  /** The side(s) of the type the filtered entity is on: both for a type from an entity to itself. */
  sides: readonly RelationshipSide[];
  /** The related entity's properties, for `where`; carries no relationships (no second hop). */
  related: Catalog;
  /** Related properties the caller may not filter on (masked ones, for MEMBERs): 403 in `where`. */
  masked: ReadonlySet<string>;
  /** The caller's workspace: only its links and account-wide ones count (absent or null: all). */
  workspaceId?: string | null;
}

const PREFIX = 'relationship.';
const TYPE_ID = /^CRMRT1\d{15}[A-Za-z0-9]{11}$/;
/** countGte/countLte take 0…MAX_COUNT. */
export const MAX_COUNT = 100_000;

export function isRelationshipField(field: unknown): field is string {
  return typeof field === 'string' && field.startsWith(PREFIX);
}

/** The catalog with the relationship types conditions may use. */
export function withRelationships(catalog: Catalog, relationships: ReadonlyMap<string, RelationshipField>): Catalog {
  return Object.assign(new Map(catalog), { relationships });
}

/**
 * The relationship type IDs a raw, unvalidated input names — as a condition's `field` or as a key
 * of a `filters` object — so that exactly those types are loaded before validation. Bounded: the
 * input is a request body, and validation refuses anything deeper anyway.
 */
export function relationshipTypeIdsIn(input: unknown): string[] {
  const found = new Set<string>();
  const visit = (value: unknown, depth: number): void => {
    if (depth > 20 || typeof value !== 'object' || value === null || found.size >= 100) return;
    if (Array.isArray(value)) {
      for (const item of value) visit(item, depth + 1);
      return;
    }
    for (const [key, item] of Object.entries(value)) {
      const named = key === 'field' ? item : key;
      if (isRelationshipField(named) && TYPE_ID.test(named.slice(PREFIX.length))) found.add(named.slice(PREFIX.length));
      visit(item, depth + 1);
    }
  };
  visit(input, 0);
  return [...found];
}

/** How validate.ts lends its group validator and its error type. */
export interface NestedValidation {
  group(input: unknown, catalog: Catalog, path: string): ConditionGroup;
  fail(path: string, message: string): never;
}

function fieldsIn(group: ConditionGroup): string[] {
  return group.conditions.flatMap((node) => ('conditions' in node ? fieldsIn(node) : [node.field]));
}

export function validateRelationshipCondition(input: Record<string, unknown>, catalog: Catalog, path: string, nested: NestedValidation): Condition {
  for (const key of Object.keys(input)) {
    if (!['field', 'operator', 'value', 'where'].includes(key)) nested.fail(`${path}.${key}`, 'unknown key in a relationship condition');
  }
  const field = input.field as string;
  const typeId = field.slice(PREFIX.length);
  const rel = TYPE_ID.test(typeId) ? catalog.relationships?.get(typeId) : undefined;
  if (!rel) {
    nested.fail(`${path}.field`, path.includes('.where')
      ? 'relationship conditions cannot be nested inside a relationship\'s where (one hop only)'
      : `"${typeId.slice(0, 64)}" is not a relationship type of this entity (one whose entities are both live and visible to you)`);
  }
  const operator = input.operator;
  if (typeof operator !== 'string' || !(RELATIONSHIP_OPERATORS as readonly string[]).includes(operator)) {
    nested.fail(`${path}.operator`, `must be one of ${RELATIONSHIP_OPERATORS.join(', ')} for a relationship`);
  }
  const counted = operator === 'countGte' || operator === 'countLte';
  const value = input.value;
  if (counted && (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_COUNT)) {
    nested.fail(`${path}.value`, `${operator} takes a whole number from 0 to ${MAX_COUNT}`);
  }
  if (!counted && value !== undefined && value !== null) nested.fail(`${path}.value`, `${operator} takes no value`);

  const out: Condition = { field, operator: operator as RelationshipOperator, ...(counted ? { value } : {}) };
  if (input.where !== undefined && input.where !== null) {
    const where = nested.group(input.where, rel.related, `${path}.where`);
    const masked = fieldsIn(where).find((f) => rel.masked.has(f.replace(/^data\./, '')));
    if (masked) throw errors.forbidden(`Property ${masked.replace(/^data\./, '')} is masked: filtering on it needs the ADMIN role.`);
    out.where = where;
  }
  return out;
}

function relationshipFieldOf(condition: Condition, catalog: Catalog): RelationshipField {
  const rel = catalog.relationships?.get(condition.field.slice(PREFIX.length));
  if (!rel) throw new Error('refusing to use an unvalidated relationship condition');
  return rel;
}

/** Compiles a nested `where` over the related record (alias given), with compile.ts's compiler. */
export type CompileWhere = (where: ConditionGroup, catalog: Catalog, alias: string) => RawBuilder<SqlBool>;

const RELATED = 'rel_record';

/**
 * The related live records of one direction, each as the filtered record's ID (`rel_mine`):
 * links of the type joined to the records at their other end. `scope` picks the filtered records:
 * the one outer row (correlated), or every record of an account (the set form).
 */
function linksOf(side: RelationshipSide, rel: RelationshipField, scope: { account: RawBuilder<unknown>; mine?: RawBuilder<unknown> }, where: RawBuilder<SqlBool>): RawBuilder<unknown> {
  const [mine, theirs] = side === 'source' ? ['source_record_id', 'target_record_id'] : ['target_record_id', 'source_record_id'];
  const workspaceId = rel.workspaceId ?? null;
  const inWorkspace = workspaceId === null ? sql`TRUE` : sql`(rel_link.workspace_id = ${workspaceId} OR rel_link.workspace_id IS NULL)`;
  const one = scope.mine === undefined ? sql`TRUE` : sql`${sql.ref(`rel_link.${mine}`)} = ${scope.mine}`;
  return sql`SELECT ${sql.ref(`rel_link.${mine}`)} AS rel_mine FROM relationships AS rel_link
    JOIN records AS ${sql.raw(RELATED)} ON ${sql.ref(`${RELATED}.account_id`)} = rel_link.account_id AND ${sql.ref(`${RELATED}.record_id`)} = ${sql.ref(`rel_link.${theirs}`)}
    WHERE rel_link.account_id = ${scope.account} AND rel_link.relationship_type_id = ${rel.relationshipTypeId}
      AND ${one} AND NOT ${sql.ref(`${RELATED}.is_deleted`)} AND ${inWorkspace} AND ${where}`;
}

/**
 * The record's links of the type, on its side(s), counted up to `limit`: index entries only
 * (relationships_link_key, relationships_by_target), no related record read. Whatever the other
 * end (trashed, outside the caller's workspace, failing `where`), so it bounds the count a
 * condition means from above.
 */
function linkCountUpTo(rel: RelationshipField, alias: string, limit: number): RawBuilder<unknown> {
  const selects = rel.sides.map((side) => sql`SELECT 1 FROM relationships AS rel_any
    WHERE rel_any.account_id = ${sql.ref(`${alias}.account_id`)} AND rel_any.relationship_type_id = ${rel.relationshipTypeId}
      AND ${sql.ref(`rel_any.${side === 'source' ? 'source_record_id' : 'target_record_id'}`)} = ${sql.ref(`${alias}.record_id`)}`);
  return sql`(SELECT count(*) FROM (${sql.join(selects, sql` UNION ALL `)} LIMIT ${limit}) AS rel_any_hits)`;
}

/**
 * exists / notExists → EXISTS per direction. countGte n / countLte n → a count that stops at n
 * (or n + 1) related records: a record with 10,000 links costs what one with n costs.
 *
 * The counts are decided by the links alone first where they can be: a record with fewer than n
 * links cannot have n matching ones, and one with at most n has at most n. Only the others read
 * their related records. Without that, a rare count condition ("≥ 216 deals in NEGOTIATION")
 * read every related record of every record it was checked on: 19 s for 100 k companies with
 * 1 M deals (docs/benchmarks.md).
 */
export function relationshipConditionSql(condition: Condition, catalog: Catalog, alias: string, compileWhere: CompileWhere): RawBuilder<SqlBool> {
  const rel = relationshipFieldOf(condition, catalog);
  const where = condition.where ? compileWhere(condition.where, rel.related, RELATED) : sql<SqlBool>`TRUE`;
  // account_id is taken from the outer row, which its own query has scoped to the tenant: the
  // subquery can never reach another account's links.
  const scope = { account: sql.ref(`${alias}.account_id`), mine: sql.ref(`${alias}.record_id`) };
  const selects = rel.sides.map((side) => linksOf(side, rel, scope, where));
  const exists = sql<SqlBool>`(${sql.join(selects.map((s) => sql`EXISTS (${s})`), sql` OR `)})`;
  const union = sql.join(selects, sql` UNION ALL `);
  const n = condition.value as number;
  switch (condition.operator as RelationshipOperator) {
    case 'exists': return exists;
    case 'notExists': return sql<SqlBool>`NOT ${exists}`;
    case 'countGte': return sql<SqlBool>`(${linkCountUpTo(rel, alias, n)} >= ${n} AND (SELECT count(*) FROM (${union} LIMIT ${n}) AS rel_hits) >= ${n})`;
    case 'countLte': return sql<SqlBool>`(${linkCountUpTo(rel, alias, n + 1)} <= ${n} OR (SELECT count(*) FROM (${union} LIMIT ${n + 1}) AS rel_hits) <= ${n})`;
  }
}

/**
 * The same condition for a statement over every record of the entity (compile.ts, wholeEntity):
 * the records it holds for, as one set computed for the account — the links of the type joined to
 * their live related records, grouped by the filtered record where a count is asked — then a
 * semi-join (exists, countGte) or an anti-join (notExists, countLte) with it. Counting companies
 * with "≥ 3 deals in NEGOTIATION" reads each link once this way, instead of each company's links
 * per company: at 20 k companies × 200 k deals, 0.23 s against 1.0–1.4 s (docs/benchmarks.md).
 * Only as a conjunct of the statement's WHERE: inside an OR PostgreSQL would run it as a subplan.
 */
export function relationshipSetSql(condition: Condition, catalog: Catalog, alias: string, accountId: string, compileWhere: CompileWhere): RawBuilder<SqlBool> {
  const rel = relationshipFieldOf(condition, catalog);
  const where = condition.where ? compileWhere(condition.where, rel.related, RELATED) : sql<SqlBool>`TRUE`;
  const hits = sql.join(rel.sides.map((side) => linksOf(side, rel, { account: sql`${accountId}` }, where)), sql` UNION ALL `);
  const id = sql.ref(`${alias}.record_id`);
  const grouped = (having: RawBuilder<SqlBool>) => sql`SELECT rel_mine FROM (${hits}) AS rel_hits GROUP BY rel_mine HAVING ${having}`;
  const n = condition.value as number;
  switch (condition.operator as RelationshipOperator) {
    case 'exists': return sql<SqlBool>`${id} IN (SELECT rel_mine FROM (${hits}) AS rel_hits)`;
    case 'notExists': return sql<SqlBool>`NOT EXISTS (SELECT 1 FROM (${hits}) AS rel_hits WHERE rel_hits.rel_mine = ${id})`;
    case 'countGte': return n === 0 ? sql<SqlBool>`TRUE` : sql<SqlBool>`${id} IN (${grouped(sql`count(*) >= ${n}`)})`;
    case 'countLte': return sql<SqlBool>`NOT EXISTS (SELECT 1 FROM (${grouped(sql`count(*) > ${n}`)}) AS rel_over WHERE rel_over.rel_mine = ${id})`;
  }
}

/** The same, in memory: `record.related[typeId]` lists the live related records (both directions). */
export function evaluateRelationshipCondition(
  condition: Condition,
  record: EvaluableRecord,
  catalog: Catalog,
  evaluateWhere: (where: ConditionGroup, related: EvaluableRecord, catalog: Catalog) => boolean,
): boolean {
  const rel = relationshipFieldOf(condition, catalog);
  const related = record.related?.[rel.relationshipTypeId] ?? [];
  const where = condition.where;
  const n = where ? related.filter((r) => evaluateWhere(where, r, rel.related)).length : related.length;
  switch (condition.operator as RelationshipOperator) {
    case 'exists': return n > 0;
    case 'notExists': return n === 0;
    case 'countGte': return n >= (condition.value as number);
    case 'countLte': return n <= (condition.value as number);
  }
}
