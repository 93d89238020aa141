import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { authorization, type Credentials } from '../helpers/sign.ts';
import { registeredRoutes, type Route } from '../helpers/routes.ts';

/**
 * Every failure is `{errorCode, errorMessage}` (optionally `details`) with the right status
 * (API.md §1.1, §1.3), whatever the client sends: unknown routes, broken JSON, other media types,
 * over-size bodies, schema violations, prototype-pollution keys, and a garbage sweep over every
 * route the app registers.
 */

const BASE = '/crm-core/v1';
/** Routes (HEAD mirrors aside) that get every garbage request; past this, each gets a share. */
const ROUTE_BUDGET = 40;

/** Every errorCode the API may answer with (API.md §1.2, §1.3). */
const KNOWN_ERROR_CODES = new Set([
  'ValidationError', 'Unauthorized', 'InvalidApiKey', 'SignatureDoesNotMatch', 'RequestTimeTooSkewed',
  'DuplicatedSignature', 'Forbidden', 'PlanQuotaExceeded', 'NotFound', 'DuplicateEntity', 'ConflictException',
  'Gone', 'PayloadTooLarge', 'UnsupportedMediaType', 'TooManyRequests', 'InternalServerError', 'ServiceUnavailable',
  'IdempotencyKeyInProgress', 'IdempotencyKeyReused', 'PreconditionFailed',
]);

type Res = LightMyRequestResponse;

/** What is wrong with an error response, or undefined: the shared shape of every failure. */
function errorShapeProblem(res: Res): string | undefined {
  const requestId = res.headers['x-request-id'];
  if (typeof requestId !== 'string' || requestId === '') return 'no x-request-id header';
  if (res.statusCode < 400) return undefined;
  if (!String(res.headers['content-type'] ?? '').startsWith('application/json')) return `content-type ${String(res.headers['content-type'])}`;
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    return 'body is not JSON';
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'body is not an object';
  const { errorCode, errorMessage, details, ...rest } = body as Record<string, unknown>;
  if (typeof errorCode !== 'string' || !KNOWN_ERROR_CODES.has(errorCode)) return `unknown errorCode ${JSON.stringify(errorCode)}`;
  if (typeof errorMessage !== 'string' || errorMessage === '') return 'errorMessage missing';
  if (details !== undefined && !Array.isArray(details)) return 'details is not an array';
  if (Object.keys(rest).length) return `extra fields ${Object.keys(rest).join(', ')}`;
  if (/\bat .+\.(ts|js):\d+|node_modules|SELECT |INSERT |UPDATE |DELETE FROM/i.test(res.body)) return 'leaks internals';
  return undefined;
}

function expectError(res: Res, status: number, code: string): { errorCode: string; errorMessage: string; details?: { path?: string; message: string }[] } {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(errorShapeProblem(res), undefined, res.body);
  const body = res.json();
  assert.equal(body.errorCode, code, res.body);
  return body;
}

describe('error responses (API.md §1.3)', () => {
  let t: TestApp;
  let owner: TestAccount;

  before(async () => {
    t = await startTestApp();
    owner = await t.newAccount();
  });
  after(() => t.close());

  /** A signed request with a raw payload and explicit headers (t.call always JSON-encodes). */
  const raw = (creds: Credentials | undefined, method: InjectOptions['method'], url: string, payload?: string | Buffer, headers: Record<string, string> = {}) =>
    t.app.inject({
      method,
      url,
      headers: { ...(creds ? { authorization: authorization(creds) } : {}), ...headers },
      ...(payload === undefined ? {} : { payload }),
    });

  async function memberNames(): Promise<string[]> {
    const res = await t.call(owner, 'GET', `${BASE}/members`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json().map((m: { name: string }) => m.name);
  }

  describe('unknown routes are 404 NotFound', () => {
    for (const [method, url] of [
      ['GET', '/nope'],
      ['GET', '/'],
      ['POST', '/healthz'],
      ['GET', `${BASE}`],
      ['GET', `${BASE}/nope`],
      ['GET', `${BASE}/members/MEM00000000000/extra`],
      ['PUT', `${BASE}/members`],
      ['DELETE', `${BASE}/members`],
      ['PATCH', `${BASE}/usage`],
      ['OPTIONS', `${BASE}/members`],
      ['GET', `${BASE}/api-keys/NCS0000000000000`],
      ['GET', '/crm-core/v2/members'],
    ] as const) {
      test(`${method} ${url}`, async () => {
        for (const creds of [undefined, owner]) {
          const res = await raw(creds, method, url);
          const body = expectError(res, 404, 'NotFound');
          assert.ok(body.errorMessage.length < 400);
        }
      });
    }

    test('the path is echoed bounded and inert', async () => {
      const res = await raw(owner, 'GET', `/${'a'.repeat(5000)}<script>`);
      const body = expectError(res, 404, 'NotFound');
      assert.ok(body.errorMessage.length < 400, 'the message does not echo a 5000-character path');
    });
  });

  describe('malformed JSON is 400 ValidationError', () => {
    for (const payload of ['{"name":', '{name: "x"}', "{'name':'x'}", '{"name":"x",}', '{"name":"x"} trailing', 'NaN', '[1,]', '"unterminated', '\u0000', '{"name":"x"}\u0000']) {
      test(JSON.stringify(payload), async () => {
        const res = await raw(owner, 'POST', `${BASE}/members`, payload, { 'content-type': 'application/json' });
        const body = expectError(res, 400, 'ValidationError');
        assert.match(body.errorMessage, /^body: malformed JSON/);
      });
    }

    test('invalid UTF-8 bytes', async () => {
      const res = await raw(owner, 'POST', `${BASE}/members`, Buffer.from([0x7b, 0xff, 0xfe, 0xc3, 0x28, 0x7d]), { 'content-type': 'application/json' });
      expectError(res, 400, 'ValidationError');
    });

    test('also on PATCH and on a bodiless DELETE that sends one', async () => {
      expectError(await raw(owner, 'PATCH', `${BASE}/members/${owner.memberId}`, '{"role":', { 'content-type': 'application/json' }), 400, 'ValidationError');
      expectError(await raw(owner, 'DELETE', `${BASE}/api-keys/NCS0000000000000`, '{oops', { 'content-type': 'application/json' }), 400, 'ValidationError');
    });
  });

  describe('bodies that are not JSON are 415 UnsupportedMediaType', () => {
    for (const [type, payload] of [
      ['text/plain', '{"name":"plain text"}'],
      ['text/plain; charset=utf-8', '{"name":"plain text utf8"}'],
      ['application/xml', '<member><name>xml</name></member>'],
      ['text/xml', '<member/>'],
      ['application/x-www-form-urlencoded', 'name=form'],
      ['multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nmultipart\r\n--xyz--'],
      ['application/json-patch+json', '[{"op":"add","path":"/name","value":"patch"}]'],
      ['application/octet-stream', '{"name":"bytes"}'],
      ['garbage;;;', '{"name":"garbage"}'],
    ] as const) {
      test(type, async () => {
        const before = await memberNames();
        const res = await raw(owner, 'POST', `${BASE}/members`, payload, { 'content-type': type });
        const body = expectError(res, 415, 'UnsupportedMediaType');
        assert.ok(body.errorMessage.includes(type.split(';')[0]!), `the message names the type: ${body.errorMessage}`);
        assert.deepEqual(await memberNames(), before, 'nothing was created');
      });
    }

    test('a body without any Content-Type', async () => {
      const res = await raw(owner, 'POST', `${BASE}/members`, '{"name":"untyped"}');
      expectError(res, 415, 'UnsupportedMediaType');
    });

    test('application/json with a charset parameter is JSON', async () => {
      const res = await raw(owner, 'POST', `${BASE}/members`, '{"name":"charset"}', { 'content-type': 'application/json; charset=utf-8' });
      assert.equal(res.statusCode, 201, res.body);
    });
  });

  describe('over-size bodies are 413 PayloadTooLarge', () => {
    const LIMIT = 64;
    let small: TestApp;
    let account: TestAccount;
    before(async () => {
      small = await startTestApp({ bodyLimit: LIMIT, database: t.database });
      account = await small.newAccount();
    });
    after(() => small.close());

    const post = (payload: string) => small.app.inject({
      method: 'POST',
      url: `${BASE}/members`,
      headers: { authorization: authorization(account), 'content-type': 'application/json' },
      payload,
    });
    /** `{"name":"…"}` whose UTF-8 encoding is exactly `bytes` long. */
    const bodyOf = (bytes: number, filler = 'a') => {
      const shell = Buffer.byteLength('{"name":""}');
      const unit = Buffer.byteLength(filler);
      const units = Math.floor((bytes - shell) / unit);
      const body = `{"name":"${filler.repeat(units)}${'b'.repeat(bytes - shell - units * unit)}"}`;
      assert.equal(Buffer.byteLength(body), bytes);
      return body;
    };

    test('exactly the limit is accepted; one byte more is 413', async () => {
      const ok = await post(bodyOf(LIMIT));
      assert.equal(ok.statusCode, 201, ok.body);
      const tooBig = await post(bodyOf(LIMIT + 1));
      const body = expectError(tooBig, 413, 'PayloadTooLarge');
      assert.ok(body.errorMessage.includes(String(LIMIT)), body.errorMessage);
    });

    test('the limit counts bytes, not characters', async () => {
      // 3-byte Hangul: 17 characters fill 51 of the 53 bytes between the quotes.
      const exact = bodyOf(LIMIT, '한');
      assert.ok(exact.length < LIMIT);
      assert.equal((await post(exact)).statusCode, 201);
      expectError(await post(bodyOf(LIMIT + 1, '한')), 413, 'PayloadTooLarge');
    });

    test('a body of exactly the limit reaches validation', async () => {
      const body = `{"name":"x","nope":"${'z'.repeat(LIMIT - Buffer.byteLength('{"name":"x","nope":""}'))}"}`;
      assert.equal(Buffer.byteLength(body), LIMIT);
      const res = await post(body);
      const error = expectError(res, 400, 'ValidationError');
      assert.ok(error.details?.some((d) => d.path === 'body/nope'));
    });

    test('far over the limit, and on a route without a body schema', async () => {
      expectError(await post(`{"name":"${'x'.repeat(10_000)}"}`), 413, 'PayloadTooLarge');
      const res = await small.app.inject({
        method: 'DELETE',
        url: `${BASE}/api-keys/NCS0000000000000`,
        headers: { authorization: authorization(account), 'content-type': 'application/json' },
        payload: `[${'1,'.repeat(100)}1]`,
      });
      expectError(res, 413, 'PayloadTooLarge');
    });
  });

  describe('schema violations are 400 naming the field', () => {
    async function violation(method: 'POST' | 'PATCH', url: string, body: unknown, field: string, messagePattern?: RegExp) {
      const res = await t.call(owner, method, url, body);
      const error = expectError(res, 400, 'ValidationError');
      assert.ok(error.errorMessage.includes(field), `errorMessage "${error.errorMessage}" names ${field}`);
      assert.ok(Array.isArray(error.details) && error.details.length > 0, 'details are listed');
      const detail = error.details!.find((d) => d.path === `body/${field}`);
      assert.ok(detail, `a detail at body/${field}: ${JSON.stringify(error.details)}`);
      if (messagePattern) assert.match(detail.message, messagePattern);
      return error;
    }

    test('unknown field', async () => {
      await violation('POST', `${BASE}/members`, { name: 'x', nickname: 'y' }, 'nickname', /unknown/);
    });

    test('wrong enum value', async () => {
      await violation('POST', `${BASE}/members`, { name: 'x', role: 'SUPERUSER' }, 'role', /OWNER, ADMIN, MEMBER/);
      await violation('POST', `${BASE}/members`, { name: 'x', role: 'owner' }, 'role');
    });

    test('missing required field', async () => {
      await violation('POST', `${BASE}/members`, { role: 'ADMIN' }, 'name', /required/);
      await violation('POST', `${BASE}/members`, {}, 'name', /required/);
    });

    test('a missing body names the missing fields', async () => {
      const res = await raw(owner, 'POST', `${BASE}/members`, undefined, { 'content-type': 'application/json' });
      const error = expectError(res, 400, 'ValidationError');
      assert.ok(error.details?.some((d) => d.path === 'body/name'), res.body);
    });

    test('wrong types and formats', async () => {
      await violation('POST', `${BASE}/members`, { name: 42 }, 'name', /string/);
      await violation('POST', `${BASE}/members`, { name: '' }, 'name');
      await violation('POST', `${BASE}/members`, { name: 'x'.repeat(101) }, 'name');
      await violation('POST', `${BASE}/members`, { name: 'x', email: 'not-an-email' }, 'email');
      await violation('PATCH', `${BASE}/members/${owner.memberId}`, { role: ['OWNER'] }, 'role');
      await violation('POST', `${BASE}/api-keys`, { memberId: 'nobody' }, 'memberId');
    });

    test('every violation is listed in details', async () => {
      const error = expectError(await t.call(owner, 'POST', `${BASE}/members`, { name: 7, role: 'KING', extra: true }), 400, 'ValidationError');
      const paths = error.details!.map((d) => d.path).sort();
      assert.deepEqual(paths, ['body/extra', 'body/name', 'body/role']);
      assert.match(error.errorMessage, /^body\/(extra|name|role): .* \(and 2 more\)$/);
    });

    test('the body must be an object', async () => {
      for (const body of [[], [{ name: 'x' }], 'x', 1, true]) {
        const res = await t.call(owner, 'POST', `${BASE}/members`, body);
        expectError(res, 400, 'ValidationError');
      }
    });

    test('path parameters', async () => {
      const error = expectError(await t.call(owner, 'GET', `${BASE}/members/${'M'.repeat(65)}`), 400, 'ValidationError');
      assert.ok(error.details?.some((d) => d.path === 'params/memberId'), JSON.stringify(error));
      expectError(await t.call(owner, 'GET', `${BASE}/members/${'M'.repeat(201)}`), 400, 'ValidationError');
      expectError(await t.call(owner, 'GET', `${BASE}/members/MEM00000000000`), 404, 'NotFound');
    });

    test('the NUL character, which PostgreSQL cannot store, is a 400 wherever it is', async () => {
      let error = expectError(await t.call(owner, 'POST', `${BASE}/members`, { name: 'a\u0000b' }), 400, 'ValidationError');
      assert.ok(error.details?.some((d) => d.path === 'body/name'));
      error = expectError(await t.call(owner, 'GET', `${BASE}/members/a%00b`), 400, 'ValidationError');
      assert.ok(error.details?.some((d) => d.path === 'params/memberId'));
      expectError(await t.call(owner, 'PATCH', `${BASE}/members/%00`, { name: 'x' }), 400, 'ValidationError');
      expectError(await t.call(owner, 'DELETE', `${BASE}/api-keys/%00`), 400, 'ValidationError');
    });

    test('what would be stored as something else is a 400: lone surrogates, numbers beyond double range', async () => {
      const before = (await t.call(owner, 'GET', `${BASE}/members`)).json().length;
      for (const payload of ['{"name":"a\\ud800b"}', '{"name":"\\udc00"}', '{"name":"x","\\ud800":1}', '{"name":"x","email":1e309}', '{"name":"x","email":[-1e309]}']) {
        const error = expectError(await raw(owner, 'POST', `${BASE}/members`, payload, { 'content-type': 'application/json' }), 400, 'ValidationError');
        assert.match(error.errorMessage, /lone surrogate|finite number/, payload);
      }
      assert.equal((await t.call(owner, 'GET', `${BASE}/members`)).json().length, before, 'nothing was written');
      // A well-formed pair (an emoji) is fine.
      assert.equal((await t.call(owner, 'POST', `${BASE}/members`, { name: 'smile \ud83d\ude00' })).statusCode, 201);
    });

    test('URLs that are not valid percent-encoded UTF-8', async () => {
      for (const segment of ['%', '%ZZ', '%C3%28', '%ED%A0%80', '%FF']) {
        for (const creds of [undefined, owner]) {
          expectError(await raw(creds, 'GET', `${BASE}/members/${segment}`), 400, 'ValidationError');
        }
      }
    });

    test('JSON nested absurdly deep', async () => {
      for (const payload of ['['.repeat(10_000) + ']'.repeat(10_000), `{"name":"x","email":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`]) {
        const error = expectError(await raw(owner, 'POST', `${BASE}/members`, payload, { 'content-type': 'application/json' }), 400, 'ValidationError');
        assert.match(error.errorMessage, /nested deeper/);
      }
    });
  });

  describe('prototype-pollution keys are 400 and pollute nothing', () => {
    const payloads = [
      '{"name":"polluter","__proto__":{"polluted":"yes"}}',
      '{"__proto__":{"role":"OWNER","polluted":"yes"},"name":"polluter"}',
      '{"name":"polluter","constructor":{"prototype":{"polluted":"yes"}}}',
      '{"name":"polluter","constructor":"x"}',
      '{"name":"polluter","email":{"__proto__":{"polluted":"yes"}}}',
      '[{"__proto__":{"polluted":"yes"}}]',
      '{"name":"polluter","\\u005f_proto__":{"polluted":"yes"}}',
    ];
    for (const payload of payloads) {
      test(payload, async () => {
        for (const [method, url] of [['POST', `${BASE}/members`], ['PATCH', `${BASE}/members/${owner.memberId}`], ['POST', `${BASE}/api-keys`]] as const) {
          const res = await raw(owner, method, url, payload, { 'content-type': 'application/json' });
          const error = expectError(res, 400, 'ValidationError');
          assert.match(error.errorMessage, /__proto__|constructor/, `${method} ${url}: ${error.errorMessage}`);
        }
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
        assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
        assert.ok(!(await memberNames()).includes('polluter'));
      });
    }

    test('in query strings too', async () => {
      for (const query of ['__proto__[polluted]=yes', 'constructor[prototype][polluted]=yes', '__proto__.polluted=yes']) {
        const res = await raw(owner, 'GET', `${BASE}/members?${query}`);
        assert.ok(res.statusCode < 500);
        assert.equal(errorShapeProblem(res), undefined, res.body);
      }
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });

    test('the owner was not changed by any of it', async () => {
      const res = await t.call(owner, 'GET', `${BASE}/members/${owner.memberId}`);
      assert.equal(res.statusCode, 200);
      assert.equal(res.json().name, 'Owner');
      assert.equal(res.json().role, 'OWNER');
    });
  });

  describe('bodiless requests that say Content-Type: application/json (real Solapi clients)', () => {
    test('DELETE with an empty JSON body is accepted', async () => {
      const created = await t.call(owner, 'POST', `${BASE}/members`, { name: 'to delete' });
      assert.equal(created.statusCode, 201, created.body);
      const memberId = created.json().memberId;
      const res = await raw(owner, 'DELETE', `${BASE}/members/${memberId}`, '', { 'content-type': 'application/json' });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { memberId });
      expectError(await t.call(owner, 'GET', `${BASE}/members/${memberId}`), 404, 'NotFound');
    });

    test('DELETE with Content-Type but no payload at all, or only whitespace', async () => {
      for (const payload of [undefined, ' \r\n']) {
        const key = await t.call(owner, 'POST', `${BASE}/api-keys`, { name: 'to revoke' });
        assert.equal(key.statusCode, 201, key.body);
        const res = await raw(owner, 'DELETE', `${BASE}/api-keys/${key.json().apiKey}`, payload, { 'content-type': 'application/json; charset=utf-8' });
        assert.equal(res.statusCode, 200, res.body);
      }
    });

    test('POST whose body fields are all optional accepts no body', async () => {
      const res = await raw(owner, 'POST', `${BASE}/api-keys`, '', { 'content-type': 'application/json' });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().memberId, owner.memberId);
    });
  });

  describe('garbage sweep over every registered route', () => {
    const crashes: unknown[] = [];
    const onCrash = (error: unknown) => { crashes.push(error); };
    let routes: Route[];
    let victim: { memberId: string; apiKey: string };
    const problems: string[] = [];
    let signedAuthFailures = 0;
    let sent = 0;

    before(async () => {
      process.on('uncaughtException', onCrash);
      process.on('unhandledRejection', onCrash);
      routes = registeredRoutes(t.app.printRoutes({ commonPrefix: false }));
      const member = await t.addMember(owner, 'MEMBER');
      victim = { memberId: member.memberId, apiKey: member.apiKey };
    });
    after(() => {
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
    });

    /** Sends one request unsigned and signed as the OWNER; records anything wrong with either answer. */
    async function send(label: string, request: GarbageRequest) {
      for (const signed of [false, true]) {
        const headers: Record<string, string> = { ...request.headers };
        if (signed) headers.authorization = authorization(owner);
        let res: Res;
        try {
          res = await t.app.inject({ method: request.method, url: request.url, headers, ...(request.payload === undefined ? {} : { payload: request.payload }) });
        } catch (error) {
          // light-my-request refused to build the request (client side): nothing reached the server.
          if (error instanceof TypeError || (error as { code?: string }).code === 'ERR_INVALID_URL') continue;
          throw error;
        }
        sent++;
        const where = `${signed ? 'signed' : 'unsigned'} ${request.method} ${request.url.slice(0, 120)} [${label}]`;
        if (res.statusCode >= 500) problems.push(`${where}: ${res.statusCode} ${res.body.slice(0, 200)}`);
        const shape = request.method === 'HEAD' ? (res.headers['x-request-id'] ? undefined : 'no x-request-id') : errorShapeProblem(res);
        if (shape) problems.push(`${where}: ${shape}: ${res.statusCode} ${res.body.slice(0, 200)}`);
        if (signed && res.statusCode === 401 && request.url.startsWith(BASE)) {
          signedAuthFailures++;
          problems.push(`${where}: a signed request was refused: ${res.body.slice(0, 200)}`);
        }
      }
    }

    async function sendAll(label: string, requests: GarbageRequest[]) {
      const queue = [...requests];
      await Promise.all(Array.from({ length: 8 }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) await send(label, next);
      }));
    }

    test('the route list is complete', () => {
      const keys = routes.map((r) => `${r.method} ${r.path}`);
      for (const expected of [
        `GET ${BASE}/members`, `POST ${BASE}/members`, `PATCH ${BASE}/members/:memberId`, `DELETE ${BASE}/api-keys/:apiKey`,
        `GET ${BASE}/usage`, `GET ${BASE}/public/openapi/json`, 'GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /docs', 'GET /docs/*',
      ]) assert.ok(keys.includes(expected), `${expected} in ${keys.join(', ')}`);
    });

    test('the route list covers the OpenAPI document', async () => {
      const doc = (await t.app.inject({ method: 'GET', url: `${BASE}/public/openapi/json` })).json();
      const keys = new Set(routes.map((r) => `${r.method} ${r.path}`));
      for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
        for (const method of Object.keys(item)) {
          const key = `${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`;
          assert.ok(keys.has(key), `${key} is enumerated`);
        }
      }
    });

    // HEAD routes are Fastify's mirrors of the GET ones: they get the generated requests only.
    const swept = () => routes.filter((r) => r.method !== 'HEAD');
    /**
     * Keeps the file fast as the API grows: past ROUTE_BUDGET routes, each route gets a rotating
     * share of every garbage list, so that across routes every item is still sent.
     */
    const share = <T>(list: T[], routeIndex: number): T[] => {
      const fraction = Math.min(1, ROUTE_BUDGET / swept().length);
      if (fraction >= 1) return list;
      const count = Math.max(1, Math.ceil(list.length * fraction));
      return Array.from({ length: count }, (_, i) => list[(routeIndex * count + i) % list.length]!);
    };

    test('hostile path parameters', async () => {
      for (const [index, route] of swept().entries()) {
        if (!route.params.length) continue;
        const requests = share(PATH_GARBAGE, index).map((segment): GarbageRequest => ({ method: route.method as InjectOptions['method'], url: fill(route, () => segment), headers: {} }));
        await sendAll('path', requests);
      }
    });

    test('garbage query strings', async () => {
      const doc = (await t.app.inject({ method: 'GET', url: `${BASE}/public/openapi/json` })).json();
      for (const [index, route] of swept().entries()) {
        if (route.method !== 'GET' && !hasQueryParameters(doc, route)) continue;
        const url = fill(route, (name) => realId(name, victim));
        await sendAll('query', share(QUERY_GARBAGE, index).map((query): GarbageRequest => ({ method: route.method as InjectOptions['method'], url: `${url}?${query}`, headers: {} })));
      }
    });

    test('garbage bodies', async () => {
      const doc = (await t.app.inject({ method: 'GET', url: `${BASE}/public/openapi/json` })).json();
      for (const [index, route] of swept().entries()) {
        if (!['POST', 'PUT', 'PATCH', 'DELETE'].includes(route.method)) continue;
        const url = fill(route, (name) => realId(name, victim));
        const schema = requestBodySchema(doc, route);
        const bodies = [...share(BODY_GARBAGE, index), ...wrongTypedBodies(schema)];
        await sendAll('body', bodies.map((b): GarbageRequest => ({
          method: route.method as InjectOptions['method'],
          url,
          headers: b.type === undefined ? {} : { 'content-type': b.type },
          ...(b.payload === undefined ? {} : { payload: b.payload }),
        })));
      }
    });

    test('generated requests (fast-check)', async () => {
      for (const route of routes) {
        const hasBody = ['POST', 'PUT', 'PATCH', 'DELETE'].includes(route.method);
        await fc.assert(fc.asyncProperty(arbitraryRequest(route, hasBody), async (request) => {
          const before = problems.length;
          await send('generated', request);
          if (problems.length > before) throw new Error(problems.slice(before).join('\n'));
        }), { numRuns: route.method === 'HEAD' ? 3 : Math.max(4, Math.round(10 * Math.min(1, ROUTE_BUDGET / swept().length))), endOnFailure: true });
      }
    });

    test('no request crashed, answered 5xx, or broke the error format', (ctx) => {
      ctx.diagnostic(`${sent} requests over ${routes.length} routes`);
      assert.ok(sent > 1000, `${sent} requests were sent`);
      assert.equal(signedAuthFailures, 0, 'every signed request was authenticated, so the sweep reached the handlers');
      assert.deepEqual(problems.slice(0, 30), []);
      assert.deepEqual(crashes, []);
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
    });

    test('the owner still works afterwards', async () => {
      const res = await t.call(owner, 'GET', `${BASE}/members/${owner.memberId}`);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().role, 'OWNER');
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Route enumeration and garbage generators.

interface GarbageRequest {
  method: InjectOptions['method'];
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

/** The route's URL with each parameter replaced (values are inserted as given: encode them first). */
function fill(route: Route, value: (name: string) => string): string {
  return route.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => value(name)).replace(/\*$/, () => value('*'));
}

/** Real IDs of a sacrificial member and key, so some garbage reaches handlers past "not found". */
function realId(name: string, victim: { memberId: string; apiKey: string }): string {
  if (name === 'memberId') return victim.memberId;
  if (name === 'apiKey') return victim.apiKey;
  return 'x';
}

/** Percent-encodes every byte of the UTF-8 encoding (always a well-formed URL segment). */
const encodeAll = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');

/** Path segments, already in URL form: some valid encodings of hostile text, some broken encodings. */
const PATH_GARBAGE = [
  'x'.repeat(5000), 'x'.repeat(201), 'x'.repeat(65),
  encodeURIComponent('한글💩ñ\u202e\ufeff'), encodeAll('\u0001\u001b[31m\r\nset-cookie: x=1'), 'a%00b',
  '..%2F..%2F..%2Fetc%2Fpasswd', '..', '../../../etc/passwd', '%20',
  '%', '%C3%28', '%ED%A0%80',
  encodeURIComponent("' OR '1'='1"), encodeURIComponent('1; DROP TABLE members;--'),
  encodeURIComponent('${jndi:ldap://x/a}<script>alert(1)</script>{{7*7}}'),
  '-1', '1e309', '__proto__', 'constructor', 'MEM00000000000', `CRMRC1${'0'.repeat(26)}`,
];

const QUERY_GARBAGE = [
  'limit=-1', 'limit=0', 'limit=1e309', 'limit=NaN', 'limit=9007199254740993', 'limit=abc&limit=2', 'limit[]=1',
  'startKey=%00', `startKey=${'x'.repeat(10_000)}`, 'startKey=..%2F..%2F', `startKey=${encodeURIComponent("' OR 1=1--")}`,
  '__proto__[polluted]=1&constructor[prototype][polluted]=1', '%ZZ=%ZZ', 'a=%FF%FE%C3%28', `${'a=1&'.repeat(2000)}b=2`,
  'filter[$where]=1', 'x=%00&y=%0A', '=&=&&==', `q=${encodeURIComponent('💩'.repeat(500))}`,
];

interface GarbageBody { type: string | undefined; payload: string | Buffer | undefined }

const json = (payload: string | Buffer): GarbageBody => ({ type: 'application/json', payload });

const BODY_GARBAGE: GarbageBody[] = [
  json(''), json('null'), json('0'), json('-1'), json('1e309'), json('-1e309'), json('1e-400'), json('9'.repeat(400)), json('true'),
  json('"str"'), json('[1,2,3]'), json('{}'), json('{"a":1,"a":2}'), json('{"name":1e309}'),
  json('['.repeat(10_000) + ']'.repeat(10_000)),  // 10k levels
  json(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`),
  json(`{"name":"${'x'.repeat(900_000)}"}`),
  json(`{"name":"${'x'.repeat(1024 * 1024)}"}`), // over the default 1 MiB limit
  json(Buffer.from([0xff, 0xfe, 0xfd])),
  json(Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80, 0xf0, 0x9f]), Buffer.from('"}')])),
  json('not json'), json('{"name":"a\\u0000"}'), json('{"name":"\\ud800"}'),
  json('{"__proto__":{"polluted":1}}'), json('{"constructor":{"prototype":{"polluted":1}}}'), json('NaN'),
  json(`{${Array.from({ length: 5000 }, (_, i) => `"k${i}":${i}`).join(',')}}`),
  json(`[${Array.from({ length: 50_000 }, () => '{"a":[1]}').join(',')}]`),
  { type: 'text/plain', payload: 'hello' },
  { type: 'application/x-www-form-urlencoded', payload: 'a=1&__proto__[x]=1' },
  { type: 'application/json; charset=utf-16', payload: '{"name":"x"}' },
  { type: undefined, payload: '{"name":"no content type"}' },
  { type: 'application/json', payload: undefined },
];

function operation(doc: any, route: Route): any {
  return doc.paths?.[route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]?.[route.method.toLowerCase()];
}

function hasQueryParameters(doc: any, route: Route): boolean {
  return (operation(doc, route)?.parameters ?? []).some((p: { in?: string }) => p.in === 'query');
}

/** The JSON schema of the route's request body in the OpenAPI document, if any. */
function requestBodySchema(doc: any, route: Route): any {
  return operation(doc, route)?.requestBody?.content?.['application/json']?.schema;
}

const WRONG_VALUES = ['null', '0', '-1', '1e308', 'true', '""', `"${'x'.repeat(10_000)}"`, '"\\u0000"', '[]', '{}', '[[[[]]]]', '"MEM00000000000"'];

/** For each property the body schema declares: the body with that property set to values of every wrong type. */
function wrongTypedBodies(schema: any): GarbageBody[] {
  const properties = Object.keys(schema?.properties ?? {});
  const bodies: GarbageBody[] = [];
  // Each property gets a few wrong values, rotating so that together they use every one.
  properties.forEach((property, i) => {
    for (let k = 0; k < 3; k++) bodies.push(json(`{${JSON.stringify(property)}:${WRONG_VALUES[(i * 3 + k) % WRONG_VALUES.length]}}`));
  });
  if (properties.length) {
    for (const value of WRONG_VALUES.slice(0, 6)) {
      bodies.push(json(`{${properties.map((p) => `${JSON.stringify(p)}:${value}`).join(',')}}`));
    }
  }
  return bodies;
}

/** A request to `route` with generated path parameters, query string, headers and body. */
function arbitraryRequest(route: Route, hasBody: boolean): fc.Arbitrary<GarbageRequest> {
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.constantFrom('..', '%', '\u0000', "' OR 1=1--", '__proto__', 'MEM00000000000', '1e309', '-1'),
  );
  const segment = fc.oneof(
    text.map(encodeAll),
    fc.stringMatching(/^[A-Za-z0-9%._~+-]{0,60}$/), // raw, possibly broken percent-encoding
  ).map((s) => (s === '' ? 'x' : s));
  const query = fc.oneof(
    fc.constant(''),
    fc.array(fc.tuple(fc.string({ maxLength: 20 }), text), { maxLength: 4 })
      .map((pairs) => pairs.map(([k, v]) => `${encodeAll(k)}=${encodeAll(v)}`).join('&')),
    fc.stringMatching(/^[A-Za-z0-9%=&[\].$_-]{0,80}$/),
  );
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null'),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  );
  const contentType = fc.constantFrom('application/json', 'application/json', 'application/json', 'text/plain', 'application/xml', undefined);
  const body = hasBody
    ? fc.option(fc.record({ payload: value, type: contentType }), { nil: undefined })
    : fc.constant(undefined);
  const requestId = fc.option(fc.oneof(fc.string({ maxLength: 300 }), fc.uuid()), { nil: undefined });
  return fc.record({ params: fc.array(segment, { minLength: route.params.length, maxLength: route.params.length }), query, body, requestId })
    .map(({ params, query: q, body: b, requestId: id }) => {
      let i = 0;
      const url = fill(route, () => params[i++] ?? 'x');
      const headers: Record<string, string> = {};
      if (b?.type !== undefined) headers['content-type'] = b.type;
      if (id !== undefined && /^[\x20-\x7e]*$/.test(id)) headers['x-request-id'] = id;
      return { method: route.method as InjectOptions['method'], url: q ? `${url}?${q}` : url, headers, ...(b ? { payload: b.payload } : {}) };
    });
}
