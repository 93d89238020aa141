import type { TenantDb } from '../../db/tenant.ts';

/**
 * What other modules may ask about links, and what they are told when links change: CACHED
 * segments with relationship conditions keep their members with it (segments.maintenance.ts).
 */

/** Records on one entity. */
export interface RecordSet {
  entityId: string;
  recordIds: string[];
}

/** Told, inside the write's transaction, about every change to links. */
export interface LinkWriteHooks {
  /** Links between these records were created or deleted. */
  linksChanged(tx: TenantDb, ends: readonly RecordSet[]): Promise<void>;
  /** A type and every link of it were deleted. */
  typeRemoved(tx: TenantDb, typeId: string): Promise<void>;
}

export interface LinkQueries {
  /** The relationship types with `entityId` on either side. */
  typesOfEntity(tx: TenantDb, entityId: string): Promise<string[]>;
  /**
   * The records at the other end of any link (of `typeIds`) from or to `recordIds`, trashed or
   * not, grouped by entity: whose relationship conditions may change when those records do.
   */
  otherEnds(tx: TenantDb, recordIds: readonly string[], typeIds: readonly string[]): Promise<RecordSet[]>;
}

/** Groups (entity, record) pairs into record sets. */
export function groupEnds(pairs: Iterable<{ entityId: string; recordId: string }>): RecordSet[] {
  const byEntity = new Map<string, Set<string>>();
  for (const { entityId, recordId } of pairs) {
    let ids = byEntity.get(entityId);
    if (!ids) byEntity.set(entityId, (ids = new Set()));
    ids.add(recordId);
  }
  return [...byEntity].map(([entityId, ids]) => ({ entityId, recordIds: [...ids] }));
}
