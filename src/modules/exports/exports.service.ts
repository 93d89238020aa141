import type { TenantDb } from '../../db/tenant.ts';
import { AppError } from '../../errors.ts';
import type { Clock } from '../../lib/clock.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { EntitiesService } from '../entities/entities.service.ts';
import type { FilesService } from '../files/files.service.ts';
import type { JobContext, JobsService, JobView } from '../jobs/jobs.service.ts';
import type { MembersService } from '../members/members.service.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import type { PropertiesService } from '../properties/properties.service.ts';
import type { RecordScan, RecordsService } from '../records/records.service.ts';
import { exportColumns, type ExportColumn } from './columns.ts';
import { SYNC_MAX_ROWS, type ExportRequestBody } from './exports.schemas.ts';
import { createSheetWriter, XLSX_MAX_ROWS, type ExportFormat } from './sheet-writer.ts';

/**
 * Record exports (API.md §5 "Export", docs/exports.md): POST /records/export/request writes the
 * file in the request when at most `syncMaxRows` records match, else enqueues a `records.export`
 * job; either way the file is read in keyset pages from the records service and streamed into a
 * stored file (files module) page by page, so memory stays flat whatever the size.
 */
export const EXPORT_JOB_KIND = 'records.export';
/** How long a download link (and the file) lives. */
export const DOWNLOAD_TTL_MS = 24 * 3600_000;
/** Solapi's body for a job it does not know: a normal 200 answer, not a 404. */
export const UNKNOWN_JOB_MESSAGE = '작업을 찾을 수 없습니다.';

export interface ExportSettings {
  /** Up to this many matching records the file is built in the request (Solapi: 10,000). */
  syncMaxRows: number;
  /** Records read (and written) per page. */
  pageSize: number;
  /**
   * Called before each page is written, with the job's ID (undefined in a synchronous export); lets
   * tests hold a job mid-way. Whatever it throws fails that run like a database error would.
   */
  beforePage?: (info: { jobId: string | undefined; processed: number }) => Promise<void> | void;
}

export type ExportRequestResult = { mode: 'sync'; downloadPath: string } | { mode: 'async'; jobId: string };

export interface ExportStatusView {
  status: JobView['status'];
  progress: number;
  total: number | null;
  downloadPath?: string;
  error?: string;
}

export interface ExportsService {
  /** Mutable at run time (tests lower the thresholds). */
  readonly settings: ExportSettings;
  request(tenant: TenantDb, caller: Caller, body: ExportRequestBody): Promise<ExportRequestResult>;
  /** An unknown job, another kind's, or another member's answers `failed` with Solapi's message. */
  status(tenant: TenantDb, caller: Caller, jobId: string): Promise<ExportStatusView>;
}

export interface ExportsServiceDeps {
  entities: EntitiesService;
  properties: PropertiesService;
  records: RecordsService;
  members: MembersService;
  quota: QuotaService;
  files: FilesService;
  jobs: JobsService;
  clock: Clock;
  settings?: Partial<ExportSettings>;
}

/** What a job remembers of its request: the selector, and who asked (re-checked when it runs). */
interface ExportJobParams {
  entityId: string;
  format: ExportFormat;
  keyword?: string;
  filters?: string;
  segmentId?: string;
  conditionGroup?: unknown;
  propertyIds?: string[];
  workspaceId: string | null;
  apiKey: string;
}

/**
 * Saved with every page: the file being written and the key of the last record in it. A run that
 * finds one left by an interrupted run deletes that partial file and starts over (a stored file
 * cannot be reopened for appending, and an XLSX zip stream cannot be resumed).
 */
interface ExportCheckpoint {
  fileId: string;
  after?: string;
  processed: number;
}

interface ExportResult {
  fileId: string;
  expiresAt: string;
  rows: number;
}

/** The plan switch `records.exportEnabled` (API.md §1.8): absent or true allows exports. */
function exportDisabled(): AppError {
  return new AppError(403, 'PlanQuotaExceeded', 'records.exportEnabled: exporting records is not enabled on this plan.', {
    details: [{ message: 'plan feature disabled', limit: 'records.exportEnabled' }],
  });
}

/** An export ready to write: columns decided, the selector validated, access checked. */
interface Prepared {
  format: ExportFormat;
  entityName: string;
  entitySlug: string;
  columns: ExportColumn[];
  scan: RecordScan;
}

function stamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

export function createExportsService(deps: ExportsServiceDeps): ExportsService {
  const { entities, properties, records, members, quota, files, jobs, clock } = deps;
  const settings: ExportSettings = { syncMaxRows: SYNC_MAX_ROWS, pageSize: 1000, ...deps.settings };

  /** Access (entity 404/410/403), columns and selector (400s), exactly as GET /records checks them. */
  async function prepare(tenant: TenantDb, caller: Caller, input: Omit<ExportJobParams, 'workspaceId' | 'apiKey'>): Promise<Prepared> {
    const entity = await entities.get(tenant, caller, input.entityId);
    const live = await properties.list(tenant, caller, { entityId: input.entityId });
    const columns = exportColumns(live, input.propertyIds ?? entity.propertyIds, input.propertyIds !== undefined);
    const scan = await records.scan(tenant, caller, {
      entityId: input.entityId,
      keyword: input.keyword,
      filters: input.filters,
      segmentId: input.segmentId,
      conditionGroup: input.conditionGroup,
    });
    return { format: input.format, entityName: entity.name, entitySlug: entity.slug, columns, scan };
  }

  /**
   * Streams the matching records into a new stored file. `onFile` hears the file's ID before any
   * row is written, `onPage` after each page (rows written so far, key of the last one). On any
   * failure the partial file is deleted.
   */
  async function write(tenant: TenantDb, prepared: Prepared, options: {
    createdBy: string | null;
    jobId?: string;
    signal?: AbortSignal;
    onFile?: (fileId: string) => Promise<void>;
    onPage?: (processed: number, after: string | undefined, fileId: string) => Promise<void>;
  }): Promise<ExportResult> {
    const now = new Date(clock());
    const expiresAt = new Date(now.getTime() + DOWNLOAD_TTL_MS);
    const headers = prepared.columns.map((c) => c.header);
    const extension = prepared.format === 'csv' ? 'csv' : 'xlsx';
    const contentType = prepared.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
    const file = await files.create(tenant, { name: `${prepared.entitySlug}-${stamp(now)}.${extension}`, contentType, expiresAt, createdBy: options.createdBy });
    try {
      await options.onFile?.(file.fileId);
      const sheet = createSheetWriter(prepared.format, file, headers, { sheetName: prepared.entityName });
      // One page is read ahead while the previous one is encoded and written (database time and
      // CPU time overlap); at most two pages are in memory.
      const read = (after: string | undefined) => {
        const page = prepared.scan.page(after, settings.pageSize);
        page.catch(() => undefined); // awaited below, unless the loop stops first
        return page;
      };
      let next = read(undefined);
      let after: string | undefined;
      let processed = 0;
      for (;;) {
        options.signal?.throwIfAborted();
        await settings.beforePage?.({ jobId: options.jobId, processed });
        options.signal?.throwIfAborted();
        const page = await next;
        if (page.nextKey) next = read(page.nextKey);
        await sheet.rows(page.data.map((record) => prepared.columns.map((column) => column.value(record))));
        processed += page.data.length;
        after = page.nextKey ?? after;
        if (!page.nextKey) break;
        await options.onPage?.(processed, after, file.fileId);
      }
      await sheet.finish();
      await file.finish();
      return { fileId: file.fileId, expiresAt: expiresAt.toISOString(), rows: processed };
    } catch (error) {
      await file.abort().catch(() => undefined);
      throw error;
    }
  }

  /** The caller a job acts as: its requester with the role they have now (removed → the job fails). */
  async function callerOf(tenant: TenantDb, job: JobView, params: ExportJobParams): Promise<Caller> {
    const memberId = job.createdBy;
    // Only "no such member" ends the job; a database error is retried like any other.
    const member = memberId ? await members.get(tenant, memberId).catch((error: unknown) => {
      if (error instanceof AppError && error.status === 404) return undefined;
      throw error;
    }) : undefined;
    if (!memberId || !member) throw new AppError(403, 'Forbidden', 'The member who requested this export no longer exists.');
    return { accountId: tenant.accountId, memberId, role: member.role, apiKey: params.apiKey, workspaceId: params.workspaceId };
  }

  async function runJob(ctx: JobContext): Promise<ExportResult> {
    const params = ctx.job.params as ExportJobParams;
    const previous = ctx.job.checkpoint as ExportCheckpoint | null;
    // An interrupted run left a partial file: delete it and start over.
    if (previous?.fileId) await files.remove(ctx.tenant, previous.fileId);
    const caller = await callerOf(ctx.tenant, ctx.job, params);
    const prepared = await prepare(ctx.tenant, caller, params);
    const total = await prepared.scan.count();
    if (params.format === 'excel' && total > XLSX_MAX_ROWS - 1) {
      throw new AppError(400, 'ValidationError', `${total} records match: an XLSX sheet holds at most ${XLSX_MAX_ROWS - 1}; export as csv instead.`);
    }
    return write(ctx.tenant, prepared, {
      createdBy: ctx.job.createdBy,
      jobId: ctx.job.jobId,
      signal: ctx.signal,
      onFile: (fileId) => ctx.progress({ processed: 0, total, checkpoint: { fileId, processed: 0 } satisfies ExportCheckpoint }),
      onPage: (processed, after, fileId) => ctx.progress({ processed, total: Math.max(total, processed), checkpoint: { fileId, after, processed } satisfies ExportCheckpoint }),
    });
  }

  jobs.register(EXPORT_JOB_KIND, runJob);

  return {
    settings,

    async request(tenant, caller, body) {
      const { limits } = await quota.usage(tenant);
      if (limits['records.exportEnabled'] === false) throw exportDisabled();
      const input = {
        entityId: body.entityId,
        format: body.format as ExportFormat,
        ...(body.keyword ? { keyword: body.keyword } : {}),
        ...(body.filters !== undefined ? { filters: body.filters } : {}),
        ...(body.segmentId !== undefined ? { segmentId: body.segmentId } : {}),
        ...(body.conditionGroup !== undefined ? { conditionGroup: body.conditionGroup } : {}),
        ...(body.propertyIds !== undefined ? { propertyIds: body.propertyIds } : {}),
      };
      // Everything is validated before anything is written or enqueued: bad input is a 4xx and no job.
      const prepared = await prepare(tenant, caller, input);
      const matching = await prepared.scan.count(settings.syncMaxRows + 1);
      if (matching <= settings.syncMaxRows) {
        const result = await write(tenant, prepared, { createdBy: caller.memberId });
        return { mode: 'sync', downloadPath: files.downloadPath(tenant.accountId, result.fileId, new Date(result.expiresAt)) };
      }
      const params: ExportJobParams = { ...input, workspaceId: caller.workspaceId, apiKey: caller.apiKey };
      const job = await jobs.enqueue(tenant, { kind: EXPORT_JOB_KIND, params, createdBy: caller.memberId });
      return { mode: 'async', jobId: job.jobId };
    },

    async status(tenant, caller, jobId) {
      const job = await jobs.get(tenant, jobId);
      // Only the member who asked sees the job: the file holds what *they* may see (masking).
      if (!job || job.kind !== EXPORT_JOB_KIND || job.createdBy !== caller.memberId) {
        return { status: 'failed', progress: 0, total: null, error: UNKNOWN_JOB_MESSAGE };
      }
      const view: ExportStatusView = { status: job.status, progress: job.progress, total: job.total };
      if (job.status === 'completed') {
        const result = job.result as ExportResult;
        view.total = result.rows;
        view.progress = result.rows;
        view.downloadPath = files.downloadPath(tenant.accountId, result.fileId, new Date(result.expiresAt));
      }
      if (job.status === 'failed') view.error = job.error ?? 'The export failed.';
      return view;
    },
  };
}
