import Type, { type Static } from 'typebox';

/**
 * Import forms and answers (docs/imports.md). The forms are multipart/form-data: the file in
 * the field `file`, the other fields as text; imports.routes.ts reads the parts into an object of
 * text fields that these schemas check (unknown fields are refused, as everywhere).
 */

const EntityId = Type.String({ pattern: '^CRMET1[0-9]{15}[A-Za-z0-9]{11}$', description: 'CRMET1…' });
const boolText = (description: string) => Type.String({ pattern: '^(true|false|TRUE|FALSE|True|False|1|0)$', description });
const SheetName = Type.String({ minLength: 1, maxLength: 200, description: 'XLSX: the sheet to read (default: the first)' });
const HasHeader = Type.Optional(boolText('Whether row 1 holds column headers (default true)'));
/** Documents the file part; it never reaches the body validator (the routes keep it apart). */
const FilePart = Type.Optional(Type.Unsafe<never>({ type: 'string', format: 'binary', description: 'The CSV or XLSX file (required; 10 MiB by default, IMPORT_MAX_FILE_BYTES)' }));
const mappingText = (description: string) => Type.String({ maxLength: 100_000, description });

export const ImportForm = Type.Object({
  file: FilePart,
  entityId: EntityId,
  mapping: Type.Optional(mappingText('JSON object {"<column index or header>": "__name__" | "__tags__" | "__skip__" | "<propertyId or key>"}; '
    + 'without it, columns are matched by their header')),
  hasHeader: HasHeader,
  sheetName: Type.Optional(SheetName),
  dryRun: Type.Optional(boolText('true: check every row and report, write nothing')),
  upsertBy: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 200,
    description: 'A TEXT, EMAIL, PHONE or URL property (ID, key or name), mapped to a column: rows whose value matches one live record update it, the others create',
  })),
  delimiter: Type.Optional(Type.String({ minLength: 1, maxLength: 3, description: 'CSV field separator: one character, or "tab" / "\\t" (default ",", tab for .tsv)' })),
}, { additionalProperties: false });
export type ImportForm = Static<typeof ImportForm>;

export const ExtractColumnsForm = Type.Object({
  file: FilePart,
  sheetName: Type.Optional(SheetName),
  hasHeader: HasHeader,
}, { additionalProperties: false });
export type ExtractColumnsForm = Static<typeof ExtractColumnsForm>;

export const ExcelPreviewForm = Type.Object({
  file: FilePart,
  entityId: EntityId,
  sheetName: Type.Optional(SheetName),
  hasHeader: HasHeader,
  columnMappings: Type.Optional(mappingText('[X] optional: preview with this mapping (default: the suggested one)')),
}, { additionalProperties: false });
export type ExcelPreviewForm = Static<typeof ExcelPreviewForm>;

export const ExcelImportForm = Type.Object({
  file: FilePart,
  entityId: EntityId,
  sheetName: Type.Optional(SheetName),
  hasHeader: HasHeader,
  columnMappings: Type.Optional(mappingText('JSON object {"<column index>": "__name__" | "__tags__" | "<propertyId or key>"}, e.g. {"0":"__name__"}')),
  linkConfigs: Type.Optional(Type.String({ maxLength: 10_000, description: 'JSON array [{"entityId": "CRMET1…"}]: checked (shape, entities usable), not applied (docs/imports.md)' })),
}, { additionalProperties: false });
export type ExcelImportForm = Static<typeof ExcelImportForm>;

export const ExcelImportQuery = Type.Object({
  skipAutomation: Type.Optional(Type.Boolean({ description: 'Accepted for compatibility; this server runs no automations' })),
}, { additionalProperties: false });

export const JobParams = Type.Object({ jobId: Type.String({ maxLength: 64 }) });

const Detail = Type.Object({}, { additionalProperties: true });

export const RowFailure = Type.Object({
  row: Type.Integer({ description: 'Row number in the file as a spreadsheet shows it (the header is row 1)' }),
  errorCode: Type.String(),
  errorMessage: Type.String({ description: 'Names the column (letter and header) and the reason' }),
  details: Type.Optional(Type.Array(Detail, { description: 'One per bad cell: column (0-based index), header, message' })),
}, { title: 'ImportRowFailure' });

const Column = Type.Object({
  index: Type.Integer({ description: '0-based' }),
  header: Type.Union([Type.String(), Type.Null()]),
  target: Type.Optional(Type.String({ description: '__name__, __tags__ or a property ID; absent = not imported' })),
  sample: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'The first non-empty value below the header' })),
}, { title: 'ImportColumn' });

const RowOutcome = Type.Object({
  row: Type.Integer(),
  action: Type.Enum(['create', 'update', 'invalid']),
  recordId: Type.Optional(Type.String({ description: 'update: the record the row updates' })),
  record: Type.Optional(Type.Object({
    name: Type.Optional(Type.String()),
    data: Type.Record(Type.String(), Type.Unknown()),
    tags: Type.Optional(Type.Array(Type.String())),
  }, { description: 'The values the row carries, converted to the properties\' types' })),
  errorCode: Type.Optional(Type.String()),
  errorMessage: Type.Optional(Type.String()),
  details: Type.Optional(Type.Array(Detail)),
  cells: Type.Optional(Type.Array(Type.String(), { description: 'preview: the row\'s cells as text' })),
}, { title: 'ImportRowOutcome' });

export const ImportResult = Type.Object({
  total: Type.Integer({ description: 'Data rows in the file' }),
  created: Type.Integer(),
  updated: Type.Integer(),
  failedCount: Type.Integer(),
  failed: Type.Array(RowFailure, { description: 'Rows not imported, in file order (the first 1,000)' }),
}, { title: 'ImportResult' });

export const ImportResponse = Type.Object({
  mode: Type.Enum(['sync', 'async', 'dryRun'], { description: 'sync: imported in the request; async: a job (poll its status); dryRun: nothing written' }),
  total: Type.Integer({ description: 'Data rows in the file' }),
  created: Type.Optional(Type.Integer()),
  updated: Type.Optional(Type.Integer()),
  failedCount: Type.Optional(Type.Integer()),
  failed: Type.Optional(Type.Array(RowFailure)),
  jobId: Type.Optional(Type.String({ description: 'async: GET /records/import/{jobId}/status' })),
  status: Type.Optional(Type.String()),
  dryRun: Type.Optional(Type.Boolean()),
  wouldCreate: Type.Optional(Type.Integer()),
  wouldUpdate: Type.Optional(Type.Integer()),
  invalid: Type.Optional(Type.Integer()),
  columns: Type.Optional(Type.Array(Column)),
  rows: Type.Optional(Type.Array(RowOutcome, { description: 'dryRun: the first 1,000 rows' })),
}, { title: 'ImportResponse' });

export const ImportStatus = Type.Object({
  jobId: Type.String(),
  status: Type.Enum(['pending', 'processing', 'completed', 'failed']),
  progress: Type.Integer({ description: 'Data rows handled so far' }),
  total: Type.Union([Type.Integer(), Type.Null()]),
  result: Type.Optional(ImportResult),
  error: Type.Optional(Type.String()),
}, { title: 'ImportStatus' });

export const ColumnsResponse = Type.Object({
  sheetName: Type.Union([Type.String(), Type.Null()]),
  sheets: Type.Array(Type.String()),
  hasHeader: Type.Boolean(),
  columns: Type.Array(Column),
  totalRows: Type.Integer({ description: 'Data rows (header and empty rows not counted)' }),
}, { title: 'ImportColumns' });

export const PreviewResponse = Type.Object({
  entityId: Type.String(),
  sheetName: Type.Union([Type.String(), Type.Null()]),
  sheets: Type.Array(Type.String()),
  hasHeader: Type.Boolean(),
  columns: Type.Array(Column),
  totalRows: Type.Integer(),
  suggestedMappings: Type.Record(Type.String(), Type.String(), { description: 'columnMappings matching the headers' }),
  rows: Type.Array(RowOutcome),
}, { title: 'ImportPreview' });
