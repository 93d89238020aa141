import Type from 'typebox';
import { ifMatch, IfMatchHeaders } from '../../http/etag.ts';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import { CreateEntityBody, DeletedEntity, Entity, EntityParams, ListEntitiesQuery, UpdateEntityBody } from './entities.schemas.ts';
import type { EntitiesService } from './entities.service.ts';

const tags = ['Entities'];
const owner = { minRole: 'OWNER' as const };

export async function entitiesRoutes(app: TypedApp, { entities }: { entities: EntitiesService }) {
  app.post('/entities', {
    config: owner,
    schema: {
      tags,
      summary: 'Create an entity (OWNER)',
      description: 'Slug is unique among the live entities of the account and workspace (409 DuplicateEntity). Quota `entities.max`.',
      body: CreateEntityBody,
      response: responses({ 201: Entity }, [400, 403, 409]),
    },
  }, async (request, reply) => reply.code(201).send(await entities.create(request.tenant, request.caller, request.body)));

  app.get('/entities', {
    schema: {
      tags,
      summary: 'List the live entities the caller may see (≤200, priority then creation order)',
      querystring: ListEntitiesQuery,
      response: responses({ 200: Type.Array(Entity, { maxItems: 200 }) }, [400]),
    },
  }, (request) => entities.list(request.tenant, request.caller, request.query.keyword));

  // Registered before /entities/:entityId so "trash" is never taken for an ID.
  app.get('/entities/trash', {
    config: owner,
    schema: {
      tags,
      summary: 'List trashed entities, most recently deleted first (OWNER, ≤200)',
      response: responses({ 200: Type.Array(Entity, { maxItems: 200 }) }, [403]),
    },
  }, (request) => entities.trash(request.tenant, request.caller));

  app.get('/entities/:entityId', {
    schema: {
      tags,
      summary: 'Get an entity (404 unknown, 410 trashed, 403 recordAccess)',
      params: EntityParams,
      response: responses({ 200: Entity }, [400, 403, 404, 410]),
    },
  }, (request) => entities.get(request.tenant, request.caller, request.params.entityId));

  app.patch('/entities/:entityId', {
    schema: {
      tags,
      summary: 'Partially update an entity (MEMBER+; recordAccess and ownerId OWNER only)',
      description: 'Only the fields sent change. `viewSettings` is deep-merged over the current settings; '
        + '`insightWidgets` replaces the list; `propertyIds` must be a permutation of the live properties.',
      params: EntityParams,
      headers: IfMatchHeaders,
      body: UpdateEntityBody,
      response: responses({ 200: Entity }, [400, 403, 404, 409, 410, 412]),
    },
  }, (request) => entities.update(request.tenant, request.caller, request.params.entityId, request.body, { ifMatch: ifMatch(request) }));

  app.delete('/entities/:entityId', {
    config: owner,
    schema: {
      tags,
      summary: 'Move an entity to the trash (OWNER)',
      params: EntityParams,
      headers: IfMatchHeaders,
      response: responses({ 200: DeletedEntity }, [400, 403, 404, 410, 412]),
    },
  }, async (request) => {
    await entities.remove(request.tenant, request.caller, request.params.entityId, { ifMatch: ifMatch(request) });
    return { entityId: request.params.entityId };
  });

  app.post('/entities/:entityId/restore', {
    config: owner,
    schema: {
      tags,
      summary: 'Restore an entity from the trash (OWNER; 409 DuplicateEntity if its slug was taken meanwhile)',
      params: EntityParams,
      response: responses({ 200: Entity }, [400, 403, 404, 409]),
    },
  }, (request) => entities.restore(request.tenant, request.caller, request.params.entityId));
}
