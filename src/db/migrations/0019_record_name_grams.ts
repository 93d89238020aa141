import { sql, type Kysely } from 'kysely';

/**
 * Short name searches (fulltext of 1 or 2 characters, e.g. a Korean given name `민준`): an index
 * of every 1- and 2-character substring of each record's lower-cased name.
 *
 * The trigram index (0003) cannot answer a substring shorter than 3 characters, so such a search
 * walked the entity's name index until its page was full: a rare or absent substring read every
 * record of the entity (~3 s at 1 M). With this index PostgreSQL finds the few records holding
 * the pair instead; for a common pair its statistics (elements of the indexed arrays) keep the walk.
 *
 * - `crm_name_grams(t)`: every 1- and 2-character substring of `t` (the indexed expression is
 *   `crm_name_grams(lower(name))`, the form queries must repeat to use it).
 * - `crm_name_query_grams(t)`: the 2-character substrings of a search text, or the text itself
 *   when it is shorter. A name holding the text as a substring holds all of them, so
 *   `crm_name_grams(lower(name)) @> crm_name_query_grams(lower(q))` narrows `name ILIKE '%q%'`
 *   without losing a match, and one rare pair makes it selective.
 * Both are IMMUTABLE (an index expression must be) and PARALLEL SAFE. Under row-level security the
 * indexed one must be LEAKPROOF to serve as an index condition (db/row-level-security.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION crm_name_grams(t text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    DECLARE
      n int := char_length(t);
      grams text[] := '{}';
    BEGIN
      FOR i IN 1..n LOOP
        grams := grams || substr(t, i, 1);
        IF i < n THEN grams := grams || substr(t, i, 2); END IF;
      END LOOP;
      RETURN grams;
    END $$`.execute(db);
  // Evaluated once per search (on its text), so plain SQL over crm_name_grams will do.
  await sql`
    CREATE FUNCTION crm_name_query_grams(t text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
      SELECT CASE WHEN char_length(t) < 2 THEN ARRAY[t]
                  ELSE ARRAY(SELECT g FROM unnest(crm_name_grams(t)) AS g WHERE char_length(g) = 2) END
    $$`.execute(db);
  await sql`CREATE INDEX records_name_grams ON records USING gin (crm_name_grams(lower(name)))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX records_name_grams`.execute(db);
  await sql`DROP FUNCTION crm_name_query_grams(text)`.execute(db);
  await sql`DROP FUNCTION crm_name_grams(text)`.execute(db);
}
