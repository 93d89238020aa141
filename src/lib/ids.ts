import { randomBytes } from 'node:crypto';

/** The alphabet Solapi uses for the random tail of its IDs. */
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export const ID_PREFIXES = {
  entity: 'CRMET',
  property: 'CRMPP',
  record: 'CRMRC',
  relationshipType: 'CRMRT',
  relationship: 'CRMRL',
  segment: 'CRMSG',
  activity: 'CRMAC',
  event: 'CRMEV',
  /** Ours [X]: stored files (export downloads, uploaded imports). */
  file: 'CRMFL',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

/**
 * CSPRNG bytes are fetched in blocks: one randomBytes() call per ID cost ~10–20 µs, which
 * dominated bulk creates. Every byte is still used once and only once.
 */
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

function randomByte(): number {
  if (poolOffset >= pool.length) {
    pool = randomBytes(POOL_SIZE);
    poolOffset = 0;
  }
  return pool[poolOffset++]!;
}

/**
 * Uniform random characters from `alphabet`, drawn from the CSPRNG.
 * Bytes at or above the largest multiple of the alphabet size are rejected so that
 * no character is more likely than another (plain `byte % n` would bias the first ones).
 */
export function randomChars(length: number, alphabet: string = BASE62): string {
  if (alphabet.length < 1 || alphabet.length > 256) throw new RangeError('alphabet must have 1 to 256 characters');
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    const byte = randomByte();
    if (byte < limit) out += alphabet[byte % alphabet.length];
  }
  return out;
}

function utcStamp(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    two(date.getUTCFullYear() % 100) +
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    two(date.getUTCSeconds()) +
    String(date.getUTCMilliseconds()).padStart(3, '0')
  );
}

/** `CRMxx` + `1` + UTC yyMMddHHmmssSSS + 11 random base62 characters = 32 characters (API.md §1.4). */
export function newId(kind: IdKind, now: Date = new Date()): string {
  return `${ID_PREFIXES[kind]}1${utcStamp(now)}${randomChars(11)}`;
}

const ID_PATTERNS = Object.fromEntries(Object.entries(ID_PREFIXES).map(([kind, prefix]) => [kind, new RegExp(`^${prefix}1\\d{15}[A-Za-z0-9]{11}$`)])) as Record<IdKind, RegExp>;

/** Whether `value` has the exact shape of an ID of this kind (what may be spliced into SQL or DDL). */
export function isId(kind: IdKind, value: string): boolean {
  return ID_PATTERNS[kind].test(value);
}

/** Member IDs: `MEM` + 11 base62 characters. */
export function newMemberId(): string {
  return `MEM${randomChars(11)}`;
}

/** Account IDs are 14 digits: UTC yyMMdd of creation + 8 random digits. */
export function newAccountId(now: Date = new Date()): string {
  return utcStamp(now).slice(0, 6) + randomChars(8, '0123456789');
}

/** API keys look like Solapi's: `NCS` + 13 upper-case alphanumerics (67 bits of randomness). */
export function newApiKey(): string {
  return `NCS${randomChars(13, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')}`;
}

/** API secrets: 32 base62 characters (190 bits). */
export function newApiSecret(): string {
  return randomChars(32);
}
