import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createSecretBox } from '../../src/lib/secret-box.ts';

/** API secrets sealed at rest with AES-256-GCM under the master key, bound to their API key. */

const masterKey = randomBytes(32);
const box = createSecretBox(masterKey);
const API_KEY = 'NCSABCDEFGHIJ123';
const SECRET = 'zQ8rX1pL0aB3cD4eF5gH6iJ7kL8mN9oP';

/** Flips one bit of the decoded payload at `index` (negative counts from the end) and re-encodes it. */
function tamper(sealed: string, index: number): string {
  const [version, payload] = sealed.split(':');
  const raw = Buffer.from(payload!, 'base64');
  const at = index < 0 ? raw.length + index : index;
  raw[at] = raw[at]! ^ 0x01;
  return `${version}:${raw.toString('base64')}`;
}

describe('secret box', () => {
  test('round trip, for secrets of every shape', () => {
    for (const plaintext of [SECRET, '', 'a', 'x'.repeat(10_000), '비밀 🔑 secret', '\u0000binary\u0000']) {
      const sealed = box.seal(plaintext, API_KEY);
      assert.equal(box.open(sealed, API_KEY), plaintext);
    }
  });

  test('format: v1:base64(iv 12 | tag 16 | ciphertext), readable with plain AES-256-GCM', () => {
    const sealed = box.seal(SECRET, API_KEY);
    assert.match(sealed, /^v1:[A-Za-z0-9+/]+={0,2}$/);
    const raw = Buffer.from(sealed.slice(3), 'base64');
    assert.equal(raw.length, 12 + 16 + Buffer.byteLength(SECRET));
    const decipher = createDecipheriv('aes-256-gcm', masterKey, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(API_KEY, 'utf8'));
    decipher.setAuthTag(raw.subarray(12, 28));
    assert.equal(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8'), SECRET);
  });

  test('the sealed text hides the secret, and sealing twice gives different texts (fresh IV)', () => {
    const a = box.seal(SECRET, API_KEY);
    const b = box.seal(SECRET, API_KEY);
    assert.notEqual(a, b);
    assert.notEqual(a.slice(3, 19), b.slice(3, 19), 'different IVs');
    for (const sealed of [a, b]) {
      assert.ok(!sealed.includes(SECRET));
      assert.ok(!Buffer.from(sealed.slice(3), 'base64').includes(Buffer.from(SECRET)));
    }
  });

  test('wrong associated data (another API key) fails', () => {
    const sealed = box.seal(SECRET, API_KEY);
    for (const other of ['NCSABCDEFGHIJ124', '', API_KEY.toLowerCase(), `${API_KEY} `]) {
      assert.throws(() => box.open(sealed, other), /auth|decrypt/i, JSON.stringify(other));
    }
  });

  test('tampering with IV, tag or ciphertext fails', () => {
    const sealed = box.seal(SECRET, API_KEY);
    const length = Buffer.from(sealed.slice(3), 'base64').length;
    for (let index = 0; index < length; index++) {
      assert.throws(() => box.open(tamper(sealed, index), API_KEY), Error, `byte ${index}`);
    }
  });

  test('truncated, extended, re-versioned or garbled texts fail', () => {
    const sealed = box.seal(SECRET, API_KEY);
    const raw = Buffer.from(sealed.slice(3), 'base64');
    for (const bad of [
      `v1:${raw.subarray(0, raw.length - 1).toString('base64')}`,
      `v1:${Buffer.concat([raw, Buffer.from([0])]).toString('base64')}`,
      `v1:${raw.subarray(0, 28).toString('base64')}${'A'.repeat(4)}`,
      `v1:${raw.subarray(0, 20).toString('base64')}`,
      sealed.replace('v1:', 'v2:'),
      `${sealed}:extra`,
      sealed.slice(3),
      'v1:',
      '',
      SECRET,
    ]) {
      assert.throws(() => box.open(bad, API_KEY), Error, bad);
    }
  });

  test('a truncated authentication tag is refused even when it is a true prefix of the real tag', () => {
    // GCM verifies tags as short as 4 bytes unless told the length: 2^32 tries would forge one.
    for (const plaintext of ['', SECRET]) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', masterKey, iv);
      cipher.setAAD(Buffer.from(API_KEY, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      assert.equal(box.open(`v1:${Buffer.concat([iv, tag, body]).toString('base64')}`, API_KEY), plaintext, 'the full tag opens');
      if (plaintext === '') {
        for (const length of [4, 8, 12, 15]) {
          const short = `v1:${Buffer.concat([iv, tag.subarray(0, length)]).toString('base64')}`;
          assert.throws(() => box.open(short, API_KEY), Error, `${length}-byte tag`);
        }
      }
    }
  });

  test('a wrong master key fails', () => {
    const sealed = box.seal(SECRET, API_KEY);
    const otherBox = createSecretBox(randomBytes(32));
    assert.throws(() => otherBox.open(sealed, API_KEY));
    const nearKey = Buffer.from(masterKey);
    nearKey[31] = nearKey[31]! ^ 0x80;
    assert.throws(() => createSecretBox(nearKey).open(sealed, API_KEY));
    // The same key in another box instance (another API node) opens it.
    assert.equal(createSecretBox(Buffer.from(masterKey)).open(sealed, API_KEY), SECRET);
  });

  test('the master key must be exactly 32 bytes', () => {
    for (const size of [0, 16, 24, 31, 33, 64]) {
      assert.throws(() => createSecretBox(randomBytes(size)), /32 bytes/, `${size} bytes`);
    }
  });

  test('fast-check: open(seal(x, ad), ad) = x; any other ad fails', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), (plaintext, ad, otherAd) => {
      const sealed = box.seal(plaintext, ad);
      assert.equal(box.open(sealed, ad), plaintext);
      if (otherAd !== ad) assert.throws(() => box.open(sealed, otherAd));
    }), { numRuns: 300 });
  });
});
