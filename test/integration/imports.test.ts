import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import ExcelJS from 'exceljs';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { authorization, type Credentials } from '../helpers/sign.ts';
import { expectError, uniq } from '../helpers/assertions.ts';
import type { JobContext, JobView } from '../../src/modules/jobs/jobs.service.ts';
import type { TenantDb } from '../../src/db/tenant.ts';

/**
 * Record import (issue 7; docs/imports.md): POST /records/import (CSV/XLSX, mapping, dry run,
 * upsert, sync and job paths) and Solapi's Excel endpoints (extract-columns, preview, import).
 */

const V1 = '/crm-core/v1';
const SYNC_MAX = 12;
const BATCH = 4;
const MAX_FILE = 64 * 1024;

interface FilePart { name: string; type?: string; content: Buffer | string }

/** A multipart/form-data body: text fields, then the file (field `file` unless told). */
function multipart(fields: Record<string, string>, file?: FilePart, fileField = 'file'): { payload: Buffer; contentType: string } {
  const boundary = `----crmtest${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  if (file) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${fileField}"; filename="${file.name}"\r\nContent-Type: ${file.type ?? 'text/csv'}\r\n\r\n`));
    chunks.push(Buffer.isBuffer(file.content) ? file.content : Buffer.from(file.content, 'utf8'));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

describe('record import (issue 7)', () => {
  let t: TestApp;
  let account: TestAccount;
  let member: Credentials & { memberId: string };
  let entityId: string;
  const p: Record<string, string> = {};

  const upload = (path: string, fields: Record<string, string>, file?: FilePart, creds: Credentials = account, headers: Record<string, string> = {}) => {
    const { payload, contentType } = multipart(fields, file);
    return t.app.inject({ method: 'POST', url: `${V1}${path}`, headers: { authorization: authorization(creds), 'content-type': contentType, ...headers }, payload });
  };
  const csv = (content: string, name = 'import.csv'): FilePart => ({ name, content });
  async function newEntity(creds: Credentials = account, body: Record<string, unknown> = {}) {
    const res = await t.call(creds, 'POST', `${V1}/entities`, { name: 'Customers', slug: uniq('c'), ...body });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().entityId as string;
  }
  async function newProperty(entity: string, fieldType: string, extra: Record<string, unknown> = {}, creds: Credentials = account) {
    const res = await t.call(creds, 'POST', `${V1}/properties`, { entityId: entity, name: uniq(fieldType), fieldType, ...extra });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().propertyId as string;
  }
  /** All live records of an entity, by name. */
  async function recordsOf(entity: string, creds: Credentials = account): Promise<Map<string, any>> {
    const out = new Map<string, any>();
    let startKey: string | undefined;
    do {
      const res = await t.call(creds, 'GET', `${V1}/records?entityId=${entity}&limit=200${startKey ? `&startKey=${encodeURIComponent(startKey)}` : ''}`);
      assert.equal(res.statusCode, 200, res.body);
      for (const r of res.json().data) out.set(r.name, r);
      startKey = res.json().nextKey;
    } while (startKey);
    return out;
  }
  /** Rows of the account in the records table, whatever their state. */
  async function rowCount(acct: TestAccount = account): Promise<number> {
    const row = await acct.tenant.selectFrom('records').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }
  async function recordsUsed(acct: TestAccount = account): Promise<number> {
    const res = await t.call(acct, 'GET', `${V1}/usage`);
    return res.json().limits.find((l: any) => l.key === 'records.max').used;
  }
  async function waitForJob(jobId: string, creds: Credentials = account): Promise<any> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const res = await t.call(creds, 'GET', `${V1}/records/import/${jobId}/status`);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      if (body.status === 'completed' || body.status === 'failed') return body;
      assert.ok(Date.now() < deadline, `job ${jobId} still ${body.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  before(async () => {
    t = await startTestApp({ jobWorker: { pollMs: 100 }, imports: { syncMaxRows: SYNC_MAX, batchSize: BATCH, maxFileBytes: MAX_FILE } });
    account = await t.newAccount();
    member = await t.addMember(account, 'MEMBER');
    entityId = await newEntity();
    p.email = await newProperty(entityId, 'EMAIL', { name: '이메일', key: 'email' });
    p.phone = await newProperty(entityId, 'PHONE', { name: '전화' });
    p.score = await newProperty(entityId, 'NUMBER', { name: '점수', key: 'score' });
    p.stage = await newProperty(entityId, 'DROPDOWN', { name: '단계', options: [{ label: '리드', value: 'LEAD' }, { label: '성사', value: 'WON' }] });
    p.joined = await newProperty(entityId, 'DATE', { name: '가입일', key: 'joined' });
    p.active = await newProperty(entityId, 'CHECKBOX', { name: '활성' });
    p.interests = await newProperty(entityId, 'MULTI_CHECKBOX', { name: '관심사', options: [{ label: 'SMS', value: 'sms' }, { label: 'Email', value: 'mail' }] });
    p.notes = await newProperty(entityId, 'TEXTAREA', { name: '메모' });
    p.seen = await newProperty(entityId, 'DATETIME', { name: '최근 방문' });
  });
  after(() => t.close());

  describe('CSV', () => {
    test('BOM, Korean, quoted newlines and CRLF; mapped by header; values converted to each type', async () => {
      const entity = await newEntity();
      const email = await newProperty(entity, 'EMAIL', { name: '이메일' });
      const score = await newProperty(entity, 'NUMBER', { name: '점수' });
      const stage = await newProperty(entity, 'DROPDOWN', { name: '단계', options: [{ label: '리드', value: 'LEAD' }, { label: '성사', value: 'WON' }] });
      const joined = await newProperty(entity, 'DATE', { name: '가입일' });
      const active = await newProperty(entity, 'CHECKBOX', { name: '활성' });
      const interests = await newProperty(entity, 'MULTI_CHECKBOX', { name: '관심사', options: [{ label: 'SMS', value: 'sms' }, { label: 'Email', value: 'mail' }] });
      const notes = await newProperty(entity, 'TEXTAREA', { name: '메모' });
      const seen = await newProperty(entity, 'DATETIME', { name: '최근 방문' });
      const text = '\uFEFF이름,이메일,점수,단계,가입일,활성,관심사,메모,최근 방문,태그\r\n'
        + '김민준, Kim@Example.COM ,"1,234",리드,2024/01/05,예,"SMS, Email","첫 줄\r\n둘째 줄, ""따옴표""",2024-03-01 09:30,"vip, 서울"\r\n'
        + '"이, 서연",lee@example.com,-12.5,WON,20240106,false,mail,,2024-03-01T09:30:00+09:00,\r\n'
        + '박도윤,,,,,,,,,\r\n';
      const res = await upload('/records/import', { entityId: entity }, csv(text));
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.deepEqual({ mode: body.mode, total: body.total, created: body.created, updated: body.updated, failedCount: body.failedCount, failed: body.failed },
        { mode: 'sync', total: 3, created: 3, updated: 0, failedCount: 0, failed: [] });
      const records = await recordsOf(entity);
      assert.deepEqual([...records.keys()].sort(), ['김민준', '박도윤', '이, 서연'].sort());
      const kim = records.get('김민준');
      assert.deepEqual(kim.data, {
        [email]: 'kim@example.com', [score]: 1234, [stage]: 'LEAD', [joined]: '2024-01-05', [active]: true,
        [interests]: ['sms', 'mail'], [notes]: '첫 줄\r\n둘째 줄, "따옴표"', [seen]: '2024-03-01T09:30:00.000Z',
      });
      assert.deepEqual(kim.tags, ['vip', '서울']);
      assert.equal(kim.ownerId, account.memberId);
      const lee = records.get('이, 서연');
      assert.deepEqual(lee.data, { [email]: 'lee@example.com', [score]: -12.5, [stage]: 'WON', [joined]: '2024-01-06', [active]: false, [interests]: ['mail'], [seen]: '2024-03-01T00:30:00.000Z' });
      assert.deepEqual(lee.tags, []);
      assert.deepEqual(records.get('박도윤').data, {}, 'empty cells set nothing');
    });

    test('CP949/EUC-KR bytes (Korean Excel\'s "CSV") are decoded', async () => {
      const entity = await newEntity();
      // "이름\r\n홍길동\r\n" in EUC-KR.
      const bytes = Buffer.from([0xc0, 0xcc, 0xb8, 0xa7, 0x0d, 0x0a, 0xc8, 0xab, 0xb1, 0xe6, 0xb5, 0xbf, 0x0d, 0x0a]);
      const res = await upload('/records/import', { entityId: entity }, { name: 'old.csv', content: bytes });
      assert.equal(res.statusCode, 200, res.body);
      assert.ok((await recordsOf(entity)).has('홍길동'));
    });

    test('mapping by column index, header and property key/ID; tags; __skip__; hasHeader=false', async () => {
      const entity = await newEntity();
      const email = await newProperty(entity, 'EMAIL', { key: 'email' });
      const score = await newProperty(entity, 'NUMBER', { key: 'score' });
      const text = 'Full name,Mail,Points,Ignored,Labels\nAlpha,a@x.com,1,zzz,"t1,t2"\nBeta,b@x.com,2,zzz,\n';
      const mapping = { 0: '__name__', Mail: 'email', points: score, Ignored: '__skip__', 4: '__tags__' };
      const res = await upload('/records/import', { entityId: entity, mapping: JSON.stringify(mapping) }, csv(text));
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().created, 2);
      const records = await recordsOf(entity);
      assert.deepEqual(records.get('Alpha').data, { [email]: 'a@x.com', [score]: 1 });
      assert.deepEqual(records.get('Alpha').tags, ['t1', 't2']);

      // No header row: index mapping only; every row is data (the first is row 1).
      const noHeader = await upload('/records/import', { entityId: entity, hasHeader: 'false', mapping: JSON.stringify({ 0: '__name__', 1: email }) }, csv('Gamma,g@x.com\nDelta,oops\n'));
      assert.equal(noHeader.statusCode, 200, noHeader.body);
      assert.equal(noHeader.json().created, 1);
      assert.deepEqual(noHeader.json().failed.map((f: any) => f.row), [2]);
      const byHeader = await upload('/records/import', { entityId: entity, hasHeader: 'false', mapping: JSON.stringify({ Mail: email }) }, csv('x,y\n'));
      expectError(byHeader, 400, 'ValidationError', 'body/mapping/Mail');
    });

    test('semicolon and tab delimiters', async () => {
      const entity = await newEntity();
      const score = await newProperty(entity, 'NUMBER', { key: 'score' });
      const semi = await upload('/records/import', { entityId: entity, delimiter: ';' }, csv('name;score\nS1;1,5\n'));
      assert.equal(semi.statusCode, 200, semi.body);
      assert.deepEqual(semi.json().failed.map((f: any) => f.row), [2], '"1,5" is not a number');
      const tsv = await upload('/records/import', { entityId: entity }, { name: 'x.tsv', type: 'text/tab-separated-values', content: 'name\tscore\nT1\t7\n' });
      assert.equal(tsv.statusCode, 200, tsv.body);
      assert.equal((await recordsOf(entity)).get('T1').data[score], 7);
    });
  });

  test('XLSX built with exceljs: typed cells, the named sheet, row numbers as the sheet shows them', async () => {
    const entity = await newEntity();
    const joined = await newProperty(entity, 'DATE', { name: '가입일' });
    const score = await newProperty(entity, 'NUMBER', { name: '점수' });
    const active = await newProperty(entity, 'CHECKBOX', { name: '활성' });
    const seen = await newProperty(entity, 'DATETIME', { name: '방문' });
    const phone = await newProperty(entity, 'PHONE', { name: '전화' });
    const wb = new ExcelJS.Workbook();
    wb.addWorksheet('Notes').addRow(['not this one']);
    const ws = wb.addWorksheet('고객');
    ws.addRow(['이름', '가입일', '점수', '활성', '방문', '전화']);
    ws.addRow(['홍길동', new Date(Date.UTC(2024, 0, 5)), 12.5, true, new Date(Date.UTC(2024, 2, 1, 9, 30)), '010-1234-5678']);
    ws.addRow([]);
    ws.addRow([{ richText: [{ text: '리치' }, { text: '텍스트' }] }, '2024-02-30', { formula: '1+1', result: 2 }, 'no', null, 1012345678]);
    const bytes = Buffer.from(await wb.xlsx.writeBuffer());
    const file = { name: 'customers.xlsx', type: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', content: bytes };

    const wrongSheet = await upload('/records/import', { entityId: entity, sheetName: 'Nope' }, file);
    expectError(wrongSheet, 400, 'ValidationError', '"고객"');

    const res = await upload('/records/import', { entityId: entity, sheetName: '고객' }, file);
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.total, 2);
    assert.equal(body.created, 1);
    assert.equal(body.failed.length, 1);
    assert.equal(body.failed[0].row, 4, 'row 3 is empty; the bad row is row 4 of the sheet');
    assert.match(body.failed[0].errorMessage, /column B "가입일": DATE/);
    const hong = (await recordsOf(entity)).get('홍길동');
    assert.deepEqual(hong.data, { [joined]: '2024-01-05', [score]: 12.5, [active]: true, [seen]: '2024-03-01T09:30:00.000Z', [phone]: '01012345678' });

    const legacy = await upload('/records/import', { entityId: entity }, { name: 'old.xls', type: 'application/vnd.ms-excel', content: Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(100)]) });
    expectError(legacy, 415, 'UnsupportedMediaType', '.xlsx');
    const broken = await upload('/records/import', { entityId: entity }, { ...file, content: bytes.subarray(0, 200) });
    expectError(broken, 400, 'ValidationError', 'xlsx');
  });

  test('dry run writes nothing and reports per-row outcomes, errors per column and counts', async () => {
    const existing = (await t.call(account, 'POST', `${V1}/records`, { entityId, name: 'Existing', data: { [p.email!]: 'old@x.com', [p.score!]: 5 } })).json();
    const text = '이름,이메일,점수,단계\n'
      + 'New,new@x.com,1,리드\n'
      + 'Old again,OLD@x.com,2,\n'
      + 'Bad,not-an-email,many,Nope\n';
    const rowsBefore = await rowCount();
    const usedBefore = await recordsUsed();
    const res = await upload('/records/import', { entityId, dryRun: 'true', upsertBy: 'email' }, csv(text));
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.mode, 'dryRun');
    assert.deepEqual({ total: body.total, wouldCreate: body.wouldCreate, wouldUpdate: body.wouldUpdate, invalid: body.invalid }, { total: 3, wouldCreate: 1, wouldUpdate: 1, invalid: 1 });
    assert.deepEqual(body.rows.map((r: any) => [r.row, r.action]), [[2, 'create'], [3, 'update'], [4, 'invalid']]);
    assert.equal(body.rows[1].recordId, existing.recordId);
    assert.deepEqual(body.rows[0].record, { name: 'New', data: { [p.email!]: 'new@x.com', [p.score!]: 1, [p.stage!]: 'LEAD' } });
    const bad = body.failed[0];
    assert.equal(bad.row, 4);
    assert.deepEqual(bad.details.map((d: any) => [d.column, d.header]), [[1, '이메일'], [2, '점수'], [3, '단계']]);
    assert.match(bad.errorMessage, /^column B "이메일": EMAIL: .* \(and 2 more\)$/);
    assert.match(bad.details[2].message, /"Nope" is not an option of this property \(options: 리드 \(LEAD\), 성사 \(WON\)\)/);
    assert.deepEqual(body.columns.map((c: any) => c.target), ['__name__', p.email, p.score, p.stage]);
    assert.equal(await rowCount(), rowsBefore, 'no record written');
    assert.equal(await recordsUsed(), usedBefore, 'no slot taken');
    assert.deepEqual((await t.call(account, 'GET', `${V1}/records/${existing.recordId}`)).json().data, { [p.email!]: 'old@x.com', [p.score!]: 5 });
  });

  test('rows that fail are reported with row number and reason; the others are imported', async () => {
    const entity = await newEntity();
    const score = await newProperty(entity, 'NUMBER', { name: 'score' });
    const date = await newProperty(entity, 'DATE', { name: 'day' });
    const rows = ['name,score,day', 'r2,1,2024-01-01', 'r3,x,2024-01-01', 'r4,3,2024-13-01', 'r5,4,', `${'n'.repeat(501)},5,`, 'r7,"1e400",', 'r8,8,2024-02-29'];
    const res = await upload('/records/import', { entityId: entity }, csv(rows.join('\n')));
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.created, 3);
    assert.deepEqual(body.failed.map((f: any) => [f.row, f.errorCode]), [[3, 'ValidationError'], [4, 'ValidationError'], [6, 'ValidationError'], [7, 'ValidationError']]);
    assert.match(body.failed[0].errorMessage, /column B "score": NUMBER: "x" is not a number/);
    assert.match(body.failed[1].errorMessage, /column C "day": DATE/);
    assert.match(body.failed[2].errorMessage, /at most 500 characters/);
    assert.match(body.failed[3].errorMessage, /too large/);
    assert.deepEqual([...(await recordsOf(entity)).keys()].sort(), ['r2', 'r5', 'r8']);
    assert.deepEqual((await recordsOf(entity)).get('r8').data, { [score]: 8, [date]: '2024-02-29' });
  });

  describe('upsert', () => {
    test('by email: a match is updated (merged like PATCH), a new value creates, a repeated value updates the record its first row made', async () => {
      const entity = await newEntity();
      const email = await newProperty(entity, 'EMAIL', { name: 'email', key: 'email' });
      const score = await newProperty(entity, 'NUMBER', { name: 'score' });
      const city = await newProperty(entity, 'TEXT', { name: 'city' });
      const existing = (await t.call(account, 'POST', `${V1}/records`, { entityId: entity, name: 'Ann', data: { [email]: 'ann@x.com', [score]: 1, [city]: 'Seoul' }, tags: ['old'] })).json();
      const text = 'name,email,score,city,tags\n'
        + ',ANN@x.com,10,,new\n' // update Ann: score changes, city kept (empty cell), name kept, tags replaced
        + 'Bob,bob@x.com,20,Busan,\n' // create
        + 'Bobby,Bob@X.com,,Incheon,\n' // updates the record row 3 created
        + 'NoKey,,30,,\n'; // no key: creates
      const res = await upload('/records/import', { entityId: entity, upsertBy: email }, csv(text));
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual({ created: res.json().created, updated: res.json().updated, failed: res.json().failed }, { created: 2, updated: 2, failed: [] });
      const records = await recordsOf(entity);
      assert.equal(records.size, 3);
      const ann = records.get('Ann');
      assert.equal(ann.recordId, existing.recordId);
      assert.deepEqual(ann.data, { [email]: 'ann@x.com', [score]: 10, [city]: 'Seoul' });
      assert.deepEqual(ann.tags, ['new']);
      assert.deepEqual(records.get('Bobby').data, { [email]: 'bob@x.com', [score]: 20, [city]: 'Incheon' });
      assert.ok(records.has('NoKey'));

      // Two live records with one value: the value is ambiguous, its rows fail; others go on.
      await t.call(account, 'POST', `${V1}/records`, { entityId: entity, name: 'Ann twin', data: { [email]: 'ann@x.com' } });
      const again = await upload('/records/import', { entityId: entity, upsertBy: 'email' }, csv('name,email\nA,ann@x.com\nC,carl@x.com\n'));
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(again.json().created, 1);
      assert.deepEqual(again.json().failed.map((f: any) => f.row), [2]);
      assert.match(again.json().failed[0].errorMessage, /2 live records/);
    });

    test('imports running at once that upsert the same new values create each record once', async () => {
      const entity = await newEntity();
      const email = await newProperty(entity, 'EMAIL', { name: 'email', key: 'email' });
      const emails = Array.from({ length: SYNC_MAX }, (_, i) => `u${i}@race.example`); // the sync path: one transaction per file
      // Four files with the same new values in different orders (locks taken in hash order: no deadlock).
      const files = [0, 1, 2, 3].map((k) => {
        const order = k % 2 === 0 ? emails : [...emails].reverse();
        return `name,email\n${order.map((e, i) => `n${k}-${i},${e}`).join('\n')}\n`;
      });
      const results = await Promise.all(files.map((text) => upload('/records/import', { entityId: entity, upsertBy: email }, csv(text))));
      for (const res of results) assert.equal(res.statusCode, 200, res.body);
      assert.equal(results.reduce((n, res) => n + res.json().created, 0), emails.length);
      assert.equal(results.reduce((n, res) => n + res.json().updated, 0), emails.length * 3);
      const records = [...(await recordsOf(entity)).values()];
      assert.equal(records.length, emails.length);
      assert.deepEqual(records.map((r: any) => r.data[email]).sort(), [...emails].sort());
    });

    test('upsertBy must be an identifying property mapped to a column', async () => {
      expectError(await upload('/records/import', { entityId, upsertBy: p.score! }, csv('이름,점수\na,1\n')), 400, 'ValidationError', 'NUMBER properties cannot identify');
      expectError(await upload('/records/import', { entityId, upsertBy: p.email! }, csv('이름\na\n')), 400, 'ValidationError', 'no column is mapped');
      expectError(await upload('/records/import', { entityId, upsertBy: 'nope' }, csv('이름\na\n')), 400, 'ValidationError', 'body/upsertBy');
    });

    test('records.findByValues: live records by stored value, trashed ones left out; MEMBERs may not match on masked properties', async () => {
      const entity = await newEntity();
      const email = await newProperty(entity, 'EMAIL');
      const secret = await newProperty(entity, 'TEXT', { isMasked: true });
      const mk = async (data: Record<string, unknown>) => (await t.call(account, 'POST', `${V1}/records`, { entityId: entity, data })).json().recordId as string;
      const a = await mk({ [email]: 'a@x.com', [secret]: 's' });
      const b = await mk({ [email]: 'b@x.com' });
      const gone = await mk({ [email]: 'a@x.com' });
      await t.call(account, 'DELETE', `${V1}/records/${gone}`);
      const owner = { accountId: account.accountId, memberId: account.memberId, role: 'OWNER' as const, apiKey: account.apiKey, workspaceId: null };
      const found = await t.services.records.findByValues(account.tenant, owner, entity, email, ['a@x.com', 'b@x.com', 'c@x.com', 'a@x.com']);
      assert.deepEqual(found.map((f) => [f.recordId, f.value]).sort(), [[a, 'a@x.com'], [b, 'b@x.com']].sort());
      assert.deepEqual(await t.services.records.findByValues(account.tenant, owner, entity, email, []), []);
      const asMember = { ...owner, memberId: member.memberId, role: 'MEMBER' as const, apiKey: member.apiKey };
      await assert.rejects(t.services.records.findByValues(account.tenant, asMember, entity, secret, ['s']), { code: 'Forbidden' });
      await assert.rejects(t.services.records.findByValues(account.tenant, owner, entity, 'CRMPP1260101000000000ABCDEFGHIJK', ['s']), { code: 'ValidationError' });
      expectError(await upload('/records/import', { entityId: entity, upsertBy: secret }, csv(`name,${secret}\nx,s\n`), member), 403, 'Forbidden', 'masked');
    });
  });

  test('records.max: rows past the limit fail with the plan error, the rest are imported (sync, dry run and job)', async () => {
    const acct = await t.newAccount();
    const entity = await newEntity(acct);
    await t.services.quota.setLimits(acct.tenant, { 'records.max': 5 });
    await t.call(acct, 'POST', `${V1}/records`, { entityId: entity, name: 'first' });
    const text = `name\n${Array.from({ length: 6 }, (_, i) => `q${i}`).join('\n')}\n`;
    const dry = await upload('/records/import', { entityId: entity, dryRun: 'true' }, csv(text), acct);
    assert.equal(dry.statusCode, 200, dry.body);
    assert.deepEqual([dry.json().wouldCreate, dry.json().invalid], [4, 2]);
    assert.equal(dry.json().failed[0].errorMessage, 'records.max: 5/5');

    const res = await upload('/records/import', { entityId: entity }, csv(text), acct);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().created, 4);
    assert.deepEqual(res.json().failed.map((f: any) => [f.row, f.errorCode, f.errorMessage]), [[6, 'PlanQuotaExceeded', 'records.max: 5/5'], [7, 'PlanQuotaExceeded', 'records.max: 5/5']]);
    assert.equal(await rowCount(acct), 5);
    assert.equal(await recordsUsed(acct), 5);

    // The job path respects it too, batch by batch.
    await t.services.quota.setLimits(acct.tenant, { 'records.max': 12 });
    const big = `name\n${Array.from({ length: SYNC_MAX + 3 }, (_, i) => `j${i}`).join('\n')}\n`;
    const queued = await upload('/records/import', { entityId: entity }, csv(big), acct);
    assert.equal(queued.statusCode, 202, queued.body);
    const done = await waitForJob(queued.json().jobId, acct);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.equal(done.result.created, 7);
    assert.equal(done.result.failedCount, SYNC_MAX + 3 - 7);
    assert.ok(done.result.failed.every((f: any) => f.errorCode === 'PlanQuotaExceeded'));
    assert.equal(done.result.failed[0].row, 9);
    assert.equal(await rowCount(acct), 12);
  });

  describe('job path', () => {
    /** A records.import job over `text` (stored as an upload is), as the worker hands it to runJob. */
    async function importJob(entityId: string, text: string, total: number, jobId: string): Promise<{ job: JobView; fileId: string }> {
      const writer = await t.services.files.create(account.tenant, { name: 'import.csv', contentType: 'text/csv', expiresAt: new Date(Date.now() + 3600_000) });
      await writer.write(text);
      await writer.finish();
      const params = { entityId, fileId: writer.fileId, format: 'csv', hasHeader: true, memberId: account.memberId, apiKey: account.apiKey, workspaceId: null };
      const job: JobView = {
        jobId, kind: 'records.import', status: 'processing', progress: 0, total, params, checkpoint: null,
        result: null, error: null, createdBy: account.memberId, attempts: 1, dateCreated: new Date(), dateUpdated: new Date(), dateFinished: null,
      };
      return { job, fileId: writer.fileId };
    }

    test('a file above the sync threshold becomes a job: 202, status with progress, then the result; the stored upload is removed', async () => {
      const entity = await newEntity();
      const score = await newProperty(entity, 'NUMBER', { name: 'score' });
      const n = SYNC_MAX * 2 + 1;
      const lines = Array.from({ length: n }, (_, i) => `job ${i},${i === 7 ? 'bad' : i}`);
      const res = await upload('/records/import', { entityId: entity }, csv(`name,score\n${lines.join('\n')}\n`));
      assert.equal(res.statusCode, 202, res.body);
      const queued = res.json();
      assert.equal(queued.mode, 'async');
      assert.equal(queued.total, n);
      assert.match(queued.jobId, /^[0-9a-f-]{36}$/);
      const done = await waitForJob(queued.jobId);
      assert.deepEqual({ status: done.status, progress: done.progress, total: done.total }, { status: 'completed', progress: n, total: n });
      assert.deepEqual({ created: done.result.created, updated: done.result.updated, failedCount: done.result.failedCount }, { created: n - 1, updated: 0, failedCount: 1 });
      assert.equal(done.result.failed[0].row, 9);
      const records = await recordsOf(entity);
      assert.equal(records.size, n - 1);
      assert.equal(records.get('job 24').data[score], 24);
      const files = await account.tenant.selectFrom('files').select('file_id').where('created_by', '=', account.memberId).execute();
      const job = await t.services.jobs.get(account.tenant, queued.jobId);
      assert.ok(!files.some((f) => f.file_id === (job!.params as any).fileId), 'the upload is deleted once imported');

      expectError(await t.call(account, 'GET', `${V1}/records/import/00000000-0000-4000-8000-000000000000/status`), 404, 'NotFound');
      expectError(await t.call(account, 'GET', `${V1}/records/import/not-a-uuid/status`), 404, 'NotFound');
      const other = await t.newAccount();
      expectError(await t.call(other, 'GET', `${V1}/records/import/${queued.jobId}/status`), 404, 'NotFound');
    });

    test('a job resumed after an interruption skips the rows its committed batches imported: no row twice', async () => {
      const entity = await newEntity();
      const email = await newProperty(entity, 'EMAIL', { key: 'email' });
      const n = BATCH * 3 + 2;
      const text = `name,email\n${Array.from({ length: n }, (_, i) => `res ${i},u${i}@x.com`).join('\n')}\n`;
      const { job, fileId } = await importJob(entity, text, n, '00000000-0000-4000-8000-000000000001');
      // First attempt: the second batch's progress save fails (the process "dies"): its rows roll back with it.
      const saved: unknown[] = [];
      let calls = 0;
      const ctx = (checkpoint: unknown, failAt?: number): JobContext => ({
        tenant: account.tenant,
        job: { ...job, checkpoint },
        signal: new AbortController().signal,
        async progress(update: { processed: number; checkpoint?: unknown }, tx?: TenantDb) {
          calls++;
          if (failAt !== undefined && calls === failAt) throw new Error('worker died');
          assert.ok(tx || update.checkpoint === undefined || (update.checkpoint as any).done, 'batch checkpoints are saved in the batch transaction');
          if (update.checkpoint !== undefined) saved.push(update.checkpoint);
        },
      });
      await assert.rejects(t.services.imports.runJob(ctx(null, 2)), /worker died/);
      assert.equal((await recordsOf(entity)).size, BATCH, 'only the first batch committed');
      assert.equal((saved.at(-1) as any).rowsDone, BATCH);

      const result = await t.services.imports.runJob(ctx(saved.at(-1)));
      assert.deepEqual({ total: result.total, created: result.created, failedCount: result.failedCount }, { total: n, created: n, failedCount: 0 });
      const records = await recordsOf(entity);
      assert.equal(records.size, n, 'every row exactly once');
      assert.equal(records.get(`res ${n - 1}`).data[email], `u${n - 1}@x.com`);
      assert.equal(await account.tenant.selectFrom('records').select('record_id').where('entity_id', '=', entity).execute().then((r) => r.length), n);
      // A run after completion returns the saved result without reading the (deleted) file.
      assert.equal(await t.services.files.info(account.tenant, fileId), undefined);
      assert.deepEqual(await t.services.imports.runJob(ctx(saved.at(-1))), result);
    });

    test('batches written side by side settle in file order; a failed batch takes the ones after it with it', async () => {
      const entity = await newEntity();
      const n = BATCH * 3 + 1;
      const text = `name\n${Array.from({ length: n }, (_, i) => `ord ${i}`).join('\n')}\n`;
      const job = async () => (await importJob(entity, text, n, '00000000-0000-4000-8000-000000000002')).job;
      // The first batch's checkpoint save is slow: the second batch (inserting meanwhile) must wait for its commit.
      const events: string[] = [];
      let calls = 0;
      const ctx = (view: JobView, failFirst: boolean): JobContext => ({
        tenant: account.tenant,
        job: view,
        signal: new AbortController().signal,
        async progress(update: { processed: number; checkpoint?: unknown }) {
          const call = ++calls;
          events.push(`start ${update.processed}`);
          if (call === 1) {
            await new Promise((r) => setTimeout(r, 300));
            if (failFirst) throw new Error('first batch failed');
          }
          events.push(`end ${update.processed}`);
        },
      });
      await assert.rejects(t.services.imports.runJob(ctx(await job(), true)), /first batch failed/);
      assert.equal((await recordsOf(entity)).size, 0, 'the batch written beside the failed one rolled back too');

      calls = 0;
      events.length = 0;
      const result = await t.services.imports.runJob(ctx(await job(), false));
      assert.equal(result.created, n);
      assert.deepEqual(events.slice(0, 8), ['start 4', 'end 4', 'start 8', 'end 8', 'start 12', 'end 12', 'start 13', 'end 13']);
      const names = [...(await recordsOf(entity)).keys()].sort((a, b) => Number(a.split(' ')[1]) - Number(b.split(' ')[1]));
      assert.deepEqual(names, Array.from({ length: n }, (_, i) => `ord ${i}`), 'every row exactly once');
    });
  });

  describe('Solapi Excel endpoints', () => {
    let file: FilePart;
    before(async () => {
      const wb = new ExcelJS.Workbook();
      const ws = wb.addWorksheet('Sheet1');
      ws.addRow(['고객명', '이메일', '점수']);
      ws.addRow(['엑셀 1', 'x1@x.com', 1]);
      ws.addRow(['엑셀 2', 'bad', 2]);
      wb.addWorksheet('Other').addRow(['a']);
      file = { name: 'crm.xlsx', type: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', content: Buffer.from(await wb.xlsx.writeBuffer()) };
    });

    test('extract-columns: the sheet\'s columns with header and sample', async () => {
      const res = await upload('/records/import/excel/extract-columns', { hasHeader: 'true' }, file);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), {
        sheetName: 'Sheet1', sheets: ['Sheet1', 'Other'], hasHeader: true, totalRows: 2,
        columns: [{ index: 0, header: '고객명', sample: '엑셀 1' }, { index: 1, header: '이메일', sample: 'x1@x.com' }, { index: 2, header: '점수', sample: '1' }],
      });
      const other = (await upload('/records/import/excel/extract-columns', { sheetName: 'Other', hasHeader: 'false' }, file)).json();
      assert.deepEqual(other.columns, [{ index: 0, header: null, sample: 'a' }]);
    });

    test('preview: rows converted and checked with the suggested mapping; nothing written', async () => {
      const before = await rowCount();
      const res = await upload('/records/import/excel/preview', { entityId, hasHeader: 'true' }, file);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.deepEqual(body.suggestedMappings, { 1: p.email, 2: p.score });
      assert.equal(body.totalRows, 2);
      assert.deepEqual(body.rows.map((r: any) => [r.row, r.action]), [[2, 'create'], [3, 'invalid']]);
      assert.deepEqual(body.rows[0].cells, ['엑셀 1', 'x1@x.com', '1']);
      assert.deepEqual(body.rows[0].record.data, { [p.email!]: 'x1@x.com', [p.score!]: 1 });
      const mapped = (await upload('/records/import/excel/preview', { entityId, columnMappings: '{"0":"__name__"}' }, file)).json();
      assert.equal(mapped.rows[0].record.name, '엑셀 1');
      assert.equal(await rowCount(), before);
      expectError(await upload('/records/import/excel/preview', { hasHeader: 'true' }, file), 400, 'ValidationError', 'entityId');
    });

    test('import with columnMappings {"0":"__name__"}, linkConfigs and skipAutomation', async () => {
      const entity = await newEntity();
      const linked = await newEntity();
      const res = await upload('/records/import/excel?skipAutomation=true', {
        entityId: entity, sheetName: 'Sheet1', hasHeader: 'true', columnMappings: '{"0":"__name__"}', linkConfigs: JSON.stringify([{ entityId: linked }]),
      }, file);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().created, 2);
      assert.deepEqual([...(await recordsOf(entity)).keys()].sort(), ['엑셀 1', '엑셀 2']);
      expectError(await upload('/records/import/excel', { entityId: entity, columnMappings: '{"0":"__name__"}', linkConfigs: '{"entityId":1}' }, file), 400, 'ValidationError', 'linkConfigs');
      expectError(await upload('/records/import/excel', { entityId: entity, columnMappings: '{"0":"__name__"}', linkConfigs: '[{"entityId":"CRMET1260101000000000ABCDEFGHIJK"}]' }, file), 404, 'NotFound');
      assert.equal((await recordsOf(entity)).size, 2);
    });
  });

  describe('bad requests: our error shape, nothing written', () => {
    test('multipart and form problems → 400/413/415', async () => {
      const before = await rowCount();
      const good = csv('name\nx\n');
      // Not multipart.
      expectError(await t.call(account, 'POST', `${V1}/records/import`, { entityId }), 415, 'UnsupportedMediaType', 'multipart');
      // No file, a file under another name, an unknown field, a bad value.
      expectError(await upload('/records/import', { entityId }), 400, 'ValidationError', 'body/file');
      const other = multipart({ entityId }, good, 'upload');
      expectError(await t.app.inject({ method: 'POST', url: `${V1}/records/import`, headers: { authorization: authorization(account), 'content-type': other.contentType }, payload: other.payload }), 400, 'ValidationError', 'body/upload');
      expectError(await upload('/records/import', { entityId, nope: '1' }, good), 400, 'ValidationError', 'body/nope');
      expectError(await upload('/records/import', { entityId, hasHeader: 'maybe' }, good), 400, 'ValidationError', 'body/hasHeader');
      expectError(await upload('/records/import', { entityId: 'nope' }, good), 400, 'ValidationError', 'body/entityId');
      // Truncated body; a boundary that never comes.
      const { payload, contentType } = multipart({ entityId }, good);
      expectError(await t.app.inject({ method: 'POST', url: `${V1}/records/import`, headers: { authorization: authorization(account), 'content-type': contentType }, payload: payload.subarray(0, payload.length - 30) }), 400, 'ValidationError', 'multipart');
      expectError(await t.app.inject({ method: 'POST', url: `${V1}/records/import`, headers: { authorization: authorization(account), 'content-type': 'multipart/form-data' }, payload: 'garbage' }), 400, 'ValidationError');
      // Mapping JSON and targets.
      expectError(await upload('/records/import', { entityId, mapping: '{"0":' }, good), 400, 'ValidationError', 'body/mapping');
      expectError(await upload('/records/import', { entityId, mapping: '["__name__"]' }, good), 400, 'ValidationError', 'body/mapping');
      expectError(await upload('/records/import', { entityId, mapping: '{"0": 5}' }, good), 400, 'ValidationError', 'body/mapping/0');
      expectError(await upload('/records/import', { entityId, mapping: '{"0": "nope"}' }, good), 400, 'ValidationError', '"nope" is not');
      expectError(await upload('/records/import', { entityId, mapping: '{"7": "__name__"}' }, good), 400, 'ValidationError', 'body/mapping/7');
      expectError(await upload('/records/import', { entityId, mapping: `{"0": "__name__", "name": "__name__"}` }, good), 400, 'ValidationError', 'mapped twice');
      expectError(await upload('/records/import/excel', { entityId, columnMappings: 'nope' }, good), 400, 'ValidationError', 'body/columnMappings');
      expectError(await upload('/records/import', { entityId }, csv('foo,bar\n1,2\n')), 400, 'ValidationError', 'no column header');
      expectError(await upload('/records/import', { entityId, delimiter: '""' }, good), 400, 'ValidationError', 'body/delimiter');
      expectError(await upload('/records/import', { entityId }, csv('')), 400, 'ValidationError', 'empty');
      expectError(await upload('/records/import', { entityId }, csv('name,x\n"unclosed,1\n')), 400, 'ValidationError', 'CSV row');
      // Damaged after the sync threshold (the upload was being stored for a job): 400, no job, no stored file left.
      const filesBefore = (await account.tenant.selectFrom('files').select('file_id').execute()).length;
      const jobsBefore = (await account.tenant.selectFrom('jobs').select('job_id').execute()).length;
      const late = `name\n${Array.from({ length: SYNC_MAX + 5 }, (_, i) => `ok ${i}`).join('\n')}\n"unclosed\n`;
      expectError(await upload('/records/import', { entityId }, csv(late)), 400, 'ValidationError', `CSV row ${SYNC_MAX + 7}`);
      assert.equal((await account.tenant.selectFrom('files').select('file_id').execute()).length, filesBefore);
      assert.equal((await account.tenant.selectFrom('jobs').select('job_id').execute()).length, jobsBefore);
      // Too large (this app's limit is 64 KiB).
      expectError(await upload('/records/import', { entityId }, csv(`name\n${'x\n'.repeat(MAX_FILE)}`)), 413, 'PayloadTooLarge', String(MAX_FILE));
      assert.equal(await rowCount(), before);
    });

    test('a reused Idempotency-Key with another file is refused, with the same file replayed', async () => {
      const entity = await newEntity();
      const key = { 'idempotency-key': uniq('import') };
      const first = await upload('/records/import', { entityId: entity }, csv('name\nidem\n'), account, key);
      assert.equal(first.statusCode, 200, first.body);
      const replay = await upload('/records/import', { entityId: entity }, csv('name\nidem\n'), account, key);
      assert.equal(replay.statusCode, 200);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      expectError(await upload('/records/import', { entityId: entity }, csv('name\nother\n'), account, key), 422, 'IdempotencyKeyReused');
      assert.deepEqual([...(await recordsOf(entity)).keys()], ['idem']);
    });

    test('access: MEMBER without record access gets 403, unknown entity 404, as elsewhere', async () => {
      const locked = await newEntity(account, { recordAccess: 'ADMIN_ONLY' });
      const good = csv('name\nx\n');
      expectError(await upload('/records/import', { entityId: locked }, good, member), 403, 'Forbidden');
      expectError(await upload('/records/import', { entityId: locked, dryRun: 'true' }, good, member), 403, 'Forbidden');
      expectError(await upload('/records/import/excel/preview', { entityId: locked }, good, member), 403, 'Forbidden');
      expectError(await upload('/records/import/excel', { entityId: locked, columnMappings: '{"0":"__name__"}' }, good, member), 403, 'Forbidden');
      expectError(await upload('/records/import', { entityId: 'CRMET1260101000000000ABCDEFGHIJK' }, good), 404, 'NotFound');
      // Another account's entity is unknown (never 403/410), for every import endpoint.
      const stranger = await t.newAccount();
      expectError(await upload('/records/import', { entityId }, good, stranger), 404, 'NotFound');
      expectError(await upload('/records/import', { entityId, dryRun: 'true' }, good, stranger), 404, 'NotFound');
      expectError(await upload('/records/import/excel/preview', { entityId }, good, stranger), 404, 'NotFound');
      expectError(await upload('/records/import/excel', { entityId, columnMappings: '{"0":"__name__"}' }, good, stranger), 404, 'NotFound');
      // The job's status is the entity's business too.
      const big = csv(`name\n${Array.from({ length: SYNC_MAX + 1 }, (_, i) => `m${i}`).join('\n')}\n`);
      const queued = await upload('/records/import', { entityId: locked }, big);
      assert.equal(queued.statusCode, 202, queued.body);
      expectError(await t.call(member, 'GET', `${V1}/records/import/${queued.json().jobId}/status`), 403, 'Forbidden');
      assert.equal((await waitForJob(queued.json().jobId)).status, 'completed');
      // A MEMBER may import into a PUBLIC entity.
      const ok = await upload('/records/import', { entityId }, csv('이름\nmember row\n'), member);
      assert.equal(ok.statusCode, 200, ok.body);
      assert.equal((await recordsOf(entityId)).get('member row').createdBy, member.memberId);
    });
  });
});
