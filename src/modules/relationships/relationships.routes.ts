import Type from 'typebox';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import type { RelationshipTypesService } from './relationship-types.service.ts';
import {
  BulkLinkBody, BulkLinkResult, BulkMatchBody, BulkMatchResult, BY_TYPE_CAP, CreateRelationshipBody, CreateRelationshipTypeBody,
  DeletedRelationship, DeletedType, DeleteTypeQuery, ListRelationshipsQuery, ListRelationshipTypesQuery, RecordParams, RecordRelations,
  RecordRelationsQuery, Relationship, RelationshipPage, RelationshipParams, RelationshipType, TYPE_LIST_CAP, TypeParams,
  UpdateRelationshipBody, UpdateRelationshipTypeBody,
} from './relationships.schemas.ts';
import type { RelationshipsService } from './relationships.service.ts';

const tags = ['Relationships'];

export interface RelationshipsRoutesOptions {
  types: RelationshipTypesService;
  relationships: RelationshipsService;
  bulkBodyLimit: number;
}

/** API.md §8, all MEMBER or higher (the default role of a route), plus a record's related records [X]. */
export async function relationshipsRoutes(app: TypedApp, { types, relationships, bulkBodyLimit }: RelationshipsRoutesOptions) {
  /* ---------- Types ---------- */

  app.post('/relationships/types', {
    schema: {
      tags,
      summary: 'Create a relationship type',
      description: '(name, sourceEntityId, targetEntityId) is unique in the account and workspace: 409 ConflictException. '
        + 'Quota relationshipTypes.maxPerEntity, counted on the source entity. The two entities may be the same.',
      body: CreateRelationshipTypeBody,
      response: responses({ 201: RelationshipType }, [400, 403, 404, 409, 410]),
    },
  }, async (request, reply) => reply.code(201).send(await types.create(request.tenant, request.caller, request.body)));

  app.get('/relationships/types', {
    schema: {
      tags,
      summary: `List relationship types, optionally those whose source or target is an entity (≤${TYPE_LIST_CAP}, oldest first)`,
      querystring: ListRelationshipTypesQuery,
      response: responses({ 200: Type.Array(RelationshipType, { maxItems: TYPE_LIST_CAP }) }, [400, 403, 404, 410]),
    },
  }, (request) => types.list(request.tenant, request.caller, request.query.entityId));

  app.get('/relationships/types/:relationshipTypeId', {
    schema: { tags, summary: 'Get a relationship type', params: TypeParams, response: responses({ 200: RelationshipType }, [403, 404, 410]) },
  }, (request) => types.get(request.tenant, request.caller, request.params.relationshipTypeId));

  app.patch('/relationships/types/:relationshipTypeId', {
    schema: {
      tags,
      summary: 'Change a relationship type\'s name, labels or description (its entities are immutable: 400)',
      params: TypeParams,
      body: UpdateRelationshipTypeBody,
      response: responses({ 200: RelationshipType }, [400, 403, 404, 409, 410]),
    },
  }, (request) => types.update(request.tenant, request.caller, request.params.relationshipTypeId, request.body));

  app.delete('/relationships/types/:relationshipTypeId', {
    schema: {
      tags,
      summary: 'Delete a relationship type (409 while relationships use it, unless cascade=true)',
      params: TypeParams,
      querystring: DeleteTypeQuery,
      response: responses({ 200: DeletedType }, [400, 403, 404, 409, 410]),
    },
  }, (request) => types.remove(request.tenant, request.caller, request.params.relationshipTypeId, request.query.cascade ?? false));

  /* ---------- Relationships ---------- */

  app.post('/relationships', {
    schema: {
      tags,
      summary: 'Link two records',
      description: 'Both records must exist, be live and belong to the type\'s entities; a pair given in the reverse direction is '
        + 'stored in the type\'s direction. Self-links are 400, a duplicate (type, source, target) 409. Quota relationships.max.',
      body: CreateRelationshipBody,
      response: responses({ 201: Relationship }, [400, 403, 404, 409, 410]),
    },
  }, async (request, reply) => reply.code(201).send(await relationships.create(request.tenant, request.caller, request.body)));

  // Fixed paths before /relationships/:relationshipId so "list" is never taken for an ID.
  app.get('/relationships/list', {
    schema: {
      tags,
      summary: 'List relationships with both records\' names (keyset pages, newest first)',
      querystring: ListRelationshipsQuery,
      response: responses({ 200: RelationshipPage }, [400, 403, 404, 410]),
    },
  }, (request) => relationships.list(request.tenant, request.caller, request.query));

  app.get('/relationships/type/:relationshipTypeId', {
    schema: {
      tags,
      summary: `All relationships of a type (≤${BY_TYPE_CAP}, newest first; page with /relationships/list)`,
      params: TypeParams,
      response: responses({ 200: Type.Array(Relationship, { maxItems: BY_TYPE_CAP }) }, [403, 404, 410]),
    },
  }, (request) => relationships.byType(request.tenant, request.caller, request.params.relationshipTypeId));

  app.post('/relationships/bulk', {
    bodyLimit: bulkBodyLimit,
    schema: {
      tags,
      summary: 'Link every source to every target (≤10,000 pairs) in one transaction',
      description: 'Sources by sourceRecordIds or sourceFilter {keyword, filters} (as GET /records). Pairs already linked are '
        + 'skipped. Any unknown, trashed or foreign record fails the whole request (400); over relationships.max, 403 and nothing is written.',
      body: BulkLinkBody,
      response: responses({ 200: BulkLinkResult }, [400, 403, 404, 410, 413]),
    },
  }, (request) => relationships.bulkLink(request.tenant, request.caller, request.body));

  app.post('/relationships/bulk-match', {
    bodyLimit: bulkBodyLimit,
    schema: {
      tags,
      summary: 'Link source records to the counterpart records whose name or property values match',
      description: 'Every criterion must match (trimmed, case-insensitive; empty values never match). FIRST links the oldest '
        + 'match only, ALL every match (≤10,000 links). One transaction; over relationships.max, 403 and nothing is written.',
      body: BulkMatchBody,
      response: responses({ 200: BulkMatchResult }, [400, 403, 404, 410, 413]),
    },
  }, (request) => relationships.bulkMatch(request.tenant, request.caller, request.body));

  app.get('/relationships/:relationshipId', {
    schema: { tags, summary: 'Get a relationship', params: RelationshipParams, response: responses({ 200: Relationship }, [403, 404]) },
  }, (request) => relationships.get(request.tenant, request.caller, request.params.relationshipId));

  app.patch('/relationships/:relationshipId', {
    schema: {
      tags,
      summary: 'Replace a relationship\'s metadata (wholesale, never merged)',
      params: RelationshipParams,
      body: UpdateRelationshipBody,
      response: responses({ 200: Relationship }, [400, 403, 404]),
    },
  }, (request) => relationships.update(request.tenant, request.caller, request.params.relationshipId, request.body));

  app.delete('/relationships/:relationshipId', {
    schema: { tags, summary: 'Delete a relationship for good', params: RelationshipParams, response: responses({ 200: DeletedRelationship }, [403, 404]) },
  }, (request) => relationships.remove(request.tenant, request.caller, request.params.relationshipId));

  /* ---------- A record's related records [X] ---------- */

  app.get('/records/:recordId/relationships', {
    schema: {
      tags,
      summary: 'A record\'s related records, grouped by relationship type and direction, with names',
      description: 'One group per type and direction the record\'s entity takes part in, each with its total and first page. '
        + 'Page one group with its relationshipTypeId, direction and nextKey as startKey.',
      params: RecordParams,
      querystring: RecordRelationsQuery,
      response: responses({ 200: RecordRelations }, [400, 403, 404, 410]),
    },
  }, (request) => relationships.ofRecord(request.tenant, request.caller, request.params.recordId, request.query));
}
