import { crc32, constants as zlibConstants, createDeflateRaw } from 'node:zlib';
import { Zip, ZipDeflate, type ZipInputFile } from 'fflate';
import { AppError } from '../../errors.ts';
import { csvRow, guardFormula, UTF8_BOM, type Cell } from './csv-writer.ts';

/** Where a sheet's bytes go (a stored file's writer, or memory in tests). */
export interface ByteSink {
  write(chunk: Uint8Array | string): Promise<void>;
}

/**
 * A table written batch by batch into a sink in constant memory: a batch is encoded (and for
 * XLSX compressed) and handed to the sink before `rows` returns, so nothing piles up between the
 * database reads and the file writes whichever side is faster.
 */
export interface SheetWriter {
  readonly contentType: string;
  readonly extension: string;
  rows(rows: readonly (readonly Cell[])[]): Promise<void>;
  /** Writes what remains (XLSX: the end of the sheet and the zip's directory). */
  finish(): Promise<void>;
}

export type ExportFormat = 'csv' | 'excel';

/** `header` is written as the first row (bold in XLSX). */
export function createSheetWriter(format: ExportFormat, sink: ByteSink, header: readonly string[], options: { sheetName?: string } = {}): SheetWriter {
  return format === 'csv' ? csvWriter(sink, header) : xlsxWriter(sink, header, options.sheetName);
}

/** Rows are encoded into pieces of about this many characters before the sink is called. */
const CSV_PIECE = 256 * 1024;

function csvWriter(sink: ByteSink, header: readonly string[]): SheetWriter {
  let pending = UTF8_BOM + csvRow(header);
  return {
    contentType: 'text/csv; charset=utf-8',
    extension: 'csv',
    async rows(rows) {
      let text = pending;
      pending = '';
      for (const row of rows) {
        text += csvRow(row);
        if (text.length >= CSV_PIECE) {
          await sink.write(text);
          text = '';
        }
      }
      if (text) await sink.write(text);
    },
    async finish() {
      if (pending) await sink.write(pending);
      pending = '';
    },
  };
}

/* ---------- XLSX (SpreadsheetML in a zip, ECMA-376) ---------- */

/** Excel's limit on a cell's text (characters); longer texts are cut there. */
export const XLSX_CELL_MAX = 32_767;
/** Excel's rows per sheet, the header included. */
export const XLSX_MAX_ROWS = 1_048_576;
/** A zip entry without ZIP64 holds less than 4 GiB (fflate writes no ZIP64). */
const ZIP32_MAX = 0xFFFF_FFFF - 1024 * 1024;

/** A sheet name Excel accepts: ≤ 31 characters, none of \ / ? * [ ] :, not blank, no leading/trailing '. */
export function sheetNameOf(name: string | undefined): string {
  const cleaned = stripInvalidXml(name ?? '').replace(/[\\/?*[\]:\t\r\n]/g, ' ').trim().replace(/^'+|'+$/g, '').slice(0, 31).trim();
  return cleaned || 'Records';
}

/** Characters XML 1.0 cannot carry at all (C0 controls but TAB/LF/CR, U+FFFE/FFFF, lone surrogates). */
const INVALID_XML = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
function stripInvalidXml(text: string): string {
  return text.replace(INVALID_XML, '');
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\r': '&#13;' };
/** Text for XML; a CR as a character reference, or the reader's end-of-line handling would turn it into LF. */
function escapeXml(text: string): string {
  return stripInvalidXml(text).replace(/[&<>"\r]/g, (c) => XML_ESCAPES[c]!);
}

/** The column letters of a 0-based index: A … Z, AA … */
export function columnName(index: number): string {
  let name = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) name = String.fromCharCode(65 + ((n - 1) % 26)) + name;
  return name;
}

/**
 * The cell's XML (`ref` like ` r="B7"`, readers such as exceljs need it): text as an inline string
 * (never a formula), numbers and booleans typed, null and empty text omitted.
 */
function xlsxCell(cell: Cell, ref: string, style: string): string {
  if (cell === null) return '';
  if (typeof cell === 'number') return Number.isFinite(cell) ? `<c${ref}${style}><v>${cell}</v></c>` : '';
  if (typeof cell === 'boolean') return `<c${ref}${style} t="b"><v>${cell ? 1 : 0}</v></c>`;
  let text = stripInvalidXml(guardFormula(cell));
  if (text.length > XLSX_CELL_MAX) text = stripInvalidXml(text.slice(0, XLSX_CELL_MAX)); // a pair cut in two
  if (text === '') return '';
  return `<c${ref}${style} t="inlineStr"><is><t xml:space="preserve">${escapeXml(text)}</t></is></c>`;
}

const XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';
const MAIN_NS = 'http://schemas.openxmlformats.org/spreadsheetml/2006/main';
const REL_NS = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';
const PKG_REL_NS = 'http://schemas.openxmlformats.org/package/2006/relationships';

const CONTENT_TYPES = `${XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
  '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>' +
  '<Default Extension="xml" ContentType="application/xml"/>' +
  '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>' +
  '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' +
  '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>' +
  '</Types>';
const ROOT_RELS = `${XML_HEAD}<Relationships xmlns="${PKG_REL_NS}">` +
  `<Relationship Id="rId1" Type="${REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>`;
const WORKBOOK_RELS = `${XML_HEAD}<Relationships xmlns="${PKG_REL_NS}">` +
  `<Relationship Id="rId1" Type="${REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>` +
  `<Relationship Id="rId2" Type="${REL_NS}/styles" Target="styles.xml"/></Relationships>`;
/** Two cell formats: 0 normal, 1 bold (the header row). */
const STYLES = `${XML_HEAD}<styleSheet xmlns="${MAIN_NS}">` +
  '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>' +
  '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>' +
  '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>' +
  '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>' +
  '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>' +
  '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>';
const workbookXml = (sheetName: string) => `${XML_HEAD}<workbook xmlns="${MAIN_NS}" xmlns:r="${REL_NS}">` +
  `<sheets><sheet name="${escapeXml(sheetName)}" sheetId="1" r:id="rId1"/></sheets></workbook>`;
/** The header row stays visible while scrolling (frozen pane). */
const SHEET_HEAD = `${XML_HEAD}<worksheet xmlns="${MAIN_NS}"><sheetViews><sheetView workbookViewId="0">` +
  '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews><sheetData>';
const SHEET_TAIL = '</sheetData></worksheet>';

/**
 * XLSX written directly as SpreadsheetML: fflate assembles the zip (headers, data descriptors,
 * central directory) and the sheet, which is nearly all the bytes, is deflated by Node's native
 * zlib (fflate's JavaScript deflate took ~14 µs a row, most of the export's CPU). Each batch of
 * rows is serialised, compressed (a sync flush) and handed to the sink before `rows` returns, so
 * memory stays flat whichever side is faster (docs/exports.md says why not exceljs's stream
 * writer). One sheet, inline strings (no shared-strings table growing with the data), a bold
 * frozen header row.
 */
function xlsxWriter(sink: ByteSink, header: readonly string[], sheetName: string | undefined): SheetWriter {
  const encoder = new TextEncoder();
  let output: Uint8Array[] = [];
  let failure: Error | undefined;
  const zip = new Zip((error, data) => {
    if (error) failure ??= error;
    else if (data.length) output.push(data);
  });
  const addWhole = (name: string, text: string) => {
    const entry = new ZipDeflate(name, { level: 6 });
    zip.add(entry);
    entry.push(encoder.encode(text), true);
  };
  addWhole('[Content_Types].xml', CONTENT_TYPES);
  addWhole('_rels/.rels', ROOT_RELS);
  addWhole('xl/workbook.xml', workbookXml(sheetNameOf(sheetName)));
  addWhole('xl/_rels/workbook.xml.rels', WORKBOOK_RELS);
  addWhole('xl/styles.xml', STYLES);

  // The sheet entry: deflated by zlib, its size and CRC counted here (set before the last chunk).
  const sheet: ZipInputFile = { filename: 'xl/worksheets/sheet1.xml', size: 0, crc: 0, compression: 8 };
  zip.add(sheet);
  const deflate = createDeflateRaw({ level: 6 });
  deflate.on('data', (chunk: Buffer) => sheet.ondata!(null, new Uint8Array(chunk.buffer as ArrayBuffer, chunk.byteOffset, chunk.length), false));
  deflate.on('error', (error) => { failure ??= error; });
  let pendingXml = '';
  let rowNumber = 0;

  const columns = header.map((_, i) => columnName(i));
  const rowXml = (cells: readonly Cell[], style = '') => {
    rowNumber++;
    if (rowNumber > XLSX_MAX_ROWS) throw new AppError(400, 'ValidationError', `An XLSX sheet holds at most ${XLSX_MAX_ROWS - 1} rows; export as csv instead.`);
    let xml = `<row r="${rowNumber}">`;
    for (let i = 0; i < cells.length; i++) xml += xlsxCell(cells[i]!, ` r="${columns[i] ?? columnName(i)}${rowNumber}"`, style);
    return `${xml}</row>`;
  };
  /** Deflates the XML so far (sync flush: all of it comes out now), then hands the zip's output to the sink. */
  async function flush(): Promise<void> {
    if (pendingXml) {
      const bytes = encoder.encode(pendingXml);
      pendingXml = '';
      sheet.size += bytes.length;
      if (sheet.size > ZIP32_MAX) throw new AppError(400, 'ValidationError', 'The export is too large for an XLSX file (over 4 GiB of sheet data); export as csv instead.');
      sheet.crc = crc32(bytes, sheet.crc);
      deflate.write(bytes);
      await new Promise<void>((resolve) => deflate.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()));
    }
    if (failure) throw failure;
    const chunks = output;
    output = [];
    for (const chunk of chunks) await sink.write(chunk);
  }

  pendingXml = SHEET_HEAD + rowXml(header, ' s="1"');
  return {
    contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    extension: 'xlsx',
    async rows(rows) {
      for (const row of rows) {
        pendingXml += rowXml(row);
        if (pendingXml.length >= CSV_PIECE) await flush();
      }
      await flush();
    },
    async finish() {
      pendingXml += SHEET_TAIL;
      await flush();
      const ended = new Promise<void>((resolve, reject) => {
        deflate.once('end', resolve);
        deflate.once('error', reject);
      });
      deflate.end();
      await ended;
      sheet.ondata!(null, new Uint8Array(0), true);
      zip.end();
      await flush();
    },
  };
}
