import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import type { Database } from '../../src/db/database.ts';
import { systemDb } from '../../src/db/tenant.ts';
import { openTestDatabase } from '../helpers/database.ts';

/**
 * The name-gram functions of migration 0019, against their definition: crm_name_grams(t) holds every
 * 1- and 2-character substring of t; crm_name_query_grams(t) the 2-character ones, or t itself when
 * shorter. The name search relies on "a name holding q holds all of q's query grams", and on those
 * never being empty (an empty array would filter nothing).
 */
describe('name grams (migration 0019)', () => {
  let database: Database;
  before(async () => { database = await openTestDatabase(); });
  after(() => database.close());

  const substrings = (t: string, n: number) => {
    const chars = [...t];
    return new Set(chars.slice(0, chars.length - n + 1).map((_, i) => chars.slice(i, i + n).join('')));
  };

  test('every 1- and 2-character substring, and the query grams a holder always holds', async () => {
    const db = systemDb(database.db);
    await fc.assert(fc.asyncProperty(
      fc.array(fc.constantFrom('김', '민', '준', 'a', 'B', ' ', '%', '_', '1', '!'), { minLength: 0, maxLength: 9 }).map((c) => c.join('')),
      fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 4 }),
      async (name, from, length) => {
        const q = [...name].slice(from, from + length).join('') || '준';
        const { rows } = await sql<{ grams: string[]; query: string[] }>`
          SELECT crm_name_grams(${name}) AS grams, crm_name_query_grams(${q}) AS query`.execute(db);
        const grams = new Set(rows[0]!.grams);
        assert.deepEqual(grams, new Set([...substrings(name, 1), ...substrings(name, 2)]), JSON.stringify(name));
        const query = rows[0]!.query;
        assert.ok(query.length > 0, 'never empty');
        assert.deepEqual(new Set(query), [...q].length < 2 ? new Set([q]) : substrings(q, 2), JSON.stringify(q));
        if (name.includes(q)) for (const g of query) assert.ok(grams.has(g), `${JSON.stringify(name)} holds ${JSON.stringify(q)}: ${g}`);
      }), { numRuns: 150, seed: 20261124 });
  });
});
