/**
 * Solapi's own client samples of reference seeds 003 ("관계 수정", PATCH /relationships/{id}) and
 * 004 ("관계 유형 생성", POST /relationships/types) run against a live server (`crm-core serve` as a
 * child process, on PGlite and on PostgreSQL): the curl + openssl script, the Node fetch snippet
 * and the Python requests snippet of each page.
 *
 * Only what a user changes is substituted: the base URL, the API key and secret, and the IDs the
 * samples carry literally (the relationship ID in 003's URL, the two entity IDs in 004's body).
 * The page rendering dropped the backticks of the JS auth header's template literal; they are
 * restored, nothing else.
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

// ---- The samples, verbatim from the seed pages (one string per line). ----

const JS_PATCH = [
  "const crypto = require('crypto');",
  "const apiKey = 'NCSXXXXXXXXXXXXX';",
  "const apiSecret = 'YOUR_API_SECRET';",
  "const dateTime = new Date().toISOString();",
  "const salt = crypto.randomBytes(16).toString('hex');",
  "const signature = crypto.createHmac('sha256', apiSecret).update(dateTime + salt).digest('hex');",
  "const authHeader = HMAC-SHA256 apiKey=${apiKey}, date=${dateTime}, salt=${salt}, signature=${signature};",
  "const response = await fetch('https://api.solapi.com/crm-core/v1/relationships/CRMRL1260423091530123REL11122233', {",
  "method: 'PATCH',",
  "headers: { 'Authorization': authHeader, 'Content-Type': 'application/json' },",
  "body: JSON.stringify({",
  "\"metadata\": {",
  "\"role\": \"secondary\",",
  "\"notes\": \"2차 담당\"",
  "}",
  "})",
  "});",
  "const data = await response.json();",
].join('\n');

const PYTHON_PATCH = [
  "import hmac, hashlib, secrets, requests",
  "from datetime import datetime, timezone",
  "api_key = 'NCSXXXXXXXXXXXXX'",
  "api_secret = 'YOUR_API_SECRET'",
  "date_time = datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')",
  "salt = secrets.token_hex(16)",
  "signature = hmac.new(api_secret.encode(), (date_time + salt).encode(), hashlib.sha256).hexdigest()",
  "auth_header = f'HMAC-SHA256 apiKey={api_key}, date={date_time}, salt={salt}, signature={signature}'",
  "response = requests.patch('https://api.solapi.com/crm-core/v1/relationships/CRMRL1260423091530123REL11122233', headers={",
  "'Authorization': auth_header,",
  "'Content-Type': 'application/json'",
  "}, json={",
  "\"metadata\": {",
  "\"role\": \"secondary\",",
  "\"notes\": \"2차 담당\"",
  "}",
  "})",
  "data = response.json()",
].join('\n');

const CURL_PATCH = [
  "API_KEY=\"NCSXXXXXXXXXXXXX\"",
  "API_SECRET=\"YOUR_API_SECRET\"",
  "DATE=$(date -u +\"%Y-%m-%dT%H:%M:%SZ\")",
  "SALT=$(openssl rand -hex 16)",
  "SIGNATURE=$(echo -n \"${DATE}${SALT}\" | openssl dgst -sha256 -hmac \"${API_SECRET}\" | awk '{print $NF}')",
  "AUTH=\"HMAC-SHA256 apiKey=${API_KEY}, date=${DATE}, salt=${SALT}, signature=${SIGNATURE}\"",
  "curl -X PATCH 'https://api.solapi.com/crm-core/v1/relationships/CRMRL1260423091530123REL11122233' \\",
  "-H \"Authorization: ${AUTH}\" \\",
  "-H \"Content-Type: application/json\" \\",
  "-d '{\"metadata\": {\"role\": \"secondary\", \"notes\": \"2차 담당\"}}'",
].join('\n');

const JS_TYPE = [
  "const crypto = require('crypto');",
  "const apiKey = 'NCSXXXXXXXXXXXXX';",
  "const apiSecret = 'YOUR_API_SECRET';",
  "const dateTime = new Date().toISOString();",
  "const salt = crypto.randomBytes(16).toString('hex');",
  "const signature = crypto.createHmac('sha256', apiSecret).update(dateTime + salt).digest('hex');",
  "const authHeader = HMAC-SHA256 apiKey=${apiKey}, date=${dateTime}, salt=${salt}, signature=${signature};",
  "const response = await fetch('https://api.solapi.com/crm-core/v1/relationships/types', {",
  "method: 'POST',",
  "headers: { 'Authorization': authHeader, 'Content-Type': 'application/json' },",
  "body: JSON.stringify({",
  "\"name\": \"소속사\",",
  "\"sourceEntityId\": \"CRMET1260423081530123EMP11122233\",",
  "\"targetEntityId\": \"CRMET1260423081530124COM11122234\",",
  "\"sourceLabel\": \"직원\",",
  "\"targetLabel\": \"회사\",",
  "\"description\": \"직원과 소속 회사의 관계\"",
  "})",
  "});",
  "const data = await response.json();",
].join('\n');

const PYTHON_TYPE = [
  "import hmac, hashlib, secrets, requests",
  "from datetime import datetime, timezone",
  "api_key = 'NCSXXXXXXXXXXXXX'",
  "api_secret = 'YOUR_API_SECRET'",
  "date_time = datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')",
  "salt = secrets.token_hex(16)",
  "signature = hmac.new(api_secret.encode(), (date_time + salt).encode(), hashlib.sha256).hexdigest()",
  "auth_header = f'HMAC-SHA256 apiKey={api_key}, date={date_time}, salt={salt}, signature={signature}'",
  "response = requests.post('https://api.solapi.com/crm-core/v1/relationships/types', headers={",
  "'Authorization': auth_header,",
  "'Content-Type': 'application/json'",
  "}, json={",
  "\"name\": \"소속사\",",
  "\"sourceEntityId\": \"CRMET1260423081530123EMP11122233\",",
  "\"targetEntityId\": \"CRMET1260423081530124COM11122234\",",
  "\"sourceLabel\": \"직원\",",
  "\"targetLabel\": \"회사\",",
  "\"description\": \"직원과 소속 회사의 관계\"",
  "})",
  "data = response.json()",
].join('\n');

const CURL_TYPE = [
  "API_KEY=\"NCSXXXXXXXXXXXXX\"",
  "API_SECRET=\"YOUR_API_SECRET\"",
  "DATE=$(date -u +\"%Y-%m-%dT%H:%M:%SZ\")",
  "SALT=$(openssl rand -hex 16)",
  "SIGNATURE=$(echo -n \"${DATE}${SALT}\" | openssl dgst -sha256 -hmac \"${API_SECRET}\" | awk '{print $NF}')",
  "AUTH=\"HMAC-SHA256 apiKey=${API_KEY}, date=${DATE}, salt=${SALT}, signature=${SIGNATURE}\"",
  "curl -X POST 'https://api.solapi.com/crm-core/v1/relationships/types' \\",
  "-H \"Authorization: ${AUTH}\" \\",
  "-H \"Content-Type: application/json\" \\",
  "-d '{\"name\": \"소속사\", \"sourceEntityId\": \"CRMET1260423081530123EMP11122233\", \"targetEntityId\": \"CRMET1260423081530124COM11122234\", \"sourceLabel\": \"직원\", \"targetLabel\": \"회사\", \"description\": \"직원과 소속 회사의 관계\"}'",
].join('\n');

const SEED_RELATIONSHIP_ID = 'CRMRL1260423091530123REL11122233';
const SEED_SOURCE_ENTITY = 'CRMET1260423081530123EMP11122233';
const SEED_TARGET_ENTITY = 'CRMET1260423081530124COM11122234';

/** Seed 004's response fields (the page's table), all present since every optional one is sent. */
const TYPE_FIELDS = ['relationshipTypeId', 'accountId', 'workspaceId', 'name', 'sourceEntityId', 'targetEntityId', 'sourceLabel', 'targetLabel', 'description', 'dateCreated', 'dateUpdated'];

type Sample = 'curl' | 'node' | 'python';
interface Answer {
  status: number;
  data: any;
}

function personalise(sample: string, baseUrl: string, creds: PrintedAccount, ids: [string, string][]): string {
  // The values land inside shell double quotes and JS/Python single quotes: keep them plain.
  assert.match(creds.apiKey, /^[A-Za-z0-9]+$/);
  assert.match(creds.apiSecret, /^[A-Za-z0-9]+$/);
  return substitute(sample, [
    ['NCSXXXXXXXXXXXXX', creds.apiKey],
    ['YOUR_API_SECRET', creds.apiSecret],
    ['https://api.solapi.com', baseUrl],
    ...ids,
  ]);
}

async function runSample(kind: Sample, sample: string, dir: string): Promise<Answer> {
  if (kind === 'curl') {
    // A shell function observes the HTTP status without editing the sample's curl command.
    const observe = "curl() { command curl --silent --show-error --write-out '\\n%{http_code}' \"$@\"; }\n";
    const { stdout } = await run('bash', ['-c', observe + sample], { env: SAMPLE_ENV, timeout: 30_000 });
    const lines = stdout.trimEnd().split('\n');
    const status = Number(lines.pop());
    return { status, data: JSON.parse(lines.join('\n')) };
  }
  if (kind === 'node') {
    // .mjs for the top-level await; require() is what the snippet uses.
    const file = join(dir, `sample-${Math.random().toString(36).slice(2)}.mjs`);
    writeFileSync(file, [
      "import { createRequire } from 'node:module';",
      'const require = createRequire(import.meta.url);',
      substitute(sample, [AUTH_HEADER_BACKTICKS]),
      'console.log(JSON.stringify({ status: response.status, data }));',
    ].join('\n'));
    const { stdout } = await run(NODE, [file], { env: SAMPLE_ENV, timeout: 30_000 });
    return JSON.parse(stdout);
  }
  const script = [sample, 'import json', "print(json.dumps({'status': response.status_code, 'data': data}))"].join('\n');
  const { stdout } = await run('python3', ['-c', script], { env: SAMPLE_ENV, timeout: 30_000 });
  return JSON.parse(stdout);
}

const SAMPLES: Record<'patch' | 'type', Record<Sample, string>> = {
  patch: { curl: CURL_PATCH, node: JS_PATCH, python: PYTHON_PATCH },
  type: { curl: CURL_TYPE, node: JS_TYPE, python: PYTHON_TYPE },
};

const backends = serverBackends('Seed relationships');

after(removeTempDirs);

describe('seeds 003 (PATCH relationship) and 004 (POST relationship type): client samples against a live server', { concurrency: true }, () => {
  for (const backend of backends) {
    describe(backend.name, { skip: backend.skip, concurrency: 1 }, () => {
      let server: ServerProcess | undefined;
      let creds: PrintedAccount;
      let dir: string;
      let employees: string;
      let companies: string;
      let relationshipId: string;
      const call = async (method: string, path: string, body?: unknown) => {
        const res = await signedFetch(server!.baseUrl, creds, method, `/crm-core/v1${path}`, body);
        assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.json)}`);
        return res.json;
      };

      before(async () => {
        ({ server, creds } = await backend.start());
        dir = tempDir();
        employees = (await call('POST', '/entities', { name: '직원', slug: 'employees' })).entityId;
        companies = (await call('POST', '/entities', { name: '회사', slug: 'companies' })).entityId;
        // The relationship seed 003 edits: an employee at a company, with metadata to be replaced.
        const type = await call('POST', '/relationships/types', { name: '담당', sourceEntityId: employees, targetEntityId: companies });
        const employee = (await call('POST', '/records', { entityId: employees, name: '김민준' })).recordId;
        const company = (await call('POST', '/records', { entityId: companies, name: '솔라피' })).recordId;
        relationshipId = (await call('POST', '/relationships', {
          relationshipTypeId: type.relationshipTypeId, sourceEntityId: employees, sourceRecordId: employee, targetEntityId: companies, targetRecordId: company,
        })).relationshipId;
      });
      after(async () => {
        await server?.stop();
      });

      for (const kind of ['curl', 'node', 'python'] as const) {
        const skip = kind === 'python' ? PYTHON_SKIP : false;

        test(`seed 004 (${kind}): creates the type with every documented field; a second run is 409 ConflictException`, { skip }, async () => {
          const sample = personalise(SAMPLES.type[kind], server!.baseUrl, creds, [[SEED_SOURCE_ENTITY, employees], [SEED_TARGET_ENTITY, companies]]);
          const answer = await runSample(kind, sample, dir);
          assert.equal(answer.status, 201, JSON.stringify(answer.data));
          assert.deepEqual(Object.keys(answer.data).sort(), [...TYPE_FIELDS].sort());
          const { relationshipTypeId, dateCreated, dateUpdated, ...values } = answer.data;
          assert.match(relationshipTypeId, /^CRMRT1\d{15}[A-Za-z0-9]{11}$/);
          for (const date of [dateCreated, dateUpdated]) assert.match(date, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
          assert.deepEqual(values, {
            accountId: creds.accountId, workspaceId: null, name: '소속사', sourceEntityId: employees, targetEntityId: companies,
            sourceLabel: '직원', targetLabel: '회사', description: '직원과 소속 회사의 관계',
          });
          const again = await runSample(kind, sample, dir);
          assert.equal(again.status, 409, JSON.stringify(again.data));
          assert.equal(again.data.errorCode, 'ConflictException');
          await call('DELETE', `/relationships/types/${relationshipTypeId}`);
        });

        test(`seed 003 (${kind}): replaces the metadata wholesale`, { skip }, async () => {
          await call('PATCH', `/relationships/${relationshipId}`, { metadata: { role: 'primary', isPrimary: true, startDate: '2026-01-01' } });
          const sample = personalise(SAMPLES.patch[kind], server!.baseUrl, creds, [[SEED_RELATIONSHIP_ID, relationshipId]]);
          const answer = await runSample(kind, sample, dir);
          assert.equal(answer.status, 200, JSON.stringify(answer.data));
          assert.equal(answer.data.relationshipId, relationshipId);
          assert.deepEqual(answer.data.metadata, { role: 'secondary', notes: '2차 담당' });
          assert.deepEqual(await call('GET', `/relationships/${relationshipId}`), answer.data);
        });
      }
    });
  }
});
