import Type, { type TSchema } from 'typebox';

/** `{errorCode, errorMessage, details?}` — the body of every failure (API.md §1.3). */
export const ErrorBody = Type.Object({
  errorCode: Type.String(),
  errorMessage: Type.String(),
  details: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
}, { $id: 'ErrorBody', title: 'Error' });

export const Timestamp = Type.String({ format: 'date-time', description: 'ISO-8601 UTC with milliseconds' });

export const Role = Type.Enum(['OWNER', 'ADMIN', 'MEMBER'], { description: 'OWNER ⊃ ADMIN ⊃ MEMBER' });

export const MemberId = Type.String({ pattern: '^MEM[A-Za-z0-9]{11}$', description: 'MEM + 11 alphanumerics' });

export const WorkspaceId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });

const errorStatuses = {
  400: 'Validation failed',
  401: 'Authentication failed',
  403: 'Not allowed (role, recordAccess or plan limit)',
  404: 'Not found',
  409: 'Conflict',
  410: 'In the trash',
  412: 'If-Match names another version than the current one (PreconditionFailed); nothing was written',
  413: 'Body too large',
  503: 'Database unreachable',
} as const;

/** Response map for a route: its success schemas plus the shared error responses. */
export function responses(success: Record<number, TSchema>, errorCodes: (keyof typeof errorStatuses)[] = [400, 401, 403, 404]) {
  const map: Record<number, TSchema> = { ...success };
  for (const status of new Set<keyof typeof errorStatuses>([...errorCodes, 401, 503])) {
    map[status] = Type.Ref('ErrorBody', { description: errorStatuses[status] });
  }
  return map;
}
