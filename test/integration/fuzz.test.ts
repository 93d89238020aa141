import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import { buildApp } from '../../src/http/app.ts';
import { MAX_JSON_DEPTH } from '../../src/http/validation.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { createSecretBox } from '../../src/lib/secret-box.ts';
import { createServices } from '../../src/services.ts';
import { openTestDatabase } from '../helpers/database.ts';
import { registeredRoutes } from '../helpers/routes.ts';
import { authorization, type Credentials } from '../helpers/sign.ts';

/**
 * Schema-driven hostile-input fuzzer (issue 8 item 2; docs/reliability.md "Hostile input").
 *
 * For every operation of the OpenAPI document, fast-check generates requests from the operation's
 * own schemas: path parameters, query parameters and bodies that are mostly valid (IDs drawn from
 * a live fixture account, so requests get past validation into the services and the database) with,
 * at every node of the schema, a chance of going beyond it: lengths and counts just past the limit,
 * numbers out of range or not representable (1e309, -0, 1e-400, 2^53+1), wrong types, 1 MB
 * strings, nesting at and past the JSON depth limit, lone surrogates, NUL, RTL marks, emoji,
 * prototype-pollution keys (`__proto__`, `constructor`, `prototype`), duplicated keys, ID-shaped
 * strings of the wrong kind. Headers vary too (odd content types, Idempotency-Key, If-Match,
 * x-request-id, 64 KiB headers). For each request:
 *
 * - the answer is never 5xx (the log line of a 500, with its stack, is printed with the input);
 * - an error answer is exactly `{errorCode, errorMessage[, details]}` as JSON;
 * - a signed request is never refused as unauthenticated (so the fuzz reaches the handlers);
 * - **a 4xx writes nothing**: after every non-GET request a fingerprint of every row of the fuzzed
 *   account in every tenant table is compared with the one taken before; a 4xx that changed it is a
 *   failure, naming the tables. GET routes must not write at all (one check per route).
 *   Deliberately left out of the fingerprint: `request_nonces` (every signed request records its
 *   signature for replay protection), `idempotency_keys` (4xx answers are stored by design, see
 *   "Idempotency") and `api_keys.last_used_at` (touched on authentication, at most once a minute).
 *
 * Routes that delete each get a fresh fixture account (so they do not starve the routes after
 * them); the other write routes share one, and GET routes another. A second part sends garbage at the HTTP layer over a
 * real socket (oversized and duplicated headers, conflicting lengths, broken chunking, odd
 * content types): the same error format, and the server keeps serving.
 *
 * errors.test.ts holds the schema-agnostic garbage sweep (fixed garbage lists and random JSON for
 * every registered route); this file does not repeat it. Seeded: FUZZ_SEED and FUZZ_RUNS
 * (requests per route) may be set to explore more; failures print the seed to replay.
 */

const V1 = '/crm-core/v1';
const SEED = Number(process.env.FUZZ_SEED ?? 20240808);
/** Requests per operation: FUZZ_RUNS, or ~2,600 spread over the operations (20–40 each) to bound the file's time. */
const RUNS_OVERRIDE = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : undefined;
const HUGE_STRING = 'x'.repeat(1024 * 1024); // 1 MiB: over the default body limit, under the bulk one

// ---------------------------------------------------------------------------------------------
// JSON with what JSON.stringify cannot write: raw number literals and duplicated / polluting keys.

/** A literal spliced into the JSON text as is (1e309, -0, deep nesting). */
class Raw {
  readonly text: string;
  constructor(text: string) { this.text = text; }
}
/** An object written key by key: duplicates and `__proto__` survive. */
class Pairs {
  readonly pairs: [string, unknown][];
  constructor(pairs: [string, unknown][]) { this.pairs = pairs; }
}

function toJson(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Pairs) return `{${value.pairs.map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : toJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${toJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A value as it would appear in a query string or path segment. */
function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Raw) return value.text;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return toJson(value);
}

/** Percent-encodes everything but unreserved characters, byte by byte (lone surrogates become U+FFFD). */
const encode = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => (
  /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`)).join('');

// ---------------------------------------------------------------------------------------------
// Hostile values, valid nowhere in particular.

const nested = (depth: number, kind: 'array' | 'object') =>
  new Raw(kind === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);

const HOSTILE_STRINGS = [
  '', ' ', 'a\u0000b', '\u0000', '\ud800', '\udfff', 'a\udc00b\ud83d', '\u202e\u200fevil\u202c', '\ufeffbom', '\u200b',
  '💩👨‍👩‍👧‍👦🇰🇷', 'e\u0301'.repeat(60), '한국어 텍스트', '\r\n\t\u000b\u001b[31m', "' OR '1'='1' --", '%_\\', '${jndi:x}{{7*7}}',
  '__proto__', 'constructor', 'prototype', 'NaN', 'Infinity', '-0', '1e309', 'null', 'true', '9'.repeat(400),
  'MEM00000000000', `CRMRC1${'0'.repeat(26)}`, '2024-02-30', '0000-00-00T25:61:61Z',
];

const POLLUTION = [
  new Pairs([['__proto__', { polluted: 'yes' }]]),
  new Pairs([['constructor', { prototype: { polluted: 'yes' } }]]),
  new Pairs([['prototype', { polluted: 'yes' }]]),
  new Pairs([['a', 1], ['a', 2]]),
];

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<unknown>(
    null, true, false, 0, -1, 1.5, Number.MAX_SAFE_INTEGER, [], {}, [[[]]], [null], [''],
    new Raw('-0'), new Raw('1e309'), new Raw('-1e309'), new Raw('1e-400'), new Raw('9007199254740993'), new Raw('9'.repeat(400)),
    new Raw('0.1e-99999'), new Raw('-9'.repeat(1) + '9'.repeat(30)),
  ) },
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(...POLLUTION) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(
    nested(MAX_JSON_DEPTH - 2, 'array'), nested(MAX_JSON_DEPTH, 'array'), nested(MAX_JSON_DEPTH + 1, 'object'), nested(5000, 'array'),
    new Raw(`[${'null,'.repeat(10_000)}null]`),
  ) },
  { weight: 1, arbitrary: fc.constant(HUGE_STRING) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);

// ---------------------------------------------------------------------------------------------
// From a JSON schema (as served in the OpenAPI document) to an arbitrary.

const KINDS = ['member', 'apiKey', 'entity', 'property', 'record', 'relationshipType', 'relationship', 'segment'] as const;
type Kind = (typeof KINDS)[number];

/** Which kind of ID a field or parameter holds, by its name (`groupByPropertyId`, `sourceRecordIds`, `ownerId` …). */
function kindOf(name: string): Kind | undefined {
  const n = name.toLowerCase().replace(/ids$/, 'id');
  if (n.endsWith('relationshiptypeid')) return 'relationshipType';
  if (n.endsWith('relationshipid')) return 'relationship';
  if (n.endsWith('entityid')) return 'entity';
  if (n.endsWith('propertyid')) return 'property';
  if (n.endsWith('recordid')) return 'record';
  if (n.endsWith('segmentid')) return 'segment';
  if (n.endsWith('memberid') || n === 'ownerid') return 'member';
  if (n === 'apikey') return 'apiKey';
  return undefined;
}

interface Pools {
  /** Live IDs of the fixture account by kind (path parameters never name the signing OWNER or its key). */
  ids: Record<Kind, string[]>;
  /** Well-formed IDs that exist nowhere. */
  missing: Record<Kind, string[]>;
  /** Option values of the fixture's choice properties. */
  options: string[];
}

const OPERATORS = [
  'eq', 'neq', 'in', 'notIn', 'contains', 'notContains', 'startsWith', 'endsWith', 'gt', 'gte', 'lt', 'lte', 'between',
  'isEmpty', 'isNotEmpty', 'hasAnyOf', 'hasNoneOf', 'withinLastDays', 'withinNextDays', 'olderThanDays',
  'exists', 'notExists', 'countGte', 'countLte', 'EQ', 'like', '',
];

/** Values a record's property (or a condition) might hold, right or wrong for its type. */
function fieldValue(pools: Pools): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ maxLength: 20 }) },
    { weight: 2, arbitrary: fc.integer({ min: -1_000_000, max: 1_000_000 }) },
    { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
    { weight: 1, arbitrary: fc.boolean() },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 3, arbitrary: fc.constantFrom<unknown>(
      ...pools.options, '2024-01-31', '2024-01-31T10:00:00.000Z', '2024-13-01', '+82 10-1234-5678', 'https://example.com/a?b=c',
      'kim@example.com', 'not an email', '1e5', '0x10', '', [], ['a', 'b'], [1, 2], { nested: true },
    ) },
    { weight: 2, arbitrary: fc.array(fc.constantFrom<unknown>(...pools.options, 'x', 1, null), { maxLength: 4 }) },
    { weight: 1, arbitrary: hostileValue },
  );
}

/** Condition trees (docs/query-language.md) over the fixture's fields, right and wrong. */
function condition(pools: Pools, level: number): fc.Arbitrary<unknown> {
  const fields = [
    ...pools.ids.property.map((p) => `data.${p}`), ...pools.ids.relationshipType.map((r) => `relationship.${r}`),
    'name', 'tags', 'ownerId', 'dateCreated', 'dateUpdated', 'recordId', `data.${pools.missing.property[0]}`, 'data.', 'nope',
  ];
  const leaf = fc.record({
    field: fc.constantFrom(...fields),
    operator: fc.constantFrom(...OPERATORS),
    value: fieldValue(pools),
    where: level < 4 ? group(pools, level + 1) : fc.constant(undefined),
  }, { requiredKeys: ['field', 'operator'] });
  if (level >= 4) return leaf;
  return fc.oneof({ weight: 4, arbitrary: leaf }, { weight: 1, arbitrary: group(pools, level + 1) });
}

function group(pools: Pools, level: number): fc.Arbitrary<unknown> {
  return fc.record({
    operator: fc.constantFrom('AND', 'OR', 'NOT', 'and'),
    conditions: level >= 6 ? fc.constant([]) : fc.array(condition(pools, level), { maxLength: 3 }),
  });
}

/** The `filters` query parameter / field: JSON `{"<propertyId>": {op, value}}`, or not JSON at all. */
function filters(pools: Pools): fc.Arbitrary<string> {
  const key = fc.constantFrom(...pools.ids.property, ...pools.ids.relationshipType.map((r) => `relationship.${r}`), 'name', pools.missing.property[0]!, '__proto__');
  const spec = fc.record({ op: fc.constantFrom(...OPERATORS), value: fieldValue(pools), where: fc.option(group(pools, 2), { nil: undefined }) }, { requiredKeys: ['op'] });
  return fc.oneof(
    { weight: 4, arbitrary: fc.array(fc.tuple(key, spec), { maxLength: 3 }).map((pairs) => toJson(new Pairs(pairs))) },
    { weight: 1, arbitrary: fc.constantFrom('{', '[]', 'null', '"x"', '{"a":', toJson(nested(MAX_JSON_DEPTH + 1, 'object'))) },
    { weight: 1, arbitrary: hostileValue.map(toJson) },
  );
}

interface Gen {
  pools: Pools;
  /** Every ID of the fixture, any kind: the wrong-kind IDs. */
  anyId: string[];
}

function schemaType(schema: any): string | undefined {
  if (typeof schema?.type === 'string') return schema.type;
  if (schema?.properties) return 'object';
  if (schema?.items) return 'array';
  return undefined;
}

/** A value for `schema`: valid most of the time, otherwise just beyond it or hostile. */
function arb(schema: any, name: string, g: Gen, depth: number): fc.Arbitrary<unknown> {
  const valid = validArb(schema, name, g, depth);
  if (depth > 8) return valid;
  return fc.oneof({ weight: 16, arbitrary: valid }, { weight: 1, arbitrary: beyondArb(schema, name, g, depth) }, { weight: 1, arbitrary: hostileValue });
}

function validArb(schema: any, name: string, g: Gen, depth: number): fc.Arbitrary<unknown> {
  if (!schema || typeof schema !== 'object') return fc.jsonValue({ maxDepth: 2 });
  if (Array.isArray(schema.anyOf)) return fc.oneof(...schema.anyOf.map((s: any) => validArb(s, name, g, depth)));
  if (Array.isArray(schema.oneOf)) return fc.oneof(...schema.oneOf.map((s: any) => validArb(s, name, g, depth)));
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum);
  if (Array.isArray(schema.type)) return fc.oneof(...schema.type.map((type: string) => validArb({ ...schema, type }, name, g, depth)));
  switch (schemaType(schema)) {
    case 'string': return stringArb(schema, name, g);
    case 'integer': return fc.integer({ min: schema.minimum ?? -1000, max: schema.maximum ?? 100_000 });
    case 'number': return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true, noDefaultInfinity: true });
    case 'boolean': return fc.boolean();
    case 'null': return fc.constant(null);
    case 'array': {
      const min = schema.minItems ?? 0;
      return fc.array(arb(schema.items ?? {}, name, g, depth + 1), { minLength: min, maxLength: Math.max(min, Math.min(schema.maxItems ?? 4, 4)) });
    }
    case 'object': return objectArb(schema, name, g, depth);
    default: return anyArb(name, g, depth);
  }
}

function stringArb(schema: any, name: string, g: Gen): fc.Arbitrary<unknown> {
  const kind = kindOf(name);
  if (kind && g.pools.ids[kind].length) return fc.constantFrom(...g.pools.ids[kind], ...g.pools.missing[kind]);
  if (name === 'filters') return filters(g.pools);
  if (name === 'sortField' || name === 'sortFields') {
    return fc.constantFrom('dateCreated', '-dateCreated', 'dateUpdated', 'name', '-name', ...g.pools.ids.property, ...g.pools.ids.property.map((p) => `-${p}`), 'nope');
  }
  const min = schema.minLength ?? 0;
  const max = schema.maxLength ?? 200;
  const fits = (s: string) => s.length >= min && s.length <= max;
  if (schema.format === 'email') return fc.emailAddress().filter(fits);
  if (typeof schema.pattern === 'string') return fc.stringMatching(new RegExp(schema.pattern)).filter(fits);
  return fc.oneof(
    { weight: 3, arbitrary: fc.string({ minLength: min, maxLength: Math.min(max, 30) }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: min, maxLength: Math.min(max, 12) }).filter(fits) },
    { weight: 1, arbitrary: fc.constantFrom('한국어', 'Ünïcödé', '\u202eRTL\u202c', '👍🏽 ok', 'a\u0301', '%_\\').filter(fits) },
    { weight: 1, arbitrary: fc.constant('x'.repeat(Math.max(min, max))) }, // exactly the limit
  );
}

function objectArb(schema: any, name: string, g: Gen, depth: number): fc.Arbitrary<unknown> {
  const properties: Record<string, any> = schema.properties ?? {};
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [key, sub] of Object.entries(properties)) model[key] = arb(sub, key, g, depth + 1);
  const base = fc.record(model, { requiredKeys: schema.required ?? [] }) as fc.Arbitrary<Record<string, unknown>>;
  const extra = schema.additionalProperties;
  if (!extra || typeof extra !== 'object') return base;
  // Free-form maps: record data is {propertyId: value}; metadata and the like are anything.
  const key = name === 'data'
    ? fc.constantFrom(...g.pools.ids.property, ...g.pools.missing.property, 'name')
    : fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('prototype', 'toString', 'a.b', ''));
  const value = name === 'data' ? fieldValue(g.pools) : arb(extra, `${name}[]`, g, depth + 1);
  return fc.tuple(base, fc.array(fc.tuple(key, value), { maxLength: 4 })).map(([fixed, more]) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of more) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    return Object.assign(out, fixed);
  });
}

/** A schema without a type (`{}`): condition lists, record values, free-form JSON. */
function anyArb(name: string, g: Gen, depth: number): fc.Arbitrary<unknown> {
  if (name === 'conditions') return condition(g.pools, Math.min(depth, 3));
  if (name === 'conditionGroup' || name === 'where') return group(g.pools, 2);
  return fc.oneof(fieldValue(g.pools), fc.jsonValue({ maxDepth: 2 }));
}

/** Just past the schema: lengths and counts over the limit, out of range, missing or unknown fields, wrong-kind IDs. */
function beyondArb(schema: any, name: string, g: Gen, depth: number): fc.Arbitrary<unknown> {
  if (!schema || typeof schema !== 'object') return hostileValue;
  const options: fc.Arbitrary<unknown>[] = [hostileValue];
  if (Array.isArray(schema.anyOf)) return fc.oneof(...schema.anyOf.map((s: any) => beyondArb(s, name, g, depth)));
  if (Array.isArray(schema.enum)) options.push(fc.constantFrom(...schema.enum.map((v: unknown) => (typeof v === 'string' ? v.toLowerCase() : v)), 'NOPE', ''));
  switch (schemaType(schema)) {
    case 'string': {
      if (schema.maxLength !== undefined) options.push(fc.constant('y'.repeat(schema.maxLength + 1)));
      if (schema.minLength) options.push(fc.constant(''));
      options.push(fc.constantFrom(...g.anyId)); // an ID of the wrong kind
      const valid = stringArb(schema, name, g) as fc.Arbitrary<string>;
      options.push(valid.map((s) => `${s} `), valid.map((s) => s.toLowerCase()), valid.map((s) => s.slice(0, -1)), valid.map((s) => `${s}\u0000`));
      break;
    }
    case 'integer':
    case 'number':
      if (schema.minimum !== undefined) options.push(fc.constant(schema.minimum - 1));
      if (schema.maximum !== undefined) options.push(fc.constant(schema.maximum + 1));
      options.push(fc.constantFrom<unknown>(0.5, -0.5, new Raw('1e309'), new Raw('-0'), new Raw('2e0'), new Raw('9007199254740993'), '1', 'NaN'));
      break;
    case 'array': {
      const item = validArb(schema.items ?? {}, name, g, depth + 1);
      // maxItems + 1 copies of one item (a small one if copies of this one would pass ~4 MB).
      if (schema.maxItems !== undefined) {
        options.push(item.map((x) => {
          const copy = toJson(x).length * (schema.maxItems + 1) > 4_000_000 ? 'x' : x;
          return Array.from({ length: schema.maxItems + 1 }, () => copy);
        }));
      }
      if (schema.minItems) options.push(fc.constant([]));
      options.push(fc.array(item, { minLength: 1, maxLength: 2 }).map((a) => [...a, ...a]));
      options.push(fc.constant(['x']), fc.constant([null]), fc.constant([[]]));
      break;
    }
    case 'object': {
      const valid = objectArb(schema, name, g, depth) as fc.Arbitrary<Record<string, unknown>>;
      const required: string[] = schema.required ?? [];
      if (required.length) options.push(fc.tuple(valid, fc.constantFrom(...required)).map(([o, k]) => { const c = { ...o }; delete c[k]; return c; }));
      options.push(fc.tuple(valid, fc.constantFrom('__proto__', 'constructor', 'prototype', 'unknownField', ''), hostileValue)
        .map(([o, k, v]) => new Pairs([...Object.entries(o), [k, v]])));
      options.push(valid.map((o) => new Pairs([...Object.entries(o), ...Object.entries(o)]))); // every key twice
      if (schema.maxProperties !== undefined) {
        options.push(fc.constant(Object.fromEntries(Array.from({ length: schema.maxProperties + 1 }, (_, i) => [`${g.pools.ids.property[0]}${i}`, i]))));
      }
      options.push(valid.map((o) => nestIn(o, MAX_JSON_DEPTH - depth - 1)), valid.map((o) => nestIn(o, MAX_JSON_DEPTH - depth)));
      break;
    }
    default:
      break;
  }
  return fc.oneof(...options);
}

/** `value` wrapped in `levels` arrays (levels chosen to land at, and just past, the depth limit). */
function nestIn(value: unknown, levels: number): Raw {
  const n = Math.max(0, levels);
  return new Raw(`${'['.repeat(n)}${toJson(value)}${']'.repeat(n)}`);
}

// ---------------------------------------------------------------------------------------------
// Requests.

interface Operation {
  method: string;
  /** OpenAPI path, `{param}` style. */
  path: string;
  op: any;
}

interface FuzzRequest {
  method: InjectOptions['method'];
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

const ODD_CONTENT_TYPES = [
  'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json;charset=latin1', 'application/json; charset=utf-16',
  'application/vnd.api+json', 'application/json, text/plain', 'application/jsonx', 'text/plain', 'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x', 'application/json; boundary=--', '*/*', ' ', 'application/json; charset="utf-8"; q=1',
  // The shapes of Fastify's past Content-Type parsing advisories (GHSA-mg2h-6x62-wpwc, GHSA-jx2c-rxcm-jvmq, GHSA-573f-x89g-hqp9).
  'application/json\t', '\tapplication/json', 'application/json\tx', 'application/json;', 'Application/Json ;charset=utf-8', 'application/json ;',
];

function headerArb(hasBody: boolean): fc.Arbitrary<Record<string, string>> {
  return fc.record({
    'content-type': hasBody
      ? fc.oneof({ weight: 12, arbitrary: fc.constant('application/json') }, { weight: 2, arbitrary: fc.constantFrom(...ODD_CONTENT_TYPES) })
      : fc.constantFrom('application/json', 'text/plain'),
    'idempotency-key': fc.oneof({ weight: 3, arbitrary: fc.uuid() }, { weight: 1, arbitrary: fc.constantFrom('', ' ', 'k'.repeat(256), 'ключ', 'a\tb') }),
    'if-match': fc.constantFrom('*', '"1"', 'W/"1"', '"', '"0", "1"', `"${'9'.repeat(400)}"`, 'garbage', ''),
    'x-request-id': fc.oneof(fc.uuid(), fc.constantFrom('', 'a'.repeat(300), '<script>', '../../x')),
    accept: fc.constantFrom('text/html', 'application/xml', '*/*;q=0', 'application/json;q=0'),
    'content-encoding': fc.constantFrom('gzip', 'br', 'identity', 'x'),
    'x-oversized': fc.constant('h'.repeat(64 * 1024)),
    'x-forwarded-for': fc.constantFrom('1.1.1.1, 2.2.2.2', 'garbage', ''),
  }, { requiredKeys: hasBody ? ['content-type'] : [] }).map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as Record<string, string>);
}

function requestArb(operation: Operation, g: Gen, signer: Credentials | undefined): fc.Arbitrary<FuzzRequest> {
  const parameters: any[] = operation.op.parameters ?? [];
  const pathParams = parameters.filter((p) => p.in === 'path');
  const queryParams = parameters.filter((p) => p.in === 'query');
  const bodySchema = operation.op.requestBody?.content?.['application/json']?.schema;
  const method = operation.method.toUpperCase() as InjectOptions['method'];
  const hasBody = bodySchema !== undefined || ['POST', 'PATCH', 'DELETE'].includes(operation.method.toUpperCase());

  const segment = (p: any) => fc.oneof(
    { weight: 10, arbitrary: validArb(p.schema, p.name, g, 1) },
    { weight: 1, arbitrary: beyondArb(p.schema, p.name, g, 1) },
    { weight: 1, arbitrary: hostileValue.filter((v) => v !== HUGE_STRING) },
  ).map((v) => { const s = encode(toText(v)); return s === '' ? '%20' : s; });

  const queryValue = (p: any) => fc.oneof(
    { weight: p.required ? 10 : 6, arbitrary: validArb(p.schema, p.name, g, 1).map((v) => [toText(v)]) },
    { weight: p.required ? 0 : 6, arbitrary: fc.constant([] as string[]) },
    { weight: 1, arbitrary: beyondArb(p.schema, p.name, g, 1).map((v) => [toText(v)]) },
    { weight: 1, arbitrary: fc.tuple(validArb(p.schema, p.name, g, 1), validArb(p.schema, p.name, g, 1)).map(([a, b]) => [toText(a), toText(b)]) }, // repeated
  );
  const query = fc.tuple(
    fc.tuple(...queryParams.map((p) => queryValue(p).map((values) => values.map((v) => `${encode(p.name)}=${encode(v)}`)))),
    fc.oneof(
      { weight: 8, arbitrary: fc.constant([] as string[]) },
      { weight: 1, arbitrary: fc.array(fc.tuple(
        fc.constantFrom('__proto__', 'constructor', 'prototype', '__proto__[polluted]', 'constructor[prototype][polluted]', 'zz', 'a[]', '', ...queryParams.map((p) => `${p.name}[x]`)),
        fc.oneof(fc.constantFrom('yes', '1', ''), hostileValue.filter((v) => v !== HUGE_STRING).map(toText)),
      ).map(([k, v]) => `${encode(k)}=${encode(v)}`), { minLength: 1, maxLength: 3 }) },
      { weight: 1, arbitrary: fc.constantFrom(['%ED%A0%80=1'], ['limit=%FF'], ['%'], ['&&=&'], [`q=${'z'.repeat(100_000)}`]) },
    ),
  ).map(([declared, extra]) => [...declared.flat(), ...extra].join('&'));

  const body = bodySchema
    ? fc.oneof(
      { weight: 14, arbitrary: arb(bodySchema, 'body', g, 0).map(toJson) },
      { weight: 1, arbitrary: fc.constant(undefined) },
    )
    : fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: hostileValue.map(toJson) });

  return fc.record({
    params: fc.tuple(...pathParams.map(segment)),
    query,
    body: hasBody ? body : fc.constant(undefined),
    headers: fc.option(headerArb(hasBody), { freq: 4, nil: undefined }),
  }).map(({ params, query: q, body: b, headers }) => {
    let url = `${operation.path}`;
    pathParams.forEach((p, i) => { url = url.replace(`{${p.name}}`, params[i]!); });
    const h: Record<string, string> = { ...(headers ?? {}) };
    if (b !== undefined && !h['content-type']) h['content-type'] = 'application/json';
    if (b === undefined && headers === undefined) delete h['content-type'];
    if (signer) h.authorization = authorization(signer);
    return { method, url: q ? `${url}?${q}` : url, headers: h, ...(b === undefined ? {} : { payload: b }) };
  });
}

// ---------------------------------------------------------------------------------------------
// The app, with its error log captured (a 500's stack goes into the failure message).

const errorLog: string[] = [];
const logger = pino({ level: 'error' }, new Writable({ write(chunk, _enc, done) { errorLog.push(String(chunk)); done(); } }));
const database = await openTestDatabase();
const services = createServices({ db: database.db, secretBox: createSecretBox(randomBytes(32)), clock: systemClock });
const app = await buildApp({ db: database.db, services, logger });
await app.ready();
const doc = (await app.inject({ method: 'GET', url: `${V1}/public/openapi/json` })).json();
const operations: Operation[] = Object.entries<Record<string, any>>(doc.paths).flatMap(([path, item]) =>
  Object.entries(item).filter(([method]) => ['get', 'post', 'put', 'patch', 'delete'].includes(method)).map(([method, op]) => ({ method, path, op })));
const RUNS = RUNS_OVERRIDE ?? Math.max(20, Math.min(40, Math.round(2600 / operations.length)));

interface Account extends Credentials { accountId: string; memberId: string }

async function newAccount(name: string): Promise<Account> {
  const created = await services.accounts.create({ name, ownerName: 'Owner' });
  return { accountId: created.accountId, memberId: created.owner.memberId, apiKey: created.key.apiKey, apiSecret: created.key.apiSecret };
}

const signedCall = (creds: Credentials, method: InjectOptions['method'], url: string, body?: unknown) => app.inject({
  method,
  url: `${V1}${url}`,
  headers: { authorization: authorization(creds), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
  ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
});

/** An account with one of everything (two of most), and the pools the generators draw from. */
async function fixture(label: string): Promise<{ account: Account; gen: Gen }> {
  const account = await newAccount(`fuzz ${label}`);
  const ok = async (res: LightMyRequestResponse, what: string) => {
    assert.ok(res.statusCode < 300, `fixture ${what}: ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const call = (method: InjectOptions['method'], url: string, body?: unknown) => signedCall(account, method, url, body);
  const ids: Record<Kind, string[]> = { member: [], apiKey: [], entity: [], property: [], record: [], relationshipType: [], relationship: [], segment: [] };
  ids.member.push((await ok(await call('POST', '/members', { name: 'Colleague', role: 'MEMBER' }), 'member')).memberId);
  ids.member.push((await ok(await call('POST', '/members', { name: 'Admin', role: 'ADMIN', email: 'admin@example.com' }), 'member')).memberId);
  ids.apiKey.push((await ok(await call('POST', '/api-keys', { name: 'Second key' }), 'key')).apiKey);
  for (const [name, slug] of [['Companies', 'companies'], ['People', 'people'], ['Archived', 'archived']]) {
    ids.entity.push((await ok(await call('POST', '/entities', { name, slug }), 'entity')).entityId);
  }
  const [E1, E2, E3] = ids.entity as [string, string, string];
  const options = [{ label: 'Lead', value: 'lead' }, { label: 'Won', value: 'won' }];
  for (const [entityId, name, fieldType, extra] of [
    [E1, 'Code', 'TEXT', {}], [E1, 'Size', 'NUMBER', {}], [E1, 'Stage', 'DROPDOWN', { options }], [E1, 'Since', 'DATE', {}],
    [E1, 'Secret', 'TEXT', { isMasked: true }], [E2, 'Code', 'TEXT', {}], [E2, 'Topics', 'MULTI_CHECKBOX', { options }],
  ] as const) {
    ids.property.push((await ok(await call('POST', '/properties', { entityId, name, fieldType, ...extra }), 'property')).propertyId);
  }
  const [P1, P2, P3, P4, , P6] = ids.property as [string, string, string, string, string, string];
  for (const [entityId, name, data] of [
    [E1, 'Alpha', { [P1]: 'Alpha', [P2]: 10, [P3]: 'lead', [P4]: '2024-01-31' }], [E1, 'Beta', { [P1]: 'Beta', [P2]: 20 }], [E1, 'Gamma', { [P1]: 'Gamma' }],
    [E2, 'Alpha Co', { [P6]: 'Alpha' }], [E2, 'Beta Co', {}],
  ] as const) {
    ids.record.push((await ok(await call('POST', '/records', { entityId, name, data, tags: ['vip'] }), 'record')).recordId);
  }
  const [R1, , R3, T1] = ids.record as [string, string, string, string];
  await ok(await call('DELETE', `/records/${R3}`), 'trash record');
  await ok(await call('DELETE', `/entities/${E3}`), 'trash entity');
  ids.relationshipType.push((await ok(await call('POST', '/relationships/types', { name: 'Employs', sourceEntityId: E1, targetEntityId: E2 }), 'type')).relationshipTypeId);
  ids.relationshipType.push((await ok(await call('POST', '/relationships/types', { name: 'Parent', sourceEntityId: E1, targetEntityId: E1 }), 'type')).relationshipTypeId);
  ids.relationship.push((await ok(await call('POST', '/relationships', {
    relationshipTypeId: ids.relationshipType[0], sourceEntityId: E1, sourceRecordId: R1, targetEntityId: E2, targetRecordId: T1,
  }), 'relationship')).relationshipId);
  const conditions = { operator: 'AND', conditions: [{ field: `data.${P1}`, operator: 'eq', value: 'Alpha' }] };
  for (const mode of ['CACHED', 'DYNAMIC']) {
    const res = await call('POST', '/segments', { entityId: E1, name: `Alphas ${mode}`, conditions, mode });
    if (res.statusCode === 201) ids.segment.push(res.json().segmentId);
  }
  assert.ok(ids.segment.length > 0, 'the fixture has a segment');
  // IDs that are well-formed and exist nowhere: the last four characters changed.
  const missing = Object.fromEntries(KINDS.map((k) => [k, ids[k].slice(0, 1).map((id) => `${id.slice(0, -4)}${id.slice(-4) === 'ZZZZ' ? 'YYYY' : 'ZZZZ'}`)])) as Record<Kind, string[]>;
  const anyId = KINDS.flatMap((k) => ids[k]);
  return { account, gen: { pools: { ids, missing, options: options.map((o) => o.value) }, anyId } };
}

// ---------------------------------------------------------------------------------------------
// The "no write on a 4xx" fingerprint.

/** Tables (and columns) whose changes on a refused request are by design; see the header comment. */
const UNFINGERPRINTED_TABLES = new Set(['request_nonces', 'idempotency_keys']);

let tenantTables: string[] | undefined;
async function fingerprint(accountId: string): Promise<Map<string, string>> {
  tenantTables ??= (await sql<{ name: string }>`
    SELECT c.table_name AS name FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = current_schema() AND c.column_name = 'account_id' AND t.table_type = 'BASE TABLE'
    ORDER BY 1`.execute(database.db)).rows.map((r) => r.name).filter((name) => !UNFINGERPRINTED_TABLES.has(name) && !name.startsWith('kysely'));
  const parts = tenantTables.map((name) => sql`
    SELECT ${name}::text AS name, count(*)::int AS rows, coalesce(md5(string_agg(x, E'\n' ORDER BY x)), '') AS hash
    FROM (SELECT (to_jsonb(r) - 'last_used_at')::text AS x FROM ${sql.table(name)} r WHERE r.account_id = ${accountId}) s`);
  const rows = (await sql<{ name: string; rows: number; hash: string }>`${sql.join(parts, sql` UNION ALL `)}`.execute(database.db)).rows;
  return new Map(rows.map((r) => [r.name, `${r.rows}:${r.hash}`]));
}

const changedTables = (a: Map<string, string>, b: Map<string, string>) => [...a.keys()].filter((k) => a.get(k) !== b.get(k));

// ---------------------------------------------------------------------------------------------
// Checks on one answer.

/** What is wrong with an answer, or undefined. */
function answerProblem(res: LightMyRequestResponse, signed: boolean): string | undefined {
  if (res.statusCode >= 500) return `status ${res.statusCode}`;
  if (signed && res.statusCode === 401) return 'a correctly signed request was refused (401)';
  if (res.statusCode < 400) return undefined;
  if (!String(res.headers['content-type'] ?? '').startsWith('application/json')) return `error content-type ${String(res.headers['content-type'])}`;
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    return 'error body is not JSON';
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'error body is not an object';
  const { errorCode, errorMessage, details, ...rest } = body as Record<string, unknown>;
  if (typeof errorCode !== 'string' || !/^[A-Z][A-Za-z]+$/.test(errorCode)) return `errorCode ${JSON.stringify(errorCode)}`;
  if (typeof errorMessage !== 'string' || errorMessage === '') return 'errorMessage missing';
  if (details !== undefined && !Array.isArray(details)) return 'details is not an array';
  if (Object.keys(rest).length) return `extra fields: ${Object.keys(rest).join(', ')}`;
  if (res.body.length > 100_000) return `error body of ${res.body.length} bytes (echoes the input?)`;
  return undefined;
}

const show = (r: FuzzRequest) => {
  const clip = (s: string) => (s.length > 600 ? `${s.slice(0, 600)}…(${s.length} chars)` : s);
  const headers = Object.fromEntries(Object.entries(r.headers).filter(([k]) => k !== 'authorization').map(([k, v]) => [k, clip(v)]));
  return `${r.method} ${clip(r.url)}\n    headers: ${JSON.stringify(headers)}\n    body: ${r.payload === undefined ? '(none)' : clip(r.payload)}`;
};

// ---------------------------------------------------------------------------------------------

describe('hostile-input fuzzer: every OpenAPI operation, generated from its schema and past it', () => {
  const crashes: unknown[] = [];
  const onCrash = (error: unknown) => { crashes.push(error); };
  const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
  let shared: { account: Account; gen: Gen };
  let sharedWrites: { account: Account; gen: Gen };
  const stats = { requests: 0, byClass: new Map<string, number>() };

  before(async () => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    shared = await fixture('reads');
    sharedWrites = await fixture('writes');
  });
  after(async () => {
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    await app.close();
    await services.propertyIndexes.idle();
    await database.close();
  });

  test('every operation of the OpenAPI document is registered and fuzzed here', () => {
    const registered = new Set(registeredRoutes(app.printRoutes({ commonPrefix: false })).map((r) => `${r.method} ${r.path}`));
    for (const o of operations) assert.ok(registered.has(`${o.method.toUpperCase()} ${o.path.replace(/\{([^}]+)\}/g, ':$1')}`), `${o.method} ${o.path}`);
    assert.ok(operations.length >= 60, `${operations.length} operations`);
  });

  test('the fingerprint sees every kind of write (so the no-write check can fail), and nothing else', async () => {
    const { account, gen } = await fixture('fingerprint check');
    const [R1] = gen.pools.ids.record;
    let before = await fingerprint(account.accountId);
    const expectChange = async (res: LightMyRequestResponse, tables: string[]) => {
      assert.ok(res.statusCode < 300, res.body);
      const now = await fingerprint(account.accountId);
      const changed = changedTables(before, now);
      // Counted resources also move their quota_usage row.
      assert.deepEqual(changed.filter((name) => name !== 'quota_usage').sort(), tables.sort(), `changed: ${changed.join(', ')}`);
      before = now;
    };
    await expectChange(await signedCall(account, 'GET', `/records/${R1}`), []); // a signed read (its nonce is not counted)
    await expectChange(await signedCall(account, 'PATCH', `/records/${R1}`, { tags: ['changed'] }), ['records']);
    await expectChange(await signedCall(account, 'DELETE', `/relationships/${gen.pools.ids.relationship[0]}`), ['relationships']);
    await expectChange(await signedCall(account, 'PATCH', `/members/${gen.pools.ids.member[0]}`, { name: 'Renamed' }), ['members']);
    await expectChange(await signedCall(account, 'POST', '/records', { entityId: gen.pools.ids.entity[0], name: 'One more' }), ['records']);
  });

  for (const operation of operations) {
    const name = `${operation.method.toUpperCase()} ${operation.path}`;
    // Per operation, so that new operations do not change the inputs of the others.
    const seed = (SEED ^ [...name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261)) >>> 0;
    const isRead = operation.method === 'get';
    const destroys = operation.method === 'delete' || /delete|purge/i.test(operation.path);
    const signed = operation.path.startsWith(V1) && !operation.path.startsWith(`${V1}/public/`);
    test(name, async () => {
      const { account, gen } = isRead ? shared : destroys ? await fixture(name) : sharedWrites;
      const problems: string[] = [];
      const start = await fingerprint(account.accountId);
      let last = start;
      let sent = 0;
      await fc.assert(fc.asyncProperty(requestArb(operation, gen, signed ? account : undefined), async (request) => {
        errorLog.length = 0;
        const res = await app.inject({ method: request.method, url: request.url, headers: request.headers, ...(request.payload === undefined ? {} : { payload: request.payload }) });
        sent++;
        stats.requests++;
        const cls = `${Math.floor(res.statusCode / 100)}xx`;
        stats.byClass.set(cls, (stats.byClass.get(cls) ?? 0) + 1);
        const problem = answerProblem(res, signed);
        if (problem) {
          const logged = errorLog.map((line) => { try { const e = JSON.parse(line); return `${e.msg}: ${e.err?.stack ?? ''}`; } catch { return line; } }).join('\n');
          problems.push(`${problem}\n    ${show(request)}\n    answer: ${res.statusCode} ${res.body.slice(0, 500)}${logged ? `\n    log: ${logged.slice(0, 3000)}` : ''}`);
        }
        if (!isRead) {
          const now = await fingerprint(account.accountId);
          const changed = changedTables(last, now);
          if (res.statusCode >= 400 && changed.length) {
            problems.push(`a ${res.statusCode} wrote to ${changed.join(', ')}\n    ${show(request)}\n    answer: ${res.body.slice(0, 300)}`);
          }
          last = now;
        }
      }), { seed, numRuns: RUNS, endOnFailure: true });
      if (isRead) {
        const changed = changedTables(start, await fingerprint(account.accountId));
        assert.deepEqual(changed, [], `GET requests wrote to ${changed.join(', ')}`);
      }
      assert.equal(sent, RUNS);
      assert.deepEqual(problems.slice(0, 5), [], `seed ${seed} (FUZZ_SEED=${SEED}): ${problems.length} problems`);
    });
  }

  test('the JSON depth limit is exact: MAX_JSON_DEPTH levels are parsed, one more is refused', async () => {
    const { account } = shared;
    for (const [open, close] of [['[', ']'], ['{"a":', '}']] as const) {
      const body = (levels: number) => `${open.repeat(levels)}${open === '[' ? '' : '1'}${close.repeat(levels)}`;
      const send = (levels: number) => app.inject({
        method: 'POST', url: `${V1}/members`, payload: body(levels),
        headers: { authorization: authorization(account), 'content-type': 'application/json' },
      });
      const atLimit = await send(MAX_JSON_DEPTH);
      assert.equal(atLimit.statusCode, 400, atLimit.body);
      assert.doesNotMatch(atLimit.json().errorMessage, /nested deeper/, 'at the limit the body reaches schema validation');
      const past = await send(MAX_JSON_DEPTH + 1);
      assert.equal(past.statusCode, 400, past.body);
      assert.match(past.json().errorMessage, new RegExp(`nested deeper than ${MAX_JSON_DEPTH} levels`));
    }
  });

  describe('garbage at the HTTP layer, over a real socket', () => {
    let port: number;
    before(async () => {
      await app.listen({ port: 0, host: '127.0.0.1' });
      port = (app.server.address() as AddressInfo).port;
    });

    /** Sends raw bytes, returns what came back before the server closed (or 5 s passed). */
    function rawExchange(request: string | Buffer, halfClose = false): Promise<{ status: number; headers: string; body: string; raw: string } | undefined> {
      return new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        const chunks: Buffer[] = [];
        const timer = setTimeout(() => socket.destroy(), 5000);
        socket.on('data', (c) => chunks.push(c));
        socket.on('error', () => { /* a reset after the answer is fine */ });
        socket.on('close', () => {
          clearTimeout(timer);
          const raw = Buffer.concat(chunks).toString('latin1');
          if (raw === '' && halfClose) return resolve(undefined);
          const m = /^HTTP\/1\.1 (\d{3})[^\r\n]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(raw);
          if (!m) return reject(new Error(`no HTTP answer: ${JSON.stringify(raw.slice(0, 300))}`));
          let body = m[3]!;
          if (/transfer-encoding: chunked/i.test(m[2]!)) {
            let out = '';
            for (let rest = body; rest.length;) {
              const nl = rest.indexOf('\r\n');
              const size = parseInt(rest.slice(0, nl), 16);
              if (!size) break;
              out += rest.slice(nl + 2, nl + 2 + size);
              rest = rest.slice(nl + 2 + size + 2);
            }
            body = out;
          }
          resolve({ status: Number(m[1]), headers: m[2]!, body: Buffer.from(body, 'latin1').toString('utf8'), raw });
        });
        socket.write(request);
        if (halfClose) socket.end();
      });
    }

    const json = '{"name":"over the wire"}';
    const head = (lines: string[], body = '') => `${lines.join('\r\n')}\r\n\r\n${body}`;
    const signedLine = () => `Authorization: ${authorization(shared.account)}`;
    const cases: [string, () => string | Buffer][] = [
      ['a 20 KiB header', () => head(['GET /healthz HTTP/1.1', 'Host: x', `X-Big: ${'b'.repeat(20_000)}`, 'Connection: close'])],
      ['3,000 small headers', () => head(['GET /healthz HTTP/1.1', 'Host: x', ...Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`), 'Connection: close'])],
      ['a 20 KiB URL', () => head([`GET ${V1}/members?q=${'q'.repeat(20_000)} HTTP/1.1`, 'Host: x', signedLine(), 'Connection: close'])],
      ['two Authorization headers', () => head([`GET ${V1}/members HTTP/1.1`, 'Host: x', signedLine(), 'Authorization: HMAC-SHA256 apiKey=NCS0, date=x, salt=y, signature=z', 'Connection: close'])],
      ['two different Content-Types', () => head([`POST ${V1}/members HTTP/1.1`, 'Host: x', signedLine(), 'Content-Type: text/plain', 'Content-Type: application/json', `Content-Length: ${json.length}`, 'Connection: close'], json)],
      ['two different Content-Lengths', () => head([`POST ${V1}/members HTTP/1.1`, 'Host: x', signedLine(), 'Content-Type: application/json', `Content-Length: ${json.length}`, 'Content-Length: 3', 'Connection: close'], json)],
      ['Content-Length and chunked together', () => head([`POST ${V1}/members HTTP/1.1`, 'Host: x', signedLine(), 'Content-Type: application/json', `Content-Length: ${json.length}`, 'Transfer-Encoding: chunked', 'Connection: close'], `${json.length.toString(16)}\r\n${json}\r\n0\r\n\r\n`)],
      ['broken chunked encoding', () => head([`POST ${V1}/members HTTP/1.1`, 'Host: x', signedLine(), 'Content-Type: application/json', 'Transfer-Encoding: chunked', 'Connection: close'], 'zz\r\n{"name"\r\n0\r\n\r\n')],
      ['a short body (Content-Length larger than sent, then the client hangs up)', () => head([`POST ${V1}/members HTTP/1.1`, 'Host: x', signedLine(), 'Content-Type: application/json', 'Content-Length: 100', 'Connection: close'], '{"na')],
      ['gzip Content-Encoding', () => head([`POST ${V1}/members HTTP/1.1`, 'Host: x', signedLine(), 'Content-Type: application/json', 'Content-Encoding: gzip', `Content-Length: ${json.length}`, 'Connection: close'], json)],
      ['a Content-Type with a UTF-16 charset', () => head([`POST ${V1}/members HTTP/1.1`, 'Host: x', signedLine(), 'Content-Type: application/json; charset=utf-16le', `Content-Length: ${json.length}`, 'Connection: close'], json)],
      ['a header value with raw bytes over 0x7F', () => Buffer.concat([Buffer.from(`GET ${V1}/members HTTP/1.1\r\nHost: x\r\n${signedLine()}\r\nX-Name: `), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('\r\nConnection: close\r\n\r\n')])],
      ['an Authorization header with raw UTF-8', () => head([`GET ${V1}/members HTTP/1.1`, 'Host: x', 'Authorization: HMAC-SHA256 apiKey=키, date=날짜, salt=소금, signature=서명', 'Connection: close'])],
      ['an invalid header name', () => head(['GET /healthz HTTP/1.1', 'Host: x', 'Bad Header: x', 'Connection: close'])],
      ['a NUL in a header value', () => head(['GET /healthz HTTP/1.1', 'Host: x', 'X-Nul: a\u0000b', 'Connection: close'])],
      ['an obs-folded header', () => head([`GET ${V1}/members HTTP/1.1`, 'Host: x', signedLine(), 'X-Fold: a', ' b', 'Connection: close'])],
      ['a garbage method', () => head(['FROB /healthz HTTP/1.1', 'Host: x', 'Connection: close'])],
      ['a garbage request line', () => head(['\u0001\u0002 / HTTP/1.1', 'Host: x', 'Connection: close'])],
      ['HTTP/9.9', () => head(['GET /healthz HTTP/9.9', 'Host: x', 'Connection: close'])],
      ['an absolute-form URL to another host', () => head(['GET http://evil.example/crm-core/v1/members HTTP/1.1', 'Host: x', signedLine(), 'Connection: close'])],
      ['Expect: 100-continue', () => head([`POST ${V1}/members HTTP/1.1`, 'Host: x', signedLine(), 'Content-Type: application/json', 'Expect: 100-continue', `Content-Length: ${json.length}`, 'Connection: close'], json)],
      ['a 2 MiB body on a 1 MiB route', () => head([`POST ${V1}/members HTTP/1.1`, 'Host: x', signedLine(), 'Content-Type: application/json', `Content-Length: ${2 * 1024 * 1024}`, 'Connection: close'], `{"name":"${'n'.repeat(2 * 1024 * 1024 - 11)}"}`)],
    ];

    for (const [label, build] of cases) {
      test(label, async () => {
        const hangsUp = label.includes('hangs up');
        const res = await rawExchange(build(), hangsUp);
        if (!res) {
          assert.ok(hangsUp, 'no answer at all');
          return; // the request never completed: nothing to answer (the server must stay up, checked below)
        }
        assert.match(res.headers, /x-request-id: \S+/i);
        assert.ok(res.status < 500, `${res.status} ${res.raw.slice(0, 500)}`);
        if (res.status >= 400) {
          assert.match(res.headers, /content-type: application\/json/i, res.raw.slice(0, 500));
          const body = JSON.parse(res.body);
          assert.deepEqual(Object.keys(body).filter((k) => k !== 'details').sort(), ['errorCode', 'errorMessage'], res.body);
          assert.equal(typeof body.errorCode, 'string');
        }
      });
    }

    test('the server still answers, and nothing was polluted or crashed', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(res.status, 200);
      const signedRes = await fetch(`http://127.0.0.1:${port}${V1}/members/${shared.account.memberId}`, { headers: { authorization: authorization(shared.account) } });
      assert.equal(signedRes.status, 200);
    });
  });

  test('no crash, no prototype pollution, the owner intact; totals', (ctx) => {
    ctx.diagnostic(`${stats.requests} generated requests: ${[...stats.byClass].sort().map(([k, v]) => `${k} ${v}`).join(', ')}`);
    assert.deepEqual(crashes, []);
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeKeys);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    // A share of the requests must succeed, or the fuzz never got past validation.
    assert.ok((stats.byClass.get('2xx') ?? 0) > stats.requests * 0.1, 'at least 10% of generated requests succeeded');
  });
});

