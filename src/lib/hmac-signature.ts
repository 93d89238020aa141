import { createHmac, timingSafeEqual } from 'node:crypto';

/** Parsed `Authorization: HMAC-SHA256 apiKey=…, date=…, salt=…, signature=…` (API.md §1.2). */
export interface SignedAuthorization {
  apiKey: string;
  date: string;
  salt: string;
  signature: string;
}

const SCHEME = 'HMAC-SHA256';
const FIELDS = ['apiKey', 'date', 'salt', 'signature'] as const;

/** Returns null for anything that is not exactly the four fields once each. */
export function parseAuthorization(header: string | undefined): SignedAuthorization | null {
  if (!header || header.length > 1024) return null;
  const trimmed = header.trim();
  if (!trimmed.startsWith(`${SCHEME} `)) return null;
  const found: Partial<Record<(typeof FIELDS)[number], string>> = {};
  for (const part of trimmed.slice(SCHEME.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) return null;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!(FIELDS as readonly string[]).includes(name) || value === '') return null;
    const field = name as (typeof FIELDS)[number];
    if (found[field] !== undefined) return null;
    found[field] = value;
  }
  const { apiKey, date, salt, signature } = found;
  if (!apiKey || !date || !salt || !signature) return null;
  return { apiKey, date, salt, signature };
}

export function sign(secret: string, date: string, salt: string): string {
  return createHmac('sha256', secret).update(date + salt).digest('hex');
}

/** Constant-time comparison of the expected and presented hex signatures. */
export function signatureMatches(secret: string, auth: SignedAuthorization): boolean {
  const expected = Buffer.from(sign(secret, auth.date, auth.salt), 'utf8');
  const presented = Buffer.from(auth.signature.toLowerCase(), 'utf8');
  // timingSafeEqual needs equal lengths; compare against itself so both paths do the same work.
  if (presented.length !== expected.length) {
    timingSafeEqual(expected, expected);
    return false;
  }
  return timingSafeEqual(expected, presented);
}
