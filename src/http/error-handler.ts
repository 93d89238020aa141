import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, errors } from '../errors.ts';

/** Failures that mean "the database cannot be reached right now", answered with 503. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE',
  '57P01', '57P02', '57P03', // admin shutdown, crash shutdown, cannot connect now
  '08000', '08001', '08003', '08004', '08006', // connection exceptions
  '53300', // too many connections
  'PGLITE_WORKER_DOWN',
]);
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'Client has encountered a connection error',
  'Connection ended',
];

function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true;
  if (UNAVAILABLE_MESSAGES.some((m) => error.message.includes(m))) return true;
  return error.cause !== undefined && isDatabaseUnavailable(error.cause);
}

/** Fastify's own request errors (parsing, limits) by code. */
function fromFastify(error: FastifyError): AppError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError(413, 'PayloadTooLarge', 'The request body is larger than the limit for this route.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errors.unsupportedMediaType(String(error.message.split(': ').pop() ?? ''));
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errors.validation('body: the body is empty but Content-Type is application/json.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return errors.validation(`body: malformed JSON (${error.message})`);
    case 'FST_ERR_CTP_INVALID_CONTENT_ENCODING':
      return new AppError(415, 'UnsupportedMediaType', error.message);
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_ASYNC_CONSTRAINT':
      return errors.validation(error.message);
    default:
      break;
  }
  if (error.name === 'SyntaxError') return errors.validation(`body: malformed JSON (${error.message})`);
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return new AppError(error.statusCode, error.statusCode === 404 ? 'NotFound' : 'BadRequest', error.message);
  }
  return undefined;
}

export function toAppError(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  if (isDatabaseUnavailable(error)) return errors.serviceUnavailable();
  if (error instanceof Error && 'code' in error) return fromFastify(error as FastifyError);
  return undefined;
}

function send(reply: FastifyReply, error: AppError) {
  if (error.headers) reply.headers(error.headers);
  const body: Record<string, unknown> = { errorCode: error.code, errorMessage: error.message };
  if (error.details?.length) body.details = error.details;
  return reply.code(error.status).type('application/json; charset=utf-8').send(body);
}

/** The one place where failures become HTTP: `{errorCode, errorMessage}` with the right status. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const known = toAppError(error);
    if (known) {
      if (known.status >= 500) request.log.warn({ err: error }, known.message);
      return send(reply, known);
    }
    // Unknown failures are logged in full but answered without stack or SQL.
    request.log.error({ err: error }, 'unhandled error');
    return send(reply, new AppError(500, 'InternalServerError', 'An unexpected error occurred.'));
  });

  app.setNotFoundHandler((request, reply) =>
    send(reply, errors.notFound(`Route ${request.method} ${(request.url.split('?')[0] ?? '').slice(0, 200)}`)));
}
