/**
 * Typed domain errors. Services throw these; src/http/error-handler.ts is the one place that
 * turns them (and every other failure) into `{errorCode, errorMessage}` responses.
 */
export interface ErrorDetail {
  path?: string;
  index?: number;
  message: string;
  [key: string]: unknown;
}

export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetail[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(status: number, code: string, message: string, options?: { details?: ErrorDetail[]; headers?: Record<string, string> }) {
    super(message);
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.details = options?.details;
    this.headers = options?.headers;
  }
}

export const errors = {
  validation: (message: string, details?: ErrorDetail[]) => new AppError(400, 'ValidationError', message, { details }),
  unauthorized: (message = '권한이 없습니다.') => new AppError(401, 'Unauthorized', message),
  invalidApiKey: () => new AppError(401, 'InvalidApiKey', 'The API key does not exist.'),
  signatureMismatch: () => new AppError(401, 'SignatureDoesNotMatch', 'The signature does not match.'),
  timeSkewed: () => new AppError(401, 'RequestTimeTooSkewed', 'The request date is more than 15 minutes from the server time.'),
  duplicatedSignature: () => new AppError(401, 'DuplicatedSignature', 'This signature was already used (replay).'),
  forbidden: (message = 'You do not have permission for this action.') => new AppError(403, 'Forbidden', message),
  quotaExceeded: (limit: string, used: number, max: number) =>
    new AppError(403, 'PlanQuotaExceeded', `${limit}: ${used}/${max}`, { details: [{ message: 'plan limit reached', limit, used, max }] }),
  notFound: (what: string) => new AppError(404, 'NotFound', `${what} not found.`),
  conflict: (message: string) => new AppError(409, 'ConflictException', message),
  duplicateEntity: (message: string) => new AppError(409, 'DuplicateEntity', message),
  gone: (what: string, why = 'is in the trash') => new AppError(410, 'Gone', `${what} ${why}.`),
  preconditionFailed: (what: string) =>
    new AppError(412, 'PreconditionFailed', `${what} has changed since the version named in If-Match; read it again (GET returns its current ETag) and retry.`),
  payloadTooLarge: (limit: number) => new AppError(413, 'PayloadTooLarge', `The request body is larger than ${limit} bytes.`),
  unsupportedMediaType: (type: string) =>
    new AppError(415, 'UnsupportedMediaType', `Content-Type "${type}" is not supported; send application/json.`),
  idempotencyKeyInvalid: (message: string) =>
    new AppError(400, 'ValidationError', `headers/idempotency-key: ${message}`, { details: [{ path: 'headers/idempotency-key', message }] }),
  idempotencyKeyInProgress: (retryAfterSeconds: number) =>
    new AppError(409, 'IdempotencyKeyInProgress', 'A request with this Idempotency-Key is still being processed; retry shortly.', {
      headers: { 'retry-after': String(retryAfterSeconds) },
    }),
  idempotencyKeyReused: (usedFor: string) =>
    new AppError(422, 'IdempotencyKeyReused', `This Idempotency-Key was already used for a different request (${usedFor}); use a new key for a new request.`),
  tooManyRequests: (message: string, headers: Record<string, string>) => new AppError(429, 'TooManyRequests', message, { headers }),
  serviceUnavailable: (message = 'The database is unreachable; retry shortly.') =>
    new AppError(503, 'ServiceUnavailable', message, { headers: { 'retry-after': '5' } }),
};
