import { AppError, errors } from '../../errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { EntitiesService } from '../entities/entities.service.ts';
import type { FilesService } from '../files/files.service.ts';
import type { JobContext, JobsService } from '../jobs/jobs.service.ts';
import type { MembersService } from '../members/members.service.ts';
import type { QuotaService } from '../plans/quota.service.ts';
import type { PropertiesService } from '../properties/properties.service.ts';
import type { RecordsService } from '../records/records.service.ts';
import {
  convertRow, describeWriteError, isFailure, resolveMapping, suggestMapping,
  type ConvertedRow, type ImportField, type MappedColumn, type RowFailure,
} from './imports.mapping.ts';
import { cellText, detectFormat, readRows, sheetNames, type TableFormat, type TableRow } from './imports.table.ts';

/**
 * Record import (issue 7; docs/imports.md): CSV or XLSX → records of one entity, through the
 * records service (bulkCreate / bulkUpdate: the same validation, access rules, segment upkeep
 * and `records.max` accounting as POST /records/bulk).
 *
 * - Dry run: the whole file is read, converted and checked (upsert matches looked up, the plan
 *   limit counted) without a single write; per-row results and counts come back.
 * - A file of at most `syncMaxRows` data rows (default 1,000) is imported in the request, in one
 *   transaction; larger files are stored (files service) and imported by a `records.import` job
 *   in transactions of `batchSize` rows (default 1,000), each saving the job's checkpoint (rows
 *   done, counts, failures) in the same transaction: a job resumed after a crash skips exactly
 *   the rows whose batch committed, so no row is imported twice.
 * - Rows that fail (a bad value, a plan limit) are reported with their row number and reason;
 *   the others are imported.
 * - Upsert (`upsertBy`: a TEXT, EMAIL, PHONE or URL property): a row whose value matches one live
 *   record updates it (PATCH semantics: cells given replace, empty cells leave the value alone,
 *   tags replace); no match creates. Repeated values in the file apply in file order: the first
 *   row creates (or updates) the record, each later row updates that record. A value held by
 *   several live records is ambiguous: those rows fail.
 */

export interface UploadedFile {
  name: string;
  contentType: string;
  bytes: Buffer;
}

export interface ImportInput {
  entityId: string;
  file: UploadedFile;
  /** Parsed mapping (`{column: target}`); undefined = map by header. */
  mapping?: Record<string, unknown>;
  /** The form field the mapping came from, for error paths (`body/mapping`, `body/columnMappings`). */
  mappingPath?: string;
  hasHeader: boolean;
  sheetName?: string;
  delimiter?: string;
  upsertBy?: string;
  dryRun?: boolean;
}

export interface ImportResult {
  /** Data rows in the file (header and empty rows not counted). */
  total: number;
  created: number;
  updated: number;
  /** Rows that were not imported. */
  failedCount: number;
  /** Those rows, in file order (the first MAX_REPORTED_FAILURES). */
  failed: RowFailure[];
}

export interface RowOutcome {
  row: number;
  action: 'create' | 'update' | 'invalid';
  /** update: the record the row would update. */
  recordId?: string;
  /** The record fields the row carries, converted (create/update). */
  record?: { name?: string; data: Record<string, unknown>; tags?: string[] };
  errorCode?: string;
  errorMessage?: string;
  details?: RowFailure['details'];
}

export interface DryRunResult {
  dryRun: true;
  total: number;
  wouldCreate: number;
  wouldUpdate: number;
  invalid: number;
  columns: ColumnInfo[];
  /** The first DRY_RUN_ROWS rows' outcomes. */
  rows: RowOutcome[];
  /** The invalid rows (the first MAX_REPORTED_FAILURES). */
  failed: RowFailure[];
}

export interface ColumnInfo {
  index: number;
  header: string | null;
  /** What the column is imported as: `__name__`, `__tags__`, a property ID; absent = ignored. */
  target?: string;
  sample?: string | null;
}

export type ImportOutcome =
  | ({ mode: 'dryRun' } & DryRunResult)
  | ({ mode: 'sync' } & ImportResult)
  | { mode: 'async'; jobId: string; status: string; total: number };

export interface ImportStatus {
  jobId: string;
  status: string;
  progress: number;
  total: number | null;
  result?: ImportResult;
  error?: string;
}

export interface ColumnsResult {
  sheetName: string | null;
  sheets: string[];
  hasHeader: boolean;
  columns: ColumnInfo[];
  totalRows: number;
}

export interface PreviewResult extends ColumnsResult {
  entityId: string;
  /** A mapping for this file by its headers (index → `__name__` / `__tags__` / property ID). */
  suggestedMappings: Record<string, string>;
  rows: (RowOutcome & { cells: string[] })[];
}

export interface ImportsOptions {
  /** Files with at most this many data rows are imported in the request (default 1,000). */
  syncMaxRows?: number;
  /** Rows per transaction of an import job (default 1,000). */
  batchSize?: number;
  /** Upload limit in bytes (default 10 MiB; IMPORT_MAX_FILE_BYTES). */
  maxFileBytes?: number;
}

export interface ImportsService {
  readonly limits: Required<ImportsOptions>;
  importFile(tenant: TenantDb, caller: Caller, input: ImportInput): Promise<ImportOutcome>;
  extractColumns(input: { file: UploadedFile; sheetName?: string; hasHeader: boolean }): Promise<ColumnsResult>;
  preview(tenant: TenantDb, caller: Caller, input: ImportInput & { limit?: number }): Promise<PreviewResult>;
  status(tenant: TenantDb, caller: Caller, jobId: string): Promise<ImportStatus>;
  /** Checks `linkConfigs` entities (404/410/403 like any entity use); they are not applied (docs/imports.md). */
  checkLinkConfigs(tenant: TenantDb, caller: Caller, configs: { entityId: string }[]): Promise<void>;
  /** The `records.import` job handler (registered with the jobs service; exposed for tests of resumption). */
  runJob(ctx: JobContext): Promise<ImportResult>;
}

export interface ImportsServiceDeps {
  entities: EntitiesService;
  properties: PropertiesService;
  records: RecordsService;
  members: MembersService;
  quota: QuotaService;
  files: FilesService;
  jobs: JobsService;
  clock: Clock;
  options?: ImportsOptions;
}

export const IMPORT_JOB_KIND = 'records.import';
export const DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024;
const MAX_REPORTED_FAILURES = 1_000;
const DRY_RUN_ROWS = 1_000;
const PREVIEW_ROWS = 20;
const LOOKUP_CHUNK = 5_000;
/** How long an uploaded file waits for its job; the job deletes it when it completes. */
const UPLOAD_RETENTION_MS = 7 * 24 * 3600_000;
/**
 * Batches of plain creates a job writes side by side, each in its own transaction (PostgreSQL: its
 * own connection; PGlite's single connection takes them in turn). Measured in docs/imports.md.
 */
const PARALLEL_BATCHES = 2;
const UPSERT_TYPES = new Set(['TEXT', 'EMAIL', 'PHONE', 'URL']);

interface JobParams {
  entityId: string;
  fileId: string;
  format: TableFormat;
  mapping?: Record<string, unknown>;
  mappingPath?: string;
  hasHeader: boolean;
  sheetName?: string;
  delimiter?: string;
  upsertBy?: string;
  memberId: string;
  apiKey: string;
  workspaceId: string | null;
}

/** Saved with every batch, in the batch's transaction. */
interface Checkpoint {
  /** Data rows handled (imported or failed), in file order. */
  rowsDone: number;
  created: number;
  updated: number;
  failedCount: number;
  failed: RowFailure[];
  /** Set after the last batch: a rerun returns the result without reading the file. */
  done?: boolean;
  total?: number;
}

interface Plan {
  entityId: string;
  format: TableFormat;
  columns: MappedColumn[];
  headers: string[] | null;
  upsertBy?: ImportField;
}

/** What a batch writes through; the dry run's writer writes nothing. */
interface Writer {
  /** Live records per upsert key (normalised value). */
  lookup(keys: string[]): Promise<Map<string, string[]>>;
  create(rows: ConvertedRow[]): Promise<{ ids: Map<number, string>; failed: RowFailure[] }>;
  update(items: { row: ConvertedRow; recordId: string }[]): Promise<{ failed: RowFailure[] }>;
}

interface BatchOutcome {
  created: number;
  updated: number;
  failed: RowFailure[];
  /** Per row: what happened (create/update with the record). */
  actions: Map<number, { action: 'create' | 'update'; recordId: string }>;
}

async function* prepend<T>(first: T | undefined, rest: AsyncIterator<T>): AsyncGenerator<T> {
  if (first !== undefined) yield first;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  return Buffer.concat(parts);
}

function pushCapped(list: RowFailure[], items: readonly RowFailure[]): void {
  for (const item of items) {
    if (list.length >= MAX_REPORTED_FAILURES) return;
    list.push(item);
  }
}

/** Thrown between batches when the job must stop (shutdown, lost lease): not an AppError, so the job is retried. */
class Interrupted extends Error {
  constructor() {
    super('import interrupted; it resumes from its checkpoint');
    this.name = 'Interrupted';
  }
}

/**
 * Applies converted rows in file order. Without upsert every row creates. With upsert, rows go
 * in rounds: a round takes, per key, the earliest row not yet applied (rows without a key are
 * all in the first round); a row creates when its key has no record yet and updates it
 * otherwise. A created record is the target of the next rows with its key; when a create fails,
 * the next row with that key tries to create instead.
 */
async function applyRows(writer: Writer, rows: readonly ConvertedRow[], upsert: boolean): Promise<BatchOutcome> {
  const outcome: BatchOutcome = { created: 0, updated: 0, failed: [], actions: new Map() };
  if (!rows.length) return outcome;
  const recordOf = new Map<string, string>();
  let pending = [...rows];
  if (upsert) {
    const keys = [...new Set(rows.flatMap((r) => (r.key === undefined ? [] : [r.key])))];
    const found = await writer.lookup(keys);
    const ambiguous = new Set<string>();
    for (const [key, ids] of found) {
      if (ids.length === 1) recordOf.set(key, ids[0]!);
      else if (ids.length > 1) ambiguous.add(key);
    }
    pending = pending.filter((r) => {
      if (r.key === undefined || !ambiguous.has(r.key)) return true;
      outcome.failed.push({
        row: r.row,
        errorCode: 'ValidationError',
        errorMessage: `upsertBy: ${found.get(r.key)!.length} live records have the value ${JSON.stringify(r.key)}; upsert needs at most one`,
        details: [{ path: 'upsertBy', message: 'ambiguous: several records have this value', recordIds: found.get(r.key)!.slice(0, 10) }],
      });
      return false;
    });
  }
  while (pending.length) {
    const round: ConvertedRow[] = [];
    const later: ConvertedRow[] = [];
    const taken = new Set<string>();
    for (const r of pending) {
      if (upsert && r.key !== undefined) {
        if (taken.has(r.key)) {
          later.push(r);
          continue;
        }
        taken.add(r.key);
      }
      round.push(r);
    }
    const creates = round.filter((r) => !upsert || r.key === undefined || !recordOf.has(r.key));
    const updates = upsert ? round.filter((r) => r.key !== undefined && recordOf.has(r.key)).map((row) => ({ row, recordId: recordOf.get(row.key!)! })) : [];
    if (creates.length) {
      const { ids, failed } = await writer.create(creates);
      outcome.failed.push(...failed);
      for (const r of creates) {
        const id = ids.get(r.row);
        if (id === undefined) continue;
        outcome.created++;
        outcome.actions.set(r.row, { action: 'create', recordId: id });
        if (upsert && r.key !== undefined) recordOf.set(r.key, id);
      }
    }
    if (updates.length) {
      const { failed } = await writer.update(updates);
      outcome.failed.push(...failed);
      const bad = new Set(failed.map((f) => f.row));
      for (const u of updates) {
        if (bad.has(u.row.row)) continue;
        outcome.updated++;
        outcome.actions.set(u.row.row, { action: 'update', recordId: u.recordId });
      }
    }
    pending = later;
  }
  outcome.failed.sort((a, b) => a.row - b.row);
  return outcome;
}

export function createImportsService(deps: ImportsServiceDeps): ImportsService {
  const { entities, properties, records, members, quota, files, jobs, clock } = deps;
  const limits: Required<ImportsOptions> = {
    syncMaxRows: deps.options?.syncMaxRows ?? 1_000,
    batchSize: deps.options?.batchSize ?? 1_000,
    maxFileBytes: deps.options?.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
  };

  /** The entity's live properties as imports see them; 404/410/403 like every record endpoint. */
  async function loadFields(tenant: TenantDb, caller: Caller, entityId: string): Promise<ImportField[]> {
    await entities.requireUsable(tenant, caller, entityId);
    const visible = await properties.list(tenant, caller, { entityId });
    const rules = new Map((await properties.recordFields(tenant, entityId)).map((f) => [f.propertyId, f]));
    return visible.flatMap((p) => {
      const rule = rules.get(p.propertyId);
      if (!rule) return [];
      return [{
        propertyId: p.propertyId,
        name: p.name,
        key: p.key,
        fieldType: p.fieldType,
        isMasked: p.isMasked,
        optionValues: rule.optionValues,
        options: p.options.map((o) => ({ label: o.label, value: o.value })),
      }];
    });
  }

  function resolveUpsertBy(text: string | undefined, fields: readonly ImportField[], columns: readonly MappedColumn[], caller: Caller): ImportField | undefined {
    if (text === undefined || text === '') return undefined;
    const field = fields.find((f) => f.propertyId === text) ?? fields.find((f) => f.key === text) ?? fields.find((f) => f.name === text);
    const problem = (message: string) => errors.validation(`body/upsertBy: ${message}`, [{ path: 'body/upsertBy', message }]);
    if (!field) throw problem(`"${text}" is not a live property (ID, key or name) of the entity`);
    if (!UPSERT_TYPES.has(field.fieldType)) {
      throw problem(`${field.fieldType} properties cannot identify a record; use a TEXT, EMAIL, PHONE or URL property`);
    }
    if (!columns.some((c) => c.target.kind === 'property' && c.target.field.propertyId === field.propertyId)) {
      throw problem(`no column is mapped to ${field.propertyId}; map the column holding it`);
    }
    if (field.isMasked && caller.role === 'MEMBER') {
      throw errors.forbidden(`Property ${field.propertyId} is masked: matching records by it needs the ADMIN role.`);
    }
    return field;
  }

  /** Reads the header (when there is one) and resolves the mapping; `rows` yields the data rows after it. */
  async function open(tenant: TenantDb, caller: Caller, input: Omit<ImportInput, 'file' | 'dryRun'>, bytes: Buffer, format: TableFormat, delimiter: string | undefined) {
    const fields = await loadFields(tenant, caller, input.entityId);
    const iterator = readRows(bytes, { format, sheetName: input.sheetName, delimiter: input.delimiter ?? delimiter });
    let first: TableRow | undefined;
    let headers: string[] | null = null;
    const head = await iterator.next();
    if (!head.done) first = head.value;
    if (input.hasHeader) {
      headers = first ? first.cells.map((c) => cellText(c).trim()) : [];
      first = undefined;
    }
    try {
      const columns = resolveMapping(input.mapping, headers, fields, input.mappingPath ?? 'body/mapping');
      const upsertBy = resolveUpsertBy(input.upsertBy, fields, columns, caller);
      const plan: Plan = { entityId: input.entityId, format, columns, headers, upsertBy };
      return { plan, fields, rows: prepend(first, iterator) };
    } catch (error) {
      await iterator.return(undefined);
      throw error;
    }
  }

  /**
   * Live records per upsert key, looked up LOOKUP_CHUNK keys per query. A real write (`lock`)
   * locks its keys in the batch's transaction first, so that another import's batch upserting one
   * of them waits and then finds the record this one creates.
   */
  async function lookup(tenant: TenantDb, caller: Caller, plan: Plan, keys: readonly string[], lock: boolean): Promise<Map<string, string[]>> {
    const found = new Map<string, string[]>();
    for (let i = 0; i < keys.length; i += LOOKUP_CHUNK) {
      for (const { recordId, value } of await records.findByValues(tenant, caller, plan.entityId, plan.upsertBy!.propertyId, keys.slice(i, i + LOOKUP_CHUNK), { lock })) {
        const key = String(value);
        found.set(key, [...(found.get(key) ?? []), recordId]);
      }
    }
    return found;
  }

  /** `beforeSlots`: see BulkCreateOptions (a job's batches settle in file order). */
  function realWriter(tx: TenantDb, caller: Caller, plan: Plan, beforeSlots?: () => Promise<void>): Writer {
    return {
      lookup: (keys) => lookup(tx, caller, plan, keys, true),
      async create(rows) {
        const result = await records.bulkCreate(tx, caller, rows.map((r) => ({
          entityId: plan.entityId,
          ...(r.name !== undefined ? { name: r.name } : {}),
          data: r.data,
          ...(r.tags !== undefined ? { tags: r.tags } : {}),
        })), { beforeSlots });
        const failedIndex = new Set(result.failed.map((f) => f.index!));
        const ids = new Map<number, string>();
        const created = result.recordIds ?? [];
        let next = 0;
        for (const [index, r] of rows.entries()) if (!failedIndex.has(index)) ids.set(r.row, created[next++]!);
        return { ids, failed: result.failed.map((f) => describeWriteError(rows[f.index!]!.row, f, plan.columns)) };
      },
      async update(items) {
        const result = await records.bulkUpdate(tx, caller, items.map(({ row, recordId }) => ({
          recordId,
          ...(row.name !== undefined ? { name: row.name } : {}),
          ...(Object.keys(row.data).length ? { data: row.data } : {}),
          ...(row.tags !== undefined ? { tags: row.tags } : {}),
        })));
        return { failed: result.failed.map((f) => describeWriteError(items[f.index!]!.row.row, f, plan.columns)) };
      },
    };
  }

  /** Writes nothing: creates take simulated records.max slots, updates always pass (their values were checked by convertRow). */
  async function dryWriter(tenant: TenantDb, caller: Caller, plan: Plan): Promise<Writer> {
    const usage = await quota.usage(tenant);
    const max = usage.limits['records.max'];
    let used = usage.used.get('records.max') ?? 0;
    return {
      lookup: (keys) => lookup(tenant, caller, plan, keys, false),
      async create(rows) {
        const ids = new Map<number, string>();
        const failed: RowFailure[] = [];
        for (const r of rows) {
          if (typeof max === 'number' && used >= max) {
            const refusal = errors.quotaExceeded('records.max', used, max);
            failed.push({ row: r.row, errorCode: refusal.code, errorMessage: refusal.message });
          } else {
            used++;
            ids.set(r.row, `(new record, row ${r.row})`);
          }
        }
        return { ids, failed };
      },
      async update() {
        return { failed: [] };
      },
    };
  }

  function columnInfo(plan: Pick<Plan, 'columns' | 'headers'>, width: number, samples: Map<number, string>): ColumnInfo[] {
    const count = Math.max(width, plan.headers?.length ?? 0);
    return Array.from({ length: count }, (_, index) => {
      const mapped = plan.columns.find((c) => c.index === index);
      const target = mapped?.target.kind === 'name' ? '__name__' : mapped?.target.kind === 'tags' ? '__tags__' : mapped?.target.kind === 'property' ? mapped.target.field.propertyId : undefined;
      return { index, header: plan.headers?.[index] ?? null, ...(target ? { target } : {}), sample: samples.get(index) ?? null };
    });
  }

  function noteSamples(samples: Map<number, string>, row: TableRow, width: { n: number }): void {
    width.n = Math.max(width.n, row.cells.length);
    for (const [index, cell] of row.cells.entries()) {
      if (samples.has(index)) continue;
      const text = cellText(cell).trim();
      if (text) samples.set(index, text.length > 100 ? `${text.slice(0, 97)}...` : text);
    }
  }

  function toOutcome(row: ConvertedRow | RowFailure, batch: BatchOutcome, failures: Map<number, RowFailure>): RowOutcome {
    if (isFailure(row)) return { row: row.row, action: 'invalid', errorCode: row.errorCode, errorMessage: row.errorMessage, ...(row.details ? { details: row.details } : {}) };
    const failure = failures.get(row.row);
    if (failure) return { row: row.row, action: 'invalid', errorCode: failure.errorCode, errorMessage: failure.errorMessage, ...(failure.details ? { details: failure.details } : {}) };
    const done = batch.actions.get(row.row);
    const record = { ...(row.name !== undefined ? { name: row.name } : {}), data: row.data, ...(row.tags !== undefined ? { tags: row.tags } : {}) };
    return { row: row.row, action: done?.action ?? 'create', ...(done?.action === 'update' ? { recordId: done.recordId } : {}), record };
  }

  /** Checks every row without writing (dry run and preview). */
  async function dryRun(tenant: TenantDb, caller: Caller, plan: Plan, rows: AsyncIterable<TableRow>, keepRows: number): Promise<DryRunResult & { cells: Map<number, string[]> }> {
    const writer = await dryWriter(tenant, caller, plan);
    const result: DryRunResult & { cells: Map<number, string[]> } = {
      dryRun: true, total: 0, wouldCreate: 0, wouldUpdate: 0, invalid: 0, columns: [], rows: [], failed: [], cells: new Map(),
    };
    const samples = new Map<number, string>();
    const width = { n: 0 };
    // The simulated keys must see the rows before them across batches: one batch for the whole file.
    const converted: (ConvertedRow | RowFailure)[] = [];
    for await (const row of rows) {
      result.total++;
      noteSamples(samples, row, width);
      if (result.cells.size < keepRows) result.cells.set(row.row, row.cells.map(cellText));
      converted.push(convertRow(row, plan.columns, plan.upsertBy));
    }
    const valid = converted.filter((r): r is ConvertedRow => !isFailure(r));
    const batch = await applyRows(writer, valid, plan.upsertBy !== undefined);
    const failures = new Map(batch.failed.map((f) => [f.row, f]));
    for (const row of converted) {
      const outcome = toOutcome(row, batch, failures);
      if (outcome.action === 'create') result.wouldCreate++;
      else if (outcome.action === 'update') result.wouldUpdate++;
      else {
        result.invalid++;
        pushCapped(result.failed, [{ row: outcome.row, errorCode: outcome.errorCode!, errorMessage: outcome.errorMessage!, ...(outcome.details ? { details: outcome.details } : {}) }]);
      }
      if (result.rows.length < keepRows) result.rows.push(outcome);
    }
    result.columns = columnInfo(plan, width.n, samples);
    return result;
  }

  /** Converts and writes one batch in `tx`; conversion failures and write failures together, in row order. */
  async function writeBatch(tx: TenantDb, caller: Caller, plan: Plan, rows: readonly TableRow[], beforeSlots?: () => Promise<void>): Promise<{ created: number; updated: number; failed: RowFailure[] }> {
    const converted = rows.map((row) => convertRow(row, plan.columns, plan.upsertBy));
    const invalid = converted.filter(isFailure);
    const batch = await applyRows(realWriter(tx, caller, plan, beforeSlots), converted.filter((r): r is ConvertedRow => !isFailure(r)), plan.upsertBy !== undefined);
    return { created: batch.created, updated: batch.updated, failed: [...invalid, ...batch.failed].sort((a, b) => a.row - b.row) };
  }

  function formatOf(file: UploadedFile): { format: TableFormat; delimiter?: string } {
    if (file.bytes.length === 0) throw errors.validation('file: the file is empty', [{ path: 'file', message: 'empty file' }]);
    return detectFormat(file);
  }

  /** Stores an upload for its job (files service: PostgreSQL, any node, survives restarts); returns its fileId. */
  async function storeUpload(tenant: TenantDb, caller: Caller, file: UploadedFile, format: TableFormat): Promise<string> {
    const writer = await files.create(tenant, {
      name: file.name || `import.${format}`,
      contentType: file.contentType || 'application/octet-stream',
      expiresAt: new Date(clock() + UPLOAD_RETENTION_MS),
      createdBy: caller.memberId,
    });
    try {
      await writer.write(file.bytes);
      await writer.finish();
    } catch (error) {
      await writer.abort().catch(() => {});
      throw error;
    }
    return writer.fileId;
  }

  async function runJob(ctx: JobContext): Promise<ImportResult> {
    const p = ctx.job.params as JobParams;
    const saved = ctx.job.checkpoint as Checkpoint | null;
    const resultOf = (c: Checkpoint, total: number): ImportResult => ({ total, created: c.created, updated: c.updated, failedCount: c.failedCount, failed: c.failed });
    if (saved?.done) return resultOf(saved, saved.total ?? saved.rowsDone);
    // The caller as of now: a member who lost access since the upload cannot write through the job.
    const member = await members.get(ctx.tenant, p.memberId);
    const caller: Caller = { accountId: ctx.tenant.accountId, memberId: p.memberId, role: member.role, apiKey: p.apiKey, workspaceId: p.workspaceId };
    const info = await files.info(ctx.tenant, p.fileId);
    if (!info?.complete) throw errors.gone('The uploaded file', 'is no longer stored (it expired); upload it again');
    const bytes = await collect(files.read(ctx.tenant, p.fileId));
    const { plan, rows } = await open(ctx.tenant, caller, p, bytes, p.format, p.delimiter);
    const total = ctx.job.total ?? 0;
    let state: Checkpoint = saved ?? { rowsDone: 0, created: 0, updated: 0, failedCount: 0, failed: [] };

    /**
     * Writes one batch in its own transaction, which settles (takes records.max slots, saves the
     * checkpoint, commits) only after `previous` — the batch before it — committed; if that one
     * failed, this one rolls back. So batches may insert side by side while the checkpoint stays
     * a prefix of the file.
     */
    const flush = async (batch: TableRow[], previous: Promise<void>) => {
      const settleAfterPrevious = async () => {
        await previous;
        if (ctx.signal.aborted) throw new Interrupted();
      };
      if (ctx.signal.aborted) throw new Interrupted();
      await ctx.tenant.transaction(async (tx) => {
        const written = await writeBatch(tx, caller, plan, batch, settleAfterPrevious);
        await settleAfterPrevious(); // a batch with nothing to create never reached beforeSlots
        const next: Checkpoint = {
          rowsDone: state.rowsDone + batch.length,
          created: state.created + written.created,
          updated: state.updated + written.updated,
          failedCount: state.failedCount + written.failed.length,
          failed: [...state.failed],
        };
        pushCapped(next.failed, written.failed);
        await ctx.progress({ processed: next.rowsDone, checkpoint: next }, tx);
        state = next;
      });
    };

    // Rows of batches that committed before an interruption are skipped: never imported twice.
    const skip = state.rowsDone;
    let seen = 0;
    const iterator = rows[Symbol.asyncIterator]();
    const nextBatch = async (): Promise<TableRow[]> => {
      const batch: TableRow[] = [];
      while (batch.length < limits.batchSize) {
        const next = await iterator.next();
        if (next.done) break;
        if (seen++ < skip) continue;
        batch.push(next.value);
      }
      return batch;
    };
    // Upserts go one batch at a time: a batch must see the records the one before it created.
    const depth = plan.upsertBy ? 1 : PARALLEL_BATCHES;
    const writing: Promise<void>[] = [];
    try {
      // The next batch is read (parsed) while the current ones are written: the file's parsing
      // hides behind the database's work instead of adding to it.
      let reading = nextBatch();
      let previous: Promise<void> = Promise.resolve();
      for (;;) {
        const batch = await reading;
        if (!batch.length) break;
        reading = nextBatch();
        reading.catch(() => {}); // if a write fails first, this read is abandoned
        previous = flush(batch, previous);
        previous.catch(() => {}); // awaited below, in order
        writing.push(previous);
        if (writing.length >= depth) await writing.shift();
      }
      while (writing.length) await writing.shift();
    } finally {
      // A failed batch fails the ones after it; none is left running when the job ends.
      await Promise.allSettled(writing);
      void iterator.return?.(undefined)?.catch(() => {});
    }
    const finalTotal = Math.max(total, state.rowsDone);
    await ctx.progress({ processed: state.rowsDone, total: finalTotal, checkpoint: { ...state, done: true, total: finalTotal } });
    await files.remove(ctx.tenant, p.fileId);
    return resultOf(state, finalTotal);
  }

  jobs.register(IMPORT_JOB_KIND, runJob);

  return {
    limits,

    async importFile(tenant, caller, input) {
      const { format, delimiter } = formatOf(input.file);
      const { plan, rows } = await open(tenant, caller, input, input.file.bytes, format, delimiter);
      if (input.dryRun) {
        const { cells: _cells, ...result } = await dryRun(tenant, caller, plan, rows, DRY_RUN_ROWS);
        return { mode: 'dryRun', ...result };
      }
      // The whole file is read once before anything is written: a damaged file is a 400 with
      // nothing imported, and the job knows its total. Once the file is known to need a job, its
      // upload is stored meanwhile (and dropped again if the rest of the file turns out unreadable).
      const head: TableRow[] = [];
      let total = 0;
      let storing: Promise<string> | undefined;
      try {
        for await (const row of rows) {
          total++;
          if (head.length <= limits.syncMaxRows) head.push(row);
          if (total > limits.syncMaxRows && !storing) {
            storing = storeUpload(tenant, caller, input.file, format);
            storing.catch(() => {}); // awaited below
          }
        }
      } catch (error) {
        if (storing) await storing.then((fileId) => files.remove(tenant, fileId)).catch(() => {});
        throw error;
      }
      if (!storing) {
        const written = await tenant.transaction((tx) => writeBatch(tx, caller, plan, head));
        const failed: RowFailure[] = [];
        pushCapped(failed, written.failed);
        return { mode: 'sync', total, created: written.created, updated: written.updated, failedCount: written.failed.length, failed };
      }
      const fileId = await storing;
      const params: JobParams = {
        entityId: input.entityId,
        fileId,
        format,
        ...(input.mapping !== undefined ? { mapping: input.mapping } : {}),
        ...(input.mappingPath !== undefined ? { mappingPath: input.mappingPath } : {}),
        hasHeader: input.hasHeader,
        ...(input.sheetName !== undefined ? { sheetName: input.sheetName } : {}),
        ...((input.delimiter ?? delimiter) !== undefined ? { delimiter: input.delimiter ?? delimiter } : {}),
        ...(plan.upsertBy ? { upsertBy: plan.upsertBy.propertyId } : {}),
        memberId: caller.memberId,
        apiKey: caller.apiKey,
        workspaceId: caller.workspaceId,
      };
      try {
        const job = await jobs.enqueue(tenant, { kind: IMPORT_JOB_KIND, params, createdBy: caller.memberId, total });
        return { mode: 'async', jobId: job.jobId, status: job.status, total };
      } catch (error) {
        await files.remove(tenant, fileId).catch(() => {});
        throw error;
      }
    },

    extractColumns,

    async preview(tenant, caller, input) {
      return preview(tenant, caller, input);
    },

    async status(tenant, caller, jobId) {
      return status(tenant, caller, jobId);
    },

    async checkLinkConfigs(tenant, caller, configs) {
      for (const config of configs) await entities.requireUsable(tenant, caller, config.entityId);
    },

    runJob,
  };

  async function extractColumns(input: { file: UploadedFile; sheetName?: string; hasHeader: boolean }): Promise<ColumnsResult> {
    const { format, delimiter } = formatOf(input.file);
    const sheets = await sheetNames(input.file.bytes, format);
    const sheetName = format === 'xlsx' ? (input.sheetName ?? sheets[0] ?? null) : null;
    const iterator = readRows(input.file.bytes, { format, sheetName: sheetName ?? undefined, delimiter });
    let headers: string[] | null = null;
    const samples = new Map<number, string>();
    const width = { n: 0 };
    let totalRows = 0;
    for await (const row of iterator) {
      if (input.hasHeader && headers === null) {
        headers = row.cells.map((c) => cellText(c).trim());
        continue;
      }
      totalRows++;
      noteSamples(samples, row, width);
    }
    return { sheetName, sheets, hasHeader: input.hasHeader, columns: columnInfo({ columns: [], headers }, width.n, samples), totalRows };
  }

  async function preview(tenant: TenantDb, caller: Caller, input: ImportInput & { limit?: number }): Promise<PreviewResult> {
    const { format, delimiter } = formatOf(input.file);
    const sheets = await sheetNames(input.file.bytes, format);
    const sheetName = format === 'xlsx' ? (input.sheetName ?? sheets[0] ?? null) : null;
    const fields = await loadFields(tenant, caller, input.entityId);
    // Without a mapping the preview uses the suggested one (nothing mapped is fine here).
    let suggested: Record<string, string> = {};
    if (input.mapping === undefined && input.hasHeader) {
      const reader = readRows(input.file.bytes, { format, sheetName: sheetName ?? undefined, delimiter });
      const first = await reader.next();
      await reader.return(undefined);
      suggested = suggestMapping(first.done ? [] : first.value.cells.map((c) => cellText(c).trim()), fields);
    }
    const mapping = input.mapping ?? (Object.keys(suggested).length ? suggested : undefined);
    let planned;
    try {
      planned = await open(tenant, caller, { ...input, mapping, sheetName: sheetName ?? undefined }, input.file.bytes, format, delimiter);
    } catch (error) {
      // Nothing maps: still show the columns and rows.
      if (!(error instanceof AppError) || input.mapping !== undefined || error.code !== 'ValidationError' || !error.message.startsWith(input.mappingPath ?? 'body/mapping')) throw error;
      planned = undefined;
    }
    const limit = Math.min(input.limit ?? PREVIEW_ROWS, DRY_RUN_ROWS);
    if (!planned) {
      const summary = await extractColumns({ file: input.file, sheetName: sheetName ?? undefined, hasHeader: input.hasHeader });
      const rows: PreviewResult['rows'] = [];
      let skipHeader = input.hasHeader;
      for await (const row of readRows(input.file.bytes, { format, sheetName: sheetName ?? undefined, delimiter })) {
        if (skipHeader) {
          skipHeader = false;
          continue;
        }
        if (rows.length >= limit) break;
        rows.push({ row: row.row, action: 'invalid', errorCode: 'ValidationError', errorMessage: 'no column is mapped', cells: row.cells.map(cellText) });
      }
      return { ...summary, entityId: input.entityId, suggestedMappings: suggested, rows };
    }
    const checked = await dryRun(tenant, caller, planned.plan, planned.rows, limit);
    return {
      entityId: input.entityId,
      sheetName,
      sheets,
      hasHeader: input.hasHeader,
      columns: checked.columns,
      totalRows: checked.total,
      suggestedMappings: suggested,
      rows: checked.rows.map((r) => ({ ...r, cells: checked.cells.get(r.row) ?? [] })),
    };
  }

  async function status(tenant: TenantDb, caller: Caller, jobId: string): Promise<ImportStatus> {
    const job = await jobs.get(tenant, jobId);
    if (!job || job.kind !== IMPORT_JOB_KIND) throw errors.notFound('Import job');
    // The status carries row errors (cell values): only callers who may use the entity see it.
    await entities.requireUsable(tenant, caller, (job.params as JobParams).entityId);
    const result = job.result as ImportResult | null;
    return {
      jobId: job.jobId,
      status: job.status,
      progress: job.progress,
      total: job.total,
      ...(result ? { result } : {}),
      ...(job.error ? { error: job.error } : {}),
    };
  }
}
