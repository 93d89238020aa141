/**
 * Solapi's own client samples of reference seeds 001 ("개체 조회", GET /entities/{entityId}) and
 * 002 ("개체 수정", PATCH /entities/{entityId}) run against a live server (`crm-core serve` as a
 * child process, on PGlite and on PostgreSQL): the curl + openssl script, the Node fetch snippet
 * and the Python requests snippet of each page.
 *
 * Only what a user changes is substituted: the base URL, the API key and secret, and the entity
 * ID (the curl scripts carry it literally; the JS and Python snippets read a variable, `entityId`
 * / `entity_id`, that the page leaves to the reader, so it is defined in a line before the
 * snippet). The page rendering dropped the backticks of the JS snippets' two template literals;
 * they are restored, nothing else.
 *
 * The entity is set up like seed 001's response (a BOARD grouped by a DROPDOWN and summing a
 * NUMBER, deal rotting on) and every answer must carry every field of that response with the same
 * name and JSON type, nested objects included (plus `workspaceId`, API.md §3).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  NODE, removeTempDirs, signedFetch, tempDir,
  type PrintedAccount, type ServerProcess,
} from '../helpers/server-process.ts';
import { AUTH_HEADER_BACKTICKS, PYTHON_SKIP, SAMPLE_ENV, serverBackends, substitute } from '../helpers/seed-samples.ts';

const run = promisify(execFile);

// ---- Seed 001's response, verbatim: the documented shape. ----

const SEED_001_RESPONSE = {
  entityId: 'CRMET1260423081530123XYZ11122233',
  accountId: '24010100001234',
  name: '고객',
  slug: 'customers',
  description: 'B2C 고객 정보를 관리하는 개체',
  propertyIds: [
    'CRMPP1260423081530123AAA11122233',
    'CRMPP1260423081530123BBB22233344',
  ],
  viewSettings: {
    mode: 'BOARD',
    table: {
      pageSize: 25,
    },
    board: {
      groupByPropertyId: 'CRMPP1260423081530123AAA11122233',
      sumPropertyId: 'CRMPP1260423081530123BBB22233344',
      weightPropertyId: null,
      aggregationType: 'SUM',
      sortByPropertyId: null,
      sortOrder: 'DESC',
      closedWonValues: [],
      closedLostValues: [],
      dealRotting: {
        enabled: true,
        days: 14,
      },
    },
    calendar: {
      datePropertyId: null,
      titlePropertyId: null,
      colorPropertyId: null,
    },
  },
  insightWidgets: [],
  recordAccess: 'PUBLIC',
  ownerId: 'MEMXm8i2H3o2z0',
  priority: 0,
  isDeleted: false,
  createdBy: 'MEMXm8i2H3o2z0',
  updatedBy: 'MEMXm8i2H3o2z0',
  dateCreated: '2026-04-20T10:00:00.000Z',
  dateUpdated: '2026-04-22T15:30:00.000Z',
};
const SEED_ENTITY_ID = SEED_001_RESPONSE.entityId;
const [SEED_GROUP_ID, SEED_SUM_ID] = SEED_001_RESPONSE.propertyIds as [string, string];
/** Fields of ours that seed 001 does not show (API.md §3). */
const EXTRA_FIELDS = new Set(['workspaceId']);

// ---- The samples, verbatim from the seed pages (one string per line). ----

const JS_GET = [
  "const crypto = require('crypto');",
  "const apiKey = 'NCSXXXXXXXXXXXXX';",
  "const apiSecret = 'YOUR_API_SECRET';",
  'const dateTime = new Date().toISOString();',
  "const salt = crypto.randomBytes(16).toString('hex');",
  "const signature = crypto.createHmac('sha256', apiSecret).update(dateTime + salt).digest('hex');",
  'const authHeader = HMAC-SHA256 apiKey=${apiKey}, date=${dateTime}, salt=${salt}, signature=${signature};',
  'const response = await fetch(https://api.solapi.com/crm-core/v1/entities/${entityId}, {',
  "method: 'GET',",
  "headers: { 'Authorization': authHeader, 'Content-Type': 'application/json' }",
  '});',
  'const data = await response.json();',
].join('\n');

const PYTHON_GET = [
  'import hmac, hashlib, secrets, requests',
  'from datetime import datetime, timezone',
  "api_key = 'NCSXXXXXXXXXXXXX'",
  "api_secret = 'YOUR_API_SECRET'",
  "date_time = datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')",
  'salt = secrets.token_hex(16)',
  'signature = hmac.new(api_secret.encode(), (date_time + salt).encode(), hashlib.sha256).hexdigest()',
  "auth_header = f'HMAC-SHA256 apiKey={api_key}, date={date_time}, salt={salt}, signature={signature}'",
  "response = requests.get(f'https://api.solapi.com/crm-core/v1/entities/{entity_id}', headers={",
  "'Authorization': auth_header,",
  "'Content-Type': 'application/json'",
  '})',
  'data = response.json()',
].join('\n');

const CURL_GET = [
  'API_KEY="NCSXXXXXXXXXXXXX"',
  'API_SECRET="YOUR_API_SECRET"',
  'DATE=$(date -u +"%Y-%m-%dT%H:%M:%SZ")',
  'SALT=$(openssl rand -hex 16)',
  'SIGNATURE=$(echo -n "${DATE}${SALT}" | openssl dgst -sha256 -hmac "${API_SECRET}" | awk \'{print $NF}\')',
  'AUTH="HMAC-SHA256 apiKey=${API_KEY}, date=${DATE}, salt=${SALT}, signature=${SIGNATURE}"',
  "curl -X GET 'https://api.solapi.com/crm-core/v1/entities/CRMET1260423081530123XYZ11122233' \\",
  '-H "Authorization: ${AUTH}" \\',
  '-H "Content-Type: application/json"',
].join('\n');

const JS_PATCH = [
  "const crypto = require('crypto');",
  "const apiKey = 'NCSXXXXXXXXXXXXX';",
  "const apiSecret = 'YOUR_API_SECRET';",
  'const dateTime = new Date().toISOString();',
  "const salt = crypto.randomBytes(16).toString('hex');",
  "const signature = crypto.createHmac('sha256', apiSecret).update(dateTime + salt).digest('hex');",
  'const authHeader = HMAC-SHA256 apiKey=${apiKey}, date=${dateTime}, salt=${salt}, signature=${signature};',
  'const response = await fetch(https://api.solapi.com/crm-core/v1/entities/${entityId}, {',
  "method: 'PATCH',",
  "headers: { 'Authorization': authHeader, 'Content-Type': 'application/json' },",
  "body: JSON.stringify({ description: 'B2B/B2C 통합 고객 개체' })",
  '});',
  'const data = await response.json();',
].join('\n');

const PYTHON_PATCH = [
  'import hmac, hashlib, secrets, requests',
  'from datetime import datetime, timezone',
  "api_key = 'NCSXXXXXXXXXXXXX'",
  "api_secret = 'YOUR_API_SECRET'",
  "date_time = datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')",
  'salt = secrets.token_hex(16)',
  'signature = hmac.new(api_secret.encode(), (date_time + salt).encode(), hashlib.sha256).hexdigest()',
  "auth_header = f'HMAC-SHA256 apiKey={api_key}, date={date_time}, salt={salt}, signature={signature}'",
  "response = requests.patch(f'https://api.solapi.com/crm-core/v1/entities/{entity_id}', headers={",
  "'Authorization': auth_header,",
  "'Content-Type': 'application/json'",
  "}, json={'description': 'B2B/B2C 통합 고객 개체'})",
  'data = response.json()',
].join('\n');

const CURL_PATCH = [
  'API_KEY="NCSXXXXXXXXXXXXX"',
  'API_SECRET="YOUR_API_SECRET"',
  'DATE=$(date -u +"%Y-%m-%dT%H:%M:%SZ")',
  'SALT=$(openssl rand -hex 16)',
  'SIGNATURE=$(echo -n "${DATE}${SALT}" | openssl dgst -sha256 -hmac "${API_SECRET}" | awk \'{print $NF}\')',
  'AUTH="HMAC-SHA256 apiKey=${API_KEY}, date=${DATE}, salt=${SALT}, signature=${SIGNATURE}"',
  "curl -X PATCH 'https://api.solapi.com/crm-core/v1/entities/CRMET1260423081530123XYZ11122233' \\",
  '-H "Authorization: ${AUTH}" \\',
  '-H "Content-Type: application/json" \\',
  '-d \'{"description":"B2B/B2C 통합 고객 개체"}\'',
].join('\n');

const PATCHED_DESCRIPTION = 'B2B/B2C 통합 고객 개체';

// ---- Substitutions: each must apply exactly once, so a changed sample fails instead of testing something else. ----

/** The two template literals whose backticks the page rendering dropped; nothing else changes. */
function restoreBackticks(sample: string): string {
  return substitute(sample, [
    AUTH_HEADER_BACKTICKS,
    [/^const response = await fetch\((https:\/\/\S+), \{$/m, 'const response = await fetch(`$1`, {'],
  ]);
}

interface Target {
  baseUrl: string;
  creds: PrintedAccount;
  entityId: string;
}

function personalise(sample: string, target: Target, options: { literalId: boolean }): string {
  // The values land inside shell double quotes and JS/Python single quotes: keep them plain.
  assert.match(target.creds.apiKey, /^[A-Za-z0-9]+$/);
  assert.match(target.creds.apiSecret, /^[A-Za-z0-9]+$/);
  assert.match(target.entityId, /^CRMET1\d{15}[A-Za-z0-9]{11}$/);
  return substitute(sample, [
    ['NCSXXXXXXXXXXXXX', target.creds.apiKey],
    ['YOUR_API_SECRET', target.creds.apiSecret],
    ['https://api.solapi.com', target.baseUrl],
    ...(options.literalId ? [[SEED_ENTITY_ID, target.entityId] as [string, string]] : []),
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

async function runNode(dir: string, snippet: string, entityId: string): Promise<Answer> {
  // .mjs for the top-level await; require() is what the snippet uses; entityId is the reader's.
  const file = join(dir, `sample-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, [
    "import { createRequire } from 'node:module';",
    'const require = createRequire(import.meta.url);',
    `const entityId = '${entityId}';`,
    snippet,
    'console.log(JSON.stringify({ status: response.status, data }));',
  ].join('\n'));
  const { stdout } = await run(NODE, [file], { env: SAMPLE_ENV, timeout: 30_000 });
  return JSON.parse(stdout);
}

async function runPython(snippet: string, entityId: string): Promise<Answer> {
  const script = [
    `entity_id = '${entityId}'`,
    snippet,
    'import json',
    "print(json.dumps({'status': response.status_code, 'data': data}))",
  ].join('\n');
  const { stdout } = await run('python3', ['-c', script], { env: SAMPLE_ENV, timeout: 30_000 });
  return JSON.parse(stdout);
}

// ---- The documented shape ----

/** The JSON type tree of a value: objects by key, arrays by element, leaves by JSON type. */
function shapeOf(value: unknown): unknown {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.map(shapeOf);
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, shapeOf(v)]));
  }
  return typeof value;
}

/** Every field of seed 001's response, with the same names and JSON types, nested ones included. */
function assertSeedShape(data: any): void {
  assert.equal(typeof data, 'object', JSON.stringify(data));
  const { workspaceId, ...rest } = data;
  assert.ok(workspaceId === null || typeof workspaceId === 'string', 'workspaceId is a string or null');
  for (const extra of Object.keys(data)) assert.ok(extra in SEED_001_RESPONSE || EXTRA_FIELDS.has(extra), `unexpected field ${extra}`);
  assert.deepEqual(shapeOf(rest), shapeOf(SEED_001_RESPONSE));
  assert.match(data.entityId, /^CRMET1\d{15}[A-Za-z0-9]{11}$/);
  assert.match(data.accountId, /^\d{14}$/);
  for (const id of data.propertyIds) assert.match(id, /^CRMPP1\d{15}[A-Za-z0-9]{11}$/);
  for (const member of [data.ownerId, data.createdBy, data.updatedBy]) assert.match(member, /^MEM[A-Za-z0-9]{11}$/);
  for (const date of [data.dateCreated, data.dateUpdated]) assert.match(date, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
}

/** The seed's values, with our IDs in place of the seed's. */
function expectedEntity(ids: { entityId: string; accountId: string; memberId: string; groupBy: string; sum: string }) {
  const swap = (id: string) => ({ [SEED_GROUP_ID]: ids.groupBy, [SEED_SUM_ID]: ids.sum })[id] ?? id;
  const seed = SEED_001_RESPONSE;
  return {
    ...seed,
    entityId: ids.entityId,
    accountId: ids.accountId,
    propertyIds: seed.propertyIds.map(swap),
    viewSettings: {
      ...seed.viewSettings,
      board: { ...seed.viewSettings.board, groupByPropertyId: ids.groupBy, sumPropertyId: ids.sum },
    },
    ownerId: ids.memberId,
    createdBy: ids.memberId,
    updatedBy: ids.memberId,
  };
}

// ---- Backends ----

const backends = serverBackends('Seed entities');

after(removeTempDirs);

describe('seeds 001 (GET entity) and 002 (PATCH entity): client samples against a live server', { concurrency: true }, () => {
  for (const backend of backends) {
    // Within a backend the tests share one entity: one at a time (the backends run side by side).
    describe(backend.name, { skip: backend.skip, concurrency: 1 }, () => {
      let server: ServerProcess | undefined;
      let target: Target;
      let expected: ReturnType<typeof expectedEntity>;
      let dir: string;
      const call = (method: string, path: string, body?: unknown) => signedFetch(server!.baseUrl, target.creds, method, `/crm-core/v1${path}`, body);

      before(async () => {
        const started = await backend.start();
        server = started.server;
        dir = tempDir();
        const creds = started.creds;
        const seed = SEED_001_RESPONSE;
        // The entity of seed 001: its name, slug and description, a DROPDOWN to group the board
        // by and a NUMBER to sum, in that column order.
        const created = await signedFetch(server.baseUrl, creds, 'POST', '/crm-core/v1/entities', { name: seed.name, slug: seed.slug, description: seed.description });
        assert.equal(created.status, 201, JSON.stringify(created.json));
        const entityId = created.json.entityId as string;
        target = { baseUrl: server.baseUrl, creds, entityId };
        const stage = await call('POST', '/properties', {
          entityId, name: '단계', fieldType: 'DROPDOWN', options: [{ label: '리드', value: 'LEAD' }, { label: '계약완료', value: 'CLOSED_WON' }],
        });
        assert.equal(stage.status, 201, JSON.stringify(stage.json));
        const amount = await call('POST', '/properties', { entityId, name: '금액', fieldType: 'NUMBER' });
        assert.equal(amount.status, 201, JSON.stringify(amount.json));
        const board = await call('PATCH', `/entities/${entityId}`, {
          viewSettings: { mode: 'BOARD', board: { groupByPropertyId: stage.json.propertyId, sumPropertyId: amount.json.propertyId, dealRotting: { enabled: true } } },
        });
        assert.equal(board.status, 200, JSON.stringify(board.json));
        expected = expectedEntity({ entityId, accountId: creds.accountId, memberId: creds.memberId, groupBy: stage.json.propertyId, sum: amount.json.propertyId });
      });
      after(async () => {
        await server?.stop();
      });

      /** Seed 001's answer: its shape, and its values (with our IDs and dates). */
      const assertGet = (answer: Answer, description = SEED_001_RESPONSE.description) => {
        assert.equal(answer.status, 200, JSON.stringify(answer.data));
        assertSeedShape(answer.data);
        const { workspaceId, dateCreated, dateUpdated, ...values } = answer.data;
        assert.equal(workspaceId, null);
        const { dateCreated: _c, dateUpdated: _u, ...want } = { ...expected, description };
        assert.deepEqual(values, want);
        assert.ok(dateUpdated >= dateCreated);
      };

      describe('seed 001: GET /entities/{entityId}', () => {
        test('curl + openssl (bash)', async () => {
          assertGet(await runCurl(personalise(CURL_GET, target, { literalId: true })));
        });
        test('Node fetch', async () => {
          assertGet(await runNode(dir, personalise(restoreBackticks(JS_GET), target, { literalId: false }), target.entityId));
        });
        test('Python requests', { skip: PYTHON_SKIP }, async () => {
          assertGet(await runPython(personalise(PYTHON_GET, target, { literalId: false }), target.entityId));
        });
      });

      describe('seed 002: PATCH /entities/{entityId} changes only the description', () => {
        /** Puts the seed's description back, runs the sample, checks its answer and a fresh GET. */
        const patchWith = async (runSample: () => Promise<Answer>) => {
          const reset = await call('PATCH', `/entities/${target.entityId}`, { description: SEED_001_RESPONSE.description });
          assert.equal(reset.status, 200, JSON.stringify(reset.json));
          const answer = await runSample();
          assertGet(answer, PATCHED_DESCRIPTION);
          assert.ok(answer.data.dateUpdated >= reset.json.dateUpdated);
          const fresh = await call('GET', `/entities/${target.entityId}`);
          assertGet({ status: fresh.status, data: fresh.json }, PATCHED_DESCRIPTION);
          assert.deepEqual(fresh.json, answer.data);
        };

        test('curl + openssl (bash)', async () => {
          await patchWith(() => runCurl(personalise(CURL_PATCH, target, { literalId: true })));
        });
        test('Node fetch', async () => {
          await patchWith(() => runNode(dir, personalise(restoreBackticks(JS_PATCH), target, { literalId: false }), target.entityId));
        });
        test('Python requests', { skip: PYTHON_SKIP }, async () => {
          await patchWith(() => runPython(personalise(PYTHON_PATCH, target, { literalId: false }), target.entityId));
        });
      });
    });
  }
});
