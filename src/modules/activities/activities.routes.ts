import Type from 'typebox';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import {
  Activity, ActivityPage, ActivityParams, CALENDAR, CreateActivityBody, DeletedActivity, ListActivitiesQuery, RecordParams, ScheduledQuery,
  UpdateActivityBody,
} from './activities.schemas.ts';
import type { ActivitiesService } from './activities.service.ts';

const tags = ['Activities'];

/** API.md §9, all MEMBER or higher (the default role of a route). */
export async function activitiesRoutes(app: TypedApp, { activities }: { activities: ActivitiesService }) {
  app.post('/activities', {
    schema: {
      tags,
      summary: 'Create an activity on a record, or a standalone calendar item',
      description: `recordId names a live record (404 unknown, 410 trashed, 403 recordAccess) or is "${CALENDAR}". Assignees and `
        + 'ownerId must be members of the account; relatedRecordIds live records (400 otherwise). Defaults: outcome PENDING, '
        + 'visibility PUBLIC, ownerId the caller.',
      body: CreateActivityBody,
      response: responses({ 201: Activity }, [400, 403, 404, 410]),
    },
  }, async (request, reply) => reply.code(201).send(await activities.create(request.tenant, request.caller, request.body)));

  app.get('/activities', {
    schema: {
      tags,
      summary: 'List activities (keyset pages, newest first)',
      description: 'MEMBERs see PUBLIC activities, unowned ones and their own (owner, creator or assignee); activities of trashed '
        + `records or entities are hidden. recordId=${CALENDAR} lists standalone calendar items only.`,
      querystring: ListActivitiesQuery,
      response: responses({ 200: ActivityPage }, [400, 403, 404, 410]),
    },
  }, (request) => activities.list(request.tenant, request.caller, request.query));

  app.get('/activities/record/:recordId/scheduled', {
    schema: {
      tags,
      summary: 'A record\'s activities with scheduledAt or dueDate, soonest first (a capped list)',
      params: RecordParams,
      querystring: ScheduledQuery,
      response: responses({ 200: Type.Array(Activity) }, [400, 403, 404, 410]),
    },
  }, (request) => activities.scheduled(request.tenant, request.caller, request.params.recordId, request.query));

  app.get('/activities/:activityId', {
    schema: { tags, summary: 'Get an activity', params: ActivityParams, response: responses({ 200: Activity }, [403, 404]) },
  }, (request) => activities.get(request.tenant, request.caller, request.params.activityId));

  app.patch('/activities/:activityId', {
    schema: {
      tags,
      summary: 'Update an activity (MEMBERs: only their own)',
      description: 'Fields sent replace the stored ones; null clears an optional field. assignedMemberIds wins over the legacy '
        + 'assignedMemberId when both are sent. Changing ownerId needs ADMIN.',
      params: ActivityParams,
      body: UpdateActivityBody,
      response: responses({ 200: Activity }, [400, 403, 404]),
    },
  }, (request) => activities.update(request.tenant, request.caller, request.params.activityId, request.body));

  app.delete('/activities/:activityId', {
    schema: {
      tags,
      summary: 'Delete an activity for good (MEMBERs: only their own)',
      params: ActivityParams,
      response: responses({ 200: DeletedActivity }, [403, 404]),
    },
  }, (request) => activities.remove(request.tenant, request.caller, request.params.activityId));
}
