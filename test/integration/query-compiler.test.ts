import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/database.ts';
import type { FieldType } from '../../src/db/schema.ts';
import { compileConditionGroup } from '../../src/query/compile.ts';
import { evaluateGroup, type EvaluableRecord } from '../../src/query/evaluate.ts';
import { FIELD_KIND, OPERATORS, type CatalogProperty, type ConditionGroup } from '../../src/query/types.ts';
import { catalogOf, validateConditionGroup } from '../../src/query/validate.ts';
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
const properties: CatalogProperty[] = fieldTypes.map((fieldType, i) => ({
  propertyId: `CRMPP1260101000000${String(i).padStart(3, '0')}ABCDEFGHIJK`,
  fieldType,
  ...(['DROPDOWN', 'RADIO', 'MULTI_CHECKBOX'].includes(fieldType) ? { optionValues: OPTIONS } : {}),
}));
const catalog = catalogOf(properties);

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
      date_created: r.dateCreated, date_updated: r.dateUpdated, data: JSON.stringify(r.data),
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
