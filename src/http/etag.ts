import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { errors } from '../errors.ts';
import { versionOf, versionTag, type Precondition } from '../lib/versioning.ts';

/**
 * ETag and If-Match (RFC 9110 §8.8.3, §13.1.1) for optimistic concurrency; see
 * src/lib/versioning.ts and docs/reliability.md ("Optimistic concurrency").
 *
 * - Every 2xx answer whose body is one versioned object (a record, entity, property or segment,
 *   as GET, POST, PATCH and restore return them) gets `ETag: "<version>"`, a strong tag.
 * - PATCH and DELETE of those four take `If-Match`: `*` or a list of entity-tags. The route
 *   passes the parsed header to its service, which compares it with the locked row (412 when
 *   none matches). A header that is not `*` or a list of entity-tags is a 400 before anything
 *   runs (preValidation; an Idempotency-Key is not claimed).
 */

/** One entity-tag: optional weakness indicator, then a quoted string of etagc (no obs-text). */
const ENTITY_TAG = String.raw`(?:W/)?"[\x21\x23-\x7E]*"`;
const IF_MATCH = new RegExp(String.raw`^[ \t]*(?:\*|${ENTITY_TAG}(?:[ \t]*,[ \t]*${ENTITY_TAG})*)[ \t]*$`);

/** The `headers` schema of a route that honours If-Match (documents it in OpenAPI, validates its syntax). */
export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({
    maxLength: 1024,
    pattern: IF_MATCH.source,
    description: 'Optimistic concurrency: `*` or the ETag(s) the change is based on, e.g. `"3"`. When the resource\'s '
      + 'current ETag is not among them the request is refused with 412 PreconditionFailed and nothing is written. '
      + 'Weak tags (W/"…") never match.',
  })),
});

/** The request's If-Match as a Precondition (undefined when absent). */
export function ifMatch(request: FastifyRequest): Precondition | undefined {
  const header = request.headers['if-match'];
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || header.length > 1024 || !IF_MATCH.test(header)) {
    throw errors.validation('headers/if-match: must be * or a comma-separated list of entity-tags such as "3"',
      [{ path: 'headers/if-match', message: 'not * or a list of entity-tags' }]);
  }
  if (header.trim() === '*') return { any: true };
  const tags: string[] = [];
  for (const match of header.matchAll(/(W\/)?"([^"]*)"/g)) if (!match[1]) tags.push(match[2]!);
  return { any: false, tags };
}

/** The ETag header value of a version. */
export const formatETag = (version: number): string => `"${versionTag(version)}"`;

/**
 * Sets ETag on successful answers whose body is a versioned object (see withVersion), and checks
 * the If-Match syntax of the routes that honour it before validation, so a malformed header is a
 * 400 that says what is wrong (the schema's pattern only backs it up and documents it).
 */
export function registerETags(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    if (request.routeOptions.schema?.headers === IfMatchHeaders) ifMatch(request);
  });
  app.addHook('preSerialization', async (_request, reply, payload) => {
    const version = versionOf(payload);
    if (version !== undefined && reply.statusCode >= 200 && reply.statusCode < 300) reply.header('etag', formatETag(version));
    return payload;
  });
}
