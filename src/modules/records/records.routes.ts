import Type from 'typebox';
import { ifMatch, IfMatchHeaders } from '../../http/etag.ts';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import {
  AdvancedSearchBody, BULK_MAX, BulkCreateBody, BulkDeleteBody, BulkRestoreBody, BulkResult, BulkUpdateBody, CreateRecordBody, CrmRecord, DeletedRecord, EntityParams, FulltextQuery,
  ListRecordsQuery, RecordPage, RecordParams, TrashQuery, UpdateRecordBody,
} from './records.schemas.ts';
import type { RecordsService } from './records.service.ts';

const tags = ['Records'];

/** API.md §1.1: bulk endpoints take bodies up to 10 MiB (config BULK_BODY_LIMIT) where others take 1 MiB. */
export const DEFAULT_BULK_BODY_LIMIT = 10 * 1024 * 1024;

export interface RecordsRoutesOptions {
  records: RecordsService;
  /** Body limit of the bulk routes (config.bulkBodyLimit); 10 MiB when not given. */
  bulkBodyLimit?: number;
}

export async function recordsRoutes(app: TypedApp, { records, bulkBodyLimit = DEFAULT_BULK_BODY_LIMIT }: RecordsRoutesOptions) {
  const bulkResponses = responses({ 200: BulkResult }, [400, 413]);
  const perItem = 'Each item is checked as its single-record endpoint would check it; failing items are listed in `failed` ' +
    'with that error and write nothing, the others are applied together in one transaction. 400 only for a malformed ' +
    `request (schema, more than ${BULK_MAX} items).`;

  app.post('/records/bulk', {
    bodyLimit: bulkBodyLimit,
    schema: {
      tags,
      summary: `Create up to ${BULK_MAX} records`,
      description: `${perItem} records.max: as many items are created as slots remain, in request order; the rest fail with ` +
        'PlanQuotaExceeded. `recordIds` [X] lists the created records in request order.',
      body: BulkCreateBody,
      response: bulkResponses,
    },
  }, (request) => records.bulkCreate(request.tenant, request.caller, request.body.records));

  app.post('/records/bulk/update', {
    bodyLimit: bulkBodyLimit,
    schema: {
      tags,
      summary: `Patch up to ${BULK_MAX} records (data merged key by key, null clears, tags replaced)`,
      description: `${perItem} A recordId may appear once per request.`,
      body: BulkUpdateBody,
      response: bulkResponses,
    },
  }, (request) => records.bulkUpdate(request.tenant, request.caller, request.body.records));

  app.post('/records/bulk/delete', {
    bodyLimit: bulkBodyLimit,
    schema: {
      tags,
      summary: `Move up to ${BULK_MAX} records to the trash, or delete them for good (permanent)`,
      description: `${perItem} Soft delete: trashed records keep their records.max slot until purged; an already trashed ` +
        'record fails with Gone. permanent=true: live or trashed records are removed and their slots freed.',
      body: BulkDeleteBody,
      response: bulkResponses,
    },
  }, (request) => records.bulkDelete(request.tenant, request.caller, request.body));

  app.post('/records/bulk/restore', {
    bodyLimit: bulkBodyLimit,
    schema: {
      tags,
      summary: `Restore up to ${BULK_MAX} records from the trash`,
      description: `${perItem} A record that is not in the trash counts as restored (as POST /records/{id}/restore).`,
      body: BulkRestoreBody,
      response: bulkResponses,
    },
  }, (request) => records.bulkRestore(request.tenant, request.caller, request.body));

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
      headers: IfMatchHeaders,
      body: UpdateRecordBody,
      response: responses({ 200: CrmRecord }, [400, 403, 404, 410, 412]),
    },
  }, (request) => records.update(request.tenant, request.caller, request.params.recordId, request.body, { ifMatch: ifMatch(request) }));

  app.delete('/records/:recordId', {
    schema: { tags, summary: 'Move a record to the trash', params: RecordParams, headers: IfMatchHeaders, response: responses({ 200: DeletedRecord }, [400, 403, 404, 410, 412]) },
  }, (request) => records.remove(request.tenant, request.caller, request.params.recordId, { ifMatch: ifMatch(request) }));

  app.post('/records/:recordId/restore', {
    schema: { tags, summary: 'Restore a record from the trash', params: RecordParams, response: responses({ 200: CrmRecord }, [403, 404, 410]) },
  }, (request) => records.restore(request.tenant, request.caller, request.params.recordId));
}
