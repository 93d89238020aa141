import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB, JobStatus } from '../../db/schema.ts';
import { systemDb, tenantDb, type TenantDb } from '../../db/tenant.ts';
import { AppError } from '../../errors.ts';
import type { Clock } from '../../lib/clock.ts';
import * as repo from './jobs.repository.ts';
import { deleteInBatches } from '../../lib/batches.ts';

/**
 * Durable background jobs (exports, imports): a row in `jobs`, run by a worker in any server
 * process (JOBS_CONCURRENCY per node). Nothing is held only in memory, so a job survives the
 * process that accepted it:
 * - A worker claims a job under a lease (`lease_until`) and renews it while the handler runs.
 *   If its process dies the lease runs out and any worker claims the job again (attempts + 1);
 *   the handler resumes from the checkpoint it saved (or starts over if it saved none).
 * - A job that was claimed MAX_ATTEMPTS times without finishing is marked failed: a job is never
 *   stuck in `processing`.
 * - Graceful shutdown aborts running handlers and gives their jobs back (pending, the attempt
 *   refunded) so another node, or this one after restart, carries on.
 * - A handler's failure as an AppError (bad input, plan limit) fails the job at once with its
 *   message; any other error is retried after a pause, up to MAX_ATTEMPTS.
 */
export interface JobView {
  jobId: string;
  kind: string;
  status: JobStatus;
  progress: number;
  total: number | null;
  params: unknown;
  checkpoint: unknown | null;
  result: unknown | null;
  error: string | null;
  createdBy: string | null;
  attempts: number;
  dateCreated: Date;
  dateUpdated: Date;
  dateFinished: Date | null;
}

export interface JobContext {
  /** The job's account. */
  readonly tenant: TenantDb;
  /** As claimed: `checkpoint` is the last one saved, null on a first run. */
  readonly job: JobView;
  /** Aborted when the server shuts down or the lease is lost: stop soon; the job is retried later. */
  readonly signal: AbortSignal;
  /**
   * Saves progress (and optionally total and a checkpoint). Pass `tx` to save it in that
   * transaction, atomically with the work it describes. Throws if this worker no longer holds
   * the job (its lease ran out and another worker took it).
   */
  progress(update: repo.ProgressUpdate, tx?: TenantDb): Promise<void>;
}

/** Returns the job's result (JSON); throwing an AppError fails the job with its message. */
export type JobHandler = (ctx: JobContext) => Promise<unknown>;

export interface JobWorker {
  /** Aborts running jobs, gives them back, and resolves once their handlers returned. */
  stop(): Promise<void>;
}

export interface WorkerOptions {
  concurrency: number;
  /** How often an idle worker looks for jobs other nodes enqueued (its own are picked at once). */
  pollMs?: number;
  onError?: (error: unknown, context: Record<string, unknown>) => void;
}

export interface JobsService {
  register(kind: string, handler: JobHandler): void;
  enqueue(tenant: TenantDb, input: { kind: string; params: unknown; createdBy: string | null; total?: number | null }): Promise<JobView>;
  get(tenant: TenantDb, jobId: string): Promise<JobView | undefined>;
  startWorker(options: WorkerOptions): JobWorker;
  /** Deletes finished jobs past their retention (24 h after success, 7 days after failure). */
  sweepExpired(): Promise<number>;
}

export const MAX_ATTEMPTS = 3;
export const SUCCESS_RETENTION_MS = 24 * 3600_000;
export const FAILURE_RETENTION_MS = 7 * 24 * 3600_000;
const DEFAULT_LEASE_MS = 30_000;
const DEFAULT_POLL_MS = 2_000;
const RETRY_PAUSE_MS = 5_000;
const SWEEP_BATCH = 1_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class LeaseLost extends Error {
  constructor() {
    super('this worker no longer holds the job');
    this.name = 'LeaseLost';
  }
}

const toView = (row: repo.JobRow): JobView => ({
  jobId: row.job_id,
  kind: row.kind,
  status: row.status,
  progress: row.progress,
  total: row.total,
  params: row.params,
  checkpoint: row.checkpoint ?? null,
  result: row.result ?? null,
  error: row.error,
  createdBy: row.created_by,
  attempts: row.attempts,
  dateCreated: row.date_created,
  dateUpdated: row.date_updated,
  dateFinished: row.date_finished,
});

export function createJobsService(deps: { db: Kysely<DB>; clock: Clock; leaseMs?: number }): JobsService {
  const handlers = new Map<string, JobHandler>();
  const leaseMs = deps.leaseMs ?? DEFAULT_LEASE_MS;
  const now = () => new Date(deps.clock());
  const later = (ms: number) => new Date(deps.clock() + ms);
  /** Idle workers of this process, woken when this process enqueues. */
  const wakers = new Set<() => void>();

  async function run(row: repo.JobRow, owner: string, stopping: AbortSignal, onError: WorkerOptions['onError']): Promise<void> {
    const tenant = tenantDb(deps.db, row.account_id);
    const jobId = row.job_id;
    const fail = (error: string) =>
      repo.finish(tenant, jobId, owner, { status: 'failed', error, now: now(), expiresAt: later(FAILURE_RETENTION_MS) });
    if (row.attempts > MAX_ATTEMPTS) {
      await fail(`The job was interrupted ${MAX_ATTEMPTS} times and was given up.`);
      return;
    }
    const handler = handlers.get(row.kind)!; // claimNext only claims kinds registered here
    const lease = new AbortController();
    const signal = AbortSignal.any([lease.signal, stopping]);
    const heartbeat = setInterval(() => {
      repo.renewLease(tenant, jobId, owner, later(leaseMs)).then(
        (held) => { if (!held) lease.abort(new LeaseLost()); },
        (error) => onError?.(error, { task: 'job lease renewal', jobId }),
      );
    }, Math.max(50, Math.floor(leaseMs / 3)));
    const context: JobContext = {
      tenant,
      job: toView(row),
      signal,
      async progress(update, tx) {
        if (!(await repo.saveProgress(tx ?? tenant, jobId, owner, update, now()))) {
          lease.abort(new LeaseLost());
          throw new LeaseLost();
        }
      },
    };
    try {
      const result = await handler(context);
      if (lease.signal.aborted) return; // another worker owns it now; its run decides
      await repo.finish(tenant, jobId, owner, { status: 'completed', result, now: now(), expiresAt: later(SUCCESS_RETENTION_MS) });
    } catch (error) {
      if (lease.signal.aborted || error instanceof LeaseLost) return;
      if (stopping.aborted) {
        await repo.release(tenant, jobId, owner, now(), true);
      } else if (error instanceof AppError) {
        await fail(error.message);
      } else if (row.attempts >= MAX_ATTEMPTS) {
        onError?.(error, { task: 'job', jobId, kind: row.kind, attempts: row.attempts });
        await fail(`The job failed ${MAX_ATTEMPTS} times; the last error was logged (request it again).`);
      } else {
        onError?.(error, { task: 'job', jobId, kind: row.kind, attempts: row.attempts, retryInMs: RETRY_PAUSE_MS });
        await repo.release(tenant, jobId, owner, later(RETRY_PAUSE_MS), false);
      }
    } finally {
      clearInterval(heartbeat);
    }
  }

  return {
    register(kind, handler) {
      if (handlers.has(kind)) throw new Error(`a job handler for "${kind}" is already registered`);
      handlers.set(kind, handler);
    },

    async enqueue(tenant, input) {
      const row = await repo.insertJob(tenant, {
        jobId: randomUUID(), kind: input.kind, params: input.params, total: input.total ?? null, createdBy: input.createdBy, now: now(),
      });
      // After the caller's transaction commits the job is visible; a woken worker that looks too
      // early finds nothing and looks again on its next poll.
      for (const wake of wakers) wake();
      return toView(row);
    },

    async get(tenant, jobId) {
      if (!UUID.test(jobId)) return undefined;
      const row = await repo.findJob(tenant, jobId);
      return row ? toView(row) : undefined;
    },

    startWorker(options) {
      const owner = `${process.pid}:${randomUUID()}`;
      const stopping = new AbortController();
      const running = new Set<Promise<void>>();
      const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
      let wake: (() => void) | undefined;
      const waker = () => wake?.();
      wakers.add(waker);

      const idle = () =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(done, pollMs);
          function done() {
            clearTimeout(timer);
            stopping.signal.removeEventListener('abort', done);
            if (wake === done) wake = undefined;
            resolve();
          }
          wake = done;
          stopping.signal.addEventListener('abort', done, { once: true });
        });

      const loop = async () => {
        while (!stopping.signal.aborted) {
          if (running.size >= options.concurrency) {
            await Promise.race([...running, idle()]);
            continue;
          }
          let row: repo.JobRow | undefined;
          try {
            row = handlers.size ? await repo.claimNext(systemDb(deps.db), [...handlers.keys()], owner, now(), later(leaseMs)) : undefined;
          } catch (error) {
            options.onError?.(error, { task: 'job claim' });
          }
          if (!row) {
            await idle();
            continue;
          }
          const job = run(row, owner, stopping.signal, options.onError)
            .catch((error) => options.onError?.(error, { task: 'job bookkeeping', jobId: row.job_id }))
            .finally(() => running.delete(job));
          running.add(job);
        }
      };
      const looping = options.concurrency > 0 ? loop() : Promise.resolve();

      return {
        async stop() {
          wakers.delete(waker);
          stopping.abort();
          await looping;
          await Promise.allSettled([...running]);
        },
      };
    },

    sweepExpired: () => deleteInBatches(SWEEP_BATCH, (size) => repo.deleteExpired(systemDb(deps.db), now(), size)),
  };
}
