import { errors, type ErrorDetail } from '../../errors.ts';
import type { FieldType } from '../../db/schema.ts';
import { normalizeValue } from '../properties/field-values.ts';
import { cellText, type Cell, type TableRow } from './imports.table.ts';

/**
 * Column mapping and cell conversion of imports (docs/imports.md, "Mapping" and "Values").
 *
 * A mapping is a JSON object `{ "<column>": "<target>" }`:
 * - column: a 0-based column index ("0", "3") or, when the file has a header row, a header text
 *   (exact, then case-insensitive);
 * - target: `__name__` (the record name), `__tags__` (comma-separated tags), `__skip__` (or null:
 *   ignore the column), or a property of the entity by ID, key or name (in that order).
 * Without a mapping, a file with a header is mapped by its header texts (name/이름 → name,
 * tags/태그 → tags, a property's ID, key or name → that property); other columns are ignored.
 *
 * Cells are converted to the property's type first (text such as "1,234", "yes", "2026/04/20",
 * an option label) and then checked by the same rules as every record write (normalizeValue),
 * so an imported value is exactly what POST /records would store. An empty cell sets nothing.
 */

export interface ImportField {
  propertyId: string;
  name: string;
  key: string | null;
  fieldType: FieldType;
  isMasked: boolean;
  /** The option values (choice types). */
  optionValues: string[];
  /** The options as the caller sees them (a MEMBER sees none of a masked choice property). */
  options: { label: string; value: string }[];
}

export type Target = { kind: 'name' } | { kind: 'tags' } | { kind: 'property'; field: ImportField };

export interface MappedColumn {
  /** 0-based. */
  index: number;
  header: string | null;
  target: Target;
}

export interface ConvertedRow {
  row: number;
  name?: string;
  data: Record<string, unknown>;
  tags?: string[];
  /** The upsertBy property's (normalised) value, when the row has one. */
  key?: string;
}

export interface RowFailure {
  row: number;
  errorCode: string;
  errorMessage: string;
  details?: ErrorDetail[];
}

export const NAME_TARGET = '__name__';
export const TAGS_TARGET = '__tags__';
export const SKIP_TARGET = '__skip__';
const NAME_HEADERS = new Set(['name', '이름', NAME_TARGET, 'record name', '레코드 이름']);
const TAGS_HEADERS = new Set(['tags', '태그', TAGS_TARGET]);
const NAME_MAX = 500;
const TAG_MAX = 100;
const TAGS_MAX = 100;

/** Spreadsheet column letters: 0 → A, 25 → Z, 26 → AA. */
export function columnLetter(index: number): string {
  let n = index + 1;
  let letters = '';
  while (n > 0) {
    const r = (n - 1) % 26;
    letters = String.fromCharCode(65 + r) + letters;
    n = Math.floor((n - 1) / 26);
  }
  return letters;
}

export function columnLabel(column: { index: number; header: string | null }): string {
  return `column ${columnLetter(column.index)}${column.header ? ` "${column.header}"` : ''}`;
}

function mappingProblem(path: string, message: string): never {
  throw errors.validation(`${path}: ${message}`, [{ path, message }]);
}

/** A target text as a target: name, tags, skip (undefined) or a property by ID, key or name. */
function resolveTarget(text: string, fields: readonly ImportField[]): Target | undefined | null {
  if (text === NAME_TARGET) return { kind: 'name' };
  if (text === TAGS_TARGET) return { kind: 'tags' };
  if (text === SKIP_TARGET || text === '') return undefined;
  const field = fields.find((f) => f.propertyId === text)
    ?? fields.find((f) => f.key !== null && f.key === text)
    ?? fields.find((f) => f.key !== null && f.key.toLowerCase() === text.toLowerCase())
    ?? fields.find((f) => f.name === text);
  return field ? { kind: 'property', field } : null;
}

function headerIndex(headers: readonly string[], text: string): number {
  const exact = headers.indexOf(text);
  if (exact >= 0) return exact;
  const lower = text.trim().toLowerCase();
  return headers.findIndex((h) => h.trim().toLowerCase() === lower);
}

/** Parses a mapping field (a JSON object as text); `path` names the form field in errors. */
export function parseMappingJson(text: string | undefined, path: string): Record<string, unknown> | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    mappingProblem(path, 'must be a JSON object like {"0": "__name__", "email": "<propertyId or key>"} (malformed JSON)');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    mappingProblem(path, 'must be a JSON object like {"0": "__name__", "1": "<propertyId or key>"}');
  }
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length > 1000) mappingProblem(path, 'maps more than 1,000 columns');
  for (const [column, target] of entries) {
    if (column === '__proto__' || column === 'constructor') mappingProblem(`${path}/${column}`, 'is not allowed as a column');
    if (target !== null && typeof target !== 'string') mappingProblem(`${path}/${column}`, 'the target must be a string (__name__, __tags__, __skip__, a property ID or key) or null');
  }
  return parsed as Record<string, unknown>;
}

/**
 * The columns to import. `headers` is null when the file has no header row (then columns are
 * named by index only, and a mapping is required).
 */
export function resolveMapping(mapping: Record<string, unknown> | undefined, headers: readonly string[] | null, fields: readonly ImportField[], path: string): MappedColumn[] {
  const columns: MappedColumn[] = [];
  if (mapping === undefined) {
    if (headers === null) mappingProblem(path, 'is required when the file has no header row (hasHeader=false)');
    for (const [index, header] of headers.entries()) {
      const target = suggestTarget(header, fields);
      if (target && !columns.some((c) => sameTarget(c.target, target))) columns.push({ index, header, target });
    }
    if (!columns.length) {
      mappingProblem(path, `no column header names the record name (name, 이름) or a property of the entity (headers: ${headers.slice(0, 20).map((h) => `"${h}"`).join(', ')}); send a mapping`);
    }
    return columns;
  }
  for (const [column, rawTarget] of Object.entries(mapping)) {
    const at = `${path}/${column}`;
    let index: number;
    if (/^\d{1,5}$/.test(column)) {
      index = Number(column);
      if (headers !== null && index >= headers.length) mappingProblem(at, `the file has ${headers.length} columns (0 to ${headers.length - 1})`);
    } else {
      if (headers === null) mappingProblem(at, 'columns are named by their 0-based index when the file has no header row');
      index = headerIndex(headers, column);
      if (index < 0) mappingProblem(at, `no column has this header (headers: ${headers.slice(0, 20).map((h) => `"${h}"`).join(', ')})`);
    }
    const target = rawTarget === null ? undefined : resolveTarget(rawTarget as string, fields);
    if (target === null) mappingProblem(at, `"${rawTarget as string}" is not ${NAME_TARGET}, ${TAGS_TARGET}, ${SKIP_TARGET} or a live property (ID, key or name) of the entity`);
    if (target === undefined) continue;
    if (columns.some((c) => c.index === index)) mappingProblem(at, `column ${index} is mapped twice`);
    const twice = columns.find((c) => sameTarget(c.target, target));
    if (twice) mappingProblem(at, `${targetLabel(target)} is already the target of ${columnLabel(twice)}`);
    columns.push({ index, header: headers?.[index] ?? null, target });
  }
  if (!columns.length) mappingProblem(path, 'maps no column to a target');
  return columns.sort((a, b) => a.index - b.index);
}

function sameTarget(a: Target, b: Target): boolean {
  if (a.kind !== b.kind) return false;
  return a.kind !== 'property' || a.field.propertyId === (b as { field: ImportField }).field.propertyId;
}

function targetLabel(target: Target): string {
  return target.kind === 'name' ? NAME_TARGET : target.kind === 'tags' ? TAGS_TARGET : `property ${target.field.propertyId}`;
}

/** What a header names on its own: the record name, tags, or a property (ID, key, name). */
function suggestTarget(header: string, fields: readonly ImportField[]): Target | undefined {
  const text = header.trim();
  const lower = text.toLowerCase();
  if (NAME_HEADERS.has(lower)) return { kind: 'name' };
  if (TAGS_HEADERS.has(lower)) return { kind: 'tags' };
  const target = resolveTarget(text, fields)
    ?? (() => {
      const field = fields.find((f) => f.name.trim().toLowerCase() === lower);
      return field ? { kind: 'property' as const, field } : null;
    })();
  return target ?? undefined;
}

/** The mapping a client could send for these headers (Solapi's columnMappings shape: index → target). */
export function suggestMapping(headers: readonly string[], fields: readonly ImportField[]): Record<string, string> {
  const out: Record<string, string> = {};
  const taken: Target[] = [];
  for (const [index, header] of headers.entries()) {
    const target = suggestTarget(header, fields);
    if (!target || taken.some((t) => sameTarget(t, target))) continue;
    taken.push(target);
    out[String(index)] = target.kind === 'name' ? NAME_TARGET : target.kind === 'tags' ? TAGS_TARGET : target.field.propertyId;
  }
  return out;
}

/* ---------- Values ---------- */

type Converted = { ok: true; value: unknown } | { ok: false; reason: string };
const ok = (value: unknown): Converted => ({ ok: true, value });
const fail = (reason: string): Converted => ({ ok: false, reason });

const THOUSANDS = /^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const TRUE_WORDS = new Set(['true', 'yes', 'y', '1', 'o', 'on', 'checked', '예', '네', '참']);
const FALSE_WORDS = new Set(['false', 'no', 'n', '0', 'x', 'off', 'unchecked', '아니오', '아니요', '거짓']);
const DATE_TEXT = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\.?$/;
const COMPACT_DATE = /^(\d{4})(\d{2})(\d{2})$/;
const LOCAL_DATETIME = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?$/;
const ZONED_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

const pad = (n: string | number, width = 2) => String(n).padStart(width, '0');

function dateText(text: string): string | undefined {
  const m = DATE_TEXT.exec(text) ?? COMPACT_DATE.exec(text);
  return m ? `${m[1]}-${pad(m[2]!)}-${pad(m[3]!)}` : undefined;
}

function shown(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

function choice(text: string, field: ImportField): string | undefined {
  const t = text.trim();
  if (field.optionValues.includes(t)) return t;
  const byLabel = field.options.find((o) => o.label === t);
  if (byLabel) return byLabel.value;
  const lower = t.toLowerCase();
  return field.optionValues.find((v) => v.toLowerCase() === lower)
    ?? field.options.find((o) => o.label.toLowerCase() === lower)?.value;
}

function notAnOption(text: string, field: ImportField): string {
  const known = field.options.slice(0, 20).map((o) => (o.label === o.value ? o.value : `${o.label} (${o.value})`));
  return `${shown(text.trim())} is not an option of this property${known.length ? ` (options: ${known.join(', ')}${field.options.length > 20 ? ', …' : ''})` : ''}`;
}

/** A non-empty cell as the value a record write of this field type takes (before normalizeValue). */
function convertCell(cell: Cell, field: ImportField): Converted {
  const text = typeof cell === 'string' ? cell : undefined;
  switch (field.fieldType) {
    case 'TEXT':
    case 'TEXTAREA':
      return ok(cellText(cell));
    case 'EMAIL':
    case 'URL':
    case 'PHONE':
      return ok(cellText(cell).trim());
    case 'NUMBER': {
      if (typeof cell === 'number') return ok(cell);
      if (text === undefined) return fail('must be a number');
      const t = text.trim().replace(/\s+/g, '');
      const plain = THOUSANDS.test(t) ? t.replaceAll(',', '') : t;
      if (!DECIMAL.test(plain)) return fail(`${shown(text)} is not a number`);
      const n = Number(plain);
      return Number.isFinite(n) ? ok(n) : fail(`${shown(text)} is too large for a number`);
    }
    case 'CHECKBOX': {
      if (typeof cell === 'boolean') return ok(cell);
      if (typeof cell === 'number' && (cell === 0 || cell === 1)) return ok(cell === 1);
      const word = cellText(cell).trim().toLowerCase();
      if (TRUE_WORDS.has(word)) return ok(true);
      if (FALSE_WORDS.has(word)) return ok(false);
      return fail(`${shown(cellText(cell))} is not true/false (also yes/no, y/n, 1/0, 예/아니오)`);
    }
    case 'DATE': {
      if (cell instanceof Date) return ok(cell.toISOString().slice(0, 10));
      if (text === undefined) return fail('must be a date like 2026-04-20');
      const date = dateText(text.trim());
      return date ? ok(date) : fail(`${shown(text)} is not a date like 2026-04-20 (also 2026/04/20, 2026.04.20, 20260420)`);
    }
    case 'DATETIME': {
      if (cell instanceof Date) return ok(cell.toISOString());
      if (text === undefined) return fail('must be a date-time like 2026-04-20T09:30:00Z');
      const t = text.trim();
      if (ZONED_DATETIME.test(t)) return ok(t);
      const local = LOCAL_DATETIME.exec(t);
      if (local) {
        const [, y, mo, d, h, mi, s = '00', frac = ''] = local;
        return ok(`${y}-${pad(mo!)}-${pad(d!)}T${pad(h!)}:${mi}:${s}${frac}Z`);
      }
      const date = dateText(t);
      if (date) return ok(`${date}T00:00:00.000Z`);
      return fail(`${shown(text)} is not a date-time like 2026-04-20T09:30:00+09:00 (without an offset it is read as UTC)`);
    }
    case 'DROPDOWN':
    case 'RADIO': {
      const t = cellText(cell);
      const value = choice(t, field);
      return value === undefined ? fail(notAnOption(t, field)) : ok(value);
    }
    case 'MULTI_CHECKBOX': {
      const values: string[] = [];
      for (const part of cellText(cell).split(',')) {
        if (part.trim() === '') continue;
        const value = choice(part, field);
        if (value === undefined) return fail(notAnOption(part, field));
        if (!values.includes(value)) values.push(value);
      }
      return ok(values);
    }
  }
}

/** The record fields of one row, or why the row cannot be imported (every bad cell named). */
export function convertRow(table: TableRow, columns: readonly MappedColumn[], upsertBy: ImportField | undefined): ConvertedRow | RowFailure {
  const out: ConvertedRow = { row: table.row, data: {} };
  const details: ErrorDetail[] = [];
  const problem = (column: MappedColumn, message: string) => {
    details.push({ column: column.index, ...(column.header ? { header: column.header } : {}), path: columnLabel(column), message });
  };
  for (const column of columns) {
    const cell = table.cells[column.index] ?? null;
    if (cell === null || (typeof cell === 'string' && cell.trim() === '')) continue;
    if (typeof cell === 'string' && cell.includes('\u0000')) {
      problem(column, 'contains the NUL character (U+0000), which cannot be stored');
      continue;
    }
    const target = column.target;
    if (target.kind === 'name') {
      const name = cellText(cell).trim();
      if (name.length > NAME_MAX) problem(column, `name: must be at most ${NAME_MAX} characters`);
      else out.name = name;
    } else if (target.kind === 'tags') {
      const tags = [...new Set(cellText(cell).split(',').map((t) => t.trim()).filter(Boolean))];
      if (tags.length > TAGS_MAX) problem(column, `tags: at most ${TAGS_MAX} tags`);
      else if (tags.some((t) => t.length > TAG_MAX)) problem(column, `tags: each tag at most ${TAG_MAX} characters`);
      else out.tags = tags;
    } else {
      const field = target.field;
      const converted = convertCell(cell, field);
      const result = converted.ok ? normalizeValue({ fieldType: field.fieldType, optionValues: field.optionValues }, converted.value) : converted;
      if (!result.ok) {
        problem(column, `${field.fieldType}: ${result.reason}`);
        continue;
      }
      out.data[field.propertyId] = result.value;
      if (upsertBy && field.propertyId === upsertBy.propertyId) out.key = String(result.value);
    }
  }
  if (details.length) {
    const first = details[0]!;
    return {
      row: table.row,
      errorCode: 'ValidationError',
      errorMessage: `${first.path}: ${first.message}${details.length > 1 ? ` (and ${details.length - 1} more)` : ''}`,
      details,
    };
  }
  return out;
}

export function isFailure(row: ConvertedRow | RowFailure): row is RowFailure {
  return 'errorCode' in row;
}

/** A write error of the records service, with `data.<propertyId>` paths named as columns. */
export function describeWriteError(row: number, failure: { errorCode: string; errorMessage: string; details?: object[] }, columns: readonly MappedColumn[]): RowFailure {
  const byProperty = new Map(columns.flatMap((c) => (c.target.kind === 'property' ? [[c.target.field.propertyId, c] as const] : [])));
  const rename = (text: string) => text.replace(/data\.(CRMPP1[0-9]{15}[A-Za-z0-9]{11})/g, (whole, propertyId: string) => {
    const column = byProperty.get(propertyId);
    return column ? columnLabel(column) : whole;
  });
  return {
    row,
    errorCode: failure.errorCode,
    errorMessage: rename(failure.errorMessage),
    ...(failure.details?.length ? {
      details: (failure.details as ErrorDetail[]).map((d) => ({ ...d, ...(typeof d.path === 'string' ? { path: rename(d.path) } : {}) })),
    } : {}),
  };
}
