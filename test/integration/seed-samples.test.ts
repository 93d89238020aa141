/**
 * Solapi's own client samples (reference seed 000, "세그먼트 목록 조회") run unchanged against a
 * live server: the curl + openssl shell script, the Node fetch snippet and the Python requests
 * snippet. Only what a user would change is substituted: the base URL, the API key and secret.
 *
 * This file checks the signatures the samples make, in each date format they can produce
 * (with and without milliseconds); seed-segments.test.ts runs them against the segments route
 * itself, with its data. Here they are pointed at GET /crm-core/v1/usage, an authenticated GET
 * that needs no setup and answers 200 with the caller's accountId. The path swap is the only
 * other edit (the query string stays; /usage ignores it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  NODE, removeTempDirs, tempDir,
  type PrintedAccount, type ServerProcess,
} from '../helpers/server-process.ts';
import { AUTH_HEADER_BACKTICKS, PYTHON_SKIP, SAMPLE_ENV, serverBackends, substitute } from '../helpers/seed-samples.ts';

const run = promisify(execFile);

// ---- The samples, verbatim from the seed page (one string per line). ----

const NODE_SAMPLE = [
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

const PYTHON_SAMPLE = [
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

const CURL_SAMPLE = [
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

function personalise(sample: string, baseUrl: string, creds: PrintedAccount): string {
  // The values land inside shell double quotes and JS/Python single quotes: keep them plain.
  assert.match(creds.apiKey, /^[A-Za-z0-9]+$/);
  assert.match(creds.apiSecret, /^[A-Za-z0-9]+$/);
  return substitute(sample, [
    ['NCSXXXXXXXXXXXXX', creds.apiKey],
    ['YOUR_API_SECRET', creds.apiSecret],
    ['https://api.solapi.com', baseUrl],
    ['/crm-core/v1/segments', '/crm-core/v1/usage'], // the signature is the point here, see the header comment
  ]);
}

/** The page rendering dropped the backticks of this template literal; they are restored, nothing else. */
function restoreBackticks(sample: string): string {
  return substitute(sample, [AUTH_HEADER_BACKTICKS]);
}

function assertUsage(status: number, data: any, creds: PrintedAccount) {
  assert.equal(status, 200, JSON.stringify(data));
  assert.equal(data.accountId, creds.accountId);
  assert.ok(Array.isArray(data.limits), JSON.stringify(data));
}

const backends = serverBackends('Seed samples');

after(removeTempDirs);

describe('seed 000 client samples against a live server', { concurrency: true }, () => {
  for (const backend of backends) {
    describe(backend.name, { skip: backend.skip }, () => {
      let server: ServerProcess | undefined;
      let creds: PrintedAccount;
      let dir: string;

      before(async () => {
        ({ server, creds } = await backend.start());
        dir = tempDir();
      });
      after(async () => {
        await server?.stop();
      });

      test('curl + openssl (bash): date with Z, no milliseconds', async () => {
        // A shell function observes the HTTP status without editing the sample's curl command.
        const observe = "curl() { command curl --silent --show-error --write-out '\\n%{http_code}' \"$@\"; }\n";
        const { stdout } = await run('bash', ['-c', observe + personalise(CURL_SAMPLE, server!.baseUrl, creds)], {
          env: SAMPLE_ENV,
          timeout: 30_000,
        });
        const lines = stdout.trimEnd().split('\n');
        const status = Number(lines.pop());
        assertUsage(status, JSON.parse(lines.join('\n')), creds);
      });

      const runNode = async (sample: string) => {
        // .mjs for the top-level await; require() is what the snippet uses.
        const file = join(dir, `sample-${Math.random().toString(36).slice(2)}.mjs`);
        writeFileSync(file, [
          "import { createRequire } from 'node:module';",
          'const require = createRequire(import.meta.url);',
          sample,
          'console.log(JSON.stringify({ status: response.status, data }));',
        ].join('\n'));
        const { stdout } = await run(NODE, [file], { env: SAMPLE_ENV, timeout: 30_000 });
        const { status, data } = JSON.parse(stdout);
        assertUsage(status, data, creds);
      };

      test('Node fetch: date from toISOString() (milliseconds)', async () => {
        await runNode(personalise(restoreBackticks(NODE_SAMPLE), server!.baseUrl, creds));
      });

      test('Node fetch: the same snippet with a Z date without milliseconds', async () => {
        const sample = substitute(personalise(restoreBackticks(NODE_SAMPLE), server!.baseUrl, creds), [
          ['new Date().toISOString()', "new Date().toISOString().replace(/\\.\\d{3}Z$/, 'Z')"],
        ]);
        await runNode(sample);
      });

      test('Python requests: date with Z, no milliseconds', { skip: PYTHON_SKIP }, async () => {
        const script = [
          personalise(PYTHON_SAMPLE, server!.baseUrl, creds),
          'import json',
          "print(json.dumps({'status': response.status_code, 'data': data}))",
        ].join('\n');
        const { stdout } = await run('python3', ['-c', script], { env: SAMPLE_ENV, timeout: 30_000 });
        const { status, data } = JSON.parse(stdout);
        assertUsage(status, data, creds);
      });
    });
  }
});
