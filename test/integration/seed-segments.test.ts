/**
 * Solapi's own client samples of reference seed 000 ("세그먼트 목록 조회", GET /segments?entityId=)
 * run against a live server (`crm-core serve` as a child process, on PGlite and on PostgreSQL):
 * the curl + openssl script, the Node fetch snippet and the Python requests snippet of the page.
 *
 * Only what a user changes is substituted: the base URL, the API key and secret, and the entity
 * ID, which all three samples carry literally (in the URL, or in Python's `params`). The page
 * rendering dropped the backticks of the JS auth header's template literal; they are restored,
 * nothing else (the fetch URL is a plain single-quoted string on this page). A line after each
 * snippet prints what it got (`response` and `data`).
 *
 * Set up through the API: an entity with two properties, three records, and three segments
 * created out of priority order (one CACHED, one inactive). The samples must get a 200 bare
 * array in priority order whose items carry the fields the page documents (solapi-crm-core-notes
 * §9.1) plus ours (API.md §7), with the right JSON types and the values they were created with.
 * The page's 401 answer is what a request without credentials gets; a sample run with a wrong
 * secret gets a 401 too, with our more precise code (SignatureDoesNotMatch, API.md §2).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { NODE, removeTempDirs, signedFetch, tempDir, type PrintedAccount, type ServerProcess } from '../helpers/server-process.ts';
import { AUTH_HEADER_BACKTICKS, PYTHON_SKIP, SAMPLE_ENV, serverBackends, substitute } from '../helpers/seed-samples.ts';

const run = promisify(execFile);

// ---- The samples, verbatim from the seed page (one string per line). ----

const JS_LIST = [
  "const crypto = require('crypto');",
  "const apiKey = 'NCSXXXXXXXXXXXXX';",
  "const apiSecret = 'YOUR_API_SECRET';",
  'const dateTime = new Date().toISOString();',
  "const salt = crypto.randomBytes(16).toString('hex');",
  "const signature = crypto.createHmac('sha256', apiSecret).update(dateTime + salt).digest('hex');",
  'const authHeader = HMAC-SHA256 apiKey=${apiKey}, date=${dateTime}, salt=${salt}, signature=${signature};',
  "const response = await fetch('https://api.solapi.com/crm-core/v1/segments?entityId=CRMET1260423081530123XYZ11122233', {",
  "method: 'GET',",
  "headers: { 'Authorization': authHeader, 'Content-Type': 'application/json' }",
  '});',
  'const data = await response.json();',
].join('\n');

const PYTHON_LIST = [
  'import hmac, hashlib, secrets, requests',
  'from datetime import datetime, timezone',
  "api_key = 'NCSXXXXXXXXXXXXX'",
  "api_secret = 'YOUR_API_SECRET'",
  "date_time = datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')",
  'salt = secrets.token_hex(16)',
  'signature = hmac.new(api_secret.encode(), (date_time + salt).encode(), hashlib.sha256).hexdigest()',
  "auth_header = f'HMAC-SHA256 apiKey={api_key}, date={date_time}, salt={salt}, signature={signature}'",
  "response = requests.get('https://api.solapi.com/crm-core/v1/segments', headers={",
  "'Authorization': auth_header,",
  "'Content-Type': 'application/json'",
  "}, params={'entityId': 'CRMET1260423081530123XYZ11122233'})",
  'data = response.json()',
].join('\n');

const CURL_LIST = [
  'API_KEY="NCSXXXXXXXXXXXXX"',
  'API_SECRET="YOUR_API_SECRET"',
  'DATE=$(date -u +"%Y-%m-%dT%H:%M:%SZ")',
  'SALT=$(openssl rand -hex 16)',
  'SIGNATURE=$(echo -n "${DATE}${SALT}" | openssl dgst -sha256 -hmac "${API_SECRET}" | awk \'{print $NF}\')',
  'AUTH="HMAC-SHA256 apiKey=${API_KEY}, date=${DATE}, salt=${SALT}, signature=${SIGNATURE}"',
  "curl -X GET 'https://api.solapi.com/crm-core/v1/segments?entityId=CRMET1260423081530123XYZ11122233' \\",
  '-H "Authorization: ${AUTH}" \\',
  '-H "Content-Type: application/json"',
].join('\n');

const SEED_ENTITY_ID = 'CRMET1260423081530123XYZ11122233';
/** The page's 401 answer, verbatim. */
const SEED_401 = { errorCode: 'Unauthorized', errorMessage: '권한이 없습니다.' };

// ---- The documented item: §9.1's fields, ours, and the JSON type of each. ----

type JsonType = 'string' | 'string|null' | 'integer' | 'boolean' | 'object';
/** Seed 000's item fields (solapi-crm-core-notes §9.1). */
const SEED_FIELDS: Record<string, JsonType> = {
  segmentId: 'string',
  accountId: 'string',
  entityId: 'string',
  name: 'string',
  description: 'string|null',
  color: 'string|null',
  conditions: 'object',
  ownerId: 'string|null',
  isActive: 'boolean',
  dateCreated: 'string',
  dateUpdated: 'string',
};
/** Ours on every segment (API.md §7); `invalidReason` appears only when isValid is false (never here). */
const OUR_FIELDS: Record<string, JsonType> = {
  workspaceId: 'string|null',
  mode: 'string',
  priority: 'integer',
  isValid: 'boolean',
  createdBy: 'string|null',
  updatedBy: 'string|null',
};
/** Ours on CACHED segments only. */
const CACHED_FIELDS: Record<string, JsonType> = {
  memberCount: 'integer',
  lastEvaluatedAt: 'string|null',
};

function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Exactly the documented fields (CACHED ones on CACHED items), each of its JSON type. */
function assertItemShape(item: any): void {
  assert.equal(jsonTypeOf(item), 'object', JSON.stringify(item));
  const fields = { ...SEED_FIELDS, ...OUR_FIELDS, ...(item.mode === 'CACHED' ? CACHED_FIELDS : {}) };
  assert.deepEqual(Object.keys(item).sort(), Object.keys(fields).sort(), `fields of ${item.segmentId}`);
  for (const [field, type] of Object.entries(fields)) {
    assert.ok(type.split('|').includes(jsonTypeOf(item[field])), `${item.segmentId}.${field}: ${JSON.stringify(item[field])} is not ${type}`);
  }
  assert.match(item.segmentId, /^CRMSG1\d{15}[A-Za-z0-9]{11}$/);
  assert.match(item.entityId, /^CRMET1\d{15}[A-Za-z0-9]{11}$/);
  assert.match(item.accountId, /^\d{14}$/);
  assert.ok(['REALTIME', 'CACHED'].includes(item.mode), item.mode);
  assert.ok(['AND', 'OR'].includes(item.conditions.operator) && Array.isArray(item.conditions.conditions), 'conditions is a group');
  for (const member of [item.ownerId, item.createdBy, item.updatedBy]) assert.match(member, /^MEM[A-Za-z0-9]{11}$/);
  for (const date of [item.dateCreated, item.dateUpdated, ...(item.mode === 'CACHED' ? [item.lastEvaluatedAt] : [])]) assert.match(date, ISO);
}

// ---- Running the samples ----

interface Target {
  baseUrl: string;
  creds: PrintedAccount;
  entityId: string;
}

/** The four things a user changes, each exactly once, so a changed sample fails instead of testing something else. */
function personalise(sample: string, target: Target, apiSecret = target.creds.apiSecret): string {
  // The values land inside shell double quotes and JS/Python single quotes: keep them plain.
  assert.match(target.creds.apiKey, /^[A-Za-z0-9]+$/);
  assert.match(apiSecret, /^[A-Za-z0-9]+$/);
  assert.match(target.entityId, /^CRMET1\d{15}[A-Za-z0-9]{11}$/);
  return substitute(sample, [
    ['NCSXXXXXXXXXXXXX', target.creds.apiKey],
    ['YOUR_API_SECRET', apiSecret],
    ['https://api.solapi.com', target.baseUrl],
    [SEED_ENTITY_ID, target.entityId],
  ]);
}

interface Answer {
  status: number;
  data: any;
}

async function runCurl(script: string): Promise<Answer> {
  // A shell function observes the HTTP status without editing the sample's curl command.
  const observe = "curl() { command curl --silent --show-error --write-out '\\n%{http_code}' \"$@\"; }\n";
  const { stdout } = await run('bash', ['-c', observe + script], { env: SAMPLE_ENV, timeout: 30_000 });
  const lines = stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, data: JSON.parse(lines.join('\n')) };
}

async function runNode(dir: string, snippet: string): Promise<Answer> {
  // .mjs for the top-level await; require() is what the snippet uses.
  const file = join(dir, `sample-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, [
    "import { createRequire } from 'node:module';",
    'const require = createRequire(import.meta.url);',
    substitute(snippet, [AUTH_HEADER_BACKTICKS]),
    'console.log(JSON.stringify({ status: response.status, data }));',
  ].join('\n'));
  const { stdout } = await run(NODE, [file], { env: SAMPLE_ENV, timeout: 30_000 });
  return JSON.parse(stdout);
}

async function runPython(snippet: string): Promise<Answer> {
  const script = [snippet, 'import json', "print(json.dumps({'status': response.status_code, 'data': data}))"].join('\n');
  const { stdout } = await run('python3', ['-c', script], { env: SAMPLE_ENV, timeout: 30_000 });
  return JSON.parse(stdout);
}

const SAMPLES = [
  { kind: 'curl + openssl (bash)', skip: false as string | false, run: (sample: string) => runCurl(sample), text: CURL_LIST },
  { kind: 'Node fetch', skip: false as string | false, run: (sample: string, dir: string) => runNode(dir, sample), text: JS_LIST },
  { kind: 'Python requests', skip: PYTHON_SKIP, run: (sample: string) => runPython(sample), text: PYTHON_LIST },
];

// ---- Backends ----

const backends = serverBackends('Seed segments');

after(removeTempDirs);

describe('seed 000 (GET /segments?entityId=): client samples against a live server', { concurrency: true }, () => {
  for (const backend of backends) {
    describe(backend.name, { skip: backend.skip, concurrency: 1 }, () => {
      let server: ServerProcess | undefined;
      let target: Target;
      let dir: string;
      /** What GET /segments?entityId= must answer, in order. */
      let expected: Record<string, unknown>[];
      const call = async (method: string, path: string, body?: unknown, status = 200) => {
        const res = await signedFetch(server!.baseUrl, target.creds, method, `/crm-core/v1${path}`, body);
        assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.json)}`);
        return res.json;
      };

      before(async () => {
        const started = await backend.start();
        server = started.server;
        dir = tempDir();
        target = { baseUrl: server.baseUrl, creds: started.creds, entityId: '' };
        target.entityId = (await call('POST', '/entities', { name: '고객', slug: 'customers' }, 201)).entityId;
        const { entityId } = target;
        const grade = (await call('POST', '/properties', {
          entityId, name: '등급', fieldType: 'DROPDOWN', options: [{ label: '일반', value: 'NORMAL' }, { label: 'VIP', value: 'VIP' }],
        }, 201)).propertyId;
        const score = (await call('POST', '/properties', { entityId, name: '점수', fieldType: 'NUMBER' }, 201)).propertyId;
        for (const [name, g, s] of [['김민준', 'VIP', 92], ['이서연', 'NORMAL', 85], ['박지호', 'NORMAL', 40]] as const) {
          await call('POST', '/records', { entityId, name, data: { [grade]: g, [score]: s } }, 201);
        }

        // Created out of priority order, so the list's order is the server's doing.
        const bodies = [
          {
            entityId, name: '일반 고객', description: '등급이 일반인 고객', color: '#1E88E5', priority: 30,
            conditions: { operator: 'AND', conditions: [{ field: `data.${grade}`, operator: 'eq', value: 'NORMAL' }] },
          },
          {
            entityId, name: '우수 고객', mode: 'CACHED', priority: 10,
            conditions: { operator: 'OR', conditions: [{ field: `data.${grade}`, operator: 'eq', value: 'VIP' }, { field: `data.${score}`, operator: 'gte', value: 80 }] },
          },
          { entityId, name: '보류', mode: 'REALTIME', priority: 20, isActive: false, conditions: { operator: 'AND', conditions: [] } },
        ];
        const created = [];
        for (const body of bodies) created.push(await call('POST', '/segments', body, 201));
        const { accountId, memberId } = target.creds;
        expected = created.map((segment, i) => {
          const body = bodies[i]!;
          const mode = body.mode ?? 'REALTIME';
          return {
            segmentId: segment.segmentId,
            accountId,
            workspaceId: null,
            entityId,
            name: body.name,
            description: body.description ?? null,
            color: body.color ?? null,
            conditions: body.conditions,
            mode,
            priority: body.priority,
            isActive: body.isActive ?? true,
            ownerId: memberId,
            isValid: true,
            // Two records match the CACHED segment's rules (VIP, or a score of at least 80).
            ...(mode === 'CACHED' ? { memberCount: 2, lastEvaluatedAt: segment.lastEvaluatedAt } : {}),
            createdBy: memberId,
            updatedBy: memberId,
            dateCreated: segment.dateCreated,
            dateUpdated: segment.dateUpdated,
          };
        }).sort((a, b) => (a.priority as number) - (b.priority as number));
        assert.deepEqual(expected.map((s) => s.name), ['우수 고객', '보류', '일반 고객']);
      });
      after(async () => {
        await server?.stop();
      });

      for (const sample of SAMPLES) {
        test(`${sample.kind}: 200, a bare array by priority, every documented field`, { skip: sample.skip }, async () => {
          const answer = await sample.run(personalise(sample.text, target), dir);
          assert.equal(answer.status, 200, JSON.stringify(answer.data));
          assert.ok(Array.isArray(answer.data), `a bare array: ${JSON.stringify(answer.data)}`);
          answer.data.forEach(assertItemShape);
          const priorities = answer.data.map((s: { priority: number }) => s.priority);
          assert.deepEqual(priorities, [...priorities].sort((a, b) => a - b), 'priority ascending');
          assert.deepEqual(answer.data, expected);
          // What any other client gets for the same request.
          assert.deepEqual(await call('GET', `/segments?entityId=${target.entityId}`), answer.data);
        });

        test(`${sample.kind}: a wrong secret is a 401 (SignatureDoesNotMatch, the precise code of ours)`, { skip: sample.skip }, async () => {
          const answer = await sample.run(personalise(sample.text, target, 'WrongSecret0000'), dir);
          assert.equal(answer.status, 401, JSON.stringify(answer.data));
          assert.deepEqual(answer.data, { errorCode: 'SignatureDoesNotMatch', errorMessage: 'The signature does not match.' });
        });
      }

      test("no Authorization header gets the page's 401 verbatim", async () => {
        const res = await fetch(`${server!.baseUrl}/crm-core/v1/segments?entityId=${target.entityId}`, { headers: { 'Content-Type': 'application/json' } });
        assert.equal(res.status, 401);
        assert.deepEqual(await res.json(), SEED_401);
      });
    });
  }
});
