import { fieldOf, type Catalog } from './validate.ts';
import type { Condition, ConditionGroup, ResolvedField } from './types.ts';
import { evaluateRelationshipCondition, isRelationshipField } from './relationship-conditions.ts';

/**
 * The condition language evaluated in memory, with exactly the semantics of compile.ts. It is
 * the oracle of the property-based test (SQL result = this result) and explains, node by node,
 * why a record is or is not in a segment.
 */
export interface EvaluableRecord {
  name: string;
  ownerId: string | null;
  tags: readonly string[];
  dateCreated: string;
  dateUpdated: string;
  data: Readonly<Record<string, unknown>>;
  /** Live related records by relationship type ID (both directions), for relationship conditions. */
  related?: Readonly<Record<string, readonly EvaluableRecord[]>>;
}

const DAY_MS = 86_400_000;

function read(field: ResolvedField, record: EvaluableRecord): unknown {
  if (field.source === 'data') return record.data[field.propertyId] ?? null;
  switch (field.column) {
    case 'name': return record.name;
    case 'owner_id': return record.ownerId;
    case 'tags': return record.tags;
    case 'date_created': return record.dateCreated;
    case 'date_updated': return record.dateUpdated;
  }
}

const lower = (s: string) => s.toLowerCase();

function text(v: unknown, operator: Condition['operator'], value: unknown): boolean {
  const s = typeof v === 'string' ? v : null;
  const q = typeof value === 'string' ? lower(value) : '';
  switch (operator) {
    case 'eq': return s !== null && lower(s) === q;
    case 'neq': return s === null || lower(s) !== q;
    case 'contains': return s !== null && lower(s).includes(q);
    case 'notContains': return s === null || !lower(s).includes(q);
    case 'startsWith': return s !== null && lower(s).startsWith(q);
    case 'endsWith': return s !== null && lower(s).endsWith(q);
    case 'in': return s !== null && (value as string[]).some((x) => lower(x) === lower(s));
    case 'notIn': return s === null || !(value as string[]).some((x) => lower(x) === lower(s));
    case 'isEmpty': return s === null || s === '';
    case 'isNotEmpty': return s !== null && s !== '';
    default: return false;
  }
}

/** Datetimes compare as instants; everything else ordered compares as stored. */
function ordered(v: unknown, operator: Condition['operator'], value: unknown, key: (x: unknown) => number | string): boolean {
  if (operator === 'isEmpty') return v === null;
  if (operator === 'isNotEmpty') return v !== null;
  const x = v === null ? null : key(v);
  switch (operator) {
    case 'eq': return x !== null && x === key(value);
    case 'neq': return x === null || x !== key(value);
    case 'gt': return x !== null && x > key(value);
    case 'gte': return x !== null && x >= key(value);
    case 'lt': return x !== null && x < key(value);
    case 'lte': return x !== null && x <= key(value);
    case 'between': {
      const [from, to] = value as [unknown, unknown];
      return x !== null && x >= key(from) && x <= key(to);
    }
    case 'in': return x !== null && (value as unknown[]).some((y) => key(y) === x);
    case 'notIn': return x === null || !(value as unknown[]).some((y) => key(y) === x);
    default: return false;
  }
}

function relative(operator: Condition['operator'], days: number, now: number, kind: 'date' | 'datetime'): { operator: Condition['operator']; value: unknown } {
  const at = (ms: number) => (kind === 'date' ? new Date(ms).toISOString().slice(0, 10) : new Date(ms).toISOString());
  if (operator === 'withinLastDays') return { operator: 'between', value: [at(now - days * DAY_MS), at(now)] };
  if (operator === 'withinNextDays') return { operator: 'between', value: [at(now), at(now + days * DAY_MS)] };
  return { operator: 'lt', value: at(now - days * DAY_MS) };
}

export function evaluateCondition(condition: Condition, record: EvaluableRecord, catalog: Catalog, now: number): boolean {
  if (isRelationshipField(condition.field)) {
    return evaluateRelationshipCondition(condition, record, catalog, (where, related, relatedCatalog) => evaluateGroup(where, related, relatedCatalog, now));
  }
  const field = fieldOf(condition, catalog);
  const v = read(field, record);
  const { operator, value } = condition;
  switch (field.kind) {
    case 'text':
      return text(v, operator, value);
    case 'choice':
      return operator === 'isEmpty' || operator === 'isNotEmpty' ? text(v, operator, value) : ordered(v, operator, value, String);
    case 'number':
      return ordered(v, operator, value, Number);
    case 'date':
    case 'datetime': {
      const key = field.kind === 'datetime' ? (x: unknown) => Date.parse(String(x)) : String;
      if (operator === 'withinLastDays' || operator === 'withinNextDays' || operator === 'olderThanDays') {
        const range = relative(operator, value as number, now, field.kind);
        return ordered(v, range.operator, range.value, key);
      }
      return ordered(v, operator, value, key);
    }
    case 'checkbox':
      if (operator === 'eq') return v === value;
      return operator === 'isEmpty' ? v === null : v !== null;
    case 'multi': {
      const have = Array.isArray(v) ? (v as string[]) : [];
      const wanted = (value as string[] | undefined) ?? [];
      switch (operator) {
        case 'hasAnyOf': return wanted.some((x) => have.includes(x));
        case 'hasAllOf': return wanted.every((x) => have.includes(x));
        case 'hasNoneOf': return !wanted.some((x) => have.includes(x));
        case 'isEmpty': return have.length === 0;
        case 'isNotEmpty': return have.length > 0;
        default: return false;
      }
    }
  }
}

export function evaluateGroup(group: ConditionGroup, record: EvaluableRecord, catalog: Catalog, now: number): boolean {
  const results = group.conditions.map((node) =>
    'conditions' in node ? evaluateGroup(node, record, catalog, now) : evaluateCondition(node, record, catalog, now));
  return group.operator === 'AND' ? results.every(Boolean) : results.some(Boolean);
}
