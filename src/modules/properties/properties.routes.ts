import Type from 'typebox';
import { ifMatch, IfMatchHeaders } from '../../http/etag.ts';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import {
  BulkCreatedProperty, BulkCreatePropertiesBody, CreatePropertyBody, DeletedProperty, ListPropertiesQuery, Property, PropertyParams, UpdatedProperty,
  UpdatePropertyBody, UpdatePropertyQuery,
} from './properties.schemas.ts';
import type { PropertiesService } from './properties.service.ts';

const tags = ['Properties'];
const owner = { minRole: 'OWNER' as const };
const BULK_BODY_LIMIT = 10 * 1024 * 1024;

export async function propertiesRoutes(app: TypedApp, { properties }: { properties: PropertiesService }) {
  app.post('/properties', {
    config: owner,
    schema: {
      tags,
      summary: 'Create a property of an entity (OWNER)',
      description: 'Appended to the entity\'s propertyIds. name and key are unique per entity (409 ConflictException). Quota `properties.maxPerEntity`.',
      body: CreatePropertyBody,
      response: responses({ 201: Property }, [400, 403, 404, 409, 410]),
    },
  }, async (request, reply) => reply.code(201).send(await properties.create(request.tenant, request.caller, request.body)));

  app.post('/properties/bulk', {
    config: owner,
    bodyLimit: BULK_BODY_LIMIT,
    schema: {
      tags,
      summary: 'Create up to 500 properties, possibly of several entities, all or none (OWNER)',
      body: BulkCreatePropertiesBody,
      response: responses({ 201: Type.Array(BulkCreatedProperty) }, [400, 403, 404, 409, 410, 413]),
    },
  }, async (request, reply) => reply.code(201).send(await properties.bulkCreate(request.tenant, request.caller, request.body.properties)));

  app.get('/properties', {
    schema: {
      tags,
      summary: 'List live properties, newest first (≤500)',
      querystring: ListPropertiesQuery,
      response: responses({ 200: Type.Array(Property, { maxItems: 500 }) }, [400, 403, 404, 410]),
    },
  }, (request) => properties.list(request.tenant, request.caller, request.query));

  app.get('/properties/:propertyId', {
    schema: {
      tags,
      summary: 'Get a property (410 if it or its entity is trashed)',
      params: PropertyParams,
      response: responses({ 200: Property }, [400, 403, 404, 410]),
    },
  }, (request) => properties.get(request.tenant, request.caller, request.params.propertyId));

  app.patch('/properties/:propertyId', {
    config: owner,
    schema: {
      tags,
      summary: 'Partially update a property (OWNER; options replace the whole list)',
      description: 'Changing `fieldType` (or removing options) converts the values records hold where a lossless conversion '
        + 'exists (docs/entities-properties.md). Values that cannot be converted make it a 400 ValidationError with their count, '
        + 'unless `?force=true`, which clears them; `conversion` in the answer says how many values were converted and cleared.',
      params: PropertyParams,
      querystring: UpdatePropertyQuery,
      headers: IfMatchHeaders,
      body: UpdatePropertyBody,
      response: responses({ 200: UpdatedProperty }, [400, 403, 404, 409, 410, 412]),
    },
  }, (request) => properties.update(request.tenant, request.caller, request.params.propertyId, request.body, { force: request.query.force, ifMatch: ifMatch(request) }));

  app.delete('/properties/:propertyId', {
    config: owner,
    schema: {
      tags,
      summary: 'Delete a property (soft; OWNER; 409 while the entity\'s viewSettings or insightWidgets use it)',
      params: PropertyParams,
      headers: IfMatchHeaders,
      response: responses({ 200: DeletedProperty }, [400, 403, 404, 409, 410, 412]),
    },
  }, (request) => properties.remove(request.tenant, request.caller, request.params.propertyId, { ifMatch: ifMatch(request) }));
}
