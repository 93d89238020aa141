import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseAuthorization, sign, signatureMatches } from '../../src/lib/hmac-signature.ts';
import { parseInstant } from '../../src/lib/iso-instant.ts';

/** API.md §1.2: `Authorization: HMAC-SHA256 apiKey=<key>, date=<ISO-8601>, salt=<salt>, signature=<hex>`. */

const KEY = 'NCSAAAAAAAAAAAAA';
const DATE = '2026-04-20T10:00:00.123Z';
const SALT = 'c0ffeec0ffee1234';
const SIG = 'a'.repeat(64);
const EXPECTED = { apiKey: KEY, date: DATE, salt: SALT, signature: SIG };

/** HMAC-SHA256 by OpenSSL's command line: an implementation independent of node:crypto's API use. */
function opensslHmac(key: string, message: string): string {
  const out = execFileSync('openssl', ['dgst', '-sha256', '-hmac', key], { input: message, encoding: 'utf8' });
  const hex = /([0-9a-f]{64})\s*$/.exec(out.trim());
  assert.ok(hex, `openssl output: ${out}`);
  return hex[1]!;
}

describe('parseAuthorization', () => {
  test('the canonical form Solapi clients send', () => {
    assert.deepEqual(parseAuthorization(`HMAC-SHA256 apiKey=${KEY}, date=${DATE}, salt=${SALT}, signature=${SIG}`), EXPECTED);
  });

  test('tolerates extra whitespace around fields, separators and the header, and any field order', () => {
    for (const header of [
      `HMAC-SHA256 apiKey=${KEY},date=${DATE},salt=${SALT},signature=${SIG}`,
      `HMAC-SHA256    apiKey=${KEY} ,   date=${DATE} ,salt=${SALT},    signature=${SIG}   `,
      `  HMAC-SHA256 apiKey = ${KEY}, date =${DATE}, salt= ${SALT}, signature = ${SIG}`,
      `HMAC-SHA256 apiKey=${KEY},\tdate=${DATE},\tsalt=${SALT},\tsignature=${SIG}`,
      `HMAC-SHA256 signature=${SIG}, salt=${SALT}, apiKey=${KEY}, date=${DATE}`,
    ]) {
      assert.deepEqual(parseAuthorization(header), EXPECTED, JSON.stringify(header));
    }
  });

  test('keeps "=" inside a value (e.g. a base64 salt)', () => {
    const parsed = parseAuthorization(`HMAC-SHA256 apiKey=${KEY}, date=${DATE}, salt=q83vEjRWeJA=, signature=${SIG}`);
    assert.equal(parsed?.salt, 'q83vEjRWeJA=');
  });

  test('refuses missing, duplicate, unknown and empty fields, other schemes and garbage', () => {
    const good = `HMAC-SHA256 apiKey=${KEY}, date=${DATE}, salt=${SALT}, signature=${SIG}`;
    for (const header of [
      undefined,
      '',
      '   ',
      'HMAC-SHA256',
      'HMAC-SHA256 ',
      `HMAC-SHA256 date=${DATE}, salt=${SALT}, signature=${SIG}`, // no apiKey
      `HMAC-SHA256 apiKey=${KEY}, salt=${SALT}, signature=${SIG}`, // no date
      `HMAC-SHA256 apiKey=${KEY}, date=${DATE}, signature=${SIG}`, // no salt
      `HMAC-SHA256 apiKey=${KEY}, date=${DATE}, salt=${SALT}`, // no signature
      `${good}, apiKey=${KEY}`, // duplicate, same value
      `${good}, salt=other-salt-123`, // duplicate, other value
      `${good}, extra=1`,
      `${good},`,
      `HMAC-SHA256 apiKey=, date=${DATE}, salt=${SALT}, signature=${SIG}`,
      `HMAC-SHA256 apiKey=${KEY}, date=${DATE}, salt=   , signature=${SIG}`,
      `HMAC-SHA256 apiKey=${KEY}, date=${DATE}, salt, signature=${SIG}`,
      `HMAC-SHA256 apiKey=${KEY} date=${DATE}, salt=${SALT}, signature=${SIG}`, // missing comma
      `HMAC-SHA256 apikey=${KEY}, date=${DATE}, salt=${SALT}, signature=${SIG}`, // field names are case-sensitive
      good.replace('HMAC-SHA256 ', 'HMAC-SHA256'),
      good.replace('HMAC-SHA256', 'HMAC-SHA1'),
      good.replace('HMAC-SHA256', 'Bearer'),
      `Bearer ${KEY}`,
      `${good}${' '.repeat(1100)}`, // over the length cap
      'x'.repeat(5000),
    ]) {
      assert.equal(parseAuthorization(header), null, JSON.stringify(header?.slice(0, 120)));
    }
  });

  test('fast-check: any well-formed header parses back to its fields', () => {
    const value = fc.stringMatching(/^[A-Za-z0-9:.+\-=_/]{1,40}$/);
    fc.assert(fc.property(value, value, value, value, fc.constantFrom(' ', '  ', '\t'), (apiKey, date, salt, signature, gap) => {
      const header = `HMAC-SHA256 apiKey=${apiKey},${gap}date=${date},${gap}salt=${salt},${gap}signature=${signature}`;
      assert.deepEqual(parseAuthorization(header), { apiKey, date, salt, signature });
    }));
  });
});

describe('parseInstant', () => {
  const instant = Date.UTC(2026, 3, 20, 10, 0, 0, 123);
  const whole = Date.UTC(2026, 3, 20, 10, 0, 0, 0);

  test('the four forms real clients send', () => {
    assert.equal(parseInstant('2026-04-20T10:00:00.123Z'), instant);
    assert.equal(parseInstant('2026-04-20T10:00:00Z'), whole);
    assert.equal(parseInstant('2026-04-20T19:00:00.123+09:00'), instant);
    assert.equal(parseInstant('2026-04-20T19:00:00+09:00'), whole);
  });

  test('negative and zero offsets, and other fraction lengths', () => {
    assert.equal(parseInstant('2026-04-20T05:00:00.123-05:00'), instant);
    assert.equal(parseInstant('2026-04-20T10:00:00.123+00:00'), instant);
    assert.equal(parseInstant('2026-04-20T10:00:00.123-00:00'), instant);
    assert.equal(parseInstant('2026-04-20T15:30:00.123+05:30'), instant);
    assert.equal(parseInstant('2026-04-20T10:00:00.1Z'), whole + 100);
    assert.equal(parseInstant('2026-04-20T10:00:00.12Z'), whole + 120);
    assert.equal(parseInstant('2026-04-20T10:00:00.123456Z'), instant);
    assert.equal(parseInstant('2026-04-20T10:00:00.123456789Z'), instant);
    // The offset moves the instant across a day, month and year boundary.
    assert.equal(parseInstant('2027-01-01T08:59:59+09:00'), Date.UTC(2026, 11, 31, 23, 59, 59));
  });

  test('leap days: valid only in leap years', () => {
    assert.equal(parseInstant('2024-02-29T12:00:00Z'), Date.UTC(2024, 1, 29, 12));
    assert.equal(parseInstant('2000-02-29T12:00:00Z'), Date.UTC(2000, 1, 29, 12));
    assert.equal(parseInstant('2026-02-29T12:00:00Z'), null);
    assert.equal(parseInstant('2100-02-29T12:00:00Z'), null);
  });

  test('invalid calendar dates and times are refused (not rolled over)', () => {
    for (const value of [
      '2026-02-30T10:00:00Z',
      '2026-02-31T10:00:00.000+09:00',
      '2026-04-31T10:00:00Z',
      '2026-06-31T10:00:00Z',
      '2026-09-31T10:00:00Z',
      '2026-11-31T10:00:00Z',
      '2026-13-01T10:00:00Z',
      '2026-00-10T10:00:00Z',
      '2026-04-00T10:00:00Z',
      '2026-04-32T10:00:00Z',
      '2026-04-20T24:00:00Z',
      '2026-04-20T23:60:00Z',
      '2026-04-20T23:59:60Z',
      '2026-04-20T10:00:00+24:00',
      '2026-04-20T10:00:00+09:60',
    ]) {
      assert.equal(parseInstant(value), null, value);
    }
  });

  test('anything that is not one of the accepted ISO-8601 instant forms is refused', () => {
    for (const value of [
      '',
      'yesterday',
      '2026-04-20',
      '2026-04-20T10:00:00', // no zone: would be read as local time
      '2026-04-20T10:00Z', // no seconds
      '2026-04-20 10:00:00Z',
      '2026-04-20t10:00:00z',
      '2026-04-20T10:00:00.Z',
      '2026-04-20T10:00:00.1234567890Z',
      '2026-04-20T10:00:00+0900',
      '2026-04-20T10:00:00+09',
      '2026-4-20T10:00:00Z',
      '26-04-20T10:00:00Z',
      '+002026-04-20T10:00:00Z',
      ' 2026-04-20T10:00:00Z',
      '2026-04-20T10:00:00Z ',
      '2026-04-20T10:00:00Z\n',
      'Mon, 20 Apr 2026 10:00:00 GMT',
      '1776679200123',
    ]) {
      assert.equal(parseInstant(value), null, JSON.stringify(value));
    }
  });

  test('fast-check: every instant round-trips through all four forms', () => {
    const instants = fc.integer({ min: Date.UTC(1971, 0, 1), max: Date.UTC(2098, 11, 31) });
    const offsets = fc.integer({ min: -12 * 60, max: 14 * 60 });
    fc.assert(fc.property(instants, offsets, (ms, offsetMinutes) => {
      const utc = new Date(ms).toISOString();
      const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 23);
      const sign = offsetMinutes < 0 ? '-' : '+';
      const abs = Math.abs(offsetMinutes);
      const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
      assert.equal(parseInstant(utc), ms);
      assert.equal(parseInstant(utc.replace(/\.\d{3}Z$/, 'Z')), ms - (ms % 1000));
      assert.equal(parseInstant(`${local}${zone}`), ms);
      assert.equal(parseInstant(`${local.slice(0, 19)}${zone}`), ms - (ms % 1000));
    }));
  });
});

describe('sign / signatureMatches', () => {
  test('known answer: RFC 4231 test case 2 (key "Jefe"), message = date + salt', () => {
    assert.equal(sign('Jefe', 'what do ya want ', 'for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  test('agrees with `openssl dgst -sha256 -hmac` on date + salt', () => {
    const cases: [string, string, string][] = [
      ['MySecretKey0123456789abcdefghijk', '2026-04-20T10:00:00.123Z', 'c0ffeec0ffee1234'],
      ['zQ8rX1pL0aB3cD4eF5gH6iJ7kL8mN9oP', '2026-04-20T19:00:00+09:00', 'a'.repeat(64)],
      ['secret with spaces', '2026-04-20T05:00:00.000-05:00', 'salt-with-dashes_and.dots'],
      ['비밀키', '2026-04-20T10:00:00Z', '소금소금소금소금소금소금'],
    ];
    for (const [secret, date, salt] of cases) {
      const ours = sign(secret, date, salt);
      assert.match(ours, /^[0-9a-f]{64}$/, 'lower-case hex');
      assert.equal(ours, opensslHmac(secret, date + salt), `${secret} / ${date} / ${salt}`);
    }
  });

  test('matches its own signature in lower or upper case; refuses others', () => {
    const secret = 'S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tAB';
    const signature = sign(secret, DATE, SALT);
    const auth = { apiKey: KEY, date: DATE, salt: SALT };
    assert.ok(signatureMatches(secret, { ...auth, signature }));
    assert.ok(signatureMatches(secret, { ...auth, signature: signature.toUpperCase() }));
    for (const wrong of ['', 'abc', signature.slice(0, 63), `${signature}0`, `${signature.slice(0, 63)}${signature.endsWith('0') ? '1' : '0'}`, ` ${signature}`, '0'.repeat(64)]) {
      assert.ok(!signatureMatches(secret, { ...auth, signature: wrong }), wrong);
    }
    assert.ok(!signatureMatches('another secret', { ...auth, signature }));
    assert.ok(!signatureMatches(secret, { ...auth, date: '2026-04-20T10:00:00.124Z', signature }));
    assert.ok(!signatureMatches(secret, { ...auth, salt: `${SALT}x`, signature }));
    // The message is date + salt: moving characters between them does not change the signature (documented Solapi scheme).
    assert.equal(sign(secret, 'ab', 'cd'), sign(secret, 'a', 'bcd'));
  });

  test('fast-check: signatureMatches(secret, sign(secret, d, s)) holds, and no other signature matches', () => {
    const text = fc.string({ minLength: 1, maxLength: 64 });
    fc.assert(fc.property(text, text, text, fc.string({ maxLength: 80 }), (secret, date, salt, other) => {
      const auth = { apiKey: KEY, date, salt };
      const signature = sign(secret, date, salt);
      assert.ok(signatureMatches(secret, { ...auth, signature }));
      if (other.toLowerCase() !== signature) assert.ok(!signatureMatches(secret, { ...auth, signature: other }));
    }), { numRuns: 500 });
    // Other 64-digit hex strings, the most plausible forgeries.
    fc.assert(fc.property(text, text, fc.stringMatching(/^[0-9a-fA-F]{64}$/), (secret, salt, other) => {
      const signature = sign(secret, DATE, salt);
      fc.pre(other.toLowerCase() !== signature);
      assert.ok(!signatureMatches(secret, { apiKey: KEY, date: DATE, salt, signature: other }));
    }), { numRuns: 500 });
  });
});
