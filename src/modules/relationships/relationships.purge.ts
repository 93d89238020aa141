import type { TenantDb } from '../../db/tenant.ts';
import type { QuotaService } from '../plans/quota.service.ts';

/**
 * What deleting records or entities for good (trash purge, permanent bulk delete) does to
 * relationships. The foreign keys would cascade on their own; deleting explicitly, first, is what
 * lets the same transaction give the plan slots back, so usage always equals what is stored.
 */

/** Deletes the links of records about to be deleted and releases their `relationships.max` slots. */
export async function purgeLinksOfRecords(tx: TenantDb, quota: QuotaService, recordIds: readonly string[]): Promise<number> {
  if (recordIds.length === 0) return 0;
  const result = await tx.deleteFrom('relationships')
    .where((eb) => eb.or([eb('source_record_id', 'in', recordIds), eb('target_record_id', 'in', recordIds)]))
    .executeTakeFirst();
  const removed = Number(result.numDeletedRows);
  await quota.release(tx, 'relationships.max', removed);
  return removed;
}

/**
 * Deletes the relationship types of an entity being purged (its records, and with them every link
 * of those types, are already gone). A type counts against its source entity: slots held on the
 * purged entity go with its quota rows, slots held on another entity are released here. Returns
 * the IDs of the types deleted.
 */
export async function purgeTypesOfEntity(tx: TenantDb, quota: QuotaService, entityId: string): Promise<string[]> {
  const removed = await tx.deleteFrom('relationship_types')
    .where((eb) => eb.or([eb('source_entity_id', '=', entityId), eb('target_entity_id', '=', entityId)]))
    .returning(['relationship_type_id', 'source_entity_id'])
    .execute();
  for (const { source_entity_id: source } of removed) {
    if (source !== entityId) await quota.release(tx, 'relationshipTypes.maxPerEntity', 1, source);
  }
  return removed.map((row) => row.relationship_type_id);
}
