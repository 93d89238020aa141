import { type Insertable, type Selectable, type Updateable } from 'kysely';
import type { TenantDb } from '../../db/tenant.ts';
import type { PropertiesTable } from '../../db/schema.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import { accessibleBy, containsPattern, inWorkspaceOf } from '../entities/entities.repository.ts';

export type PropertyRow = Selectable<PropertiesTable>;
export type NewPropertyRow = Omit<Insertable<PropertiesTable>, 'account_id'>;

export function findProperty(tenant: TenantDb, propertyId: string, options: { lock?: boolean } = {}): Promise<PropertyRow | undefined> {
  let query = tenant.selectFrom('properties').selectAll().where('property_id', '=', propertyId);
  if (options.lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

export function liveProperties(tenant: TenantDb, entityIds: string[]): Promise<PropertyRow[]> {
  if (!entityIds.length) return Promise.resolve([]);
  return tenant.selectFrom('properties').selectAll()
    .where('entity_id', 'in', entityIds).where('is_deleted', '=', false)
    .orderBy('date_created').orderBy('property_id')
    .execute();
}

/** Live properties of live entities the caller may see and use, newest first. */
export function listProperties(tenant: TenantDb, caller: Caller, filter: { entityId?: string; keyword?: string; cap: number }): Promise<PropertyRow[]> {
  let query = tenant.selectFrom('properties')
    .innerJoin('entities', (join) => join
      .onRef('entities.account_id', '=', 'properties.account_id')
      .onRef('entities.entity_id', '=', 'properties.entity_id'))
    .selectAll('properties')
    .where('properties.is_deleted', '=', false)
    .where('entities.is_deleted', '=', false)
    .where(inWorkspaceOf(caller))
    .where(accessibleBy(caller));
  if (filter.entityId) query = query.where('properties.entity_id', '=', filter.entityId);
  if (filter.keyword) query = query.where('properties.name', 'ilike', containsPattern(filter.keyword));
  return query.orderBy('properties.date_created', 'desc').orderBy('properties.property_id', 'desc').limit(filter.cap).execute();
}

export function insertProperties(tenant: TenantDb, rows: NewPropertyRow[]): Promise<PropertyRow[]> {
  return tenant.insertInto('properties')
    .values(rows.map((row) => ({ ...row, account_id: tenant.accountId })))
    .returningAll()
    .execute();
}

export function updateProperty(tenant: TenantDb, propertyId: string, changes: Updateable<PropertiesTable>): Promise<PropertyRow> {
  return tenant.updateTable('properties').set(changes).where('property_id', '=', propertyId).returningAll().executeTakeFirstOrThrow();
}

