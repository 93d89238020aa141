import { errors, type ErrorDetail } from '../errors.ts';
import { parseInstant } from '../lib/iso-instant.ts';
import {
  FIELD_KIND, LIMITS, OPERATORS,
  type CatalogProperty, type Condition, type ConditionGroup, type FieldKind, type Operator, type ResolvedField,
} from './types.ts';
import { isRelationshipField, validateRelationshipCondition, type RelationshipField } from './relationship-conditions.ts';
import { isId } from '../lib/ids.ts';

/**
 * Parse + validate: unknown JSON → a condition tree whose every field exists on the entity,
 * whose operators fit the field's type and whose values fit the operator. Values come out
 * normalised (datetimes as `YYYY-MM-DDTHH:mm:ss.sssZ`, text lists deduplicated) so the compiler
 * and the in-memory evaluator never see anything else. Errors name the JSON path.
 */

const SYSTEM_FIELDS: Record<string, ResolvedField> = {
  name: { source: 'column', column: 'name', kind: 'text' },
  ownerId: { source: 'column', column: 'owner_id', kind: 'choice' },
  tags: { source: 'column', column: 'tags', kind: 'multi' },
  dateCreated: { source: 'column', column: 'date_created', kind: 'datetime' },
  dateUpdated: { source: 'column', column: 'date_updated', kind: 'datetime' },
};

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const NO_VALUE_OPERATORS = new Set<Operator>(['isEmpty', 'isNotEmpty']);
const DAY_OPERATORS = new Set<Operator>(['withinLastDays', 'withinNextDays', 'olderThanDays']);
const LIST_OPERATORS = new Set<Operator>(['in', 'notIn', 'hasAnyOf', 'hasAllOf', 'hasNoneOf']);

export type Catalog = ReadonlyMap<string, CatalogProperty> & {
  /** Relationship types usable as `relationship.<id>` fields (loaded on demand; relationship-conditions.ts). */
  readonly relationships?: ReadonlyMap<string, RelationshipField>;
};

export function catalogOf(properties: readonly CatalogProperty[]): Catalog {
  return new Map(properties.map((p) => [p.propertyId, p]));
}

class Invalid extends Error {
  readonly path: string;
  constructor(path: string, message: string) {
    super(message);
    this.path = path;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function resolveField(field: unknown, catalog: Catalog, path: string): ResolvedField {
  if (typeof field !== 'string') throw new Invalid(path, 'must be a string');
  const system = SYSTEM_FIELDS[field];
  if (system) return system;
  if (field.startsWith('data.')) {
    const propertyId = field.slice(5);
    const property = isId('property', propertyId) ? catalog.get(propertyId) : undefined;
    if (!property) throw new Invalid(path, `unknown property "${propertyId.slice(0, 64)}" on this entity`);
    return { source: 'data', propertyId, storageKey: property.storageKey, kind: FIELD_KIND[property.fieldType], optionValues: property.optionValues };
  }
  throw new Invalid(path, `unknown field "${field.slice(0, 64)}"; use name, tags, ownerId, dateCreated, dateUpdated, data.<propertyId> or relationship.<relationshipTypeId>`);
}

function validDate(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const m = DATE.exec(value);
  if (!m) return null;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]) ? value : null;
}

/** Any ISO-8601 instant, or a bare date meaning its UTC midnight; normalised to toISOString(). */
function validInstant(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const ms = validDate(value) ? Date.parse(`${value}T00:00:00.000Z`) : parseInstant(value);
  if (ms === null || Number.isNaN(ms)) return null;
  const iso = new Date(ms).toISOString();
  // Stored datetimes compare as text, which only orders correctly for four-digit years.
  return /^\d{4}-/.test(iso) ? iso : null;
}

function scalar(kind: FieldKind, value: unknown, field: ResolvedField, path: string): unknown {
  switch (kind) {
    case 'text':
      if (typeof value !== 'string') throw new Invalid(path, 'must be a string');
      if (value.length > LIMITS.maxTextLength) throw new Invalid(path, `must be at most ${LIMITS.maxTextLength} characters`);
      return value;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new Invalid(path, 'must be a finite number');
      return value;
    case 'date': {
      const date = validDate(value);
      if (!date) throw new Invalid(path, 'must be a date YYYY-MM-DD');
      return date;
    }
    case 'datetime': {
      const instant = validInstant(value);
      if (!instant) throw new Invalid(path, 'must be an ISO-8601 date-time (or YYYY-MM-DD for UTC midnight)');
      return instant;
    }
    case 'checkbox':
      if (typeof value !== 'boolean') throw new Invalid(path, 'must be true or false');
      return value;
    case 'choice':
    case 'multi': {
      if (typeof value !== 'string' || value.length === 0 || value.length > LIMITS.maxTextLength) {
        throw new Invalid(path, 'must be a non-empty string');
      }
      const options = field.source === 'data' ? field.optionValues : undefined;
      if (options && !options.includes(value)) {
        throw new Invalid(path, `"${value.slice(0, 64)}" is not an option of this property (${options.slice(0, 20).join(', ')})`);
      }
      return value;
    }
  }
}

function conditionValue(field: ResolvedField, operator: Operator, value: unknown, path: string): unknown {
  if (NO_VALUE_OPERATORS.has(operator)) {
    if (value !== undefined && value !== null) throw new Invalid(path, `${operator} takes no value`);
    return undefined;
  }
  if (DAY_OPERATORS.has(operator)) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 36_500) {
      throw new Invalid(path, `${operator} takes a whole number of days from 0 to 36500`);
    }
    return value;
  }
  if (operator === 'between') {
    if (!Array.isArray(value) || value.length !== 2) throw new Invalid(path, 'between takes [from, to]');
    const from = scalar(field.kind, value[0], field, `${path}[0]`);
    const to = scalar(field.kind, value[1], field, `${path}[1]`);
    if ((from as number | string) > (to as number | string)) throw new Invalid(path, 'between needs from ≤ to');
    return [from, to];
  }
  if (LIST_OPERATORS.has(operator)) {
    if (!Array.isArray(value) || value.length === 0) throw new Invalid(path, `${operator} takes a non-empty array`);
    if (value.length > LIMITS.maxListValues) throw new Invalid(path, `${operator} takes at most ${LIMITS.maxListValues} values`);
    const itemKind: FieldKind = field.kind === 'multi' ? 'multi' : field.kind;
    return [...new Set(value.map((item, i) => scalar(itemKind, item, field, `${path}[${i}]`)))];
  }
  return scalar(field.kind, value, field, path);
}

function condition(input: Record<string, unknown>, catalog: Catalog, path: string, depth = 1): Condition {
  if (isRelationshipField(input.field)) {
    // Its `where` is a group one level below the group holding the condition.
    return validateRelationshipCondition(input, catalog, path, {
      group: (where, related, wherePath) => group(where, related, wherePath, depth + 1),
      fail: (at, message) => { throw new Invalid(at, message); },
    });
  }
  for (const key of Object.keys(input)) {
    if (!['field', 'operator', 'value'].includes(key)) throw new Invalid(`${path}.${key}`, 'unknown key in a condition');
  }
  const field = resolveField(input.field, catalog, `${path}.field`);
  const operator = input.operator;
  const allowed = OPERATORS[field.kind] as readonly string[];
  if (typeof operator !== 'string' || !allowed.includes(operator)) {
    throw new Invalid(`${path}.operator`, `must be one of ${allowed.join(', ')} for this field`);
  }
  const value = conditionValue(field, operator as Operator, input.value, `${path}.value`);
  return value === undefined
    ? { field: input.field as string, operator: operator as Operator }
    : { field: input.field as string, operator: operator as Operator, value };
}

function group(input: unknown, catalog: Catalog, path: string, depth: number): ConditionGroup {
  if (!isPlainObject(input)) throw new Invalid(path, 'must be an object {operator, conditions}');
  if (depth > LIMITS.maxDepth) throw new Invalid(path, `groups nest at most ${LIMITS.maxDepth} levels deep`);
  for (const key of Object.keys(input)) {
    if (!['operator', 'conditions'].includes(key)) throw new Invalid(`${path}.${key}`, 'unknown key in a group');
  }
  if (input.operator !== 'AND' && input.operator !== 'OR') throw new Invalid(`${path}.operator`, 'must be AND or OR');
  if (!Array.isArray(input.conditions)) throw new Invalid(`${path}.conditions`, 'must be an array');
  if (input.conditions.length > LIMITS.maxConditionsPerGroup) {
    throw new Invalid(`${path}.conditions`, `at most ${LIMITS.maxConditionsPerGroup} conditions per group`);
  }
  return {
    operator: input.operator,
    conditions: input.conditions.map((item, i) => {
      const itemPath = `${path}.conditions[${i}]`;
      if (!isPlainObject(item)) throw new Invalid(itemPath, 'must be a condition or a group');
      return 'conditions' in item || ('operator' in item && !('field' in item))
        ? group(item, catalog, itemPath, depth + 1)
        : condition(item, catalog, itemPath, depth);
    }),
  };
}

function asValidationError<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof Invalid) {
      const detail: ErrorDetail = { path: error.path, message: error.message };
      throw errors.validation(`${error.path}: ${error.message}`, [detail]);
    }
    throw error;
  }
}

/** Validates a condition group; throws 400 ValidationError naming the JSON path. */
export function validateConditionGroup(input: unknown, catalog: Catalog, path = 'conditionGroup'): ConditionGroup {
  return asValidationError(() => group(input, catalog, path, 1));
}

/** Validates one condition `{field, operator, value}` (e.g. an entry of GET /records `filters`). */
export function validateCondition(input: unknown, catalog: Catalog, path: string): Condition {
  return asValidationError(() => {
    if (!isPlainObject(input)) throw new Invalid(path, 'must be a condition object');
    return condition(input, catalog, path);
  });
}

/** Every condition of a validated tree, depth first. */
export function conditionsOf(group: ConditionGroup): Condition[] {
  return group.conditions.flatMap((node) => ('conditions' in node ? conditionsOf(node) : [node]));
}

/** Resolves a validated condition's field (the catalog is the one it was validated against). */
export function fieldOf(condition: Condition, catalog: Catalog): ResolvedField {
  return resolveField(condition.field, catalog, 'field');
}
