import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ID_PREFIXES, isId, newAccountId, newApiKey, newApiSecret, newId, newMemberId, randomChars, type IdKind } from '../../src/lib/ids.ts';

/** API.md §1.4, written out so that a prefix changed in code fails here. */
const SPEC_PREFIXES: Record<IdKind, string> = {
  entity: 'CRMET',
  property: 'CRMPP',
  record: 'CRMRC',
  relationshipType: 'CRMRT',
  relationship: 'CRMRL',
  segment: 'CRMSG',
  activity: 'CRMAC',
  event: 'CRMEV',
  file: 'CRMFL',
};
const KINDS = Object.keys(SPEC_PREFIXES) as IdKind[];
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Epoch ms of a `yyMMddHHmmssSSS` stamp (years 2000–2099). */
function stampToMs(stamp: string): number {
  const n = (from: number, to: number) => Number(stamp.slice(from, to));
  return Date.UTC(2000 + n(0, 2), n(2, 4) - 1, n(4, 6), n(6, 8), n(8, 10), n(10, 12), n(12, 15));
}

/**
 * Pearson's chi-squared statistic of the character counts in `text` against a uniform draw from
 * `alphabet`; fails on a character outside it.
 */
function chiSquared(text: string, alphabet: string): number {
  const counts = new Map<string, number>([...alphabet].map((c) => [c, 0]));
  for (const c of text) {
    assert.ok(counts.has(c), `unexpected character ${JSON.stringify(c)}`);
    counts.set(c, counts.get(c)! + 1);
  }
  const expected = text.length / alphabet.length;
  let chi = 0;
  for (const count of counts.values()) chi += (count - expected) ** 2 / expected;
  return chi;
}

/*
 * Critical values with p ≈ 1e-6 (Wilson–Hilferty), so a correct generator fails about once in a
 * million runs; a `byte % n` bias (the first 256 % n characters 25 % likelier for base62) scores
 * in the thousands at these sample sizes.
 */
const CHI_CRITICAL = { 62: 129, 36: 92, 10: 46 } as const;

describe('IDs (API.md §1.4)', () => {
  test('the prefixes are exactly the spec\'s', () => {
    assert.deepEqual({ ...ID_PREFIXES }, SPEC_PREFIXES);
    assert.equal(new Set(Object.values(ID_PREFIXES)).size, KINDS.length, 'prefixes are distinct');
  });

  for (const kind of KINDS) {
    test(`${kind}: ${SPEC_PREFIXES[kind]} + 1 + UTC yyMMddHHmmssSSS + 11 random [A-Za-z0-9], 32 characters`, () => {
      const before = Date.now();
      const id = newId(kind);
      const after = Date.now();
      assert.equal(id.length, 32);
      assert.match(id, new RegExp(`^${SPEC_PREFIXES[kind]}1\\d{15}[A-Za-z0-9]{11}$`));
      const ms = stampToMs(id.slice(6, 21));
      assert.ok(ms >= before && ms <= after, `stamp ${id.slice(6, 21)} is the generation time (${before}..${after})`);
      assert.ok(isId(kind, id));
      for (const other of KINDS.filter((k) => k !== kind)) assert.ok(!isId(other, id), `${id} is not a ${other} ID`);
    });
  }

  test('the stamp is the given instant in UTC, whatever the process time zone', () => {
    const zone = process.env.TZ;
    try {
      for (const tz of ['UTC', 'Asia/Seoul', 'America/Los_Angeles', 'Pacific/Kiritimati']) {
        process.env.TZ = tz;
        assert.equal(newId('record', new Date('2026-04-20T10:00:00.123Z')).slice(6, 21), '260420100000123', tz);
        assert.equal(newId('entity', new Date('2001-02-03T04:05:06.007Z')).slice(6, 21), '010203040506007', tz);
        assert.equal(newId('event', new Date('2099-12-31T23:59:59.999Z')).slice(6, 21), '991231235959999', tz);
        assert.equal(newId('segment', new Date('2030-01-01T00:00:00.000Z')).slice(6, 21), '300101000000000', tz);
        // Late evening UTC is the next day in Seoul: the stamp keeps the UTC date.
        assert.equal(newAccountId(new Date('2026-04-20T23:30:00.000Z')).slice(0, 6), '260420', tz);
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  test('IDs of later instants sort after earlier ones', () => {
    const instants = ['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.001Z', '2026-01-01T00:00:01.000Z', '2026-02-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'];
    const ids = instants.map((i) => newId('record', new Date(i)));
    assert.deepEqual([...ids].sort(), ids);
  });

  test('isId rejects near misses', () => {
    const id = newId('record', new Date('2026-04-20T10:00:00.123Z'));
    for (const bad of [
      id.slice(0, 31),
      `${id}x`,
      `${id}\n`,
      ` ${id}`,
      id.toLowerCase(),
      `CRMRC2${id.slice(6)}`,
      `${id.slice(0, 10)}x${id.slice(11)}`,
      `${id.slice(0, 31)}-`,
      `${id.slice(0, 31)}_`,
      '',
    ]) {
      assert.ok(!isId('record', bad), JSON.stringify(bad));
    }
  });

  test('member IDs: MEM + 11 [A-Za-z0-9]', () => {
    for (let i = 0; i < 1000; i++) assert.match(newMemberId(), /^MEM[A-Za-z0-9]{11}$/);
  });

  test('account IDs: 14 digits, led by the UTC yyMMdd of creation', () => {
    for (let i = 0; i < 1000; i++) {
      const before = new Date().toISOString();
      const id = newAccountId();
      const after = new Date().toISOString();
      assert.match(id, /^\d{14}$/);
      const day = id.slice(0, 6);
      const fmt = (iso: string) => iso.slice(2, 4) + iso.slice(5, 7) + iso.slice(8, 10);
      assert.ok(day === fmt(before) || day === fmt(after), `${day} is today (UTC)`);
    }
    assert.equal(newAccountId(new Date('2026-04-20T10:00:00Z')).slice(0, 6), '260420');
  });

  test('API keys NCS + 13 [A-Z0-9]; secrets 32 [A-Za-z0-9]', () => {
    for (let i = 0; i < 1000; i++) {
      assert.match(newApiKey(), /^NCS[A-Z0-9]{13}$/);
      assert.match(newApiSecret(), /^[A-Za-z0-9]{32}$/);
    }
  });

  test('no collisions over 1,000,000 IDs generated in the same millisecond', () => {
    // One instant for all: only the 11 random characters tell them apart (the hardest case).
    const count = 1_000_000;
    const instant = new Date('2026-04-20T10:00:00.000Z');
    const ids = new Set<string>();
    for (let i = 0; i < count; i++) ids.add(newId('record', instant));
    assert.equal(ids.size, count);
  });

  test('no collisions over 200,000 member IDs, API keys and API secrets each', () => {
    for (const generate of [newMemberId, newApiKey, newApiSecret]) {
      const seen = new Set<string>();
      for (let i = 0; i < 200_000; i++) seen.add(generate());
      assert.equal(seen.size, 200_000, generate.name);
    }
    // Account IDs have only 8 random digits per day (10^8): a million would collide by the
    // birthday bound (~5,000 pairs), so account creation retries instead (members.test.ts).
  });

  test('random characters are uniform over their alphabet (chi-squared), in bulk and per ID position', () => {
    const bulk = chiSquared(randomChars(620_000), BASE62);
    assert.ok(bulk < CHI_CRITICAL[62], `randomChars chi² ${bulk.toFixed(1)}`);
    const tails = Array.from({ length: 20_000 }, () => newId('record').slice(21));
    const overall = chiSquared(tails.join(''), BASE62);
    assert.ok(overall < CHI_CRITICAL[62], `ID tails chi² ${overall.toFixed(1)}`);
    for (let position = 0; position < 11; position++) {
      const column = tails.map((tail) => tail[position]).join('');
      const chi = chiSquared(column, BASE62);
      assert.ok(chi < CHI_CRITICAL[62], `position ${position}: chi² ${chi.toFixed(1)}`);
    }
    const keyChars = Array.from({ length: 20_000 }, () => newApiKey().slice(3)).join('');
    const keyChi = chiSquared(keyChars, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789');
    assert.ok(keyChi < CHI_CRITICAL[36], `API key chi² ${keyChi.toFixed(1)}`);
    const digits = Array.from({ length: 20_000 }, () => newAccountId().slice(6)).join('');
    const digitChi = chiSquared(digits, '0123456789');
    assert.ok(digitChi < CHI_CRITICAL[10], `account digits chi² ${digitChi.toFixed(1)}`);
  });

  test('the uniformity check would catch a modulo bias (the check is not vacuous)', () => {
    const biased = Array.from({ length: 660_000 }, (_, i) => BASE62[((i * 2654435761) >>> 0) % 256 % 62]).join('');
    assert.ok(chiSquared(biased, BASE62) > 10 * CHI_CRITICAL[62]);
  });

  test('randomChars returns exactly the requested length from the given alphabet', () => {
    for (const length of [0, 1, 11, 13, 32, 100, 1000]) {
      const text = randomChars(length);
      assert.equal(text.length, length);
      assert.match(text, /^[A-Za-z0-9]*$/);
    }
    assert.match(randomChars(50, 'ab'), /^[ab]{50}$/);
    assert.equal(randomChars(20, 'x'), 'x'.repeat(20));
    // An empty alphabet used to spin forever; now it is refused.
    assert.throws(() => randomChars(5, ''), RangeError);
  });
});
