import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import ExcelJS from 'exceljs';
import fc from 'fast-check';
import { parse as csvParse } from 'csv-parse/sync';
import { csvField, csvRow, guardFormula, UTF8_BOM, type Cell } from '../../src/modules/exports/csv-writer.ts';
import { columnName, createSheetWriter, sheetNameOf, XLSX_CELL_MAX, type ExportFormat } from '../../src/modules/exports/sheet-writer.ts';

/** The export file writers (src/modules/exports): CSV by RFC 4180 with the formula guard, XLSX read back by exceljs. */

/**
 * A strict RFC 4180 reader (records end with CRLF, which our writer always writes): anything the
 * RFC does not allow — a quote inside an unquoted field, a bare CR or LF outside quotes, text after
 * a closing quote — throws, so a writer that quotes too little cannot pass.
 */
function parseRfc4180(text: string): string[][] {
  const records: string[][] = [];
  let i = 0;
  while (i < text.length) {
    const record: string[] = [];
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= text.length) throw new Error('unterminated quoted field');
          if (text[i] === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
            } else {
              i++;
              break;
            }
          } else field += text[i++];
        }
      } else {
        while (i < text.length && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
          if (text[i] === '"') throw new Error(`quote inside an unquoted field at ${i}`);
          field += text[i++];
        }
      }
      record.push(field);
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '\r' && text[i + 1] === '\n') {
        i += 2;
        break;
      }
      throw new Error(`expected a comma or CRLF at ${i}, found ${JSON.stringify(text[i])}`);
    }
    records.push(record);
  }
  return records;
}

/** Characters that stress quoting and the guard, plus ordinary and Korean text. */
const tricky = fc.constantFrom('"', ',', '\r', '\n', '\r\n', '=', '+', '-', '@', '\t', "'", ' ', 'a', 'Z', '0', '9', '.', 'e', '한', '글', '😀', '\u0000', '\u000B', '\uFFFE', '\uD800');
const text = fc.oneof(fc.string({ unit: tricky, maxLength: 12 }), fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 6 }));
const cell: fc.Arbitrary<Cell> = fc.oneof(text, text, fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.boolean(), fc.constant(null));
const rows = (width: fc.Arbitrary<number>) => width.chain((w) => fc.array(fc.array(cell, { minLength: w, maxLength: w }), { maxLength: 8 }));

/**
 * What a reader should find in a CSV cell: guarded text (a lone surrogate cannot be UTF-8 and
 * becomes U+FFFD), numbers as JavaScript prints them, TRUE/FALSE, empty for null.
 */
const csvExpected = (c: Cell): string => (c === null ? '' : typeof c === 'string' ? guardFormula(c).toWellFormed() : typeof c === 'boolean' ? (c ? 'TRUE' : 'FALSE') : String(c));

/** Would a spreadsheet evaluate this cell text as a formula? */
const DANGEROUS = /^[=+\-@\t\r]/;
const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const XML_INVALID = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

async function writeAll(format: ExportFormat, header: string[], body: Cell[][], batch = 3): Promise<Buffer> {
  const parts: Buffer[] = [];
  const writer = createSheetWriter(format, { write: async (chunk) => { parts.push(Buffer.from(chunk)); } }, header, { sheetName: '고객' });
  for (let i = 0; i < body.length; i += batch) await writer.rows(body.slice(i, i + batch));
  await writer.finish();
  return Buffer.concat(parts);
}

describe('CSV writer', () => {
  test('fixed cases: quoting, the formula guard, numbers, booleans, null', () => {
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('line1\r\nline2'), '"line1\r\nline2"');
    assert.equal(csvField('line1\nline2'), '"line1\nline2"');
    assert.equal(csvField('=1+2'), "'=1+2");
    assert.equal(csvField('+821012345678'), '+821012345678', 'a plain number is not a formula');
    assert.equal(csvField('-2+3+cmd|\' /C calc\'!A0'), "'-2+3+cmd|' /C calc'!A0");
    assert.equal(csvField('@SUM(A1)'), "'@SUM(A1)");
    assert.equal(csvField('\tx'), "'\tx");
    assert.equal(csvField('\r=x'), '"\'\r=x"', 'guarded, then quoted because of the CR');
    assert.equal(csvField('=HYPERLINK("http://x","y")'), '"\'=HYPERLINK(""http://x"",""y"")"');
    assert.equal(csvField(-5), '-5');
    assert.equal(csvField(1.5e-7), '1.5e-7');
    assert.equal(csvField(true), 'TRUE');
    assert.equal(csvField(null), '');
    assert.equal(csvField('김철수'), '김철수');
    assert.equal(csvRow(['a', null, 'b,c']), 'a,,"b,c"\r\n');
  });

  test('property: every row reads back through a strict RFC 4180 parser and csv-parse, guarded', async () => {
    await fc.assert(fc.asyncProperty(rows(fc.integer({ min: 1, max: 5 })), async (body) => {
      const header = body[0]?.map((_, i) => `h${i}`) ?? ['h0'];
      const file = (await writeAll('csv', header, body)).toString('utf8');
      assert.ok(file.startsWith(UTF8_BOM), 'UTF-8 BOM first');
      const expected = [header, ...body.map((row) => row.map(csvExpected))];
      const strict = parseRfc4180(file.slice(UTF8_BOM.length));
      assert.deepEqual(strict, expected);
      const lax = csvParse(file, { bom: true, record_delimiter: '\r\n', relax_column_count: false, skip_empty_lines: false }) as string[][];
      assert.deepEqual(lax, expected);
      for (const record of strict) for (const field of record) assert.ok(!DANGEROUS.test(field) || NUMERIC.test(field), `unguarded formula ${JSON.stringify(field)}`);
    }), { numRuns: 400 });
  });

  test('the guard fails the property without it (a formula-looking cell is caught)', () => {
    assert.ok(DANGEROUS.test('=1+2') && !NUMERIC.test('=1+2'));
    assert.notEqual(guardFormula('=1+2'), '=1+2');
  });
});

describe('XLSX writer', () => {
  test('helpers: column names and sheet names', () => {
    assert.deepEqual([0, 1, 25, 26, 27, 51, 52, 701, 702, 16_383].map(columnName), ['A', 'B', 'Z', 'AA', 'AB', 'AZ', 'BA', 'ZZ', 'AAA', 'XFD']);
    assert.equal(sheetNameOf('고객/거래처 [2026]: 목록?'), '고객 거래처  2026   목록');
    assert.equal(sheetNameOf('x'.repeat(40)).length, 31);
    assert.equal(sheetNameOf('  '), 'Records');
    assert.equal(sheetNameOf("'quoted'"), 'quoted');
  });

  test('property: cells read back with exceljs; text guarded and never a formula; numbers and booleans typed', async () => {
    await fc.assert(fc.asyncProperty(rows(fc.integer({ min: 1, max: 4 })), async (body) => {
      const header = body[0]?.map((_, i) => `열${i}`) ?? ['열0'];
      const file = await writeAll('excel', header, body, 2);
      const workbook = new ExcelJS.Workbook();
      await workbook.xlsx.load(file as unknown as ExcelJS.Buffer);
      const sheet = workbook.worksheets[0]!;
      assert.equal(sheet.name, '고객');
      const all = [header, ...body];
      all.forEach((row, r) => {
        row.forEach((value, c) => {
          const got = sheet.getRow(r + 1).getCell(c + 1);
          assert.notEqual(got.type, ExcelJS.ValueType.Formula, 'never a formula');
          // XML cannot carry C0 controls (but TAB/LF/CR), U+FFFE/FFFF or lone surrogates: they are dropped;
          // empty text is an empty cell.
          const expected = typeof value === 'string' ? guardFormula(value).replace(XML_INVALID, '') || null : typeof value === 'number' ? value + 0 /* -0 is written 0 */ : value;
          assert.deepEqual(got.value, expected, `row ${r + 1} col ${c + 1}`);
          if (typeof expected === 'string') assert.equal(got.type, ExcelJS.ValueType.String);
        });
      });
    }), { numRuns: 100 });
  });

  test('a text longer than Excel takes is cut at 32,767 characters', async () => {
    const file = await writeAll('excel', ['memo'], [['가'.repeat(XLSX_CELL_MAX + 10)]]);
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(file as unknown as ExcelJS.Buffer);
    assert.equal((workbook.worksheets[0]!.getRow(2).getCell(1).value as string).length, XLSX_CELL_MAX);
  });
});
