import type { FieldType } from '../../db/schema.ts';
import { normalizeValue } from './field-values.ts';

/**
 * What happens to a stored value when its property's `fieldType` (or option list) changes
 * (API.md §4: "converts stored values where a lossless conversion exists"). One pure function,
 * `convertValue`, is the whole truth; the properties service applies it to every record (live
 * and trashed) that holds a value, and docs/entities-properties.md prints the same table.
 *
 * Every candidate is passed through `normalizeValue` of the new type, so a converted value is
 * always exactly what a record write of the new type would have stored.
 *
 * | from ↓ / to →            | conversion                                                              |
 * |--------------------------|-------------------------------------------------------------------------|
 * | any → TEXT, TEXTAREA     | as text: strings as they are, numbers as JavaScript prints them         |
 * |                          | (`12.5`, `1e+21`), booleans `true`/`false`, choices their option        |
 * |                          | `value`, MULTI_CHECKBOX values joined with `", "`; TEXT keeps ≤ 2,000   |
 * | TEXT, TEXTAREA → NUMBER  | a decimal (`-12.50`, `1e3`, surrounding spaces allowed) whose number    |
 * |                          | keeps every digit (`12345678901234567890` is refused)                  |
 * | TEXT, TEXTAREA → EMAIL,  | when the text is valid for the new type; normalised like a record      |
 * | URL, PHONE, DATE,        | write (EMAIL lower-case, PHONE digits only, DATETIME UTC with ms);      |
 * | DATETIME                 | DATE `YYYY-MM-DD`; DATETIME also takes a bare date (midnight UTC)        |
 * | TEXT, TEXTAREA → CHECKBOX| `true` / `false` (any case, surrounding spaces allowed)                 |
 * | TEXT, TEXTAREA →         | the text equals an option value (DROPDOWN/RADIO); MULTI_CHECKBOX also   |
 * | DROPDOWN, RADIO,         | splits on `,` (the inverse of MULTI_CHECKBOX → TEXT), every part an     |
 * | MULTI_CHECKBOX           | option value                                                            |
 * | DATE → DATETIME          | midnight UTC (`2026-04-20` → `2026-04-20T00:00:00.000Z`)               |
 * | DATETIME → DATE          | only when the time is midnight UTC                                      |
 * | DROPDOWN ↔ RADIO         | the same value, when it is in the new option list                       |
 * | DROPDOWN, RADIO →        | wrapped: `"A"` → `["A"]`, when it is in the new option list             |
 * | MULTI_CHECKBOX           |                                                                         |
 * | MULTI_CHECKBOX →         | only with at most one value, in the new option list                     |
 * | DROPDOWN, RADIO          |                                                                         |
 * | same type, new options   | choice values must be in the new list; MULTI_CHECKBOX loses only the    |
 * |                          | removed options (with force)                                            |
 * | anything else            | not convertible (e.g. NUMBER → DATE, CHECKBOX → NUMBER, PHONE → NUMBER) |
 *
 * Empty values (`""`, `[]`) never count as lost: the new type keeps them when it can hold them
 * (`""` in TEXT/TEXTAREA, `[]` in MULTI_CHECKBOX) and otherwise the record simply has no value.
 */

export type Converted =
  /** `value` is what to store; `undefined` means the record ends up without a value (an empty value the new type cannot hold). */
  | { ok: true; value: unknown }
  /** Data would be lost. With `?force=true` the record keeps `fallback` (MULTI_CHECKBOX: the options that still exist) or no value. */
  | { ok: false; reason: string; fallback?: unknown };

const TEXT_SOURCES: ReadonlySet<FieldType> = new Set(['TEXT', 'TEXTAREA']);
const SINGLE_CHOICE: ReadonlySet<FieldType> = new Set(['DROPDOWN', 'RADIO']);

/** A short, quoted preview of a value for error messages. */
export function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isEmptyValue(value: unknown): boolean {
  return value === '' || (Array.isArray(value) && value.length === 0);
}

/** The value as text (the TEXT/TEXTAREA rendering of any type). */
function asText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(', ');
  return undefined;
}

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** A decimal's exact value as `[-]digits e pointPosition` with no leading or trailing zeros ("0" for zero). */
function canonicalDecimal(text: string): string | undefined {
  const m = DECIMAL.exec(text);
  if (!m) return undefined;
  const [, sign, int = '', frac = '', exp = '0'] = m;
  if (int === '' && frac === '') return undefined;
  let digits = int + frac;
  let point = int.length + Number(exp);
  const lead = digits.length - digits.replace(/^0+/, '').length;
  digits = digits.slice(lead).replace(/0+$/, '');
  point -= lead;
  if (digits === '') return '0';
  return `${sign === '-' ? '-' : ''}${digits}e${point}`;
}

/** A text as a number, only when the number keeps every digit of the text. */
function parseNumber(text: string): Converted {
  const trimmed = text.trim();
  const exact = canonicalDecimal(trimmed);
  if (exact === undefined) return { ok: false, reason: `${preview(text)} is not a decimal number` };
  const number = Number(trimmed);
  if (!Number.isFinite(number)) return { ok: false, reason: `${preview(text)} is too large for a number` };
  if (canonicalDecimal(String(number)) !== exact) {
    return { ok: false, reason: `${preview(text)} has more digits than a number keeps (it would become ${String(number)})` };
  }
  return { ok: true, value: number };
}

/** The candidate for the new type, before the new type's own rules (normalizeValue) check it. */
function candidate(from: FieldType, to: FieldType, value: unknown, options: ReadonlySet<string>): Converted {
  const no = (): Converted => ({ ok: false, reason: `${from} values cannot become ${to}` });
  if (to === 'TEXT' || to === 'TEXTAREA') {
    const text = asText(value);
    return text === undefined ? { ok: false, reason: `${preview(value)} has no text form` } : { ok: true, value: text };
  }
  if (from === to && to !== 'MULTI_CHECKBOX') return { ok: true, value };
  const text = TEXT_SOURCES.has(from) && typeof value === 'string' ? value : undefined;
  switch (to) {
    case 'NUMBER':
      return text === undefined ? no() : parseNumber(text);
    case 'EMAIL':
    case 'URL':
    case 'PHONE':
      return text === undefined ? no() : { ok: true, value: text };
    case 'CHECKBOX': {
      if (text === undefined) return no();
      const word = text.trim().toLowerCase();
      if (word === 'true' || word === 'false') return { ok: true, value: word === 'true' };
      return { ok: false, reason: `${preview(text)} is not true or false` };
    }
    case 'DATE':
      if (text !== undefined) return { ok: true, value: text.trim() };
      if (from === 'DATETIME' && typeof value === 'string') {
        return value.endsWith('T00:00:00.000Z')
          ? { ok: true, value: value.slice(0, 10) }
          : { ok: false, reason: `${preview(value)} is not at midnight UTC, so a date would lose its time` };
      }
      return no();
    case 'DATETIME':
      // A bare date is midnight UTC, as DATE → DATETIME.
      if (text !== undefined) return { ok: true, value: /^\d{4}-\d{2}-\d{2}$/.test(text.trim()) ? `${text.trim()}T00:00:00.000Z` : text.trim() };
      if (from === 'DATE' && typeof value === 'string') return { ok: true, value: `${value}T00:00:00.000Z` };
      return no();
    case 'DROPDOWN':
    case 'RADIO':
      if (text !== undefined || SINGLE_CHOICE.has(from)) return { ok: true, value };
      if (from === 'MULTI_CHECKBOX' && Array.isArray(value)) {
        return value.length === 1
          ? { ok: true, value: value[0] }
          : { ok: false, reason: `${preview(value)} has ${value.length} values; ${to} holds one` };
      }
      return no();
    case 'MULTI_CHECKBOX': {
      if (SINGLE_CHOICE.has(from)) return { ok: true, value: [value] };
      if (text !== undefined) {
        if (options.has(text)) return { ok: true, value: [text] };
        const parts = [...new Set(text.split(',').map((part) => part.trim()).filter(Boolean))];
        const unknown = parts.filter((part) => !options.has(part));
        if (unknown.length) return { ok: false, reason: `${preview(unknown.join(', '))} ${unknown.length > 1 ? 'are not option values' : 'is not an option value'}` };
        return { ok: true, value: parts };
      }
      if (from === 'MULTI_CHECKBOX' && Array.isArray(value)) {
        const kept = value.filter((v) => typeof v === 'string' && options.has(v));
        if (kept.length === value.length) return { ok: true, value };
        const gone = value.filter((v) => !kept.includes(v));
        return {
          ok: false,
          reason: `option${gone.length > 1 ? 's' : ''} ${gone.map((v) => preview(v)).join(', ')} ${gone.length > 1 ? 'are' : 'is'} not in the new option list`,
          ...(kept.length ? { fallback: kept } : {}),
        };
      }
      return no();
    }
  }
}

/**
 * Converts one stored value of a `from` property into the `to` type with `optionValues` (the
 * new option list; ignored for non-choice types). `value` is never null (null is "no value").
 */
export function convertValue(from: FieldType, to: FieldType, value: unknown, optionValues: readonly string[]): Converted {
  if (isEmptyValue(value)) {
    if (to === 'TEXT' || to === 'TEXTAREA') return { ok: true, value: '' };
    if (to === 'MULTI_CHECKBOX') return { ok: true, value: [] };
    return { ok: true, value: undefined };
  }
  const options = new Set(optionValues);
  const raw = candidate(from, to, value, options);
  if (!raw.ok) return raw;
  const checked = normalizeValue({ fieldType: to, optionValues }, raw.value);
  if (checked.ok) return { ok: true, value: checked.value };
  const choice = to === 'DROPDOWN' || to === 'RADIO';
  return { ok: false, reason: choice ? `${preview(raw.value)} is not in the new option list` : `${preview(value)} as ${to} ${checked.reason}` };
}

/**
 * True when no stored value can change or be lost, so records need not be read at all: the same
 * type (or TEXT → TEXTAREA, DROPDOWN ↔ RADIO) and, for choices, no option value removed.
 */
export function isValuePreserving(from: FieldType, to: FieldType, oldOptionValues: readonly string[], newOptionValues: readonly string[]): boolean {
  const kept = new Set(newOptionValues);
  const optionsKept = oldOptionValues.every((v) => kept.has(v));
  if (from === to) return to === 'DROPDOWN' || to === 'RADIO' || to === 'MULTI_CHECKBOX' ? optionsKept : true;
  if (from === 'TEXT' && to === 'TEXTAREA') return true;
  if (SINGLE_CHOICE.has(from) && SINGLE_CHOICE.has(to)) return optionsKept;
  return false;
}

/** The ordered pairs with a (possibly partial) lossless conversion, for docs and tests. */
export function hasConversion(from: FieldType, to: FieldType): boolean {
  if (from === to || to === 'TEXT' || to === 'TEXTAREA') return true;
  if (TEXT_SOURCES.has(from)) return true;
  if (from === 'DATE' && to === 'DATETIME') return true;
  if (from === 'DATETIME' && to === 'DATE') return true;
  if (SINGLE_CHOICE.has(from) && (SINGLE_CHOICE.has(to) || to === 'MULTI_CHECKBOX')) return true;
  if (from === 'MULTI_CHECKBOX' && SINGLE_CHOICE.has(to)) return true;
  return false;
}
