import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors } from '../../errors.ts';
import type { IdempotencyService } from '../../modules/idempotency/idempotency.service.ts';

/**
 * `Idempotency-Key` on POST, PATCH and DELETE (docs/reliability.md, "Idempotency").
 *
 * - onRequest (after auth): the key is validated: 1–255 printable ASCII characters, else 400.
 * - preValidation: the request's fingerprint: method, path and query as sent, the caller's API
 *   key, its If-Match (a PATCH under another precondition is another request), and the body as
 *   canonical JSON (object keys sorted), so re-serialising the same body still matches.
 * - preHandler (after schema validation, so a request the schema refuses claims nothing): the key
 *   is claimed with a `pending` row. Same key and fingerprint already completed → the stored
 *   response, byte for byte, plus `Idempotent-Replayed: true`; still pending → 409
 *   IdempotencyKeyInProgress with Retry-After; a different fingerprint → 422 IdempotencyKeyReused.
 * - onSend: the response about to be sent (status, headers, serialised body) is stored on the
 *   claim before it leaves, so a client holding the response always finds it stored. 5xx
 *   responses are not stored: the claim is dropped and a retry executes again.
 */

const METHODS = new Set(['POST', 'PATCH', 'DELETE']);
const KEY = /^[\x20-\x7e]{1,255}$/;

/** Headers that belong to one exchange, not to the stored response. */
const NOT_STORED = new Set([
  'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'x-request-id',
  'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'ratelimit-policy', 'idempotent-replayed',
]);

export const REPLAYED_HEADER = 'idempotent-replayed';

interface IdempotencyState {
  key: string;
  fingerprint: string;
  /** Our claim, once preHandler made one. */
  token?: string;
  /** The claim was completed or released. */
  settled?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    idempotency: IdempotencyState | null;
  }
}

/** JSON with object keys sorted at every level: equal for bodies that differ only in key order or spacing. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

function fingerprint(request: FastifyRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([request.method, request.url, request.caller.apiKey, request.headers['if-match'] ?? null]))
    .update('\n')
    .update(canonicalJson(request.body))
    .digest('hex');
}

function storableHeaders(reply: FastifyReply): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    if (value === undefined || NOT_STORED.has(name.toLowerCase())) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return headers;
}

/** Registered in the authenticated /crm-core/v1 scope, after registerAuth (it needs request.caller). */
export function registerIdempotency(app: FastifyInstance, deps: { idempotency: IdempotencyService }): void {
  app.decorateRequest('idempotency', null);

  app.addHook('onRequest', async (request) => {
    if (!METHODS.has(request.method)) return;
    const raw = request.headers['idempotency-key'];
    if (raw === undefined) return;
    if (typeof raw !== 'string') throw errors.idempotencyKeyInvalid('send one Idempotency-Key header');
    if (!KEY.test(raw)) throw errors.idempotencyKeyInvalid('must be 1 to 255 printable ASCII characters');
    request.idempotency = { key: raw, fingerprint: '' };
    request.log = request.log.child({ idempotencyKey: raw });
  });

  app.addHook('preValidation', async (request) => {
    if (request.idempotency) request.idempotency.fingerprint = fingerprint(request);
  });

  app.addHook('preHandler', async (request, reply) => {
    const state = request.idempotency;
    if (!state) return;
    const outcome = await deps.idempotency.begin(request.tenant, {
      key: state.key,
      fingerprint: state.fingerprint,
      method: request.method,
      path: request.url.slice(0, 2000),
    });
    switch (outcome.kind) {
      case 'execute':
        state.token = outcome.token;
        return;
      case 'replay':
        return reply
          .code(outcome.response.statusCode)
          .headers(outcome.response.headers)
          .header(REPLAYED_HEADER, 'true')
          .send(outcome.response.body);
      case 'mismatch':
        throw errors.idempotencyKeyReused(outcome.usedFor);
      case 'in-progress':
        throw errors.idempotencyKeyInProgress(outcome.retryAfterSeconds);
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const state = request.idempotency;
    if (!state?.token || state.settled) return payload;
    state.settled = true;
    try {
      if (reply.statusCode >= 500) {
        await deps.idempotency.release(request.tenant, state.key, state.token);
        return payload;
      }
      const body = typeof payload === 'string' ? payload
        : Buffer.isBuffer(payload) ? payload.toString('utf8')
        : payload === null || payload === undefined ? '' : undefined;
      if (body === undefined) {
        // A streamed body cannot be stored: the claim stays pending until it may be taken over.
        request.log.warn('idempotency: a streamed response cannot be stored');
        return payload;
      }
      const stored = await deps.idempotency.complete(request.tenant, state.key, state.token, {
        statusCode: reply.statusCode,
        headers: storableHeaders(reply),
        body,
      });
      if (!stored) request.log.warn('idempotency: the claim was taken over before the response was stored');
    } catch (error) {
      // The handler's work is done: the client gets its response. The claim stays pending and
      // is taken over after the pending timeout (docs/reliability.md).
      request.log.error({ err: error }, 'idempotency: storing the response failed');
    }
    return payload;
  });
}
