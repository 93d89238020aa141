import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';
import { errors, type ErrorDetail } from '../errors.ts';

interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

/** Turns TypeBox's raw errors into readable ones: one per path, the most specific first. */
function describe(error: SchemaError): string {
  const p = error.params;
  switch (error.keyword) {
    case 'additionalProperties':
      return `unknown field(s): ${(p.additionalProperties as string[]).join(', ')}`;
    case 'required':
      return `missing required field(s): ${(p.requiredProperties as string[]).join(', ')}`;
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map(String).join(', ')}`;
    default:
      return error.message;
  }
}

export function formatSchemaErrors(part: string, raw: Iterable<SchemaError>): { message: string; details: ErrorDetail[] } {
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  for (const error of raw) {
    // `additionalProperties: false` also reports each extra field as "schema is false"; the
    // summary line above names them, so skip the duplicates.
    if (error.keyword === 'boolean') continue;
    const path = `${part}${error.instancePath}`;
    const message = describe(error);
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    details.push({ path, message });
  }
  const first = details[0] ?? { path: part, message: 'is invalid' };
  const more = details.length > 1 ? ` (and ${details.length - 1} more)` : '';
  return { message: `${first.path}: ${first.message}${more}`, details };
}

/**
 * Validates with TypeBox's compiler, which rejects unknown fields even inside unions (Fastify's
 * default Ajv setup silently strips them). Query strings and path parameters arrive as text and
 * are converted to the schema's types first; bodies are taken exactly as sent.
 */
export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema);
  const part = httpPart === 'querystring' ? 'query' : (httpPart ?? 'body');
  return (input: unknown) => {
    const value = httpPart === 'body' ? input : Value.Convert(schema, input);
    if (check.Check(value)) return { value };
    const { message, details } = formatSchemaErrors(part, check.Errors(value) as Iterable<SchemaError>);
    return { error: errors.validation(message, details) };
  };
};
