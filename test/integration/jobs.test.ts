import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { errors } from '../../src/errors.ts';
import * as jobsRepo from '../../src/modules/jobs/jobs.repository.ts';
import { MAX_ATTEMPTS, type JobHandler, type JobView, type JobWorker } from '../../src/modules/jobs/jobs.service.ts';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';

/** Waits until the job satisfies `done` (polling the service, as a client polls the status route). */
async function until(t: TestApp, account: TestAccount, jobId: string, done: (job: JobView) => boolean, ms = 10_000): Promise<JobView> {
  const deadline = Date.now() + ms;
  for (;;) {
    const job = await t.services.jobs.get(account.tenant, jobId);
    assert.ok(job, 'the job exists');
    if (done(job)) return job;
    if (Date.now() > deadline) assert.fail(`job still ${job.status} (progress ${job.progress}, attempts ${job.attempts})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const finished = (job: JobView) => job.status === 'completed' || job.status === 'failed';

describe('background jobs (src/modules/jobs)', () => {
  let t: TestApp;
  let account: TestAccount;
  let worker: JobWorker | undefined;
  /** A fresh kind per test: handlers are per process, jobs are shared through the database. */
  const kind = (handler: JobHandler) => {
    const name = `test.${randomUUID()}`;
    t.services.jobs.register(name, handler);
    return name;
  };
  const startWorker = () => {
    worker = t.services.jobs.startWorker({ concurrency: 2, pollMs: 50 });
  };
  const stopWorker = async () => {
    await worker?.stop();
    worker = undefined;
  };
  const enqueue = (name: string, params: unknown = {}) => t.services.jobs.enqueue(account.tenant, { kind: name, params, createdBy: account.memberId });

  before(async () => {
    t = await startTestApp({ jobLeaseMs: 600 });
    account = await t.newAccount();
  });
  after(async () => {
    await stopWorker();
    await t.close();
  });

  test('a job runs once, saves progress and its result, and is kept until its retention', async () => {
    startWorker();
    let runs = 0;
    const name = kind(async (ctx) => {
      runs++;
      assert.equal(ctx.tenant.accountId, account.accountId);
      assert.deepEqual(ctx.job.params, { n: 3 });
      for (let i = 1; i <= 3; i++) await ctx.progress({ processed: i, total: 3 });
      return { ok: true };
    });
    const job = await enqueue(name, { n: 3 });
    assert.equal(job.status, 'pending');
    assert.match(job.jobId, /^[0-9a-f-]{36}$/);
    const done = await until(t, account, job.jobId, finished);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { ok: true });
    assert.equal(done.progress, 3);
    assert.equal(done.total, 3);
    assert.equal(done.attempts, 1);
    assert.ok(done.dateFinished);
    assert.equal(runs, 1);
    // Another account cannot see it.
    const other = await t.newAccount('other');
    assert.equal(await t.services.jobs.get(other.tenant, job.jobId), undefined);
    assert.equal(await t.services.jobs.get(account.tenant, 'not-a-uuid'), undefined);
    await stopWorker();
  });

  test('an AppError fails the job at once with its message; other errors are retried, then fail', async () => {
    startWorker();
    const refused = await enqueue(kind(async () => { throw errors.validation('row 3: bad email'); }));
    const failedAtOnce = await until(t, account, refused.jobId, finished);
    assert.equal(failedAtOnce.status, 'failed');
    assert.equal(failedAtOnce.error, 'row 3: bad email');
    assert.equal(failedAtOnce.attempts, 1);

    let tries = 0;
    const flaky = await enqueue(kind(async () => {
      tries++;
      throw new Error('connection reset');
    }));
    // Each retry waits 5 s on the app's clock: move it along instead of sleeping.
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      await until(t, account, flaky.jobId, (job) => job.attempts === attempt && job.status !== 'processing');
      t.clock.now = (t.clock.now ?? Date.now()) + 6_000;
    }
    const gaveUp = await until(t, account, flaky.jobId, finished);
    t.clock.now = undefined;
    assert.equal(gaveUp.status, 'failed');
    assert.equal(tries, MAX_ATTEMPTS);
    assert.match(gaveUp.error!, /failed 3 times/);
    assert.doesNotMatch(gaveUp.error!, /connection reset/, 'internal errors are logged, not shown');
    await stopWorker();
  });

  test('a job whose process died is claimed again after its lease and resumes from its checkpoint', async () => {
    const seen: unknown[] = [];
    const name = kind(async (ctx) => {
      seen.push(ctx.job.checkpoint);
      await ctx.progress({ processed: 10, checkpoint: { after: 'row-10' } });
      return { resumedFrom: ctx.job.checkpoint };
    });
    const job = await enqueue(name);
    // A worker of another process claims it, saves a checkpoint, then dies (stops renewing).
    const dead = `dead:${randomUUID()}`;
    const claimed = await jobsRepo.claimNext(t.database.db, [name], dead, new Date(), new Date(Date.now() + 600));
    assert.equal(claimed?.job_id, job.jobId);
    assert.ok(await jobsRepo.saveProgress(account.tenant, job.jobId, dead, { processed: 5, checkpoint: { after: 'row-5' } }, new Date()));
    startWorker();
    const done = await until(t, account, job.jobId, finished);
    assert.equal(done.status, 'completed');
    assert.deepEqual(seen, [{ after: 'row-5' }], 'ran once more, from the dead worker\'s checkpoint');
    assert.deepEqual(done.result, { resumedFrom: { after: 'row-5' } });
    assert.equal(done.attempts, 2);
    // The dead worker's late writes are refused: it no longer holds the job.
    assert.equal(await jobsRepo.saveProgress(account.tenant, job.jobId, dead, { processed: 99 }, new Date()), false);
    assert.equal(await jobsRepo.finish(account.tenant, job.jobId, dead, { status: 'failed', error: 'x', now: new Date(), expiresAt: new Date() }), false);
    await stopWorker();
  });

  test(`a job interrupted ${MAX_ATTEMPTS} times is marked failed, never left processing`, async () => {
    let ran = false;
    const name = kind(async () => { ran = true; });
    const job = await enqueue(name);
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const claimed = await jobsRepo.claimNext(t.database.db, [name], `dead-${i}`, new Date(), new Date(Date.now() - 1));
      assert.equal(claimed?.job_id, job.jobId, `claim ${i + 1}`);
    }
    startWorker();
    const done = await until(t, account, job.jobId, finished);
    assert.equal(done.status, 'failed');
    assert.match(done.error!, /interrupted 3 times/);
    assert.equal(ran, false);
    await stopWorker();
  });

  test('shutdown gives a running job back (attempt refunded) and another worker finishes it', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => { started = resolve; });
    let calls = 0;
    const name = kind(async (ctx) => {
      calls++;
      if (calls === 1) {
        started();
        await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
      }
      return { calls };
    });
    startWorker();
    const job = await enqueue(name);
    await running;
    await stopWorker();
    const given = await t.services.jobs.get(account.tenant, job.jobId);
    assert.equal(given?.status, 'pending');
    assert.equal(given?.attempts, 0);
    startWorker();
    const done = await until(t, account, job.jobId, finished);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { calls: 2 });
    assert.equal(done.attempts, 1);
    await stopWorker();
  });

  test('a worker that lost its lease stops: its progress is refused and its result is not written', async () => {
    let released!: () => void;
    const hold = new Promise<void>((resolve) => { released = resolve; });
    let progressError: unknown;
    const name = kind(async (ctx) => {
      await hold;
      try {
        await ctx.progress({ processed: 1 });
      } catch (error) {
        progressError = error;
        throw error;
      }
      return { by: 'first' };
    });
    startWorker();
    const job = await enqueue(name);
    await until(t, account, job.jobId, (j) => j.status === 'processing');
    // Someone else takes the job over (as after an expired lease): the first worker must notice.
    await t.database.db.updateTable('jobs').set({ lease_owner: 'thief', lease_until: new Date(Date.now() + 3600_000) }).where('account_id', '=', account.accountId).where('job_id', '=', job.jobId).execute();
    released();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.match(String(progressError), /no longer holds the job/);
    const after = await t.services.jobs.get(account.tenant, job.jobId);
    assert.equal(after?.status, 'processing');
    assert.equal(after?.result, null);
    await stopWorker();
  });

  test('expired finished jobs are swept', async () => {
    startWorker();
    const job = await enqueue(kind(async () => 1));
    await until(t, account, job.jobId, finished);
    await stopWorker();
    assert.ok(await t.services.jobs.get(account.tenant, job.jobId));
    t.clock.now = Date.now() + 25 * 3600_000;
    try {
      assert.ok((await t.services.jobs.sweepExpired()) >= 1);
    } finally {
      t.clock.now = undefined;
    }
    assert.equal(await t.services.jobs.get(account.tenant, job.jobId), undefined);
  });
});

describe('stored files and signed downloads (src/modules/files)', () => {
  let t: TestApp;
  let account: TestAccount;

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
  });
  after(() => t.close());

  const store = async (bytes: Buffer, name = '고객 목록.csv', tenant = account.tenant) => {
    const writer = await t.services.files.create(tenant, { name, contentType: 'text/csv; charset=utf-8', expiresAt: new Date(Date.now() + 3600_000) });
    // Uneven pieces, so chunk boundaries fall inside writes.
    for (let at = 0; at < bytes.length; at += 300_001) await writer.write(bytes.subarray(at, at + 300_001));
    return writer.finish();
  };

  test('bytes across several 1 MiB chunks come back identical, without an API key', async () => {
    const bytes = randomBytes(2_500_000);
    const file = await store(bytes);
    assert.equal(file.size, bytes.length);
    const chunks = await t.database.db.selectFrom('file_chunks').select('seq').where('account_id', '=', account.accountId).where('file_id', '=', file.fileId).execute();
    assert.equal(chunks.length, 3);
    const path = t.services.files.downloadPath(account.accountId, file.fileId, new Date(Date.now() + 60_000));
    const res = await t.app.inject({ method: 'GET', url: path });
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(res.rawPayload.equals(bytes));
    assert.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
    assert.equal(res.headers['content-length'], String(bytes.length));
    assert.match(String(res.headers['content-disposition']), /filename\*=UTF-8''%EA%B3%A0%EA%B0%9D/);
  });

  test('a tampered link is 403, an expired one 410, another account\'s file 404; an unfinished file is not served', async () => {
    const file = await store(Buffer.from('a,b\n'));
    const good = t.services.files.downloadPath(account.accountId, file.fileId, new Date(Date.now() + 60_000));
    const url = new URL(good, 'http://x');
    const expectStatus = async (path: string, status: number, code: string) => {
      const res = await t.app.inject({ method: 'GET', url: path });
      assert.equal(res.statusCode, status, res.body);
      assert.equal(res.json().errorCode, code);
    };
    const withParam = (name: string, value: string) => {
      const copy = new URL(url);
      copy.searchParams.set(name, value);
      return copy.pathname + copy.search;
    };
    await expectStatus(withParam('expires', String(Number(url.searchParams.get('expires')) + 3600)), 403, 'Forbidden');
    await expectStatus(withParam('signature', url.searchParams.get('signature')!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))), 403, 'Forbidden');
    const other = await t.newAccount('other');
    await expectStatus(withParam('account', other.accountId), 403, 'Forbidden');
    // A valid link of account B names a file that only A has: not found.
    await expectStatus(t.services.files.downloadPath(other.accountId, file.fileId, new Date(Date.now() + 60_000)), 404, 'NotFound');
    await expectStatus(t.services.files.downloadPath(account.accountId, file.fileId, new Date(Date.now() - 1000)), 410, 'Gone');
    const partial = await t.services.files.create(account.tenant, { name: 'p.csv', contentType: 'text/csv', expiresAt: new Date(Date.now() + 60_000) });
    await partial.write('half');
    await expectStatus(t.services.files.downloadPath(account.accountId, partial.fileId, new Date(Date.now() + 60_000)), 404, 'NotFound');
    const missingQuery = await t.app.inject({ method: 'GET', url: `/crm-core/v1/files/${file.fileId}/download` });
    assert.equal(missingQuery.statusCode, 400);
  });

  test('expired files are swept with their chunks; an aborted file leaves nothing', async () => {
    const writer = await t.services.files.create(account.tenant, { name: 'old.csv', contentType: 'text/csv', expiresAt: new Date(Date.now() - 1) });
    await writer.write(randomBytes(1_100_000));
    await writer.finish();
    assert.ok((await t.services.files.sweepExpired()) >= 1);
    assert.equal(await t.services.files.info(account.tenant, writer.fileId), undefined);
    const chunks = await t.database.db.selectFrom('file_chunks').select('seq').where('account_id', '=', account.accountId).where('file_id', '=', writer.fileId).execute();
    assert.equal(chunks.length, 0);
    const aborted = await t.services.files.create(account.tenant, { name: 'a.csv', contentType: 'text/csv', expiresAt: new Date(Date.now() + 60_000) });
    await aborted.write(randomBytes(1_200_000));
    await aborted.abort();
    assert.equal(await t.services.files.info(account.tenant, aborted.fileId), undefined);
  });
});
