import { errors } from '../errors.ts';

/**
 * Opaque keyset cursors (API.md §1.6) for lists keyed by a few strings: a base64url JSON array
 * of a prefix naming the list (and its scope) followed by the position of the last row.
 */
export function encodeCursor(parts: readonly string[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

/**
 * The `size` position parts of a cursor made for `prefix`; anything else — another list's
 * cursor, a tampered or truncated one — is a 400 naming `startKey`.
 */
export function decodeCursor(startKey: string, prefix: readonly string[], size: number): string[] {
  const invalid = () => errors.validation('startKey: not a nextKey of this list', [{ path: 'startKey', message: 'invalid cursor' }]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(startKey, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== prefix.length + size || prefix.some((part, i) => parsed[i] !== part)) throw invalid();
  const position = parsed.slice(prefix.length);
  if (!position.every((part): part is string => typeof part === 'string' && part.length > 0 && part.length <= 64)) throw invalid();
  return position;
}
