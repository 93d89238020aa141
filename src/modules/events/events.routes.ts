import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import {
  BULK_MAX_EVENTS, BulkEventsBody, BulkEventsResult, CreateEventBody, Event, EventPage, ListEventsQuery, Summaries, SummariesQuery,
} from './events.schemas.ts';
import type { EventsService } from './events.service.ts';

const tags = ['Events'];

export interface EventsRoutesOptions {
  events: EventsService;
  bulkBodyLimit: number;
}

/** API.md §9, all MEMBER or higher (the default role of a route). */
export async function eventsRoutes(app: TypedApp, { events, bulkBodyLimit }: EventsRoutesOptions) {
  app.post('/events', {
    schema: {
      tags,
      summary: 'Record an event on a record',
      description: 'The record must exist (404), be live (410) and belong to entityId (400); recordAccess applies (403). '
        + 'occurredAt defaults to now.',
      body: CreateEventBody,
      response: responses({ 201: Event }, [400, 403, 404, 410]),
    },
  }, async (request, reply) => reply.code(201).send(await events.create(request.tenant, request.caller, request.body)));

  app.post('/events/bulk', {
    bodyLimit: bulkBodyLimit,
    schema: {
      tags,
      summary: `Record up to ${BULK_MAX_EVENTS} events in one statement`,
      description: 'All or nothing: an unknown, trashed or foreign record fails the whole request (400, details name each item); '
        + 'an entity answers as its own resource (404 / 410 / 403).',
      body: BulkEventsBody,
      response: responses({ 200: BulkEventsResult }, [400, 403, 404, 410, 413]),
    },
  }, (request) => events.bulk(request.tenant, request.caller, request.body));

  app.get('/events', {
    schema: {
      tags,
      summary: 'List a record\'s or an entity\'s events (keyset pages, latest occurredAt first)',
      description: 'entityId or recordId is required. Events of trashed records are hidden.',
      querystring: ListEventsQuery,
      response: responses({ 200: EventPage }, [400, 403, 404, 410]),
    },
  }, (request) => events.list(request.tenant, request.caller, request.query));

  app.get('/events/summaries', {
    schema: {
      tags,
      summary: 'Count, value total and latest occurrence per (eventType, category)',
      description: 'entityId or recordId is required. Events of trashed records are left out.',
      querystring: SummariesQuery,
      response: responses({ 200: Summaries }, [400, 403, 404, 410]),
    },
  }, (request) => events.summaries(request.tenant, request.caller, request.query));
}
