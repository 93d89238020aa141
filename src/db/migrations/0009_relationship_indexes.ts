import { sql, type Kysely } from 'kysely';

/**
 * Relationship read paths at 100 k companies × 1 M links (issue 5; figures in docs/relationships.md).
 *
 * - `GET /relationships/list?entityId=` filters on the source OR the target entity. Without an index
 *   for either, the only ordered path was the primary key walked newest first, filtering every link
 *   until 51 matched: an entity whose links are few and old cost a walk over the whole account's
 *   links. One index per side, ending with relationship_id: 12.8 ms p50 for 200 old links among 1 M.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX relationships_by_source_entity ON relationships (account_id, source_entity_id, relationship_id)`.execute(db);
  await sql`CREATE INDEX relationships_by_target_entity ON relationships (account_id, target_entity_id, relationship_id)`.execute(db);
}
