import { sql, type RawBuilder } from 'kysely';
import { isId } from '../lib/ids.ts';

/**
 * A property's storage key: where its values live in `records.data` (migration 0018). New
 * properties get the entity's next number in base 36; those created before 0018 kept their
 * property ID. Keys are spliced into SQL as literals (a literal key is what lets PostgreSQL match
 * `data -> 'k'` to an expression index), so only these two shapes are ever let through.
 */
const SHORT_KEY = /^[0-9a-z]{1,7}$/;

export function isStorageKey(key: string): boolean {
  return SHORT_KEY.test(key) || isId('property', key);
}

/** The key as a SQL string literal: `'k'`. */
export function dataKey(key: string): RawBuilder<unknown> {
  if (!isStorageKey(key)) throw new Error('refusing to compile an unvalidated storage key');
  return sql.raw(`'${key}'`);
}

/** The storage key given to an entity's n-th property (n ≥ 1). */
export function storageKeyOf(n: number): string {
  return n.toString(36);
}
