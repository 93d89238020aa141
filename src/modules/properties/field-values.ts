import type { FieldType } from '../../db/schema.ts';

/**
 * Value rules of the 12 field types (API.md §4), in one place for the records module (create,
 * patch, import, bulk) to reuse. `null` always clears a value.
 *
 * | fieldType       | accepted                               | stored (normalised)                      |
 * |-----------------|----------------------------------------|------------------------------------------|
 * | TEXT            | string ≤ 2,000                          | as sent                                  |
 * | TEXTAREA        | string ≤ 50,000                         | as sent                                  |
 * | EMAIL           | local@domain.tld, ≤ 254                 | trimmed, lower-case                      |
 * | URL             | absolute http(s) URL, ≤ 2,048           | trimmed, WHATWG-serialised (`URL.href`)  |
 * | PHONE           | 7–15 digits, optional leading +, with   | digits only (and the leading +)          |
 * |                 | spaces, dashes, dots or parentheses     |                                          |
 * | NUMBER          | finite JSON number                      | as sent                                  |
 * | CHECKBOX        | true / false                            | as sent                                  |
 * | DATE            | YYYY-MM-DD, a real calendar day         | as sent                                  |
 * | DATETIME        | ISO-8601 instant with Z or ±hh:mm       | UTC with milliseconds                    |
 * | DROPDOWN, RADIO | one option `value`                      | as sent                                  |
 * | MULTI_CHECKBOX  | array of distinct option `value`s       | as sent                                  |
 */
export type ValueResult = { ok: true; value: unknown } | { ok: false; reason: string };

export interface ValueRules {
  fieldType: FieldType;
  /** The option values of a choice property (ignored for the others). */
  optionValues?: readonly string[];
}

const TEXT_MAX = 2_000;
const TEXTAREA_MAX = 50_000;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE_SEPARATORS = /[\s\-.()]/g;
const PHONE = /^\+?[0-9]{7,15}$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

const ok = (value: unknown): ValueResult => ({ ok: true, value });
const fail = (reason: string): ValueResult => ({ ok: false, reason });

function isRealDate(text: string): boolean {
  const m = DATE.exec(text);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** Validates and normalises one value for a property; the reason names what was expected. */
export function normalizeValue(rules: ValueRules, value: unknown): ValueResult {
  if (value === null) return ok(null);
  const options = new Set(rules.optionValues ?? []);
  switch (rules.fieldType) {
    case 'TEXT':
    case 'TEXTAREA': {
      const max = rules.fieldType === 'TEXT' ? TEXT_MAX : TEXTAREA_MAX;
      if (typeof value !== 'string') return fail('must be a string');
      if (value.length > max) return fail(`must be at most ${max} characters`);
      return ok(value);
    }
    case 'EMAIL': {
      if (typeof value !== 'string') return fail('must be an email address string');
      const email = value.trim().toLowerCase();
      if (email.length > 254 || !EMAIL.test(email)) return fail('must be an email address like name@example.com');
      return ok(email);
    }
    case 'URL': {
      if (typeof value !== 'string') return fail('must be a URL string');
      const text = value.trim();
      if (text.length > 2048) return fail('must be at most 2048 characters');
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        return fail('must be an absolute http(s) URL');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail('must be an absolute http(s) URL');
      return ok(url.href);
    }
    case 'PHONE': {
      if (typeof value !== 'string') return fail('must be a phone number string');
      const phone = value.trim().replace(PHONE_SEPARATORS, '');
      if (!PHONE.test(phone)) return fail('must be a phone number of 7 to 15 digits (optionally +country code)');
      return ok(phone);
    }
    case 'NUMBER':
      if (typeof value !== 'number' || !Number.isFinite(value)) return fail('must be a finite number');
      return ok(value);
    case 'CHECKBOX':
      if (typeof value !== 'boolean') return fail('must be true or false');
      return ok(value);
    case 'DATE':
      if (typeof value !== 'string' || !isRealDate(value)) return fail('must be a date YYYY-MM-DD');
      return ok(value);
    case 'DATETIME': {
      if (typeof value !== 'string' || !INSTANT.test(value) || !isRealDate(value.slice(0, 10))) {
        return fail('must be an ISO-8601 instant with Z or an offset');
      }
      const time = Date.parse(value);
      if (Number.isNaN(time)) return fail('must be an ISO-8601 instant with Z or an offset');
      return ok(new Date(time).toISOString());
    }
    case 'DROPDOWN':
    case 'RADIO':
      if (typeof value !== 'string' || !options.has(value)) return fail('must be one of the property\'s option values');
      return ok(value);
    case 'MULTI_CHECKBOX': {
      if (!Array.isArray(value)) return fail('must be an array of option values');
      const seen = new Set<string>();
      for (const item of value) {
        if (typeof item !== 'string' || !options.has(item)) return fail('must contain only the property\'s option values');
        if (seen.has(item)) return fail(`lists "${item}" twice`);
        seen.add(item);
      }
      return ok(value);
    }
  }
}

/**
 * What a MEMBER sees of a masked property's value (API.md §1.7); ADMIN and OWNER see it clear.
 * docs/masking.md is the reference (and says what else MEMBERs cannot do with masked
 * properties); in short:
 * - PHONE: at least 10 digits → the first 3 and last 4 digits around `****`
 *   (`01012345678` → `010-****-5678`, `+821012345678` → `821-****-5678`); 7–9 digits → only the
 *   last 4 (`****-4567`), so at least 3 digits stay hidden. Always four stars: the length is hidden.
 * - EMAIL: the first character of the local part, `***`, then `@domain`: `h***@example.com`.
 * - Every other non-null value (text, numbers, dates, booleans, choices, arrays): `"***"`. A masked
 *   choice property also lists `options: []` to MEMBERs, so its values mean nothing to them.
 * - `null` stays `null` (an empty field reveals nothing).
 */
export function maskValue(fieldType: FieldType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (fieldType === 'PHONE' && typeof value === 'string') {
    const digits = value.replace(/\D/g, '');
    if (digits.length >= 10) return `${digits.slice(0, 3)}-****-${digits.slice(-4)}`;
    if (digits.length >= 7) return `****-${digits.slice(-4)}`;
    return '***';
  }
  if (fieldType === 'EMAIL' && typeof value === 'string') {
    const at = value.lastIndexOf('@');
    if (at > 0) return `${value[0]}***${value.slice(at)}`;
  }
  return '***';
}
