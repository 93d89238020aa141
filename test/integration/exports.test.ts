import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { after, before, describe, test } from 'node:test';
import ExcelJS from 'exceljs';
import { AppError } from '../../src/errors.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { expectError, uniq } from '../helpers/assertions.ts';
import type { Credentials } from '../helpers/sign.ts';

/**
 * Record exports (API.md §5 "Export", docs/exports.md): POST /records/export/request,
 * GET /records/export/{jobId}/status, and the signed download link.
 */

const V1 = '/crm-core/v1';
const BOM = '\uFEFF';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const UNKNOWN_JOB = { status: 'failed', progress: 0, total: null, error: '작업을 찾을 수 없습니다.' };

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}
function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

describe('record exports', () => {
  let t: TestApp;
  let a: TestAccount;
  let member: Credentials & { memberId: string };
  let entityId: string;
  let slug: string;
  const p: Record<string, string> = {};
  const r: Record<string, any> = {};

  const call = (creds: Credentials, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) => t.call(creds, method, `${V1}${url}`, body);
  async function ok(creds: Credentials, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown, status = 200) {
    const res = await call(creds, method, url, body);
    assert.equal(res.statusCode, status, `${method} ${url}: ${res.body}`);
    return res.json();
  }
  /** GET of a download link as a browser would: no Authorization header. */
  async function fetchLink(url: string) {
    const { pathname, search } = new URL(url);
    return t.app.inject({ method: 'GET', url: `${pathname}${search}` });
  }
  async function download(url: string): Promise<Buffer> {
    const res = await fetchLink(url);
    assert.equal(res.statusCode, 200, res.body);
    return res.rawPayload;
  }
  async function exportSync(creds: Credentials, body: Record<string, unknown>): Promise<{ url: string; bytes: Buffer }> {
    const answer = await ok(creds, 'POST', '/records/export/request', { entityId, format: 'csv', ...body });
    assert.deepEqual(Object.keys(answer).sort(), ['downloadUrl', 'mode']);
    assert.equal(answer.mode, 'sync');
    return { url: answer.downloadUrl, bytes: await download(answer.downloadUrl) };
  }
  /** The record IDs (first column) of a CSV export, in file order. */
  const idsOf = (csv: Buffer) => csv.toString('utf8').slice(1).split('\r\n').slice(1, -1).map((line) => line.split(',')[0]!);
  async function exportedIds(body: Record<string, unknown>, creds: Credentials = a): Promise<string[]> {
    return idsOf((await exportSync(creds, body)).bytes);
  }
  const fileCount = async () => Number((await a.tenant.selectFrom('files').select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow()).n);
  const jobCount = async () => Number((await a.tenant.selectFrom('jobs').select(sql<string>`count(*)`.as('n')).executeTakeFirstOrThrow()).n);
  async function waitForStatus(creds: Credentials, jobId: string, done: (s: any) => boolean, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await ok(creds, 'GET', `/records/export/${jobId}/status`);
      if (done(s)) return s;
      if (Date.now() > deadline) throw new Error(`job ${jobId} still ${JSON.stringify(s)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  before(async () => {
    t = await startTestApp({ jobWorker: true });
    a = await t.newAccount();
    member = await t.addMember(a, 'MEMBER');
    slug = uniq('customers');
    entityId = (await ok(a, 'POST', '/entities', { name: '고객', slug }, 201)).entityId;
    const property = async (key: string, body: Record<string, unknown>) => {
      p[key] = (await ok(a, 'POST', '/properties', { entityId, ...body }, 201)).propertyId;
    };
    await property('email', { name: '이메일', fieldType: 'EMAIL' });
    await property('phone', { name: '휴대폰', fieldType: 'PHONE', isMasked: true });
    await property('stage', { name: '단계', fieldType: 'DROPDOWN', options: [{ label: '신규', value: 'LEAD' }, { label: '협상', value: 'NEGOTIATION' }, { label: '성사', value: 'WON' }] });
    await property('interests', { name: '관심사', fieldType: 'MULTI_CHECKBOX', options: [{ label: '골프', value: 'golf' }, { label: '와인', value: 'wine' }] });
    await property('score', { name: '점수', fieldType: 'NUMBER' });
    await property('consent', { name: '동의', fieldType: 'CHECKBOX' });
    await property('joined', { name: '가입일', fieldType: 'DATE' });
    await property('memo', { name: '메모', fieldType: 'TEXTAREA' });
    await property('grade', { name: '=등급', fieldType: 'RADIO', isMasked: true, options: [{ label: '골드', value: 'GOLD' }, { label: 'VIP', value: 'VIP' }] });
    const record = async (key: string, body: Record<string, unknown>) => {
      r[key] = await ok(a, 'POST', '/records', { entityId, ...body }, 201);
      await new Promise((resolve) => setTimeout(resolve, 3)); // distinct dateCreated: file order is creation order
    };
    await record('kim', {
      name: '김철수', tags: ['vip'],
      data: { [p.email!]: 'kim@example.com', [p.phone!]: '010-1234-5678', [p.stage!]: 'LEAD', [p.interests!]: ['golf', 'wine'], [p.score!]: 42, [p.consent!]: true, [p.joined!]: '2024-01-31', [p.memo!]: 'line1\nline2', [p.grade!]: 'VIP' },
    });
    await record('lee', {
      name: 'Lee, "Jr"',
      data: { [p.email!]: 'lee@example.com', [p.stage!]: 'NEGOTIATION', [p.score!]: -5, [p.consent!]: false, [p.memo!]: '=HYPERLINK("http://evil","x")' },
    });
    await record('formula', { name: '=1+2', tags: ['a,b', 'c'], data: { [p.memo!]: '@cmd|calc', [p.score!]: 1.5, [p.interests!]: [] } });
    await record('park', { name: '박영희', data: { [p.phone!]: '+82 10 9876 5432', [p.stage!]: 'WON', [p.memo!]: '\tTAB', [p.grade!]: 'GOLD' } });
    await record('minus', { name: '-minus', ownerId: null, data: { [p.memo!]: 'cr\r' } });
  });
  after(() => t.close());

  /** The file of the five records as the OWNER sees it, byte for byte. */
  function ownerCsv(): string {
    const tail = (rec: any, tags: string) => `${tags},${rec.ownerId ?? ''},${rec.dateCreated},${rec.dateUpdated}`;
    return BOM + [
      "recordId,name,이메일,휴대폰,단계,관심사,점수,동의,가입일,메모,'=등급,tags,ownerId,dateCreated,dateUpdated",
      `${r.kim.recordId},김철수,kim@example.com,01012345678,신규,"골프, 와인",42,TRUE,2024-01-31,"line1\nline2",VIP,${tail(r.kim, 'vip')}`,
      `${r.lee.recordId},"Lee, ""Jr""",lee@example.com,,협상,,-5,FALSE,,"'=HYPERLINK(""http://evil"",""x"")",,${tail(r.lee, '')}`,
      `${r.formula.recordId},'=1+2,,,,,1.5,,,'@cmd|calc,,${tail(r.formula, '"a,b, c"')}`,
      `${r.park.recordId},박영희,,+821098765432,성사,,,,,'\tTAB,골드,${tail(r.park, '')}`,
      `${r.minus.recordId},'-minus,,,,,,,,"cr\r",,${tail(r.minus, '')}`,
    ].join('\r\n') + '\r\n';
  }

  test('sync CSV: exact bytes (BOM, header, quoting, formula guard, labels, Korean), as the OWNER', async () => {
    const { url, bytes } = await exportSync(a, {});
    assert.match(url, /^http:\/\/localhost(:80)?\/crm-core\/v1\/files\/CRMFL1\d{15}[A-Za-z0-9]{11}\/download\?account=\d{14}&expires=\d+&signature=/);
    assert.equal(bytes.toString('utf8'), ownerCsv());
    assert.deepEqual([...bytes.subarray(0, 3)], [0xEF, 0xBB, 0xBF], 'UTF-8 BOM');
    const res = await fetchLink(url);
    assert.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
    assert.match(String(res.headers['content-disposition']), new RegExp(`^attachment; filename="${slug}-\\d{8}-\\d{6}\\.csv"`));
  });

  test('a MEMBER\'s file holds the masked values GET /records shows them, never the clear ones', async () => {
    const { bytes } = await exportSync(member, {});
    const csv = bytes.toString('utf8');
    const lines = csv.slice(1).split('\r\n');
    assert.ok(lines[1]!.includes(',010-****-5678,'), lines[1]);
    assert.ok(lines[1]!.endsWith(`,***,vip,${a.memberId},${r.kim.dateCreated},${r.kim.dateUpdated}`), 'masked RADIO: the mask, not the label');
    assert.ok(lines[4]!.includes(',821-****-5432,'), lines[4]);
    assert.ok(!csv.includes('01012345678') && !csv.includes('9876') && !csv.includes('VIP,') && !csv.includes('골드'), 'no clear masked value');
    // The same values as the API gives the MEMBER.
    const listed = await ok(member, 'GET', `/records?entityId=${entityId}&limit=200`);
    const kim = listed.data.find((x: any) => x.recordId === r.kim.recordId);
    assert.equal(kim.data[p.phone!], '010-****-5678');
    // Filtering on a masked property is refused to MEMBERs as on GET /records.
    expectError(await call(member, 'POST', '/records/export/request', { entityId, format: 'csv', filters: JSON.stringify({ [p.phone!]: { op: 'isNotEmpty' } }) }), 403, 'Forbidden');
  });

  test('excel: an XLSX that reads back (exceljs) with the same cells, typed, text never a formula', async () => {
    const answer = await ok(a, 'POST', '/records/export/request', { entityId, format: 'excel' });
    assert.equal(answer.mode, 'sync');
    const res = await fetchLink(answer.downloadUrl);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    assert.match(String(res.headers['content-disposition']), /\.xlsx"/);
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(res.rawPayload as unknown as ExcelJS.Buffer);
    const sheet = workbook.worksheets[0]!;
    assert.equal(sheet.name, '고객');
    const rows: unknown[][] = [];
    for (let i = 1; i <= sheet.rowCount; i++) {
      const row = sheet.getRow(i);
      rows.push(Array.from({ length: 15 }, (_, c) => {
        const cell = row.getCell(c + 1);
        assert.notEqual(cell.type, ExcelJS.ValueType.Formula);
        return cell.value;
      }));
    }
    const tail = (rec: any, tags: string | null) => [tags, rec.ownerId, rec.dateCreated, rec.dateUpdated];
    assert.deepEqual(rows, [
      ['recordId', 'name', '이메일', '휴대폰', '단계', '관심사', '점수', '동의', '가입일', '메모', "'=등급", 'tags', 'ownerId', 'dateCreated', 'dateUpdated'],
      [r.kim.recordId, '김철수', 'kim@example.com', '01012345678', '신규', '골프, 와인', 42, true, '2024-01-31', 'line1\nline2', 'VIP', ...tail(r.kim, 'vip')],
      [r.lee.recordId, 'Lee, "Jr"', 'lee@example.com', null, '협상', null, -5, false, null, '\'=HYPERLINK("http://evil","x")', null, ...tail(r.lee, null)],
      [r.formula.recordId, "'=1+2", null, null, null, null, 1.5, null, null, "'@cmd|calc", null, ...tail(r.formula, 'a,b, c')],
      [r.park.recordId, '박영희', null, '+821098765432', '성사', null, null, null, null, "'\tTAB", '골드', ...tail(r.park, null)],
      [r.minus.recordId, "'-minus", null, null, null, null, null, null, null, 'cr\r', null, ...tail(r.minus, null)],
    ]);
  });

  test('selection: keyword, filters, segmentId, conditionGroup (ANDed), propertyIds order', async () => {
    assert.deepEqual(await exportedIds({ keyword: '철' }), [r.kim.recordId]);
    assert.deepEqual(await exportedIds({ filters: JSON.stringify({ [p.stage!]: { op: 'in', value: ['LEAD', 'WON'] } }) }), [r.kim.recordId, r.park.recordId]);
    assert.deepEqual(await exportedIds({ conditionGroup: { operator: 'OR', conditions: [{ field: `data.${p.score!}`, operator: 'lt', value: 0 }, { field: 'tags', operator: 'hasAnyOf', value: ['c'] }] } }),
      [r.lee.recordId, r.formula.recordId]);
    assert.deepEqual(await exportedIds({
      filters: JSON.stringify({ [p.score!]: { op: 'isNotEmpty' } }),
      conditionGroup: { operator: 'AND', conditions: [{ field: 'name', operator: 'contains', value: 'e' }] },
    }), [r.lee.recordId], 'filters AND conditionGroup');
    const segment = await ok(a, 'POST', '/segments', { entityId, name: uniq('seg'), conditions: { operator: 'AND', conditions: [{ field: `data.${p.stage!}`, operator: 'isNotEmpty' }] } }, 201);
    assert.deepEqual(await exportedIds({ segmentId: segment.segmentId }), [r.kim.recordId, r.lee.recordId, r.park.recordId]);
    assert.deepEqual(await exportedIds({ segmentId: segment.segmentId, keyword: '박' }), [r.park.recordId]);
    assert.deepEqual(await exportedIds({ keyword: 'nobody' }), [], 'no match: a file with the header only');

    const { bytes } = await exportSync(a, { propertyIds: [p.score, p.email], keyword: '철' });
    assert.equal(bytes.toString('utf8'), `${BOM}recordId,name,점수,이메일,tags,ownerId,dateCreated,dateUpdated\r\n${r.kim.recordId},김철수,42,kim@example.com,vip,${a.memberId},${r.kim.dateCreated},${r.kim.dateUpdated}\r\n`);
    const none = await exportSync(a, { propertyIds: [], keyword: '철' });
    assert.ok(none.bytes.toString('utf8').startsWith(`${BOM}recordId,name,tags,ownerId,dateCreated,dateUpdated\r\n`));
  });

  test('bad input: a 4xx in our error shape, and no file or job left behind', async () => {
    const files = await fileCount();
    const jobs = await jobCount();
    const bad = (body: Record<string, unknown>) => call(a, 'POST', '/records/export/request', { entityId, format: 'csv', ...body });
    expectError(await bad({ format: 'pdf' }), 400, 'ValidationError');
    expectError(await bad({ unknown: 1 }), 400, 'ValidationError');
    expectError(await call(a, 'POST', '/records/export/request', { format: 'csv' }), 400, 'ValidationError');
    expectError(await bad({ filters: '{not json' }), 400, 'ValidationError', 'filters');
    expectError(await bad({ filters: JSON.stringify({ CRMPP1000000000000000AAAAAAAAAAA: { op: 'eq', value: 1 } }) }), 400, 'ValidationError');
    expectError(await bad({ filters: JSON.stringify({ [p.score!]: { op: 'contains', value: 'x' } }) }), 400, 'ValidationError');
    expectError(await bad({ conditionGroup: { operator: 'AND', conditions: [{ field: 'data.nope', operator: 'eq', value: 1 }] } }), 400, 'ValidationError', 'conditionGroup');
    expectError(await bad({ propertyIds: [p.score, 'CRMPP1000000000000000AAAAAAAAAAA'] }), 400, 'ValidationError', 'propertyIds/1');
    expectError(await bad({ propertyIds: [p.score, p.score] }), 400, 'ValidationError', 'twice');
    expectError(await bad({ segmentId: 'CRMSG1000000000000000AAAAAAAAAAA' }), 404, 'NotFound');
    expectError(await bad({ entityId: 'CRMET1000000000000000AAAAAAAAAAA' }), 404, 'NotFound');
    const locked = (await ok(a, 'POST', '/entities', { name: 'Locked', slug: uniq('locked'), recordAccess: 'ADMIN_ONLY' }, 201)).entityId;
    expectError(await call(member, 'POST', '/records/export/request', { entityId: locked, format: 'csv' }), 403, 'Forbidden');
    assert.equal(await fileCount(), files, 'no file written');
    assert.equal(await jobCount(), jobs, 'no job enqueued');
  });

  test('plan: records.exportEnabled=false → 403 PlanQuotaExceeded; true or unset exports', async () => {
    await t.services.quota.setLimits(a.tenant, { 'records.exportEnabled': false });
    try {
      expectError(await call(a, 'POST', '/records/export/request', { entityId, format: 'csv' }), 403, 'PlanQuotaExceeded', 'records.exportEnabled');
      expectError(await call(member, 'POST', '/records/export/request', { entityId, format: 'excel' }), 403, 'PlanQuotaExceeded');
      await t.services.quota.setLimits(a.tenant, { 'records.exportEnabled': true });
      assert.equal((await ok(a, 'POST', '/records/export/request', { entityId, format: 'csv' })).mode, 'sync');
    } finally {
      await t.services.quota.setLimits(a.tenant, { 'records.exportEnabled': null });
    }
  });

  test('download link: no API key needed; tampered → 403, another account → 403, expired → 410, in our error shape', async () => {
    const { url } = await exportSync(a, {});
    const link = new URL(url);
    const withParam = (name: string, value: string) => {
      const u = new URL(link);
      u.searchParams.set(name, value);
      return u.toString();
    };
    const signature = link.searchParams.get('signature')!;
    const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
    expectError(await fetchLink(withParam('signature', flipped)), 403, 'Forbidden');
    expectError(await fetchLink(withParam('expires', String(Number(link.searchParams.get('expires')) + 3600))), 403, 'Forbidden', 'signature');
    // Another account: its own link works for it, but neither link opens the other's file.
    const b = await t.newAccount('other');
    const bEntity = (await ok(b, 'POST', '/entities', { name: 'B', slug: uniq('b') }, 201)).entityId;
    const bAnswer = await ok(b, 'POST', '/records/export/request', { entityId: bEntity, format: 'csv' });
    const bLink = new URL(bAnswer.downloadUrl);
    assert.equal((await download(bAnswer.downloadUrl)).toString('utf8'), `${BOM}recordId,name,tags,ownerId,dateCreated,dateUpdated\r\n`);
    expectError(await fetchLink(withParam('account', b.accountId)), 403, 'Forbidden');
    const crossed = new URL(bLink);
    crossed.pathname = link.pathname; // b's signature on a's file
    expectError(await fetchLink(crossed.toString()), 403, 'Forbidden');
    expectError(await call(b, 'POST', '/records/export/request', { entityId, format: 'csv' }), 404, 'NotFound', 'Entity');
    // 24 h later the link is gone.
    t.clock.now = Date.now() + 24 * 3600_000 + 60_000;
    try {
      expectError(await fetchLink(url), 410, 'Gone');
    } finally {
      t.clock.now = undefined;
    }
    assert.equal((await download(url)).toString('utf8'), ownerCsv(), 'still valid before expiry');
  });

  test('status of an unknown, malformed, another kind\'s or another member\'s job: 200 failed "작업을 찾을 수 없습니다."', async () => {
    assert.deepEqual(await ok(a, 'GET', '/records/export/00000000-0000-4000-8000-000000000000/status'), UNKNOWN_JOB);
    assert.deepEqual(await ok(a, 'GET', '/records/export/not-a-uuid/status'), UNKNOWN_JOB);
    assert.deepEqual(await ok(a, 'GET', `/records/export/${'x'.repeat(150)}/status`), UNKNOWN_JOB);
    const other = await t.services.jobs.enqueue(a.tenant, { kind: 'some.other.kind', params: {}, createdBy: a.memberId });
    assert.deepEqual(await ok(a, 'GET', `/records/export/${other.jobId}/status`), UNKNOWN_JOB);
    await a.tenant.deleteFrom('jobs').where('job_id', '=', other.jobId).execute();
  });

  describe('async (more than syncMaxRows records: a records.export job)', () => {
    before(() => {
      t.services.exports.settings.syncMaxRows = 3;
      t.services.exports.settings.pageSize = 2;
    });
    after(() => {
      t.services.exports.settings.syncMaxRows = 10_000;
      t.services.exports.settings.pageSize = 1000;
      t.services.exports.settings.beforePage = undefined;
    });

    test('request → {mode: "async", jobId}; status reports progress and total; the file equals the sync one', async () => {
      const reached = deferred<string>();
      const release = deferred();
      t.services.exports.settings.beforePage = async ({ jobId, processed }) => {
        if (jobId && processed === 2) {
          reached.resolve(jobId);
          await release.promise;
        }
      };
      const answer = await ok(a, 'POST', '/records/export/request', { entityId, format: 'csv' });
      assert.deepEqual(Object.keys(answer).sort(), ['jobId', 'mode']);
      assert.equal(answer.mode, 'async');
      assert.match(answer.jobId, UUID);
      assert.equal(await reached.promise, answer.jobId);
      assert.deepEqual(await ok(a, 'GET', `/records/export/${answer.jobId}/status`), { status: 'processing', progress: 2, total: 5 });
      // Another member of the account cannot see it (the file is what the requester may see).
      assert.deepEqual(await ok(member, 'GET', `/records/export/${answer.jobId}/status`), UNKNOWN_JOB);
      release.resolve();
      const done = await waitForStatus(a, answer.jobId, (s) => s.status === 'completed');
      assert.deepEqual(Object.keys(done).sort(), ['downloadUrl', 'progress', 'status', 'total']);
      assert.equal(done.progress, 5);
      assert.equal(done.total, 5);
      assert.equal((await download(done.downloadUrl)).toString('utf8'), ownerCsv());
      t.services.exports.settings.beforePage = undefined;
    });

    test('excel as a job, for a MEMBER: masked cells', async () => {
      const answer = await ok(member, 'POST', '/records/export/request', { entityId, format: 'excel', propertyIds: [p.phone] });
      assert.equal(answer.mode, 'async');
      const done = await waitForStatus(member, answer.jobId, (s) => s.status === 'completed');
      const workbook = new ExcelJS.Workbook();
      await workbook.xlsx.load(await download(done.downloadUrl) as unknown as ExcelJS.Buffer);
      const sheet = workbook.worksheets[0]!;
      assert.equal(sheet.rowCount, 6);
      assert.deepEqual([2, 3, 4, 5, 6].map((i) => sheet.getRow(i).getCell(3).value), ['010-****-5678', null, null, '821-****-5432', null]);
    });

    test('a run that dies mid-way (a database error) is retried: the partial file is deleted and the job completes, each row once', async () => {
      const reached = deferred<string>();
      let failed = false;
      t.services.exports.settings.beforePage = ({ jobId, processed }) => {
        if (jobId && processed === 4 && !failed) {
          failed = true;
          reached.resolve(jobId);
          throw new Error('simulated: connection terminated unexpectedly');
        }
      };
      const answer = await ok(a, 'POST', '/records/export/request', { entityId, format: 'csv' });
      assert.equal(await reached.promise, answer.jobId);
      const interrupted = (await t.services.jobs.get(a.tenant, answer.jobId))!;
      const checkpoint = interrupted.checkpoint as { fileId: string; after: string; processed: number };
      assert.equal(checkpoint.processed, 4);
      assert.match(checkpoint.fileId, /^CRMFL1/);
      assert.equal(typeof checkpoint.after, 'string');
      const done = await waitForStatus(a, answer.jobId, (s) => s.status === 'completed' || s.status === 'failed', 30_000);
      assert.equal(done.status, 'completed', JSON.stringify(done));
      assert.equal((await download(done.downloadUrl)).toString('utf8'), ownerCsv());
      assert.equal((await t.services.jobs.get(a.tenant, answer.jobId))!.attempts, 2);
      assert.equal(await t.services.files.info(a.tenant, checkpoint.fileId), undefined, 'the interrupted run\'s partial file is gone');
      t.services.exports.settings.beforePage = undefined;
    });

    test('a worker stopped mid-way (shutdown) gives the job back; another worker finishes it', async () => {
      const node = await startTestApp({ database: t.database, masterKey: t.masterKey, jobWorker: true });
      const reached = deferred<string>();
      const release = deferred();
      node.services.exports.settings.syncMaxRows = 3;
      node.services.exports.settings.pageSize = 2;
      node.services.exports.settings.beforePage = async ({ jobId, processed }) => {
        if (jobId && processed === 2) {
          reached.resolve(jobId);
          await release.promise;
        }
      };
      let closed = false;
      try {
        const answer = (await node.call(a, 'POST', `${V1}/records/export/request`, { entityId, format: 'csv' })).json();
        assert.equal(answer.mode, 'async');
        assert.equal(await reached.promise, answer.jobId);
        const fileId = ((await t.services.jobs.get(a.tenant, answer.jobId))!.checkpoint as { fileId: string }).fileId;
        const closing = node.close(); // aborts the running handler
        release.resolve();
        await closing;
        closed = true;
        const done = await waitForStatus(a, answer.jobId, (s) => s.status === 'completed' || s.status === 'failed', 30_000);
        assert.equal(done.status, 'completed', JSON.stringify(done));
        assert.equal((await download(done.downloadUrl)).toString('utf8'), ownerCsv());
        assert.equal(await t.services.files.info(a.tenant, fileId), undefined, 'the stopped run\'s partial file is gone');
      } finally {
        release.resolve();
        if (!closed) await node.close();
      }
    });

    test('a run whose process died (lease ran out, partial file left behind) is taken over: the file named in its checkpoint is deleted, the job completes', async () => {
      // The state a killed process leaves: the job `processing` under an expired lease, a checkpoint
      // naming the file it was writing, and that file half written (never finished).
      const partial = await t.services.files.create(a.tenant, { name: 'partial.csv', contentType: 'text/csv', expiresAt: new Date(Date.now() + 3600_000) });
      await partial.write('x'.repeat(1024 * 1024 + 10)); // one full chunk stored
      assert.equal((await t.services.files.info(a.tenant, partial.fileId))!.complete, false);
      const jobId = crypto.randomUUID();
      const past = new Date(Date.now() - 60_000);
      await a.tenant.insertInto('jobs').values({
        account_id: a.accountId, job_id: jobId, kind: 'records.export', status: 'processing',
        params: JSON.stringify({ entityId, format: 'csv', workspaceId: null, apiKey: a.apiKey }),
        progress: 2, total: 5, checkpoint: JSON.stringify({ fileId: partial.fileId, after: 'from-the-dead-run', processed: 2 }),
        attempts: 1, lease_owner: 'dead-process', lease_until: past, created_by: a.memberId, date_created: past, date_updated: past,
      }).execute();
      const done = await waitForStatus(a, jobId, (s) => s.status === 'completed' || s.status === 'failed', 30_000);
      assert.equal(done.status, 'completed', JSON.stringify(done));
      assert.equal((await download(done.downloadUrl)).toString('utf8'), ownerCsv());
      assert.equal(await t.services.files.info(a.tenant, partial.fileId), undefined, 'the dead run\'s partial file is gone');
      assert.equal(Number((await a.tenant.selectFrom('file_chunks').select(sql<string>`count(*)`.as('n')).where('file_id', '=', partial.fileId).executeTakeFirstOrThrow()).n), 0);
      assert.equal((await t.services.jobs.get(a.tenant, jobId))!.attempts, 2);
    });

    test('a job that cannot go on (an AppError) fails at once with its message; its partial file is deleted', async () => {
      let fileId: string | undefined;
      t.services.exports.settings.beforePage = async ({ jobId, processed }) => {
        if (jobId && processed === 2) {
          fileId = ((await t.services.jobs.get(a.tenant, jobId))!.checkpoint as { fileId: string }).fileId;
          throw new AppError(403, 'Forbidden', 'The member who requested this export no longer exists.');
        }
      };
      const answer = await ok(a, 'POST', '/records/export/request', { entityId, format: 'excel' });
      const done = await waitForStatus(a, answer.jobId, (s) => s.status === 'failed');
      assert.deepEqual(done, { status: 'failed', progress: 2, total: 5, error: 'The member who requested this export no longer exists.' });
      assert.ok(fileId);
      assert.equal(await t.services.files.info(a.tenant, fileId!), undefined);
      t.services.exports.settings.beforePage = undefined;
    });

    test('a job whose requester is no longer a member fails (it never exports past their access)', async () => {
      const job = await t.services.jobs.enqueue(a.tenant, {
        kind: 'records.export',
        params: { entityId, format: 'csv', workspaceId: null, apiKey: a.apiKey },
        createdBy: 'MEMgone0000000',
      });
      const done = await waitForJob(job.jobId);
      assert.equal(done.status, 'failed');
      assert.equal(done.error, 'The member who requested this export no longer exists.');
    });
  });

  async function waitForJob(jobId: string) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const job = (await t.services.jobs.get(a.tenant, jobId))!;
      if (job.status === 'completed' || job.status === 'failed') return job;
      if (Date.now() > deadline) throw new Error(`job ${jobId} still ${job.status}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
});
