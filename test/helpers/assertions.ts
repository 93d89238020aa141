import assert from 'node:assert/strict';

/** What an injected or fetched response offers the assertions. */
export type Res = { statusCode: number; body: string; json(): any };

/** The response is `{errorCode, errorMessage}` with this status and code (and, optionally, message text). */
export function expectError(res: Res, status: number, code: string, messageIncludes?: string): void {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.json().errorCode, code, res.body);
  assert.equal(typeof res.json().errorMessage, 'string', res.body);
  if (messageIncludes) assert.ok(res.json().errorMessage.includes(messageIncludes), `"${res.json().errorMessage}" should mention ${messageIncludes}`);
}

let seq = 0;
/** A name no other test in this process uses (slugs, property names, …). */
export const uniq = (base: string) => `${base}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
