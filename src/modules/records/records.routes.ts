import Type from 'typebox';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import {
  AdvancedSearchBody, CreateRecordBody, CrmRecord, DeletedRecord, EntityParams, FulltextQuery,
  ListRecordsQuery, RecordPage, RecordParams, TrashQuery, UpdateRecordBody,
} from './records.schemas.ts';
import type { RecordsService } from './records.service.ts';

const tags = ['Records'];

export async function recordsRoutes(app: TypedApp, { records }: { records: RecordsService }) {
  app.post('/records', {
    schema: { tags, summary: 'Create a record', body: CreateRecordBody, response: responses({ 201: CrmRecord }, [400, 403, 404, 410]) },
  }, async (request, reply) => reply.code(201).send(await records.create(request.tenant, request.caller, request.body)));

  app.get('/records', {
    schema: {
      tags,
      summary: 'List an entity\'s records (keyset pages; filters, keyword, tags, owner, sort)',
      querystring: ListRecordsQuery,
      response: responses({ 200: RecordPage }, [400, 403, 404, 410]),
    },
  }, (request) => records.list(request.tenant, request.caller, request.query));

  app.post('/records/search/advanced', {
    schema: {
      tags,
      summary: 'Search with a nested AND/OR condition group (API.md §6)',
      body: AdvancedSearchBody,
      response: responses({ 200: RecordPage }, [400, 403, 404, 410]),
    },
  }, (request) => records.search(request.tenant, request.caller, request.body));

  app.get('/records/search/fulltext/:entityId', {
    schema: {
      tags,
      summary: 'Records whose name contains q (case-insensitive), prefix matches first',
      params: EntityParams,
      querystring: FulltextQuery,
      response: responses({ 200: Type.Array(CrmRecord) }, [400, 403, 404, 410]),
    },
  }, (request) => records.fulltext(request.tenant, request.caller, request.params.entityId, request.query.q, request.query.limit ?? 20));

  app.get('/records/trash', {
    schema: { tags, summary: 'Trashed records of an entity, newest first', querystring: TrashQuery, response: responses({ 200: RecordPage }, [400, 403, 404, 410]) },
  }, (request) => records.trash(request.tenant, request.caller, request.query));

  app.get('/records/:recordId', {
    schema: { tags, summary: 'Get a record (410 when trashed)', params: RecordParams, response: responses({ 200: CrmRecord }, [403, 404, 410]) },
  }, (request) => records.get(request.tenant, request.caller, request.params.recordId));

  app.patch('/records/:recordId', {
    schema: {
      tags,
      summary: 'Change a record: data merged key by key (null clears), tags replaced',
      params: RecordParams,
      body: UpdateRecordBody,
      response: responses({ 200: CrmRecord }, [400, 403, 404, 410]),
    },
  }, (request) => records.update(request.tenant, request.caller, request.params.recordId, request.body));

  app.delete('/records/:recordId', {
    schema: { tags, summary: 'Move a record to the trash', params: RecordParams, response: responses({ 200: DeletedRecord }, [403, 404, 410]) },
  }, (request) => records.remove(request.tenant, request.caller, request.params.recordId));

  app.post('/records/:recordId/restore', {
    schema: { tags, summary: 'Restore a record from the trash', params: RecordParams, response: responses({ 200: CrmRecord }, [403, 404, 410]) },
  }, (request) => records.restore(request.tenant, request.caller, request.params.recordId));
}
