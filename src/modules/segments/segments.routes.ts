import { ifMatch, IfMatchHeaders } from '../../http/etag.ts';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import Type from 'typebox';
import { RecordPage } from '../records/records.schemas.ts';
import {
  CreateSegmentBody, DeletedSegment, ExplainParams, Explanation, ListSegmentsQuery, Preview, PreviewBody, Segment, SegmentCount,
  SegmentEventPage, SegmentEventsQuery, SegmentParams, SegmentRecordsQuery, SEGMENT_LIST_CAP, UpdateSegmentBody,
} from './segments.schemas.ts';
import type { SegmentsService } from './segments.service.ts';

const tags = ['Segments'];

export async function segmentsRoutes(app: TypedApp, { segments }: { segments: SegmentsService }) {
  app.get('/segments', {
    schema: {
      tags,
      summary: `List segments (≤${SEGMENT_LIST_CAP}, priority ascending), of one entity or of every entity the caller may use`,
      querystring: ListSegmentsQuery,
      response: responses({ 200: Type.Array(Segment, { maxItems: SEGMENT_LIST_CAP }) }, [400, 403, 404, 410]),
    },
  }, (request) => segments.list(request.tenant, request.caller, request.query.entityId));

  app.post('/segments', {
    schema: {
      tags,
      summary: 'Create a segment (conditions validated against the entity; quota segments.maxPerEntity)',
      description: 'REALTIME segments evaluate on every read. CACHED segments keep their members, changed in the '
        + 'transaction of every write that can change them; they cannot use relative date operators.',
      body: CreateSegmentBody,
      response: responses({ 201: Segment }, [400, 403, 404, 410]),
    },
  }, async (request, reply) => reply.code(201).send(await segments.create(request.tenant, request.caller, request.body)));

  app.post('/segments/preview', {
    schema: {
      tags,
      summary: 'Count and sample the records some conditions match, without saving a segment',
      body: PreviewBody,
      response: responses({ 200: Preview }, [400, 403, 404, 410]),
    },
  }, (request) => segments.preview(request.tenant, request.caller, request.body));

  app.get('/segments/:segmentId', {
    schema: { tags, summary: 'Get a segment', params: SegmentParams, response: responses({ 200: Segment }, [400, 403, 404, 410]) },
  }, (request) => segments.get(request.tenant, request.caller, request.params.segmentId));

  app.patch('/segments/:segmentId', {
    schema: {
      tags,
      summary: 'Update a segment (its creator or an OWNER); new rules re-evaluate a CACHED segment at once',
      params: SegmentParams,
      headers: IfMatchHeaders,
      body: UpdateSegmentBody,
      response: responses({ 200: Segment }, [400, 403, 404, 410, 412]),
    },
  }, (request) => segments.update(request.tenant, request.caller, request.params.segmentId, request.body, { ifMatch: ifMatch(request) }));

  app.delete('/segments/:segmentId', {
    schema: {
      tags,
      summary: 'Delete a segment (its creator or an OWNER) and its cached members',
      params: SegmentParams,
      headers: IfMatchHeaders,
      response: responses({ 200: DeletedSegment }, [400, 403, 404, 410, 412]),
    },
  }, async (request) => {
    await segments.remove(request.tenant, request.caller, request.params.segmentId, { ifMatch: ifMatch(request) });
    return { segmentId: request.params.segmentId };
  });

  app.get('/segments/:segmentId/records', {
    schema: {
      tags,
      summary: 'The segment\'s records: cursor pages with the same sort, limit and filters as GET /records',
      params: SegmentParams,
      querystring: SegmentRecordsQuery,
      response: responses({ 200: RecordPage }, [400, 403, 404, 410]),
    },
  }, (request) => segments.records(request.tenant, request.caller, request.params.segmentId, request.query));

  app.get('/segments/:segmentId/count', {
    schema: {
      tags,
      summary: 'The exact number of records in the segment (O(1) for CACHED)',
      params: SegmentParams,
      response: responses({ 200: SegmentCount }, [400, 403, 404, 410]),
    },
  }, async (request) => ({ count: await segments.count(request.tenant, request.caller, request.params.segmentId) }));

  app.get('/segments/:segmentId/explain/:recordId', {
    schema: {
      tags,
      summary: 'Why a record is or is not in the segment: the condition tree with `passed` on every node',
      params: ExplainParams,
      response: responses({ 200: Explanation }, [400, 403, 404, 410]),
    },
  }, (request) => segments.explain(request.tenant, request.caller, request.params.segmentId, request.params.recordId));

  app.post('/segments/:segmentId/refresh', {
    schema: {
      tags,
      summary: 'Rebuild a CACHED segment\'s members from scratch (they are never stale; this is a consistency tool)',
      params: SegmentParams,
      response: responses({ 200: Segment }, [400, 403, 404, 410]),
    },
  }, (request) => segments.refresh(request.tenant, request.caller, request.params.segmentId));

  app.get('/segments/:segmentId/events', {
    schema: {
      tags,
      summary: 'segment.entered / segment.exited events of a CACHED segment, oldest first (cursor)',
      params: SegmentParams,
      querystring: SegmentEventsQuery,
      response: responses({ 200: SegmentEventPage }, [400, 403, 404, 410]),
    },
  }, (request) => segments.events(request.tenant, request.caller, request.params.segmentId, request.query));
}
