import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, errors } from '../errors.ts';
import { isDatabaseUnavailable } from '../db/errors.ts';
import { UNPARSED_METHOD, UNROUTED, type HttpMetrics } from './plugins/metrics.ts';

/** PostgreSQL data exceptions that only client input can cause: text it cannot store (e.g. U+0000). */
const BAD_INPUT_SQLSTATES = new Set(['22021', '22P05']);

function isBadInputForDatabase(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && BAD_INPUT_SQLSTATES.has(code)) return true;
  if (/invalid byte sequence for encoding|unsupported Unicode escape sequence/.test(error.message)) return true;
  return error.cause !== undefined && isBadInputForDatabase(error.cause);
}

/** A header value safe to quote back in a message: printable, short. */
function quoted(value: unknown): string {
  return JSON.stringify(String(value ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 100));
}

/** The errorCode for a 4xx status that reached us without one (from Fastify or a plugin). */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'ValidationError',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'ConflictException',
  410: 'Gone',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  429: 'TooManyRequests',
};

/** Fastify's own request errors (routing, parsing, limits) by code. */
function fromFastify(error: FastifyError, request: FastifyRequest | undefined): AppError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': {
      const limit = request?.routeOptions.bodyLimit;
      return typeof limit === 'number'
        ? errors.payloadTooLarge(limit)
        : new AppError(413, 'PayloadTooLarge', 'The request body is larger than the limit for this route.');
    }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const type = request?.headers['content-type'];
      return new AppError(415, 'UnsupportedMediaType', type === undefined
        ? 'A request body needs Content-Type: application/json.'
        : `Content-Type ${quoted(type)} is not supported; send application/json.`);
    }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errors.validation('body: the body is empty but Content-Type is application/json.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return errors.validation('body: malformed JSON', [{ path: 'body', message: 'malformed JSON' }]);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return errors.validation('The Content-Length header does not match the body.');
    case 'FST_ERR_CTP_INVALID_CONTENT_ENCODING':
      return new AppError(415, 'UnsupportedMediaType', `Content-Encoding ${quoted(request?.headers['content-encoding'])} is not supported.`);
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_INVALID_URL':
      return errors.validation('The URL is not valid: a path segment is not valid percent-encoded UTF-8.');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return errors.validation('A path parameter is longer than 200 characters.');
    case 'FST_ERR_ASYNC_CONSTRAINT':
      return undefined;
    default:
      break;
  }
  const status = error.statusCode;
  if (status && status >= 400 && status < 500) {
    const code = CODE_BY_STATUS[status];
    // Anything else a client caused is reported as a plain validation failure.
    return code ? new AppError(status, code, error.message) : errors.validation(error.message);
  }
  return undefined;
}

export function toAppError(error: unknown, request?: FastifyRequest): AppError | undefined {
  if (error instanceof AppError) return error;
  if (isDatabaseUnavailable(error)) return errors.serviceUnavailable();
  if (isBadInputForDatabase(error)) return errors.validation('The request contains text that cannot be stored (e.g. the NUL character U+0000).');
  // Request bodies are parsed by registerBodyParsers, which reports its own errors: any other
  // SyntaxError is a bug of ours (a 500), not a malformed request.
  if (error instanceof Error && 'code' in error) return fromFastify(error as FastifyError, request);
  return undefined;
}

const internalError = () => new AppError(500, 'InternalServerError', 'An unexpected error occurred.');

function send(reply: FastifyReply, error: AppError) {
  if (error.headers) reply.headers(error.headers);
  const body: Record<string, unknown> = { errorCode: error.code, errorMessage: error.message };
  if (error.details?.length) body.details = error.details;
  return reply.code(error.status).type('application/json; charset=utf-8').send(body);
}

/** The one place where failures become HTTP: `{errorCode, errorMessage}` with the right status. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const known = toAppError(error, request);
    if (known) {
      if (known.status >= 500) request.log.warn({ err: error }, known.message);
      return send(reply, known);
    }
    // Unknown failures are logged in full but answered without stack or SQL.
    request.log.error({ err: error }, 'unhandled error');
    return send(reply, internalError());
  });

  app.setNotFoundHandler((request, reply) =>
    send(reply, errors.notFound(`Route ${request.method} ${(request.url.split('?')[0] ?? '').slice(0, 200)}`)));
}

/**
 * Fastify's `frameworkErrors` option: errors raised while routing, before any route or hook
 * runs (a path that is not valid percent-encoded UTF-8, an over-long path parameter). Without it
 * Fastify answers them itself, in its own format and without x-request-id.
 */
export function frameworkErrorHandler(metrics: HttpMetrics) {
  return function handleFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
    reply.header('x-request-id', request.id);
    const known = toAppError(error, request);
    if (!known) request.log.error({ err: error }, 'routing failed');
    // No onResponse hook runs for a request refused before routing, and Fastify keeps no start time
    // for its reply (elapsedTime is 0): it is counted here, timed from routing, which is on arrival.
    const started = performance.now();
    reply.raw.once('finish', () => metrics.observe(request.method, UNROUTED, reply.statusCode, (performance.now() - started) / 1000));
    return send(reply, known ?? internalError());
  };
}

/**
 * Fastify's `clientErrorHandler`: requests Node's HTTP parser refuses before any route sees them
 * (headers over the server's limit, 16 KiB by default → 431; a malformed request line or header,
 * conflicting Content-Length/Transfer-Encoding, broken chunking → 400; a request not received within
 * requestTimeout → 408). Same statuses as Fastify's default handler, in our error format; the
 * connection is closed, as the parser's state is unknown.
 */
export function clientErrorHandler(metrics: HttpMetrics) {
  return function handleClientError(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, message] =
      error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'The request line and headers are larger than the server accepts.']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'The request was not received in time.']
      : [400, 'The request is not valid HTTP/1.1.'];
    this.log.debug({ err: error }, 'client error');
    const body = JSON.stringify({ errorCode: 'ValidationError', errorMessage: message });
    if (socket.writable) {
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n`
        + `Content-Length: ${Buffer.byteLength(body)}\r\nx-request-id: ${randomUUID()}\r\nConnection: close\r\n\r\n${body}`);
      metrics.observe(UNPARSED_METHOD, UNROUTED, status);
    }
    socket.destroy(error);
  };
}
