import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';
import { AppError, errors, type ErrorDetail } from '../errors.ts';

interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

const pointer = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * Turns one TypeBox error into readable (path, message) pairs. Unknown and missing fields are
 * reported at the field's own path (`body/foo: unknown field`), so the message names the field.
 */
function describe(path: string, error: SchemaError): ErrorDetail[] {
  const p = error.params;
  switch (error.keyword) {
    case 'additionalProperties':
      return (p.additionalProperties as string[]).map((field) => ({ path: `${path}/${pointer(field)}`, message: 'unknown field' }));
    case 'required':
      return (p.requiredProperties as string[]).map((field) => ({ path: `${path}/${pointer(field)}`, message: 'is required' }));
    case 'enum':
      return [{ path, message: `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')}` }];
    default:
      return [{ path, message: error.message }];
  }
}

/** At most this many details per response: enough to fix a request, bounded for hostile ones. */
const MAX_DETAILS = 50;

export function formatSchemaErrors(part: string, raw: Iterable<SchemaError>): { message: string; details: ErrorDetail[] } {
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  outer: for (const error of raw) {
    // `additionalProperties: false` also reports each extra field as "schema is false"; the
    // additionalProperties error names them, so skip the duplicates.
    if (error.keyword === 'boolean') continue;
    for (const detail of describe(`${part}${error.instancePath}`, error)) {
      const key = `${detail.path}\u0000${detail.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      details.push(detail);
      if (details.length >= MAX_DETAILS) break outer;
    }
  }
  const first = details[0] ?? { path: part, message: 'is invalid' };
  const more = details.length > 1 ? ` (and ${details.length - 1} more)` : '';
  return { message: `${first.path}: ${first.message}${more}`, details };
}

/**
 * JSON nesting allowed in request bodies. Far beyond what any endpoint needs (condition trees
 * included), low enough that no recursive code downstream (validators, serializers, PostgreSQL's
 * jsonb) can be driven into a stack overflow.
 */
export const MAX_JSON_DEPTH = 64;

/** Keys refused anywhere in client input: the prototype-pollution vectors. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor']);

/**
 * Input no schema can be trusted to catch, checked on every body, query string and path:
 * prototype-pollution keys, nesting deeper than MAX_JSON_DEPTH, U+0000, which PostgreSQL
 * cannot store in text or jsonb (it would otherwise surface as a 500 from the database), and
 * what would be stored as something else than was sent: lone surrogates (U+FFFD in UTF-8) and
 * numbers beyond double range (Infinity, null in JSON).
 * Recursion stops at maxDepth, so hostile nesting cannot overflow the stack here; the path is
 * only spelled out for the error.
 */
export function inspectInput(value: unknown, part: string, maxDepth = MAX_JSON_DEPTH): AppError | undefined {
  const path: (string | number)[] = [];
  const at = () => [part, ...path.map((key) => (typeof key === 'number' ? String(key) : pointer(key)))].join('/');
  const walk = (v: unknown): AppError | undefined => {
    if (typeof v === 'string') {
      if (v.includes('\u0000')) {
        const where = at();
        return errors.validation(`${where}: must not contain the NUL character (U+0000)`, [{ path: where, message: 'must not contain U+0000' }]);
      }
      // A lone surrogate cannot be stored as UTF-8: it would silently become U+FFFD.
      if (!v.isWellFormed()) {
        const where = at();
        return errors.validation(`${where}: must be well-formed Unicode (no lone surrogate)`, [{ path: where, message: 'lone surrogate' }]);
      }
      return undefined;
    }
    // 1e309 parses to Infinity, which JSON can only store as null: refused rather than changed.
    if (typeof v === 'number' && !Number.isFinite(v)) {
      const where = at();
      return errors.validation(`${where}: must be a finite number (|n| < 1.8e308)`, [{ path: where, message: 'not a finite number' }]);
    }
    if (v === null || typeof v !== 'object') return undefined;
    if (path.length >= maxDepth) {
      return errors.validation(`${part}: JSON nested deeper than ${maxDepth} levels`, [{ path: at().slice(0, 1000), message: `nested deeper than ${maxDepth} levels` }]);
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        const problem = walk(v[i]);
        if (problem) return problem;
        path.pop();
      }
      return undefined;
    }
    for (const key in v) {
      if (!Object.hasOwn(v, key)) continue;
      path.push(key);
      if (FORBIDDEN_KEYS.has(key)) {
        const where = at();
        return errors.validation(`${where}: the property name "${key}" is not allowed`, [{ path: where, message: `forbidden property name "${key}"` }]);
      }
      if (key.includes('\u0000') || !key.isWellFormed()) {
        path.pop();
        const where = at();
        return errors.validation(`${where}: property names must not contain U+0000 or a lone surrogate`, [{ path: where, message: 'property name contains U+0000 or a lone surrogate' }]);
      }
      const problem = walk((v as Record<string, unknown>)[key]);
      if (problem) return problem;
      path.pop();
    }
    return undefined;
  };
  return walk(value);
}

/**
 * Bodies are JSON and only JSON: Fastify's default text/plain parser is removed, so any other
 * Content-Type is 415. Real clients (Solapi's own samples) send `Content-Type: application/json`
 * on bodiless DELETE and POST requests, so an empty body is "no body", not malformed JSON.
 * Parsing is plain JSON.parse (V8's is iterative, so deep nesting cannot crash it); the result
 * is then checked by inspectInput before anything else sees it.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body.toString();
    if (text.trim() === '') return done(null, undefined);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return done(errors.validation(`body: malformed JSON (${(error as Error).message.slice(0, 200)})`, [{ path: 'body', message: 'malformed JSON' }]), undefined);
    }
    const problem = inspectInput(value, 'body');
    if (problem) return done(problem, undefined);
    return done(null, value);
  });
}

/**
 * Validates with TypeBox's compiler, which rejects unknown fields even inside unions (Fastify's
 * default Ajv setup silently strips them). Query strings and path parameters arrive as text and
 * are converted to the schema's types first; bodies are taken exactly as sent. A missing body
 * is validated as `{}`: routes whose body fields are all optional accept no body, the others
 * name the missing fields.
 */
export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema);
  const part = httpPart === 'querystring' ? 'query' : (httpPart ?? 'body');
  return (input: unknown) => {
    let value: unknown;
    if (httpPart === 'body') {
      // Fastify hands the validator null when there was no body at all.
      value = input === null || input === undefined ? (check.Check(input) ? input : {}) : input;
    } else {
      const problem = inspectInput(input, part);
      if (problem) return { error: problem };
      try {
        value = Value.Convert(schema, input);
      } catch {
        value = input; // leave it to the check below to say what is wrong
      }
    }
    if (check.Check(value)) return { value };
    const { message, details } = formatSchemaErrors(part, check.Errors(value) as Iterable<SchemaError>);
    return { error: errors.validation(message, details) };
  };
};
