import { absoluteUrl } from '../../http/public-url.ts';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import { ExportJobParams, ExportRequestBody, ExportRequestResult, ExportStatus } from './exports.schemas.ts';
import type { ExportsService } from './exports.service.ts';

const tags = ['Records'];

/** POST /records/export/request and GET /records/export/{jobId}/status (API.md §5 "Export"; docs/exports.md). */
export async function exportsRoutes(app: TypedApp, { exports }: { exports: ExportsService }) {
  app.post('/records/export/request', {
    schema: {
      tags,
      summary: 'Export an entity\'s records as CSV or XLSX (≤10,000 now, more as a background job)',
      description: 'Selects records as GET /records does (keyword, filters, segmentId) and/or as advanced search does '
        + '(conditionGroup), all ANDed, with the same access and masking rules: a MEMBER\'s file holds masked values. '
        + 'Up to 10,000 matching records the file is written now and `{mode: "sync", downloadUrl}` answers; more gives '
        + '`{mode: "async", jobId}` to poll. `downloadUrl` is a signed link valid 24 h, fetched without an API key. '
        + 'Columns: recordId, name, the properties (propertyIds order, default the entity\'s column order), tags, ownerId, '
        + 'dateCreated, dateUpdated. Plan switch records.exportEnabled=false → 403 PlanQuotaExceeded.',
      body: ExportRequestBody,
      response: responses({ 200: ExportRequestResult }, [400, 403, 404, 410]),
    },
  }, async (request) => {
    const result = await exports.request(request.tenant, request.caller, request.body);
    return result.mode === 'sync'
      ? { mode: 'sync' as const, downloadUrl: absoluteUrl(request, result.downloadPath) }
      : { mode: 'async' as const, jobId: result.jobId };
  });

  app.get('/records/export/:jobId/status', {
    schema: {
      tags,
      summary: 'Progress of an export job; downloadUrl once completed',
      description: 'A job ID that is unknown, expired (kept 24 h after success, 7 days after failure) or another member\'s '
        + `answers 200 {status: "failed", error: "작업을 찾을 수 없습니다."} as Solapi does, not 404. Poll every 3–5 s.`,
      params: ExportJobParams,
      response: responses({ 200: ExportStatus }, []),
    },
  }, async (request) => {
    const view = await exports.status(request.tenant, request.caller, request.params.jobId);
    return {
      status: view.status,
      progress: view.progress,
      total: view.total,
      ...(view.downloadPath ? { downloadUrl: absoluteUrl(request, view.downloadPath) } : {}),
      ...(view.error ? { error: view.error } : {}),
    };
  });
}
