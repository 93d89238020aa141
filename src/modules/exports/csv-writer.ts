/**
 * CSV as Excel reads it (docs/exports.md):
 * - UTF-8 with a byte-order mark, so Excel shows Korean text instead of mojibake.
 * - RFC 4180: fields separated by commas, records by CRLF; a field containing a quote, comma,
 *   CR or LF is enclosed in double quotes, and quotes inside are doubled.
 * - Formula-injection guard (OWASP "CSV Injection"): a text cell starting with `=`, `+`, `-`,
 *   `@`, TAB or CR gets a leading `'`, so a spreadsheet shows it as text instead of evaluating it.
 *   Numbers are written as numbers (a negative number is not a formula).
 */

/** What one cell holds; `null` is an empty cell. */
export type Cell = string | number | boolean | null;

export const UTF8_BOM = '\uFEFF';

const FORMULA_START = /^[=+\-@\t\r]/;
/** A plain decimal number ("-12", "+3.5", "1e-7"): spreadsheets read it as that number, never as a formula. */
const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The text of a string cell as a spreadsheet must receive it: formula-looking text prefixed with `'`. */
export function guardFormula(text: string): string {
  return FORMULA_START.test(text) && !NUMERIC.test(text) ? `'${text}` : text;
}

const NEEDS_QUOTES = /[",\r\n]/;

/** One field: guarded, then quoted when RFC 4180 requires it. */
export function csvField(cell: Cell): string {
  if (cell === null) return '';
  const text = typeof cell === 'string' ? guardFormula(cell) : typeof cell === 'boolean' ? (cell ? 'TRUE' : 'FALSE') : String(cell);
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One record, CRLF-terminated. */
export function csvRow(cells: readonly Cell[]): string {
  let line = '';
  for (let i = 0; i < cells.length; i++) line += (i === 0 ? '' : ',') + csvField(cells[i]!);
  return `${line}\r\n`;
}
