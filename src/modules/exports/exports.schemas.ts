import Type, { type Static } from 'typebox';
import { ConditionGroupSchema } from '../records/records.schemas.ts';

/** Records per export file's synchronous limit (Solapi): up to this many the file is built in the request. */
export const SYNC_MAX_ROWS = 10_000;

export const ExportRequestBody = Type.Object({
  entityId: Type.String({ pattern: '^CRMET1[0-9]{15}[A-Za-z0-9]{11}$', description: 'CRMET1…' }),
  format: Type.Enum(['csv', 'excel'], { description: 'csv: UTF-8 with BOM, RFC 4180; excel: XLSX' }),
  keyword: Type.Optional(Type.String({ maxLength: 200, description: 'name contains, case-insensitive (as GET /records)' })),
  filters: Type.Optional(Type.String({ maxLength: 20_000, description: 'JSON {"<propertyId>": {"op": "...", "value": ...}}, ANDed (as GET /records)' })),
  segmentId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only records in this segment (of the same entity)' })),
  conditionGroup: Type.Optional(ConditionGroupSchema),
  propertyIds: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), {
    maxItems: 500,
    description: '[X] The property columns, in this order (default: the entity\'s live properties in its column order). Each a live property of the entity, once.',
  })),
}, { additionalProperties: false, title: 'ExportRequest' });
export type ExportRequestBody = Static<typeof ExportRequestBody>;

export const ExportRequestResult = Type.Union([
  Type.Object({
    mode: Type.Literal('sync'),
    downloadUrl: Type.String({ description: 'Signed link, valid 24 h, no API key needed' }),
  }),
  Type.Object({
    mode: Type.Literal('async'),
    jobId: Type.String({ format: 'uuid', description: 'Poll GET /records/export/{jobId}/status' }),
  }),
], { title: 'ExportRequestResult' });

export const ExportJobParams = Type.Object({ jobId: Type.String({ maxLength: 200 }) });

export const ExportStatus = Type.Object({
  status: Type.Enum(['pending', 'processing', 'completed', 'failed']),
  progress: Type.Integer({ description: 'Records written so far' }),
  total: Type.Union([Type.Integer(), Type.Null()], { description: 'Records to write (null until the job has counted them)' }),
  downloadUrl: Type.Optional(Type.String({ description: 'When completed: signed link, valid 24 h from when the job started writing the file' })),
  error: Type.Optional(Type.String({ description: 'When failed' })),
}, { title: 'ExportStatus' });
export type ExportStatus = Static<typeof ExportStatus>;
