import { Readable } from 'node:stream';
import { parse as parseCsv, CsvError } from 'csv-parse';
import ExcelJS from 'exceljs';
import { AppError, errors } from '../../errors.ts';

/**
 * Reading an uploaded table (docs/imports.md, "Files"): CSV or XLSX, as rows of cells with the
 * row number the user sees in a spreadsheet (the first row of the file is row 1, so with a
 * header the first data row is row 2).
 *
 * - CSV (csv-parse, streaming): a UTF-8 BOM is dropped; quoted fields may hold the delimiter,
 *   quotes ("") and newlines; CRLF, LF and CR line ends; rows may have fewer or more cells than
 *   the header. Bytes that are not valid UTF-8 are read as CP949/EUC-KR (what Korean Excel
 *   writes when it saves "CSV"). A record is one spreadsheet row, so a quoted newline does not
 *   shift the row numbers of the rows after it.
 * - XLSX (exceljs' streaming reader): the sheet named `sheetName`, else the first one; cells keep
 *   their type (number, boolean, date; rich text as its text, formulas as their cached result,
 *   hyperlinks as their text, error cells as empty).
 * - Legacy .xls (BIFF) is refused with 400: save it as .xlsx.
 * - Rows whose cells are all empty are skipped (they still count in row numbers).
 */

export type Cell = string | number | boolean | Date | null;
export interface TableRow {
  /** 1-based row number in the file (spreadsheet numbering). */
  row: number;
  cells: Cell[];
}
export type TableFormat = 'csv' | 'xlsx';

export interface TableOptions {
  format: TableFormat;
  /** XLSX: the sheet to read (default: the first). */
  sheetName?: string;
  /** CSV: one character (default `,`; `\t` for .tsv files). */
  delimiter?: string;
}

const XLSX_TYPES = new Set([
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
]);
const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const OLE_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);

/**
 * The format of an upload, from its content (an XLSX is a ZIP, a legacy XLS an OLE container)
 * and then its file name and Content-Type. Anything else is read as CSV.
 */
export function detectFormat(file: { name: string; contentType: string; bytes: Buffer }): { format: TableFormat; delimiter?: string } {
  const name = file.name.toLowerCase();
  const type = file.contentType.toLowerCase().split(';')[0]!.trim();
  // (Browsers on Windows label .csv uploads application/vnd.ms-excel: the type alone proves nothing.)
  if (file.bytes.subarray(0, 8).equals(OLE_MAGIC) || (name.endsWith('.xls') && !file.bytes.subarray(0, 4).equals(ZIP_MAGIC))) {
    throw new AppError(415, 'UnsupportedMediaType', 'Legacy Excel files (.xls) are not supported: save the sheet as .xlsx (or CSV) and upload that.');
  }
  if (file.bytes.subarray(0, 4).equals(ZIP_MAGIC)) return { format: 'xlsx' };
  if (name.endsWith('.xlsx') || XLSX_TYPES.has(type)) {
    throw errors.validation('file: not a valid .xlsx file (an .xlsx is a ZIP archive)', [{ path: 'file', message: 'not a valid .xlsx file' }]);
  }
  if (name.endsWith('.tsv') || type === 'text/tab-separated-values') return { format: 'csv', delimiter: '\t' };
  return { format: 'csv' };
}

/** The text of a CSV file: UTF-8 (BOM dropped later by the parser), else CP949/EUC-KR. */
function decodeText(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return new TextDecoder('euc-kr').decode(bytes);
  }
}

function isEmptyCell(cell: Cell): boolean {
  return cell === null || (typeof cell === 'string' && cell.trim() === '');
}

export function isEmptyRow(cells: readonly Cell[]): boolean {
  return cells.every(isEmptyCell);
}

function fileProblem(message: string): AppError {
  return errors.validation(`file: ${message}`, [{ path: 'file', message }]);
}

async function* csvRows(bytes: Buffer, delimiter: string | undefined): AsyncGenerator<TableRow> {
  const parser = parseCsv({
    bom: true,
    delimiter: delimiter ?? ',',
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: false,
  });
  const text = decodeText(bytes);
  Readable.from([text]).pipe(parser);
  let row = 0;
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      row++;
      if (isEmptyRow(record)) continue;
      yield { row, cells: record };
    }
  } catch (error) {
    if (error instanceof CsvError) {
      // The parser runs ahead of the rows taken from it: its own record count places the error.
      const records = (error as CsvError & { records?: unknown }).records;
      throw fileProblem(`CSV row ${(typeof records === 'number' ? records : row) + 1}: ${error.message.replace(/^Invalid [^:]*: /, '')}`);
    }
    throw error;
  } finally {
    parser.destroy();
  }
}

/** An exceljs cell value as one of our cells. */
function excelCell(value: unknown): Cell {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value;
  if (typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (Array.isArray(v.richText)) return (v.richText as { text?: unknown }[]).map((part) => String(part.text ?? '')).join('');
    if ('result' in v || 'formula' in v || 'sharedFormula' in v) return excelCell(v.result);
    if ('text' in v) return excelCell(v.text);
    if ('error' in v) return null;
  }
  return String(value);
}

interface SheetReader extends AsyncIterable<{ number: number; values: unknown[] }> {
  name: string;
}

/** Opens the workbook for streaming; every sheet must be iterated (or drained) in turn. */
function openWorkbook(bytes: Buffer): AsyncIterable<SheetReader> {
  const reader = new ExcelJS.stream.xlsx.WorkbookReader(Readable.from([bytes]), {
    sharedStrings: 'cache',
    styles: 'cache',
    hyperlinks: 'ignore',
    worksheets: 'emit',
    entries: 'ignore',
  } as ConstructorParameters<typeof ExcelJS.stream.xlsx.WorkbookReader>[1]);
  return reader as unknown as AsyncIterable<SheetReader>;
}

function xlsxError(error: unknown): unknown {
  if (error instanceof AppError) return error;
  // exceljs/unzipper report a damaged archive with plain Errors: that is the file's fault.
  const message = error instanceof Error ? error.message : String(error);
  return fileProblem(`not a readable .xlsx file (${message.slice(0, 200)})`);
}

/**
 * Reads what is left of a workbook, discarding it: exceljs parks worksheets that precede the shared
 * strings in the archive in temporary files and deletes each only once it has been read, so a read
 * that stops early finishes in the background instead of leaving files behind.
 */
async function drainWorkbook(workbook: AsyncIterator<SheetReader>): Promise<void> {
  try {
    for (;;) {
      const next = await workbook.next();
      if (next.done) return;
      for await (const _row of next.value) { /* discard */ }
    }
  } catch {
    // A damaged archive: nothing more to clean up.
  }
}

async function* xlsxRows(bytes: Buffer, sheetName: string | undefined): AsyncGenerator<TableRow> {
  const seen: string[] = [];
  let found = false;
  let finished = false;
  const workbook = openWorkbook(bytes)[Symbol.asyncIterator]();
  try {
    while (!found) {
      const next = await workbook.next();
      if (next.done) {
        finished = true;
        break;
      }
      const sheet = next.value;
      seen.push(sheet.name);
      const wanted = sheetName === undefined || sheet.name === sheetName;
      for await (const row of sheet) {
        if (!wanted) continue; // drained: the archive is read in order
        const cells = (row.values ?? []).slice(1).map(excelCell);
        // Sparse arrays leave holes: make them empty cells.
        for (let i = 0; i < cells.length; i++) if (cells[i] === undefined) cells[i] = null;
        if (isEmptyRow(cells)) continue;
        yield { row: row.number, cells };
      }
      found = wanted;
    }
  } catch (error) {
    finished = true;
    throw xlsxError(error);
  } finally {
    if (!finished) void drainWorkbook(workbook);
  }
  if (!found) {
    throw errors.validation(
      sheetName === undefined ? 'file: the workbook has no sheet' : `sheetName: the workbook has no sheet "${sheetName}"${seen.length ? ` (sheets: ${seen.map((s) => `"${s}"`).join(', ')})` : ''}`,
      [{ path: sheetName === undefined ? 'file' : 'sheetName', message: 'no such sheet' }],
    );
  }
}

/** The rows of the table, in file order. */
export function readRows(bytes: Buffer, options: TableOptions): AsyncGenerator<TableRow> {
  return options.format === 'csv' ? csvRows(bytes, options.delimiter) : xlsxRows(bytes, options.sheetName);
}

/** The names of an XLSX file's sheets (in the archive's order); CSV has none. */
export async function sheetNames(bytes: Buffer, format: TableFormat): Promise<string[]> {
  if (format !== 'xlsx') return [];
  const names: string[] = [];
  try {
    for await (const sheet of openWorkbook(bytes)) {
      names.push(sheet.name);
      for await (const _row of sheet) { /* drain */ }
    }
  } catch (error) {
    throw xlsxError(error);
  }
  return names;
}

/** A cell as text (header names, previews, text properties). Dates as ISO-8601 (a date at midnight UTC as YYYY-MM-DD). */
export function cellText(cell: Cell): string {
  if (cell === null) return '';
  if (cell instanceof Date) {
    const iso = cell.toISOString();
    return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso;
  }
  return String(cell);
}
