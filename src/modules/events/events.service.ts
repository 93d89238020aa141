import { errors, type ErrorDetail } from '../../errors.ts';
import { isForeignKeyViolation } from '../../db/errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { decodeCursor, encodeCursor } from '../../lib/cursor.ts';
import { newId } from '../../lib/ids.ts';
import { parseInstant } from '../../lib/iso-instant.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { EntitiesService } from '../entities/entities.service.ts';
import type { RecordsService } from '../records/records.service.ts';
import * as repo from './events.repository.ts';
import {
  PROPERTIES_MAX_BYTES,
  type BulkEventsBody, type CreateEventBody, type Event, type ListEventsQuery, type Summaries, type SummariesQuery,
} from './events.schemas.ts';

/**
 * Events (API.md §9): append-only facts about a record (a purchase, a page view…) with an optional
 * value, ingested one at a time or ≤100 per request, listed per record or entity and summed per
 * (eventType, category). They follow their record: hidden while it (or its entity) is in the trash,
 * back on restore, removed when it is purged (foreign key cascade). The entity's recordAccess
 * governs them (403).
 */
export interface EventsService {
  create(tenant: TenantDb, caller: Caller, input: CreateEventBody): Promise<Event>;
  bulk(tenant: TenantDb, caller: Caller, input: BulkEventsBody): Promise<{ created: number }>;
  list(tenant: TenantDb, caller: Caller, query: ListEventsQuery): Promise<{ data: Event[]; nextKey?: string }>;
  summaries(tenant: TenantDb, caller: Caller, query: SummariesQuery): Promise<Summaries>;
}

export interface EventsServiceDeps {
  entities: EntitiesService;
  records: RecordsService;
  clock: Clock;
}

function toEvent(row: repo.EventRow): Event {
  return {
    eventId: row.event_id,
    accountId: row.account_id,
    entityId: row.entity_id,
    recordId: row.record_id,
    eventType: row.event_type,
    ...(row.category !== null ? { category: row.category } : {}),
    ...(row.label !== null ? { label: row.label } : {}),
    ...(row.value !== null ? { value: Number(row.value) } : {}),
    properties: row.properties,
    occurredAt: row.occurred_at.toISOString(),
    dateCreated: row.date_created.toISOString(),
  };
}

const invalid = (message: string, details: ErrorDetail[]) => errors.validation(`${details[0]!.path}: ${message}`, details);

function instant(value: string, path: string): Date {
  const ms = parseInstant(value);
  if (ms === null) throw invalid('must be an ISO-8601 date-time, e.g. 2026-04-25T05:00:00.000Z', [{ path, message: 'not an ISO-8601 date-time' }]);
  return new Date(ms);
}

/** The stored form of one event, or a problem with it (path prefixed for bulk items). */
function prepare(input: CreateEventBody, now: Date, prefix: string): repo.NewEvent {
  const occurredAt = input.occurredAt === undefined ? now : instant(input.occurredAt, `${prefix}/occurredAt`);
  const properties = input.properties ?? {};
  const bytes = Buffer.byteLength(JSON.stringify(properties));
  if (bytes > PROPERTIES_MAX_BYTES) {
    throw invalid(`${bytes} bytes as JSON; at most ${PROPERTIES_MAX_BYTES}`, [{ path: `${prefix}/properties`, message: 'too large' }]);
  }
  return {
    event_id: newId('event', now),
    entity_id: input.entityId,
    record_id: input.recordId,
    event_type: input.eventType,
    category: input.category ?? null,
    label: input.label ?? null,
    value: input.value ?? null,
    properties,
    occurred_at: occurredAt.toISOString(),
  };
}

/* Keyset cursor: the last row's (occurredAt, eventId). */
function decodeKey(startKey: string): { at: Date; id: string } {
  const [at, id] = decodeCursor(startKey, ['ev'], 2) as [string, string];
  const ms = parseInstant(at);
  if (ms === null) throw errors.validation('startKey: not a nextKey of this list', [{ path: 'startKey', message: 'invalid cursor' }]);
  return { at: new Date(ms), id };
}

export function createEventsService(deps: EventsServiceDeps): EventsService {
  const { entities, records, clock } = deps;

  /**
   * What a read names, checked as its own resource would answer: the record (404 / 410 / 403,
   * and its entity's), else the entity (404 / 410 / 403). One of them is required.
   */
  async function scope(tenant: TenantDb, caller: Caller, query: SummariesQuery): Promise<repo.EventFilter> {
    if (query.recordId === undefined && query.entityId === undefined) {
      throw errors.validation('entityId: send entityId or recordId', [{ path: 'entityId', message: 'entityId or recordId is required' }]);
    }
    const from = query.from === undefined ? undefined : instant(query.from, 'from');
    const to = query.to === undefined ? undefined : instant(query.to, 'to');
    if (from && to && from.getTime() > to.getTime()) throw invalid('must not be before from', [{ path: 'to', message: 'before from' }]);
    const filter = { eventType: query.eventType, category: query.category, from, to };
    if (query.recordId !== undefined) {
      const record = await records.get(tenant, caller, query.recordId);
      if (query.entityId !== undefined && query.entityId !== record.entityId) {
        throw invalid(`record ${query.recordId} belongs to entity ${record.entityId}`, [{ path: 'entityId', message: 'not the record\'s entity' }]);
      }
      return { ...filter, recordId: query.recordId };
    }
    await entities.requireUsable(tenant, caller, query.entityId!);
    return { ...filter, entityId: query.entityId };
  }

  return {
    async create(tenant, caller, input) {
      const now = new Date(clock());
      const event = prepare(input, now, '');
      const record = await records.get(tenant, caller, input.recordId);
      if (record.entityId !== input.entityId) {
        throw invalid(`record ${input.recordId} belongs to entity ${record.entityId}, not ${input.entityId}`, [{ path: '/entityId', message: 'not the record\'s entity' }]);
      }
      try {
        return toEvent(await repo.insertEvent(tenant, event, now));
      } catch (error) {
        if (isForeignKeyViolation(error)) throw errors.notFound('Record');
        throw error;
      }
    },

    async bulk(tenant, caller, input) {
      const now = new Date(clock());
      const events = input.events.map((item, i) => prepare(item, now, `/events/${i}`));
      // Entities first, each as its own resource would answer (404 / 410 / 403).
      for (const entityId of new Set(events.map((e) => e.entity_id))) await entities.requireUsable(tenant, caller, entityId);
      const states = new Map((await repo.recordStates(tenant, [...new Set(events.map((e) => e.record_id))])).map((r) => [r.record_id, r]));
      const problems: ErrorDetail[] = [];
      events.forEach((event, i) => {
        const state = states.get(event.record_id);
        const path = `/events/${i}/recordId`;
        if (!state) problems.push({ path, index: i, message: `unknown record ${event.record_id}` });
        else if (state.entity_id !== event.entity_id) problems.push({ path, index: i, message: `record ${event.record_id} belongs to entity ${state.entity_id}, not ${event.entity_id}` });
        else if (state.is_deleted) problems.push({ path, index: i, message: `record ${event.record_id} is in the trash` });
      });
      if (problems.length) throw invalid(problems[0]!.message, problems.slice(0, 50));
      try {
        return { created: await repo.insertEvents(tenant, events, now) };
      } catch (error) {
        // A record was purged between the check and the insert: nothing was written.
        if (isForeignKeyViolation(error)) throw errors.notFound('Record');
        throw error;
      }
    },

    async list(tenant, caller, query) {
      const filter = await scope(tenant, caller, query);
      const limit = query.limit ?? 20;
      const after = query.startKey ? decodeKey(query.startKey) : undefined;
      const rows = await repo.pageEvents(tenant, filter, after, limit + 1);
      const data = rows.slice(0, limit).map(toEvent);
      return rows.length > limit ? { data, nextKey: encodeCursor(['ev', data[data.length - 1]!.occurredAt, data[data.length - 1]!.eventId]) } : { data };
    },

    async summaries(tenant, caller, query) {
      const rows = await repo.summarize(tenant, await scope(tenant, caller, query));
      return {
        summaries: rows.map((row) => ({
          eventType: row.event_type,
          category: row.category,
          totalCount: Number(row.total_count),
          totalValue: Number(row.total_value ?? 0),
          lastOccurredAt: new Date(row.last_occurred_at).toISOString(),
        })),
      };
    },
  };
}
