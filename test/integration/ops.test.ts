import assert from 'node:assert/strict';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { LIMITS, OPERATORS, RELATIONSHIP_OPERATORS } from '../../src/query/types.ts';
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { openTestDatabase } from '../helpers/database.ts';
import { authorization } from '../helpers/sign.ts';
import { registeredRoutes, type Route } from '../helpers/routes.ts';

/**
 * Operations (API.md §11, §1.1): probes, Prometheus metrics, request ids, the OpenAPI 3.1
 * document and the human-readable docs.
 */

const BASE = '/crm-core/v1';
const OPENAPI = `${BASE}/public/openapi/json`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Counts every query the app sends, so a test can tell whether a request touched the database. */
class QueryCounter implements KyselyPlugin {
  count = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.count++;
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

describe('operations endpoints (API.md §11)', () => {
  let database: Database;
  let counter: QueryCounter;
  let t: TestApp;
  let owner: TestAccount;

  before(async () => {
    database = await openTestDatabase();
    counter = new QueryCounter();
    // The app runs on the same database seen through the counting plugin.
    t = await startTestApp({ database: { ...database, db: database.db.withPlugin(counter), close: async () => {} } });
    owner = await t.newAccount();
  });
  after(async () => {
    await t.close();
    await database.close();
  });

  describe('probes', () => {
    test('/healthz is 200 and never touches the database', async () => {
      const before = counter.count;
      for (let i = 0; i < 3; i++) {
        const res = await t.app.inject({ method: 'GET', url: '/healthz' });
        assert.equal(res.statusCode, 200, res.body);
        assert.deepEqual(res.json(), { status: 'ok' });
      }
      assert.equal(counter.count, before, 'no query was sent');
    });

    test('/readyz is 200 and asks the database', async () => {
      const before = counter.count;
      const res = await t.app.inject({ method: 'GET', url: '/readyz' });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { status: 'ready' });
      assert.ok(counter.count > before, 'the readiness probe queried the database');
    });

    test('the probes need no signature, even with a garbage Authorization header', async () => {
      for (const url of ['/healthz', '/readyz', '/metrics', OPENAPI]) {
        const res = await t.app.inject({ method: 'GET', url, headers: { authorization: 'HMAC-SHA256 garbage' } });
        assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
      }
    });

    test('with the database unreachable: /healthz stays 200, /readyz is 503 ServiceUnavailable', async () => {
      // Nothing listens on port 1: every connection attempt is refused at once.
      const down = await openDatabase({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none' });
      const broken = await startTestApp({ database: down });
      try {
        const health = await broken.app.inject({ method: 'GET', url: '/healthz' });
        assert.equal(health.statusCode, 200, health.body);
        const ready = await broken.app.inject({ method: 'GET', url: '/readyz' });
        assert.equal(ready.statusCode, 503, ready.body);
        assert.equal(ready.json().errorCode, 'ServiceUnavailable');
        assert.equal(typeof ready.json().errorMessage, 'string');
        assert.match(String(ready.headers['retry-after']), /^[1-9]\d*$/);
        assert.doesNotMatch(ready.body, /ECONNREFUSED|127\.0\.0\.1|\.ts:\d+/);
        assert.ok(ready.headers['x-request-id']);
      } finally {
        await broken.close();
        await down.close();
      }
    });
  });

  describe('/metrics', () => {
    test('Prometheus text with request counts labelled by route template', async () => {
      const member = await t.addMember(owner, 'MEMBER');
      const missing = 'MEMzzzzzzzzzzz';
      assert.equal((await t.call(owner, 'GET', `${BASE}/members/${member.memberId}`)).statusCode, 200);
      assert.equal((await t.call(owner, 'GET', `${BASE}/members/${missing}`)).statusCode, 404);
      const junk = `/no-such-route-${Date.now()}`;
      assert.equal((await t.app.inject({ method: 'GET', url: junk })).statusCode, 404);

      const res = await t.app.inject({ method: 'GET', url: '/metrics' });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      const text = res.body;

      // Well-formed exposition format: comments, or `name{labels} value`.
      for (const line of text.split('\n')) {
        if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
        assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/, line);
      }
      assert.match(text, /^# TYPE crm_core_http_requests_total counter$/m);
      assert.match(text, /^# TYPE crm_core_http_request_duration_seconds histogram$/m);
      const count = (route: string, status: string) => {
        const m = new RegExp(`^crm_core_http_requests_total\\{method="GET",route="${route.replace(/[/.*]/g, '\\$&')}",status="${status}"\\} (\\d+)$`, 'm').exec(text);
        return m ? Number(m[1]) : 0;
      };
      assert.ok(count(`${BASE}/members/:memberId`, '200') >= 1, 'a 200 on the member route, labelled by its template');
      assert.ok(count(`${BASE}/members/:memberId`, '404') >= 1, 'the 404 of a missing member under the same template');
      // IDs and unknown paths never become label values (label cardinality stays bounded).
      for (const raw of [member.memberId, missing, junk]) assert.ok(!text.includes(raw), `${raw} is not a label value`);
      // Process metrics come along.
      assert.match(text, /^crm_core_process_cpu_user_seconds_total /m);
    });

    test('requests refused before routing are counted too, under route "unrouted"', async () => {
      const unrouted = async (method: string, status: string) => {
        const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
        const m = new RegExp(`^crm_core_http_requests_total\\{method="${method}",route="unrouted",status="${status}"\\} (\\d+)$`, 'm').exec(text);
        return m ? Number(m[1]) : 0;
      };
      const before = await unrouted('GET', '400');
      // Bad percent-encoding and an over-long path parameter: Fastify's frameworkErrors, no hooks run.
      assert.equal((await t.app.inject({ method: 'GET', url: `${BASE}/members/%` })).statusCode, 400);
      assert.equal((await t.app.inject({ method: 'GET', url: `${BASE}/members/${'m'.repeat(300)}` })).statusCode, 400);
      assert.equal(await unrouted('GET', '400'), before + 2);
      const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
      assert.match(text, /^crm_core_http_request_duration_seconds_count\{method="GET",route="unrouted"\} [1-9]\d*$/m, 'with a latency');
      const sum = /^crm_core_http_request_duration_seconds_sum\{method="GET",route="unrouted"\} (\S+)$/m.exec(text);
      assert.ok(sum && Number(sum[1]) > 0, `a measured latency, not Fastify's 0: ${sum?.[1]}`);

      // Bytes Node's HTTP parser refuses (an invalid header name): no request object at all.
      const parserBefore = await unrouted('UNPARSED', '400');
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const answer = await new Promise<string>((resolve) => {
        const socket = connect((t.app.server.address() as AddressInfo).port, '127.0.0.1');
        const chunks: Buffer[] = [];
        socket.on('data', (c) => chunks.push(c));
        socket.on('error', () => { /* the server resets after answering */ });
        socket.on('close', () => resolve(Buffer.concat(chunks).toString()));
        socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n');
      });
      assert.match(answer, /^HTTP\/1\.1 400 /);
      assert.equal(await unrouted('UNPARSED', '400'), parserBefore + 1);
    });
  });

  describe('x-request-id', () => {
    const get = (url: string, id?: string | string[]) =>
      t.app.inject({ method: 'GET', url, headers: id === undefined ? {} : { 'x-request-id': id } });

    test('a sane caller id is echoed, on success and on every kind of failure', async () => {
      for (const id of ['abc-123', 'req_2026.04:20-XYZ', 'A', 'x'.repeat(128), '3f1c8e2a-9b7d-4c1e-8f2a-1b2c3d4e5f60']) {
        for (const url of ['/healthz', '/nope', `${BASE}/usage`, `${BASE}/members/%`]) {
          assert.equal((await get(url, id)).headers['x-request-id'], id, `${url} echoes ${id}`);
        }
      }
      const signed = await t.app.inject({ method: 'GET', url: `${BASE}/usage`, headers: { authorization: authorization(owner), 'x-request-id': 'signed-1' } });
      assert.equal(signed.statusCode, 200);
      assert.equal(signed.headers['x-request-id'], 'signed-1');
      const invalid = await t.app.inject({
        method: 'POST', url: `${BASE}/members`,
        headers: { authorization: authorization(owner), 'x-request-id': 'bad-body-1', 'content-type': 'application/json' },
        payload: '{',
      });
      assert.equal(invalid.statusCode, 400);
      assert.equal(invalid.headers['x-request-id'], 'bad-body-1');
    });

    test('without one, a fresh UUID is minted per request', async () => {
      const ids = new Set<string>();
      for (const url of ['/healthz', '/healthz', '/nope', `${BASE}/usage`, `${BASE}/members/%`]) {
        const id = String((await get(url)).headers['x-request-id']);
        assert.match(id, UUID);
        ids.add(id);
      }
      assert.equal(ids.size, 5);
    });

    test('a hostile one is replaced by a minted UUID', async () => {
      for (const id of ['x'.repeat(129), 'has space', 'new\nline', 'cr\rlf', 'tab\there', 'ünïcödé', '<script>', 'a,b', 'a;b', '', ' ', ['one', 'two']]) {
        let res;
        try {
          res = await get('/healthz', id);
        } catch {
          continue; // the client library itself refuses to send this header value
        }
        const echoed = String(res.headers['x-request-id']);
        assert.match(echoed, UUID, `${JSON.stringify(id)} was replaced`);
      }
    });
  });

  describe('OpenAPI document', () => {
    let doc: any;
    let validator: Validator;
    let routes: Route[];

    before(async () => {
      const res = await t.app.inject({ method: 'GET', url: OPENAPI });
      assert.equal(res.statusCode, 200, res.body);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      doc = res.json();
      validator = new Validator();
      routes = registeredRoutes(t.app.printRoutes({ commonPrefix: false }));
    });

    test('publishes the condition language (API.md §6) as JSON Schema, every operator included', () => {
      const { ConditionGroup, Condition, RelatedConditionGroup } = doc.components.schemas;
      assert.ok(ConditionGroup && Condition && RelatedConditionGroup);
      const refs = JSON.stringify(doc.components.schemas).match(/#\/components\/schemas\/\w+/g) ?? [];
      for (const ref of refs) assert.ok(doc.components.schemas[ref.split('/').pop()!], `${ref} resolves`);
      const published = new Set(Condition.anyOf.flatMap((c: any) => c.properties.operator.enum));
      for (const op of [...Object.values(OPERATORS).flat(), ...RELATIONSHIP_OPERATORS]) assert.ok(published.has(op), `operator ${op} is published`);
      assert.equal(ConditionGroup.properties.conditions.maxItems, LIMITS.maxConditionsPerGroup);
      const advanced = doc.paths['/crm-core/v1/records/search/advanced'].post.requestBody.content['application/json'].schema;
      assert.match(JSON.stringify(advanced), /#\/components\/schemas\/ConditionGroup/, 'request schemas point readers to the grammar');
    });

    test('is served unsigned and is a valid OpenAPI 3.1 document', async () => {
      assert.match(doc.openapi, /^3\.1\.\d+$/);
      const result = await validator.validate(structuredClone(doc));
      assert.deepEqual(result.errors, undefined, JSON.stringify(result.errors, null, 1)?.slice(0, 3000));
      assert.equal(result.valid, true);
      assert.equal(validator.version, '3.1');
      // Every $ref resolves.
      assert.doesNotThrow(() => validator.resolveRefs());
      assert.equal(typeof doc.info.title, 'string');
      assert.equal(typeof doc.info.version, 'string');
    });

    test('the validator is real: it rejects a broken document', async () => {
      const broken = structuredClone(doc);
      delete broken.info;
      broken.paths['/x'] = { get: { responses: 'nope' } };
      const result = await new Validator().validate(broken);
      assert.equal(result.valid, false);
    });

    test('lists every /crm-core/v1 route with tags, a summary and a response schema', () => {
      const api = routes.filter((r) => r.path.startsWith(`${BASE}/`) && r.method !== 'HEAD');
      assert.ok(api.length >= 9, `${api.length} routes`);
      for (const route of api) {
        const path = route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
        const op = doc.paths?.[path]?.[route.method.toLowerCase()];
        const name = `${route.method} ${route.path}`;
        assert.ok(op, `${name} is in the document`);
        assert.ok(Array.isArray(op.tags) && op.tags.length > 0 && op.tags.every((tag: unknown) => typeof tag === 'string' && tag), `${name} has tags`);
        assert.equal(typeof op.summary, 'string', `${name} has a summary`);
        const success = Object.entries<any>(op.responses ?? {}).filter(([status]) => /^2\d\d$/.test(status));
        assert.ok(success.length > 0, `${name} documents a 2xx response`);
        for (const [status, response] of success) {
          const schema = response.content?.['application/json']?.schema;
          assert.ok(schema && typeof schema === 'object', `${name} ${status} has a JSON response schema`);
        }
        for (const [status, response] of Object.entries<any>(op.responses)) {
          if (/^[45]\d\d$/.test(status)) {
            assert.equal(response.content?.['application/json']?.schema?.$ref, '#/components/schemas/ErrorBody', `${name} ${status} is an ErrorBody`);
          }
        }
        for (const param of route.path.matchAll(/:([A-Za-z0-9_]+)/g)) {
          const declared = (op.parameters ?? []).find((p: any) => p.in === 'path' && p.name === param[1]);
          assert.ok(declared?.required === true, `${name} declares path parameter ${param[1]}`);
        }
      }
      // And nothing in the document that the server does not serve.
      const served = new Set(routes.map((r) => `${r.method} ${r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`));
      for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
        for (const method of Object.keys(item)) assert.ok(served.has(`${method.toUpperCase()} ${path}`), `${method} ${path} is served`);
      }
    });

    test('declares the HMAC security scheme, applied to every signed route', () => {
      const schemes = Object.entries<any>(doc.components?.securitySchemes ?? {});
      const hmac = schemes.find(([, s]) => s.type === 'apiKey' && s.in === 'header' && /^authorization$/i.test(s.name));
      assert.ok(hmac, 'an apiKey scheme in the Authorization header');
      const [name, scheme] = hmac;
      assert.match(scheme.description, /HMAC-SHA256/);
      assert.match(scheme.description, /apiKey=.*date=.*salt=.*signature=/);
      assert.ok(doc.security?.some((req: Record<string, unknown>) => name in req), 'required by default');
      assert.equal(doc.paths[OPENAPI].get.security?.length, 0, 'the document itself is public');
    });

    test('the document tells the truth about authentication', async () => {
      for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
        for (const [method, op] of Object.entries<any>(item)) {
          const url = path.replace(/\{[^}]+\}/g, 'MEM00000000000');
          const res = await t.app.inject({ method: method.toUpperCase() as 'GET', url });
          const isPublic = Array.isArray(op.security) && op.security.length === 0;
          if (isPublic) assert.notEqual(res.statusCode, 401, `${method} ${path} is public`);
          else assert.equal(res.statusCode, 401, `${method} ${path} needs a signature: ${res.body}`);
        }
      }
    });
  });

  describe('/docs', () => {
    async function follow(url: string): Promise<{ url: string; res: Awaited<ReturnType<TestApp['app']['inject']>> }> {
      for (let hops = 0; hops < 5; hops++) {
        const res = await t.app.inject({ method: 'GET', url });
        if (res.statusCode < 300 || res.statusCode >= 400) return { url, res };
        url = new URL(String(res.headers.location), `http://local${url}`).pathname;
      }
      throw new Error('redirect loop');
    }

    test('serves an HTML page whose assets all load from this server', async () => {
      const page = await follow('/docs');
      assert.equal(page.res.statusCode, 200);
      assert.match(String(page.res.headers['content-type']), /^text\/html/);
      const html = page.res.body;
      assert.match(html, /<html/i);
      assert.match(html, /id="swagger-ui"/);

      const refs = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
      assert.ok(refs.some((r) => r.endsWith('.js')) && refs.some((r) => r.endsWith('.css')), `scripts and styles: ${refs.join(', ')}`);
      for (const ref of refs) {
        assert.doesNotMatch(ref, /^(https?:)?\/\//i, `${ref} is served locally, not from the network`);
        const url = new URL(ref, `http://local${page.url}`).pathname;
        const asset = await follow(url);
        assert.equal(asset.res.statusCode, 200, `${url}: ${asset.res.statusCode}`);
        assert.ok(asset.res.rawPayload.length > 0, `${url} is not empty`);
        if (url.endsWith('.js')) assert.match(String(asset.res.headers['content-type']), /javascript/);
        if (url.endsWith('.css')) assert.match(String(asset.res.headers['content-type']), /text\/css/);
      }
      const bundle = refs.find((r) => /swagger-ui-bundle\.js$/.test(r));
      assert.ok(bundle, 'the Swagger UI bundle');
      assert.ok((await follow(new URL(bundle, `http://local${page.url}`).pathname)).res.rawPayload.length > 100_000, 'the real bundle');
    });

    test('the page loads this server\'s document and calls no online validator', async () => {
      const page = await follow('/docs');
      const initializerRef = [...page.res.body.matchAll(/src="([^"]*swagger-initializer\.js)"/g)][0]?.[1];
      assert.ok(initializerRef);
      const initializer = (await follow(new URL(initializerRef, `http://local${page.url}`).pathname)).res.body;
      assert.match(initializer, /validatorUrl:\s*null/);
      const specRef = /url:\s*resolveUrl\('([^']+)'\)/.exec(initializer)?.[1];
      assert.ok(specRef, 'the spec URL');
      const spec = await follow(new URL(specRef, `http://local${page.url.endsWith('/') ? page.url : `${page.url}/`}`).pathname);
      assert.equal(spec.res.statusCode, 200);
      const served = spec.res.json();
      assert.equal(served.openapi, (await t.app.inject({ method: 'GET', url: OPENAPI })).json().openapi);
      assert.deepEqual(Object.keys(served.paths).sort(), Object.keys((await t.app.inject({ method: 'GET', url: OPENAPI })).json().paths).sort());
    });
  });
});
