import { sql, type Selectable, type SqlBool } from 'kysely';
import type { EventsTable } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';

export type EventRow = Selectable<EventsTable>;

/**
 * Visibility: the service checks the entity (or record) a read names — live, in the workspace,
 * recordAccess — before calling here; entity-wide reads leave out the events of the entity's
 * trashed records, so they disappear from every read and come back on restore untouched.
 */

export interface NewEvent {
  event_id: string;
  entity_id: string;
  record_id: string;
  event_type: string;
  category: string | null;
  label: string | null;
  value: number | null;
  properties: Record<string, unknown>;
  occurred_at: string;
}

function insertQuery(tenant: TenantDb, events: readonly NewEvent[], at: Date) {
  return tenant.insertInto('events')
    .columns(['account_id', 'event_id', 'entity_id', 'record_id', 'event_type', 'category', 'label', 'value', 'properties', 'occurred_at', 'date_created'])
    .expression(sql`
      SELECT ${tenant.accountId}, v.event_id, v.entity_id, v.record_id, v.event_type, v.category, v.label, v.value,
             coalesce(v.properties, '{}'::jsonb), v.occurred_at, ${at}::timestamptz
      FROM jsonb_to_recordset(${JSON.stringify(events)}::jsonb)
        AS v(event_id text, entity_id text, record_id text, event_type text, category text, label text,
             value double precision, properties jsonb, occurred_at timestamptz)`);
}

/**
 * Inserts the events in ONE statement whose rows arrive as one JSON parameter (bulk ingest: one
 * round trip and one plan per request, whatever the batch size). Returns how many were inserted.
 */
export async function insertEvents(tenant: TenantDb, events: readonly NewEvent[], at: Date): Promise<number> {
  if (events.length === 0) return 0;
  const result = await insertQuery(tenant, events, at).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0);
}

export function insertEvent(tenant: TenantDb, event: NewEvent, at: Date): Promise<EventRow> {
  return insertQuery(tenant, [event], at).returningAll().executeTakeFirstOrThrow();
}

/** The given records: entity and trash state, for validating a batch. */
export function recordStates(tenant: TenantDb, recordIds: readonly string[]): Promise<{ record_id: string; entity_id: string; is_deleted: boolean }[]> {
  if (recordIds.length === 0) return Promise.resolve([]);
  return tenant.selectFrom('records').select(['record_id', 'entity_id', 'is_deleted']).where('record_id', 'in', [...recordIds]).execute();
}

export interface EventFilter {
  /** Exactly one of entityId / recordId scopes the read (recordId when both were sent). */
  entityId?: string;
  recordId?: string;
  eventType?: string;
  category?: string;
  from?: Date;
  to?: Date;
}

function filtered(tenant: TenantDb, filter: EventFilter) {
  let query = tenant.selectFrom('events');
  if (filter.recordId !== undefined) {
    // The service has just checked that this record is live.
    query = query.where('events.record_id', '=', filter.recordId);
  } else {
    // Trashed records are few: their IDs are hashed once (NOT IN a subquery the records_trash index
    // answers) instead of probing records for every event of the entity.
    const trashed = tenant.selectFrom('records').select('records.record_id')
      .where('records.entity_id', '=', filter.entityId!).where('records.is_deleted', '=', true);
    query = query.where('events.entity_id', '=', filter.entityId!).where('events.record_id', 'not in', trashed);
  }
  if (filter.eventType !== undefined) query = query.where('events.event_type', '=', filter.eventType);
  if (filter.category !== undefined) query = query.where('events.category', '=', filter.category);
  if (filter.from !== undefined) query = query.where('events.occurred_at', '>=', filter.from);
  if (filter.to !== undefined) query = query.where('events.occurred_at', '<', filter.to);
  return query;
}

/** One page, latest occurrence first (ties by event ID); ask for limit + 1 to tell whether another page exists. */
export function pageEvents(tenant: TenantDb, filter: EventFilter, after: { at: Date; id: string } | undefined, limit: number): Promise<EventRow[]> {
  let query = filtered(tenant, filter).selectAll('events');
  if (after) query = query.where(sql<SqlBool>`(events.occurred_at, events.event_id) < (${after.at}::timestamptz, ${after.id}::text)`);
  return query.orderBy('events.occurred_at', 'desc').orderBy('events.event_id', 'desc').limit(limit).execute();
}

export function summarize(tenant: TenantDb, filter: EventFilter): Promise<{ event_type: string; category: string | null; total_count: string | number; total_value: number | string | null; last_occurred_at: Date }[]> {
  return filtered(tenant, filter)
    .select([
      'events.event_type',
      'events.category',
      sql<string>`count(*)`.as('total_count'),
      sql<number>`coalesce(sum(events.value), 0)`.as('total_value'),
      sql<Date>`max(events.occurred_at)`.as('last_occurred_at'),
    ])
    .groupBy(['events.event_type', 'events.category'])
    .orderBy('events.event_type')
    .orderBy(sql`events.category NULLS FIRST`)
    .execute();
}
