import { createHash } from 'node:crypto';
import multipart from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { AppError, errors } from '../../errors.ts';
import { canonicalJson } from '../../http/plugins/idempotency.ts';
import type { TypedApp } from '../../http/route-types.ts';
import { responses } from '../../http/schemas/common.ts';
import { inspectInput } from '../../http/validation.ts';
import { parseMappingJson } from './imports.mapping.ts';
import {
  ColumnsResponse, ExcelImportForm, ExcelImportQuery, ExcelPreviewForm, ExtractColumnsForm, ImportForm, ImportResponse, ImportStatus, JobParams, PreviewResponse,
} from './imports.schemas.ts';
import type { ImportsService, UploadedFile } from './imports.service.ts';

const tags = ['Records import'];
const consumes = ['multipart/form-data'];
/** Text fields of an import form: generous for a mapping of many columns, bounded for hostile ones. */
const FIELD_BYTES = 256 * 1024;

/** The uploaded file of a request, kept apart from the text fields (which go through the body schema). */
const uploads = new WeakMap<FastifyRequest, UploadedFile>();

function bad(path: string, message: string): AppError {
  return errors.validation(`${path}: ${message}`, [{ path, message }]);
}

/** What the multipart reader throws, in our error shape (never a 500: it is all about the request). */
function multipartError(error: unknown, maxFileBytes: number): AppError {
  if (error instanceof AppError) return error;
  const code = (error as { code?: unknown }).code;
  switch (code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return errors.payloadTooLarge(maxFileBytes);
    case 'FST_FILES_LIMIT':
      return bad('body/file', 'send one file');
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return bad('body', 'too many form fields');
    case 'FST_PROTO_VIOLATION':
      return bad('body', 'a form field name is not allowed (__proto__, constructor)');
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new AppError(415, 'UnsupportedMediaType', 'Send multipart/form-data with the file in the field "file".');
    default: {
      const message = error instanceof Error ? error.message : String(error);
      return bad('body', `malformed multipart/form-data (${message.slice(0, 200)})`);
    }
  }
}

const isTrue = (text: string | undefined, fallback: boolean) => (text === undefined ? fallback : /^(true|1)$/i.test(text));

function delimiterOf(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (text === 'tab' || text === '\\t' || text === '\t') return '\t';
  if ([...text].length !== 1 || /[\r\n"]/.test(text)) throw bad('body/delimiter', 'must be one character (not a quote or a line break), or "tab"');
  return text;
}

function fileOf(request: FastifyRequest): UploadedFile {
  const file = uploads.get(request);
  if (!file) throw bad('body/file', 'is required: send the CSV or XLSX file as the multipart field "file"');
  return file;
}

function linkConfigsOf(text: string | undefined): { entityId: string }[] {
  if (text === undefined || text.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad('body/linkConfigs', 'must be a JSON array like [{"entityId": "CRMET1…"}] (malformed JSON)');
  }
  if (!Array.isArray(parsed)) throw bad('body/linkConfigs', 'must be a JSON array like [{"entityId": "CRMET1…"}]');
  if (parsed.length > 20) throw bad('body/linkConfigs', 'at most 20 items');
  return parsed.map((item, i) => {
    const entityId = typeof item === 'object' && item !== null && !Array.isArray(item) ? (item as { entityId?: unknown }).entityId : undefined;
    if (typeof entityId !== 'string' || !/^CRMET1[0-9]{15}[A-Za-z0-9]{11}$/.test(entityId)) throw bad(`body/linkConfigs/${i}/entityId`, 'must be an entity ID (CRMET1…)');
    return { entityId };
  });
}

export interface ImportsRoutesOptions {
  imports: ImportsService;
}

/**
 * POST /records/import [X] and Solapi's Excel import endpoints (known from its CLI):
 * /records/import/excel/extract-columns, /records/import/excel/preview, /records/import/excel.
 * All are multipart/form-data with the file in the field `file`; they share one implementation
 * (imports.service.ts). @fastify/multipart is registered in this scope only.
 */
export async function importsRoutes(app: TypedApp, { imports }: ImportsRoutesOptions) {
  const maxFileBytes = imports.limits.maxFileBytes;
  await app.register(multipart, { limits: { fileSize: maxFileBytes, files: 2, fields: 30, parts: 40, fieldSize: FIELD_BYTES } });

  // Reads the form before validation: text fields become the body (checked by the route's
  // schema), the file is kept aside. Then the Idempotency-Key fingerprint (taken earlier, when
  // the body was not read yet) is extended with the fields and the file's hash, so a key reused
  // for another upload is refused (422) instead of replaying the first answer.
  app.addHook('preValidation', async (request) => {
    if (request.method !== 'POST') return;
    if (!request.isMultipart()) {
      throw new AppError(415, 'UnsupportedMediaType', 'Send multipart/form-data: the file in the field "file", the other fields as form fields.');
    }
    const fields: Record<string, string> = {};
    let file: UploadedFile | undefined;
    try {
      for await (const part of request.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file') throw bad(`body/${part.fieldname}`, 'unknown file field; send the file as "file"');
          if (file) throw bad('body/file', 'send one file');
          const bytes = await part.toBuffer();
          file = { name: part.filename ?? '', contentType: part.mimetype ?? '', bytes };
        } else {
          if (Object.hasOwn(fields, part.fieldname)) throw bad(`body/${part.fieldname}`, 'is sent more than once');
          if (part.valueTruncated) throw bad(`body/${part.fieldname}`, `is longer than ${FIELD_BYTES} bytes`);
          fields[part.fieldname] = typeof part.value === 'string' ? part.value : String(part.value);
        }
      }
    } catch (error) {
      throw multipartError(error, maxFileBytes);
    }
    const problem = inspectInput(fields, 'body');
    if (problem) throw problem;
    if (request.idempotency) {
      request.idempotency.fingerprint = createHash('sha256')
        .update(request.idempotency.fingerprint).update('\n')
        .update(canonicalJson(fields)).update('\n')
        .update(file ? `${file.name}\n${createHash('sha256').update(file.bytes).digest('hex')}` : '-')
        .digest('hex');
    }
    request.body = fields;
    if (file) uploads.set(request, file);
  });

  const importResponses = responses({ 200: ImportResponse, 202: ImportResponse }, [400, 403, 404, 410, 413]);
  const importDescription = 'Rows that fail (a value that does not fit its property, the records.max plan limit) are reported with their ' +
    'row number (the header is row 1) and reason; the others are imported. Up to 1,000 data rows are imported in the request ' +
    '(200, mode "sync"); larger files become a job (202, mode "async", poll GET /records/import/{jobId}/status). ' +
    'dryRun=true checks every row and writes nothing. See docs/imports.md.';

  app.post('/records/import', {
    schema: {
      tags,
      summary: '[X] Import records from a CSV or XLSX file (column mapping, dry run, upsert)',
      description: importDescription,
      consumes,
      body: ImportForm,
      response: importResponses,
    },
  }, async (request, res) => {
    const body = request.body;
    const outcome = await imports.importFile(request.tenant, request.caller, {
      entityId: body.entityId,
      file: fileOf(request),
      mapping: parseMappingJson(body.mapping, 'body/mapping'),
      mappingPath: 'body/mapping',
      hasHeader: isTrue(body.hasHeader, true),
      sheetName: body.sheetName,
      delimiter: delimiterOf(body.delimiter),
      upsertBy: body.upsertBy,
      dryRun: isTrue(body.dryRun, false),
    });
    return res.code(outcome.mode === 'async' ? 202 : 200).send(outcome);
  });

  app.get('/records/import/:jobId/status', {
    schema: {
      tags,
      summary: '[X] Progress and result of an import job',
      description: 'progress = data rows handled so far; result (completed): created, updated, failed rows. Kept 24 h after success, 7 days after failure.',
      params: JobParams,
      response: responses({ 200: ImportStatus }, [403, 404, 410]),
    },
  }, (request) => imports.status(request.tenant, request.caller, request.params.jobId));

  app.post('/records/import/excel/extract-columns', {
    schema: {
      tags,
      summary: 'The columns of a sheet: index, header and a sample value',
      description: 'Solapi CLI endpoint. .xlsx up to 10 MiB (CSV is read too); legacy .xls is refused (415).',
      consumes,
      body: ExtractColumnsForm,
      response: responses({ 200: ColumnsResponse }, [400, 413]),
    },
  }, (request) => imports.extractColumns({ file: fileOf(request), sheetName: request.body.sheetName, hasHeader: isTrue(request.body.hasHeader, true) }));

  app.post('/records/import/excel/preview', {
    schema: {
      tags,
      summary: 'Preview an import: the first rows, converted and checked, with a suggested column mapping',
      description: 'Solapi CLI endpoint. Nothing is written. Without columnMappings the suggested mapping (by header) is used.',
      consumes,
      body: ExcelPreviewForm,
      response: responses({ 200: PreviewResponse }, [400, 403, 404, 410, 413]),
    },
  }, (request) => imports.preview(request.tenant, request.caller, {
    entityId: request.body.entityId,
    file: fileOf(request),
    mapping: parseMappingJson(request.body.columnMappings, 'body/columnMappings'),
    mappingPath: 'body/columnMappings',
    hasHeader: isTrue(request.body.hasHeader, true),
    sheetName: request.body.sheetName,
  }));

  app.post('/records/import/excel', {
    schema: {
      tags,
      summary: 'Import records from an Excel sheet with columnMappings (Solapi CLI endpoint)',
      description: `${importDescription} columnMappings {"<column index>": "__name__" | "__tags__" | "<propertyId or key>"}; ` +
        'linkConfigs is checked and not applied; skipAutomation is accepted (no automations here).',
      consumes,
      querystring: ExcelImportQuery,
      body: ExcelImportForm,
      response: importResponses,
    },
  }, async (request, res) => {
    const body = request.body;
    const file = fileOf(request);
    const mapping = parseMappingJson(body.columnMappings, 'body/columnMappings');
    await imports.checkLinkConfigs(request.tenant, request.caller, linkConfigsOf(body.linkConfigs));
    const outcome = await imports.importFile(request.tenant, request.caller, {
      entityId: body.entityId,
      file,
      mapping,
      mappingPath: 'body/columnMappings',
      hasHeader: isTrue(body.hasHeader, true),
      sheetName: body.sheetName,
    });
    return res.code(outcome.mode === 'async' ? 202 : 200).send(outcome);
  });
}
