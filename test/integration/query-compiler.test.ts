import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/database.ts';
import type { FieldType } from '../../src/db/schema.ts';
import { compileConditionGroup } from '../../src/query/compile.ts';
import { evaluateGroup, type EvaluableRecord } from '../../src/query/evaluate.ts';
import { FIELD_KIND, OPERATORS, type CatalogProperty, type ConditionGroup } from '../../src/query/types.ts';
import { withRelationships, type RelationshipField } from '../../src/query/relationship-conditions.ts';
import { catalogOf, validateConditionGroup, type Catalog } from '../../src/query/validate.ts';
import { storageKeyOf } from '../../src/query/data-key.ts';
import { openTestDatabase } from '../helpers/database.ts';

/**
 * The condition compiler against its oracle: for random records and random condition trees,
 * the rows PostgreSQL (or PGlite) returns for the compiled SQL are exactly the records the
 * in-memory evaluator accepts. Also: hostile strings stay parameters, never SQL.
 */

const NOW = Date.parse('2026-06-15T12:00:00.000Z');
const DAY = 86_400_000;
const OPTIONS = ['lead', 'won', 'lost', '50%_off'];
const TEXTS = ['', 'Kim', 'kim', 'KIM Jisoo', '김민준', '이서연 kim', 'a%b', 'a_b', 'back\\slash', "O'Brien", 'zeta'];
const TAGS = ['vip', 'new', 'churn', "x'); drop table records; --"];

const fieldTypes: FieldType[] = ['TEXT', 'TEXTAREA', 'EMAIL', 'PHONE', 'URL', 'NUMBER', 'DATE', 'DATETIME', 'CHECKBOX', 'DROPDOWN', 'RADIO', 'MULTI_CHECKBOX'];
// Both shapes of storage key: short ones (properties created since migration 0018) and property IDs (before).
const properties: CatalogProperty[] = fieldTypes.map((fieldType, i) => ({
  propertyId: `CRMPP1260101000000${String(i).padStart(3, '0')}ABCDEFGHIJK`,
  storageKey: i % 2 ? storageKeyOf(i + 1) : `CRMPP1260101000000${String(i).padStart(3, '0')}ABCDEFGHIJK`,
  fieldType,
  ...(['DROPDOWN', 'RADIO', 'MULTI_CHECKBOX'].includes(fieldType) ? { optionValues: OPTIONS } : {}),
}));
const catalog = catalogOf(properties);

/** A record's values as `records.data` holds them: keyed by storage key. */
function stored(data: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(data).map(([propertyId, value]) => [catalog.get(propertyId)!.storageKey, value])));
}

const instant = fc.integer({ min: NOW - 40 * DAY, max: NOW + 40 * DAY }).map((ms) => new Date(ms).toISOString());
const dateOnly = instant.map((iso) => iso.slice(0, 10));
const textValue = fc.constantFrom(...TEXTS);
const numberValue = fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constantFrom(0.5, -2.25, 1e6));

function valueFor(fieldType: FieldType): fc.Arbitrary<unknown> {
  switch (FIELD_KIND[fieldType]) {
    case 'text': return textValue;
    case 'number': return numberValue;
    case 'date': return dateOnly;
    case 'datetime': return instant;
    case 'checkbox': return fc.boolean();
    case 'choice': return fc.constantFrom(...OPTIONS);
    case 'multi': return fc.uniqueArray(fc.constantFrom(...OPTIONS), { maxLength: 3 });
  }
}

const recordArb: fc.Arbitrary<EvaluableRecord> = fc.record({
  name: textValue,
  ownerId: fc.option(fc.constantFrom('MEMaaaaaaaaaaa', 'MEMbbbbbbbbbbb'), { nil: null }),
  tags: fc.uniqueArray(fc.constantFrom(...TAGS), { maxLength: 3 }),
  dateCreated: instant,
  dateUpdated: instant,
  data: fc.record(Object.fromEntries(properties.map((p) => [p.propertyId, valueFor(p.fieldType)])), { requiredKeys: [] }),
});

const systemFields = [
  { field: 'name', kind: 'text' as const, value: textValue },
  { field: 'ownerId', kind: 'choice' as const, value: fc.constantFrom('MEMaaaaaaaaaaa', 'MEMbbbbbbbbbbb') },
  { field: 'tags', kind: 'multi' as const, value: fc.constantFrom(...TAGS) },
  { field: 'dateCreated', kind: 'datetime' as const, value: instant },
  { field: 'dateUpdated', kind: 'datetime' as const, value: instant },
];
const propertyFields = properties.map((p) => ({ field: `data.${p.propertyId}`, kind: FIELD_KIND[p.fieldType], value: valueFor(p.fieldType) }));

/** A condition that validates: a field, an operator of its kind, a value of the operator's shape. */
const conditionArb = fc.constantFrom(...systemFields, ...propertyFields).chain(({ field, kind, value }) => {
  const scalar = kind === 'multi' ? (field === 'tags' ? fc.constantFrom(...TAGS) : fc.constantFrom(...OPTIONS)) : value;
  return fc.constantFrom(...OPERATORS[kind]).chain((operator): fc.Arbitrary<Record<string, unknown>> => {
    if (operator === 'isEmpty' || operator === 'isNotEmpty') return fc.constant({ field, operator });
    if (['withinLastDays', 'withinNextDays', 'olderThanDays'].includes(operator)) {
      return fc.integer({ min: 0, max: 30 }).map((n) => ({ field, operator, value: n }));
    }
    if (operator === 'between') {
      return fc.tuple(scalar, scalar).map(([a, b]) => ({ field, operator, value: (a as any) <= (b as any) ? [a, b] : [b, a] }));
    }
    if (['in', 'notIn', 'hasAnyOf', 'hasAllOf', 'hasNoneOf'].includes(operator)) {
      return fc.array(scalar, { minLength: 1, maxLength: 3 }).map((v) => ({ field, operator, value: v }));
    }
    return scalar.map((v) => ({ field, operator, value: v }));
  });
});

const groupArb: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  group: fc.record({
    operator: fc.constantFrom('AND', 'OR'),
    conditions: fc.array(fc.oneof({ depthSize: 'small', maxDepth: 4, withCrossShrink: true }, conditionArb, tie('group')), { maxLength: 4 }),
  }),
})).group;

describe('condition compiler = in-memory evaluator', () => {
  let database: Database;
  let db: Kysely<any>;
  const table = `query_oracle_${process.pid}_${Date.now()}`;

  before(async () => {
    database = await openTestDatabase();
    db = database.db as unknown as Kysely<any>;
    // Shaped like records; account_id keeps the table within the schema rules while it exists.
    await sql`CREATE TABLE ${sql.ref(table)} (
      account_id text NOT NULL, id integer NOT NULL, name text NOT NULL, owner_id text, tags text[] NOT NULL,
      date_created timestamptz NOT NULL, date_updated timestamptz NOT NULL, data jsonb NOT NULL,
      PRIMARY KEY (account_id, id))`.execute(db);
  });
  after(async () => {
    await sql`DROP TABLE IF EXISTS ${sql.ref(table)}`.execute(db);
    await database.close();
  });

  async function load(records: EvaluableRecord[]) {
    await sql`DELETE FROM ${sql.ref(table)}`.execute(db);
    if (records.length === 0) return;
    await db.insertInto(table).values(records.map((r, id) => ({
      account_id: 'a', id, name: r.name, owner_id: r.ownerId, tags: sql`${sql.join(r.tags.length ? [sql`ARRAY[${sql.join(r.tags)}]::text[]`] : [sql`'{}'::text[]`])}`,
      date_created: r.dateCreated, date_updated: r.dateUpdated, data: stored(r.data),
    }))).execute();
  }

  async function sqlMatches(group: ConditionGroup): Promise<number[]> {
    const where = compileConditionGroup(group, catalog, { alias: table, now: NOW });
    const rows = await db.selectFrom(table).select('id').where(where).orderBy('id').execute();
    return rows.map((r: any) => r.id);
  }

  test('random records × random trees', async () => {
    await fc.assert(fc.asyncProperty(fc.array(recordArb, { minLength: 1, maxLength: 25 }), fc.array(groupArb, { minLength: 1, maxLength: 8 }), async (records, trees) => {
      await load(records);
      for (const raw of trees) {
        const group = validateConditionGroup(raw, catalog);
        const expected = records.flatMap((r, i) => (evaluateGroup(group, r, catalog, NOW) ? [i] : []));
        assert.deepEqual(await sqlMatches(group), expected, JSON.stringify(group));
      }
    }), { numRuns: 40 });
  });

  test('text equality ignores case, also where the value has no case (compared without lower())', async () => {
    const names = ['Kim', 'kim', 'KIM', '김민준', '김민준 Kim', 'Straße', 'STRASSE', '123', '', 'ǅemal', 'ǆemal'];
    const records: EvaluableRecord[] = names.map((name) => ({ name, ownerId: null, tags: [], dateCreated: new Date(NOW).toISOString(), dateUpdated: new Date(NOW).toISOString(), data: {} }));
    await load(records);
    const values = ['kim', 'KIM', '김민준', '123', '', 'straße', 'ǆemal'];
    const conditions = [
      ...values.flatMap((value) => ['eq', 'neq'].map((operator) => ({ field: 'name', operator, value }))),
      ...[['김민준', '123'], ['김민준', 'kim'], ['Straße', '']].flatMap((value) => ['in', 'notIn'].map((operator) => ({ field: 'name', operator, value }))),
    ];
    for (const condition of conditions) {
      const group = validateConditionGroup({ operator: 'AND', conditions: [condition] }, catalog);
      const expected = records.flatMap((r, j) => (evaluateGroup(group, r, catalog, NOW) ? [j] : []));
      assert.deepEqual(await sqlMatches(group), expected, JSON.stringify(condition));
    }
  });

  test('hostile strings are data, not SQL', async () => {
    const hostile = ["'; DROP TABLE records; --", "\\'", '%', '_', '\\', '$1', '?|', "') OR TRUE --", '\u0000'.replace('\u0000', '')];
    const records: EvaluableRecord[] = hostile.map((name) => ({ name, ownerId: null, tags: [], dateCreated: new Date(NOW).toISOString(), dateUpdated: new Date(NOW).toISOString(), data: {} }));
    await load(records);
    for (const [i, name] of hostile.entries()) {
      for (const operator of ['eq', 'contains', 'startsWith', 'endsWith']) {
        const group = validateConditionGroup({ operator: 'AND', conditions: [{ field: 'name', operator, value: name }] }, catalog);
        const got = await sqlMatches(group);
        const expected = records.flatMap((r, j) => (evaluateGroup(group, r, catalog, NOW) ? [j] : []));
        assert.deepEqual(got, expected, `${operator} ${JSON.stringify(name)}`);
        assert.ok(got.includes(i));
      }
    }
    const compiled = compileConditionGroup(validateConditionGroup({ operator: 'OR', conditions: hostile.map((value) => ({ field: 'name', operator: 'eq', value })) }, catalog), catalog, { now: NOW }).compile(db);
    for (const value of hostile.filter((h) => h.length > 2)) assert.ok(!compiled.sql.includes(value), `"${value}" leaked into SQL`);
  });
});

describe('validation names the JSON path', () => {
  const prop = (type: FieldType) => `data.${properties.find((p) => p.fieldType === type)!.propertyId}`;
  const cases: [unknown, string][] = [
    [null, 'conditionGroup'],
    [{ operator: 'XOR', conditions: [] }, 'conditionGroup.operator'],
    [{ operator: 'AND', conditions: [{ field: 'nope', operator: 'eq', value: 1 }] }, 'conditionGroup.conditions[0].field'],
    [{ operator: 'AND', conditions: [{ field: 'data.CRMPP1260101000000999ABCDEFGHIJK', operator: 'eq', value: 1 }] }, 'conditionGroup.conditions[0].field'],
    [{ operator: 'AND', conditions: [{ field: prop('NUMBER'), operator: 'contains', value: 1 }] }, 'conditionGroup.conditions[0].operator'],
    [{ operator: 'AND', conditions: [{ field: prop('NUMBER'), operator: 'gt', value: '5' }] }, 'conditionGroup.conditions[0].value'],
    [{ operator: 'AND', conditions: [{ field: prop('DATE'), operator: 'eq', value: '2026-02-30' }] }, 'conditionGroup.conditions[0].value'],
    [{ operator: 'AND', conditions: [{ field: prop('DROPDOWN'), operator: 'eq', value: 'unknown-option' }] }, 'conditionGroup.conditions[0].value'],
    [{ operator: 'AND', conditions: [{ field: prop('NUMBER'), operator: 'between', value: [5, 1] }] }, 'conditionGroup.conditions[0].value'],
    [{ operator: 'AND', conditions: [{ field: 'name', operator: 'isEmpty', value: 'x' }] }, 'conditionGroup.conditions[0].value'],
    [{ operator: 'AND', conditions: [{ field: 'name', operator: 'eq', value: 'x', sql: '1' }] }, 'conditionGroup.conditions[0].sql'],
    [{ operator: 'AND', conditions: [{ operator: 'OR', conditions: [{ field: 'tags', operator: 'hasAnyOf', value: [] }] }] }, 'conditionGroup.conditions[0].conditions[0].value'],
    [{ operator: 'AND', conditions: Array.from({ length: 51 }, () => ({ field: 'name', operator: 'isEmpty' })) }, 'conditionGroup.conditions'],
  ];
  for (const [input, path] of cases) {
    test(`${JSON.stringify(input).slice(0, 90)} → ${path}`, () => {
      assert.throws(() => validateConditionGroup(input, catalog), (error: any) => {
        assert.equal(error.status, 400);
        assert.equal(error.code, 'ValidationError');
        assert.equal(error.details[0].path, path, error.message);
        return true;
      });
    });
  }

  test('depth 5 is allowed, depth 6 is refused', () => {
    const nest = (levels: number): unknown => (levels === 1 ? { operator: 'AND', conditions: [] } : { operator: 'OR', conditions: [nest(levels - 1)] });
    validateConditionGroup(nest(5), catalog);
    assert.throws(() => validateConditionGroup(nest(6), catalog), /nest at most 5/);
  });
});

/**
 * relationship.<typeId> conditions against the same oracle, on the real records and relationships
 * tables (the subqueries read them by name) under an account of their own: random records in two
 * entities A and B (some trashed), random links along A→B, B→A and A→A (both directions count),
 * and random trees mixing property conditions with relationship conditions and their `where`.
 */
describe('relationship conditions: compiler = evaluator', () => {
  let database: Database;
  let db: Kysely<any>;
  const accountId = String(Date.now()).padStart(14, '9').slice(-14);
  const A = 'CRMET1260101000000000AAAAAAAAAAA';
  const B = 'CRMET1260101000000000BBBBBBBBBBB';
  const typeId = (tag: string) => `CRMRT1260101000000000${tag.repeat(11)}`;
  const AB = typeId('P');
  const BA = typeId('Q');
  const AA = typeId('R');
  const plain = catalogOf(properties);
  const field = (sides: RelationshipField['sides'], id: string): RelationshipField => ({ relationshipTypeId: id, sides, related: plain, masked: new Set() });
  const catalogA: Catalog = withRelationships(plain, new Map([[AB, field(['source'], AB)], [BA, field(['target'], BA)], [AA, field(['source', 'target'], AA)]]));

  before(async () => {
    database = await openTestDatabase();
    db = database.db as unknown as Kysely<any>;
    await db.insertInto('accounts').values({ account_id: accountId, name: 'relationship oracle' }).execute();
    for (const entityId of [A, B]) {
      await db.insertInto('entities').values({ account_id: accountId, entity_id: entityId, name: entityId, slug: entityId.toLowerCase(), view_settings: '{}', owner_id: 'MEMaaaaaaaaaaa' }).execute();
    }
    for (const [id, source, target] of [[AB, A, B], [BA, B, A], [AA, A, A]]) {
      await db.insertInto('relationship_types').values({ account_id: accountId, relationship_type_id: id, name: id, source_entity_id: source, target_entity_id: target }).execute();
    }
  });
  after(() => database.close());

  const live = fc.record({ record: recordArb, trashed: fc.integer({ min: 0, max: 4 }).map((n) => n === 0) });
  const graphArb = fc.record({
    a: fc.array(live, { minLength: 1, maxLength: 8 }),
    b: fc.array(live, { minLength: 1, maxLength: 8 }),
    links: fc.array(fc.tuple(fc.constantFrom(AB, BA, AA), fc.nat(), fc.nat()), { minLength: 5, maxLength: 40 }),
  });

  const whereArb = fc.record({ operator: fc.constantFrom('AND', 'OR'), conditions: fc.array(conditionArb, { maxLength: 3 }) });
  const relationshipConditionArb = fc.record({
    type: fc.constantFrom(AB, BA, AA),
    operator: fc.constantFrom('exists', 'notExists', 'countGte', 'countLte'),
    n: fc.integer({ min: 0, max: 3 }),
    where: fc.option(whereArb, { nil: undefined }),
  }).map(({ type, operator, n, where }) => ({
    field: `relationship.${type}`, operator, ...(operator.startsWith('count') ? { value: n } : {}), ...(where ? { where } : {}),
  }));
  const treeArb: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    group: fc.record({
      operator: fc.constantFrom('AND', 'OR'),
      conditions: fc.array(fc.oneof({ depthSize: 'small', maxDepth: 3, withCrossShrink: true }, relationshipConditionArb, relationshipConditionArb, conditionArb, tie('group')), { maxLength: 4 }),
    }),
  })).group;

  type Graph = { a: { record: EvaluableRecord; trashed: boolean }[]; b: { record: EvaluableRecord; trashed: boolean }[]; links: [string, number, number][] };

  /** Writes the graph; returns the live A records with their live related records, as the evaluator sees them. */
  async function load(graph: Graph): Promise<{ id: string; record: EvaluableRecord }[]> {
    await db.deleteFrom('relationships').where('account_id', '=', accountId).execute();
    await db.deleteFrom('records').where('account_id', '=', accountId).execute();
    const id = (entity: 'A' | 'B', i: number) => `CRMRC1260101000000000${entity}${String(i).padStart(10, '0')}`;
    const rows = [...graph.a.map((r, i) => ({ ...r, entity: A, id: id('A', i) })), ...graph.b.map((r, i) => ({ ...r, entity: B, id: id('B', i) }))];
    await db.insertInto('records').values(rows.map(({ record: r, trashed, entity, id: recordId }) => ({
      account_id: accountId, record_id: recordId, entity_id: entity, name: r.name, owner_id: r.ownerId, tags: r.tags, is_deleted: trashed,
      date_created: r.dateCreated, date_updated: r.dateUpdated, data: stored(r.data),
    }))).execute();

    // Ends picked modulo the entity's size; duplicates and self-links dropped (the table refuses both).
    const ends: Record<string, ['A' | 'B', 'A' | 'B']> = { [AB]: ['A', 'B'], [BA]: ['B', 'A'], [AA]: ['A', 'A'] };
    const size = { A: graph.a.length, B: graph.b.length };
    const links = new Map<string, { type: string; s: string; t: string }>();
    for (const [type, i, j] of graph.links) {
      const [se, te] = ends[type]!;
      const [si, ti] = [i % size[se], j % size[te]];
      if (se === te && si === ti) continue;
      links.set(`${type}/${si}/${ti}`, { type, s: id(se, si), t: id(te, ti) });
    }
    if (links.size) {
      await db.insertInto('relationships').values([...links.values()].map((l, k) => ({
        account_id: accountId, relationship_id: `CRMRL${String(k).padStart(27, '0')}`, relationship_type_id: l.type,
        source_entity_id: ends[l.type]![0] === 'A' ? A : B, source_record_id: l.s, target_entity_id: ends[l.type]![1] === 'A' ? A : B, target_record_id: l.t,
      }))).execute();
    }

    const byId = new Map(rows.map((r) => [r.id, r]));
    return graph.a.flatMap((r, i) => {
      if (r.trashed) return [];
      const me = id('A', i);
      const related: Record<string, EvaluableRecord[]> = { [AB]: [], [BA]: [], [AA]: [] };
      for (const l of links.values()) {
        const other = l.s === me ? l.t : l.t === me ? l.s : undefined;
        const row = other === undefined ? undefined : byId.get(other);
        if (row && !row.trashed) related[l.type]!.push(row.record);
      }
      return [{ id: me, record: { ...r.record, related } }];
    });
  }

  test('random graphs × random trees with relationship conditions', async () => {
    await fc.assert(fc.asyncProperty(graphArb, fc.array(treeArb, { minLength: 1, maxLength: 6 }), async (graph, trees) => {
      const outer = await load(graph as Graph);
      for (const raw of trees) {
        const group = validateConditionGroup(raw, catalogA);
        const expected = outer.filter((r) => evaluateGroup(group, r.record, catalogA, NOW)).map((r) => r.id);
        // Both forms: per record (pages, probes, writes) and over the whole entity (counts, rebuilds).
        for (const wholeEntity of [undefined, { accountId }]) {
          const rows = await db.selectFrom('records').select('record_id')
            .where('account_id', '=', accountId).where('entity_id', '=', A).where('is_deleted', '=', false)
            .where(compileConditionGroup(group, catalogA, { now: NOW, wholeEntity }))
            .orderBy('record_id').execute();
          assert.deepEqual(rows.map((r: any) => r.record_id), expected, `${wholeEntity ? 'whole entity' : 'per record'}: ${JSON.stringify(group)}`);
        }
      }
    }), { numRuns: 30 });
  });

  test('validation names the JSON path of relationship conditions', () => {
    const rel = (extra: Record<string, unknown>) => ({ operator: 'AND', conditions: [{ field: `relationship.${AB}`, operator: 'exists', ...extra }] });
    const cases: [unknown, string, RegExp][] = [
      [{ operator: 'AND', conditions: [{ field: `relationship.${typeId('Z')}`, operator: 'exists' }] }, 'conditionGroup.conditions[0].field', /not a relationship type of this entity/],
      [rel({ operator: 'eq' }), 'conditionGroup.conditions[0].operator', /exists, notExists, countGte, countLte/],
      [rel({ operator: 'countGte' }), 'conditionGroup.conditions[0].value', /whole number/],
      [rel({ operator: 'countLte', value: -1 }), 'conditionGroup.conditions[0].value', /whole number/],
      [rel({ value: 2 }), 'conditionGroup.conditions[0].value', /takes no value/],
      [rel({ extra: 1 }), 'conditionGroup.conditions[0].extra', /unknown key/],
      [rel({ where: { operator: 'AND', conditions: [{ field: 'name', operator: 'gt', value: 'x' }] } }), 'conditionGroup.conditions[0].where.conditions[0].operator', /must be one of/],
      [rel({ where: { operator: 'AND', conditions: [{ field: `relationship.${AB}`, operator: 'exists' }] } }), 'conditionGroup.conditions[0].where.conditions[0].field', /one hop/],
      [{ operator: 'AND', conditions: [{ field: `relationship.${AB}`, operator: 'exists' }] }, 'conditionGroup.conditions[0].field', /not a relationship type/],
    ];
    for (const [input, path, message] of cases) {
      // The last case validates against a catalog without relationships: the type is unknown there.
      const catalog = input === cases[cases.length - 1]![0] ? plain : catalogA;
      assert.throws(() => validateConditionGroup(input, catalog), (error: any) => {
        assert.equal(error.code, 'ValidationError');
        assert.equal(error.details[0].path, path, error.message);
        assert.match(error.message, message);
        return true;
      }, JSON.stringify(input));
    }
    // A relationship's where counts as one more level: depth 5 overall is the limit.
    const nest = (levels: number): unknown => (levels === 1 ? { operator: 'AND', conditions: [] } : { operator: 'OR', conditions: [nest(levels - 1)] });
    validateConditionGroup({ operator: 'AND', conditions: [{ field: `relationship.${AB}`, operator: 'exists', where: nest(4) }] }, catalogA);
    assert.throws(() => validateConditionGroup({ operator: 'AND', conditions: [{ field: `relationship.${AB}`, operator: 'exists', where: nest(5) }] }, catalogA), /nest at most 5/);
  });
});
