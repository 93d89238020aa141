import Type, { type Static } from 'typebox';
import { Timestamp } from '../../http/schemas/common.ts';

/** Limits documented by Solapi (notes §13) and ours. */
export const BULK_MAX_EVENTS = 100;
export const ID_MAX = 128;
export const LABEL_MAX = 512;
/** properties is stored as given; this bounds its JSON text. */
export const PROPERTIES_MAX_BYTES = 16 * 1024;

const Short = (description: string) => Type.String({ minLength: 1, maxLength: ID_MAX, description: `${description} (≤${ID_MAX} characters)` });

export const Event = Type.Object({
  eventId: Type.String({ description: 'CRMEV1…' }),
  accountId: Type.String(),
  entityId: Type.String(),
  recordId: Type.String(),
  eventType: Type.String(),
  category: Type.Optional(Type.String({ description: 'Omitted when not set' })),
  label: Type.Optional(Type.String({ description: 'Omitted when not set' })),
  value: Type.Optional(Type.Number({ description: 'Omitted when not set' })),
  properties: Type.Record(Type.String(), Type.Unknown()),
  occurredAt: Timestamp,
  dateCreated: Timestamp,
}, { title: 'Event' });
export type Event = Static<typeof Event>;

export const CreateEventBody = Type.Object({
  entityId: Short('The record\'s entity'),
  recordId: Short('A live record of that entity'),
  eventType: Short('e.g. purchase, page_view'),
  category: Type.Optional(Short('A grouping under the type')),
  label: Type.Optional(Type.String({ maxLength: LABEL_MAX, description: `≤${LABEL_MAX} characters` })),
  value: Type.Optional(Type.Number({ minimum: -1e15, maximum: 1e15, description: 'Summed into totalValue' })),
  properties: Type.Optional(Type.Record(Type.String({ maxLength: 200 }), Type.Unknown(), {
    maxProperties: 100, description: `A free-form JSON object, at most ${PROPERTIES_MAX_BYTES} bytes as JSON`,
  })),
  occurredAt: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: 'ISO-8601 instant; default: now' })),
}, { additionalProperties: false });
export type CreateEventBody = Static<typeof CreateEventBody>;

export const BulkEventsBody = Type.Object({
  events: Type.Array(CreateEventBody, { minItems: 1, maxItems: BULK_MAX_EVENTS }),
}, { additionalProperties: false });
export type BulkEventsBody = Static<typeof BulkEventsBody>;

export const BulkEventsResult = Type.Object({ created: Type.Integer() });

const Filters = {
  entityId: Type.Optional(Type.String({ minLength: 1, maxLength: ID_MAX, description: 'entityId or recordId (or both) is required' })),
  recordId: Type.Optional(Type.String({ minLength: 1, maxLength: ID_MAX })),
  eventType: Type.Optional(Type.String({ minLength: 1, maxLength: ID_MAX })),
  category: Type.Optional(Type.String({ minLength: 1, maxLength: ID_MAX })),
  from: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: '[X] occurredAt at or after (ISO-8601)' })),
  to: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: '[X] occurredAt before (ISO-8601)' })),
};

export const ListEventsQuery = Type.Object({
  ...Filters,
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 20 })),
  startKey: Type.Optional(Type.String({ maxLength: 300, description: 'nextKey of the previous page (opaque)' })),
}, { additionalProperties: false });
export type ListEventsQuery = Static<typeof ListEventsQuery>;

export const EventPage = Type.Object({
  data: Type.Array(Event, { description: 'Latest occurredAt first' }),
  nextKey: Type.Optional(Type.String({ description: 'Pass as startKey for the next page; absent on the last page' })),
}, { title: 'EventPage' });

export const SummariesQuery = Type.Object(Filters, { additionalProperties: false });
export type SummariesQuery = Static<typeof SummariesQuery>;

export const EventSummary = Type.Object({
  eventType: Type.String(),
  category: Type.Union([Type.String(), Type.Null()]),
  totalCount: Type.Integer(),
  totalValue: Type.Number({ description: 'Sum of value (events without one count as 0)' }),
  lastOccurredAt: Timestamp,
});
export const Summaries = Type.Object({
  summaries: Type.Array(EventSummary, { description: 'One per (eventType, category), ordered by both' }),
}, { title: 'EventSummaries' });
export type Summaries = Static<typeof Summaries>;
