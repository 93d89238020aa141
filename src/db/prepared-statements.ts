import { createHash } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import type pg from 'pg';

/**
 * Named prepared statements for the few statements whose parse and plan cost more than their
 * execution (docs/benchmarks.md, "Segments": a record write evaluating 20 CACHED segments' rules
 * spent ~1 ms of its ~1.2 ms statement in PostgreSQL's parser and planner).
 *
 * `prepared(statement)` marks a statement; on PostgreSQL each pooled connection then parses it
 * once, as a named statement (node-postgres `{name, text, values}`), and PostgreSQL switches to
 * a cached generic plan after five executions when that plan is no costlier than the custom
 * ones: so a marked statement must be one whose plan does not depend on its parameter values
 * (no array of unknown length to unnest, no selective filter on a parameter). PGlite (one
 * in-process connection, no round trips) runs the same text unprepared: the mark is a comment.
 *
 * The name is a digest of the text, so a statement built again with other rules is another
 * statement. Each connection keeps at most `PREPARED_PER_CONNECTION`; the least recently used is
 * deallocated first, so a long-lived connection's memory stays bounded however many distinct
 * rule sets it sees.
 */
const MARK = '/* crm:prepared */ ';
export const PREPARED_PER_CONNECTION = 64;

export function prepared<T>(statement: RawBuilder<T>): RawBuilder<T> {
  return sql<T>`${sql.raw(MARK)}${statement}`;
}

/** node-postgres keeps the names it has parsed per connection (`parsedStatements`); it must forget a deallocated one. */
interface ParsedStatements {
  connection?: { parsedStatements?: Record<string, string> };
}

type QueryFn = (text: unknown, values?: unknown, callback?: unknown) => unknown;

/** Makes `client` run marked statements as named prepared statements (call once per new pooled client). */
export function preparedStatementsFor(client: pg.PoolClient): void {
  const plainQuery = client.query.bind(client) as QueryFn;
  const parsed = () => (client as unknown as ParsedStatements).connection?.parsedStatements;
  /** Statement name → text on this connection, least recently used first. */
  const names = new Map<string, string>();
  /** Deallocates the least recently used statement; false when that failed (it then stays, listed again). */
  const evictOldest = async (): Promise<boolean> => {
    const [oldest, text] = names.entries().next().value!;
    names.delete(oldest);
    // Forgotten first, so the statement is parsed again if it comes back. The DEALLOCATE fails
    // only in an aborted transaction, and then the statement stays prepared: node-postgres must
    // know it again, and so must the list, for a later eviction.
    delete parsed()?.[oldest];
    try {
      await plainQuery(`DEALLOCATE "${oldest}"`);
      return true;
    } catch {
      const statements = parsed();
      if (statements) statements[oldest] = text;
      names.set(oldest, text);
      return false;
    }
  };
  const evictOverflow = async () => {
    while (names.size > PREPARED_PER_CONNECTION) if (!(await evictOldest())) return;
  };
  (client as unknown as { query: QueryFn }).query = (text, values, callback) => {
    if (typeof text !== 'string' || !text.startsWith(MARK) || typeof values === 'function') return plainQuery(text, values, callback);
    const name = `crm_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    names.delete(name);
    names.set(name, text);
    const run = () => plainQuery({ name, text, values }, callback);
    return names.size > PREPARED_PER_CONNECTION ? evictOverflow().then(run) : run();
  };
}
