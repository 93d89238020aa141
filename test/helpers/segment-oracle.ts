/**
 * An independent oracle for segment membership: the condition language of API.md §6, evaluated
 * here in plain TypeScript over records read back through the API, with no code from src/ (not
 * the SQL compiler, not src/query/evaluate.ts, not the validator). It also decides whether rules
 * still fit the current definitions (a segment whose rules no longer fit is invalid and matches
 * nothing, docs/segments.md "isValid"), so a test can check stored CACHED members, the REALTIME
 * evaluation and this against one another.
 *
 * Covered: the text, NUMBER, choice (DROPDOWN/RADIO) and multi (tags/MULTI_CHECKBOX) operators,
 * `name` and `tags`, and relationship conditions with `where`. Dates and ownerId are not: the
 * consistency test does not use them, and a condition on them is reported as unsupported rather
 * than guessed.
 */

export type OracleFieldType = 'TEXT' | 'NUMBER' | 'DROPDOWN';

export interface OracleProperty {
  fieldType: OracleFieldType;
  /** Option values (DROPDOWN). */
  options?: readonly string[];
}

export interface OracleRecord {
  recordId: string;
  name: string;
  tags: readonly string[];
  data: Readonly<Record<string, unknown>>;
}

/** A live entity: its live properties (by ID) and its live records. */
export interface OracleEntity {
  properties: ReadonlyMap<string, OracleProperty>;
  records: readonly OracleRecord[];
}

export interface OracleType {
  sourceEntityId: string;
  targetEntityId: string;
  links: readonly { source: string; target: string }[];
}

export interface OracleWorld {
  /** Live entities only: a trashed entity is absent (its records, links and types are out of sight). */
  entities: ReadonlyMap<string, OracleEntity>;
  /** Relationship types that exist. */
  types: ReadonlyMap<string, OracleType>;
}

export interface Group { operator: 'AND' | 'OR'; conditions: (Group | Condition)[] }
export interface Condition { field: string; operator: string; value?: unknown; where?: Group }

export type Verdict = { valid: true; members: string[] } | { valid: false; reason: string };

type Kind = 'text' | 'number' | 'choice' | 'multi';

/** API.md §6: the operators each kind of field takes. */
const OPERATORS: Record<Kind, readonly string[]> = {
  text: ['eq', 'neq', 'contains', 'notContains', 'startsWith', 'endsWith', 'in', 'notIn', 'isEmpty', 'isNotEmpty'],
  number: ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'between', 'in', 'notIn', 'isEmpty', 'isNotEmpty'],
  choice: ['eq', 'neq', 'in', 'notIn', 'isEmpty', 'isNotEmpty'],
  multi: ['hasAnyOf', 'hasAllOf', 'hasNoneOf', 'isEmpty', 'isNotEmpty'],
};
const KIND: Record<OracleFieldType, Kind> = { TEXT: 'text', NUMBER: 'number', DROPDOWN: 'choice' };
const NO_VALUE = new Set(['isEmpty', 'isNotEmpty']);
const LISTS = new Set(['in', 'notIn', 'hasAnyOf', 'hasAllOf', 'hasNoneOf']);

class Unfit extends Error {}

interface Field { kind: Kind; read: (r: OracleRecord) => unknown; options?: readonly string[] }

function fieldOf(name: string, entity: OracleEntity): Field {
  if (name === 'name') return { kind: 'text', read: (r) => r.name };
  if (name === 'tags') return { kind: 'multi', read: (r) => r.tags };
  if (name.startsWith('data.')) {
    const propertyId = name.slice(5);
    const property = entity.properties.get(propertyId);
    if (!property) throw new Unfit(`${name}: not a live property`);
    return { kind: KIND[property.fieldType], read: (r) => r.data[propertyId] ?? null, options: property.options };
  }
  throw new Error(`the oracle does not know field ${name}`);
}

/** Whether a condition's value fits its field and operator (a rule that stopped fitting makes the segment invalid). */
function assertFits(field: Field, c: Condition): void {
  if (!OPERATORS[field.kind].includes(c.operator)) throw new Unfit(`${c.field}: ${c.operator} does not fit a ${field.kind} field`);
  if (NO_VALUE.has(c.operator)) return;
  const items = c.operator === 'between' || LISTS.has(c.operator) ? (c.value as unknown[]) : [c.value];
  for (const item of items) {
    const fits = field.kind === 'number' ? typeof item === 'number'
      : field.kind === 'choice' ? typeof item === 'string' && (field.options === undefined || field.options.includes(item))
        : typeof item === 'string';
    if (!fits) throw new Unfit(`${c.field}: ${JSON.stringify(item)} does not fit`);
  }
}

const lower = (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : null);

function test(field: Field, c: Condition, v: unknown): boolean {
  const { operator: op, value } = c;
  switch (field.kind) {
    case 'text': {
      const s = lower(v);
      const q = lower(value) ?? '';
      const list = Array.isArray(value) ? value.map((x) => lower(x)) : [];
      switch (op) {
        case 'eq': return s !== null && s === q;
        case 'neq': return s === null || s !== q;
        case 'contains': return s !== null && s.includes(q);
        case 'notContains': return s === null || !s.includes(q);
        case 'startsWith': return s !== null && s.startsWith(q);
        case 'endsWith': return s !== null && s.endsWith(q);
        case 'in': return s !== null && list.includes(s);
        case 'notIn': return s === null || !list.includes(s);
        case 'isEmpty': return s === null || s === '';
        case 'isNotEmpty': return s !== null && s !== '';
      }
      break;
    }
    case 'number':
    case 'choice': {
      const x = v === null || v === undefined ? null : v;
      switch (op) {
        case 'eq': return x !== null && x === value;
        case 'neq': return x === null || x !== value;
        case 'gt': return x !== null && (x as number) > (value as number);
        case 'gte': return x !== null && (x as number) >= (value as number);
        case 'lt': return x !== null && (x as number) < (value as number);
        case 'lte': return x !== null && (x as number) <= (value as number);
        case 'between': return x !== null && (x as number) >= (value as number[])[0]! && (x as number) <= (value as number[])[1]!;
        case 'in': return x !== null && (value as unknown[]).includes(x);
        case 'notIn': return x === null || !(value as unknown[]).includes(x);
        case 'isEmpty': return x === null;
        case 'isNotEmpty': return x !== null;
      }
      break;
    }
    case 'multi': {
      const have = Array.isArray(v) ? (v as string[]) : [];
      const wanted = (value as string[] | undefined) ?? [];
      switch (op) {
        case 'hasAnyOf': return wanted.some((x) => have.includes(x));
        case 'hasAllOf': return wanted.every((x) => have.includes(x));
        case 'hasNoneOf': return !wanted.some((x) => have.includes(x));
        case 'isEmpty': return have.length === 0;
        case 'isNotEmpty': return have.length > 0;
      }
    }
  }
  throw new Error(`the oracle does not know ${op} on ${field.kind}`);
}

/** Compiles a group for one entity into a predicate, throwing Unfit when it no longer fits. */
function predicate(group: Group, entityId: string, world: OracleWorld, hops: number): (r: OracleRecord) => boolean {
  const entity = world.entities.get(entityId)!;
  const parts = group.conditions.map((node): ((r: OracleRecord) => boolean) => {
    if ('conditions' in node) return predicate(node, entityId, world, hops);
    if (node.field.startsWith('relationship.')) return relationship(node, entityId, world, hops);
    const field = fieldOf(node.field, entity);
    assertFits(field, node);
    return (r) => test(field, node, field.read(r));
  });
  return group.operator === 'AND' ? (r) => parts.every((p) => p(r)) : (r) => parts.some((p) => p(r));
}

/**
 * `relationship.<typeId>`: counts the live records linked to this one through the type (links
 * with a trashed end are hidden), optionally only those matching `where`. The type must exist and
 * both its entities be live; one hop only.
 */
function relationship(c: Condition, entityId: string, world: OracleWorld, hops: number): (r: OracleRecord) => boolean {
  if (hops > 0) throw new Unfit(`${c.field}: relationship conditions go one hop`);
  const type = world.types.get(c.field.slice('relationship.'.length));
  if (!type) throw new Unfit(`${c.field}: no such relationship type`);
  const sides = [type.sourceEntityId === entityId ? 'source' : undefined, type.targetEntityId === entityId ? 'target' : undefined].filter(Boolean);
  if (sides.length === 0) throw new Unfit(`${c.field}: not a relationship type of this entity`);
  if (!world.entities.has(type.sourceEntityId) || !world.entities.has(type.targetEntityId)) throw new Unfit(`${c.field}: an entity of the type is in the trash`);
  const otherEntityId = sides[0] === 'source' ? type.targetEntityId : type.sourceEntityId;
  const others = new Map(world.entities.get(otherEntityId)!.records.map((r) => [r.recordId, r]));
  const where = c.where ? predicate(c.where, otherEntityId, world, hops + 1) : () => true;
  const n = c.value as number;
  const counted = (r: OracleRecord) => {
    const related: OracleRecord[] = [];
    for (const link of type.links) {
      if (sides.includes('source') && link.source === r.recordId && others.has(link.target)) related.push(others.get(link.target)!);
      if (sides.includes('target') && link.target === r.recordId && others.has(link.source)) related.push(others.get(link.source)!);
    }
    return related.filter(where).length;
  };
  switch (c.operator) {
    case 'exists': return (r) => counted(r) > 0;
    case 'notExists': return (r) => counted(r) === 0;
    case 'countGte': return (r) => counted(r) >= n;
    case 'countLte': return (r) => counted(r) <= n;
  }
  throw new Unfit(`${c.field}: ${c.operator} is not a relationship operator`);
}

/** The live records of `entityId` that `group` matches (sorted IDs), or why the rules no longer fit. */
export function evaluateSegment(world: OracleWorld, entityId: string, group: Group): Verdict {
  const entity = world.entities.get(entityId);
  if (!entity) throw new Error('the entity is in the trash: its segments cannot be read');
  let matches: (r: OracleRecord) => boolean;
  try {
    matches = predicate(group, entityId, world, 0);
  } catch (error) {
    if (error instanceof Unfit) return { valid: false, reason: error.message };
    throw error;
  }
  return { valid: true, members: entity.records.filter(matches).map((r) => r.recordId).sort() };
}
