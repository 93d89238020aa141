import { sql, type Kysely, type Selectable } from 'kysely';
import type { DB, JobStatus, JobsTable } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';

export type JobRow = Selectable<JobsTable>;

export interface NewJob {
  jobId: string;
  kind: string;
  params: unknown;
  total: number | null;
  createdBy: string | null;
  now: Date;
}

export async function insertJob(tenant: TenantDb, job: NewJob): Promise<JobRow> {
  return tenant
    .insertInto('jobs')
    .values({
      account_id: tenant.accountId,
      job_id: job.jobId,
      kind: job.kind,
      status: 'pending',
      params: JSON.stringify(job.params ?? null),
      total: job.total,
      created_by: job.createdBy,
      date_created: job.now,
      date_updated: job.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function findJob(tenant: TenantDb, jobId: string): Promise<JobRow | undefined> {
  return tenant.selectFrom('jobs').selectAll().where('job_id', '=', jobId).executeTakeFirst();
}

/**
 * Claims the oldest runnable job of any account among `kinds` (those this process can run: a
 * node of an older version leaves newer kinds to the nodes that know them): pending (and past
 * its retry time), or processing under a lease that ran out (the process running it died).
 * The only cross-account read of this module: a worker must find work wherever it is.
 * SKIP LOCKED lets several workers (nodes) claim different jobs at once without waiting.
 */
export async function claimNext(db: Kysely<DB>, kinds: readonly string[], owner: string, now: Date, leaseUntil: Date): Promise<JobRow | undefined> {
  const result = await sql<JobRow>`
    UPDATE jobs SET status = 'processing', lease_owner = ${owner}, lease_until = ${leaseUntil},
                    attempts = attempts + 1, date_updated = ${now}
    WHERE (account_id, job_id) = (
      SELECT account_id, job_id FROM jobs
      WHERE status IN ('pending', 'processing') AND (lease_until IS NULL OR lease_until < ${now})
        AND kind = ANY(${[...kinds]}::text[])
      ORDER BY date_created
      LIMIT 1
      FOR UPDATE SKIP LOCKED)
    RETURNING *`.execute(db);
  return result.rows[0];
}

/** Every write below holds only while `owner` still holds the job (a lost lease makes it a no-op: false). */
const heldBy = (tenant: TenantDb, jobId: string, owner: string) =>
  tenant.updateTable('jobs').where('job_id', '=', jobId).where('lease_owner', '=', owner).where('status', '=', 'processing');

export async function renewLease(tenant: TenantDb, jobId: string, owner: string, leaseUntil: Date): Promise<boolean> {
  const result = await heldBy(tenant, jobId, owner).set({ lease_until: leaseUntil }).executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export interface ProgressUpdate {
  processed: number;
  total?: number | null;
  checkpoint?: unknown;
}

export async function saveProgress(tenant: TenantDb, jobId: string, owner: string, update: ProgressUpdate, now: Date): Promise<boolean> {
  const result = await heldBy(tenant, jobId, owner)
    .set({
      progress: update.processed,
      date_updated: now,
      ...(update.total !== undefined ? { total: update.total } : {}),
      ...(update.checkpoint !== undefined ? { checkpoint: JSON.stringify(update.checkpoint) } : {}),
    })
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export interface Outcome {
  status: Extract<JobStatus, 'completed' | 'failed'>;
  result?: unknown;
  error?: string;
  now: Date;
  expiresAt: Date;
}

export async function finish(tenant: TenantDb, jobId: string, owner: string, outcome: Outcome): Promise<boolean> {
  const result = await heldBy(tenant, jobId, owner)
    .set({
      status: outcome.status,
      result: outcome.result === undefined ? null : JSON.stringify(outcome.result),
      error: outcome.error ?? null,
      lease_owner: null,
      lease_until: null,
      date_updated: outcome.now,
      date_finished: outcome.now,
      expires_at: outcome.expiresAt,
    })
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * Puts a held job back to pending, runnable again from `notBefore`. `refund` takes back the
 * attempt it was claimed with (a shutdown interrupted it: that attempt does not count).
 */
export async function release(tenant: TenantDb, jobId: string, owner: string, notBefore: Date, refund: boolean): Promise<void> {
  await heldBy(tenant, jobId, owner)
    .set((eb) => ({
      status: 'pending' as const,
      lease_owner: null,
      lease_until: notBefore,
      ...(refund ? { attempts: eb('attempts', '-', 1) } : {}),
    }))
    .execute();
}

/** Deletes up to `limit` finished jobs of every account whose retention has passed (system sweep). */
export async function deleteExpired(db: Kysely<DB>, now: Date, limit: number): Promise<number> {
  const result = await sql`
    DELETE FROM jobs
    WHERE (account_id, job_id) IN (SELECT account_id, job_id FROM jobs WHERE expires_at <= ${now} LIMIT ${limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
