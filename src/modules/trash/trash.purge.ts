import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import type { DB } from '../../db/schema.ts';
import { systemDb, tenantDb, type TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { startPeriodic } from '../../lib/periodic.ts';
import { createQuotaService, type QuotaService } from '../plans/quota.service.ts';
import { purgeLinksOfRecords, purgeTypesOfEntity } from '../relationships/relationships.purge.ts';

/**
 * Trash retention (API.md §3, §5): a trashed record is purged 14 days after it was trashed, a
 * trashed entity 30 days after, with everything that hangs off it. Both are configurable
 * (RECORDS_TRASH_RETENTION_DAYS, ENTITIES_TRASH_RETENTION_DAYS). The server runs the purge on a
 * timer (startTrashPurger); tests call purgeExpiredTrash with the `now` they want.
 *
 * How it works:
 * - Accounts are found with one read across tenants (the only one: a system job must find which
 *   accounts have work); everything after that goes through tenantDb, account by account.
 * - Work is done in bounded batches (`batchSize` records per statement), each batch in its own
 *   transaction that touches one account only, and each batch gives its plan slots back in that
 *   same transaction: at every commit, quota usage equals what is stored.
 * - Expired records: deleted, `records.max` released by the number deleted; their relationships
 *   first, releasing `relationships.max` (relationships.purge.ts).
 * - Expired entities: under the entity's row lock (FOR NO KEY UPDATE, which a restore waits for),
 *   re-checked as still trashed and expired, its records (live or trashed: all hold
 *   `records.max` slots) are deleted batch by batch releasing `records.max`; the batch that finds
 *   no more records also deletes the entity's properties, its relationship types (telling the
 *   segments naming them: PurgeHooks), the entity, its entity-scoped
 *   quota_usage rows (properties.maxPerEntity and the other *.maxPerEntity counters) and releases
 *   one `entities.max` slot.
 * - Safe to run from several server processes at once: a row is deleted (and its slot released)
 *   by exactly one of them. Expired records are taken FOR UPDATE SKIP LOCKED (purgers split the
 *   work and never wait on, or deadlock with, a bulk request); an entity's purge is serialised
 *   by the entity's row lock and re-checks its conditions once it holds it.
 *
 * Not atomic across batches, on purpose: an entity with a million records is purged over many
 * short transactions. So the first of them marks the entity (`purge_started_at`), and from then
 * on the entity restore answers 410: an entity never comes back with part of its records.
 */
export interface PurgeOptions {
  /** Required: a purge without them would leave other modules' state about the purged rows behind. */
  hooks: PurgeHooks;
  /**
   * Only these accounts (default: every account with expired trash). Tests that move `now` weeks
   * ahead pass their own, so that they never purge what other test files, sharing the database,
   * have just put in the trash.
   */
  accountIds?: readonly string[];
  recordsRetentionDays?: number;
  entitiesRetentionDays?: number;
  /** Records deleted per transaction. */
  batchSize?: number;
  /** Stops between transactions when aborted (server shutdown). */
  signal?: AbortSignal;
  quota?: QuotaService;
}

/** What other modules must do in the transaction that purges something they keep state about. */
export interface PurgeHooks {
  /**
   * A relationship type was deleted with its entity: CACHED segments of other entities naming it
   * are rebuilt (their rules no longer fit, so they are emptied, each member recording an exit).
   */
  typeRemoved(tx: TenantDb, typeId: string): Promise<void>;
}

export interface PurgeReport {
  /** Accounts where something was purged. */
  accounts: number;
  records: number;
  entities: number;
  /** Accounts whose purge failed (the others went on); retried on the next run. */
  failures: { accountId: string; error: unknown }[];
}

export const DEFAULT_RECORDS_RETENTION_DAYS = 14;
export const DEFAULT_ENTITIES_RETENTION_DAYS = 30;
export const DEFAULT_PURGE_BATCH = 1000;
const DAY_MS = 86_400_000;
const ACCOUNT_PAGE = 100;
const ENTITY_PAGE = 100;

interface Cutoffs {
  records: Date;
  entities: Date;
}

export async function purgeExpiredTrash(db: Kysely<DB>, now: Date | number, options: PurgeOptions): Promise<PurgeReport> {
  const at = typeof now === 'number' ? now : now.getTime();
  const cutoffs: Cutoffs = {
    records: new Date(at - (options.recordsRetentionDays ?? DEFAULT_RECORDS_RETENTION_DAYS) * DAY_MS),
    entities: new Date(at - (options.entitiesRetentionDays ?? DEFAULT_ENTITIES_RETENTION_DAYS) * DAY_MS),
  };
  const batch = options.batchSize ?? DEFAULT_PURGE_BATCH;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`batchSize must be a positive integer, got ${batch}`);
  const quota = options.quota ?? createQuotaService();
  const report: PurgeReport = { accounts: 0, records: 0, entities: 0, failures: [] };

  let after = '';
  for (;;) {
    const accounts = await accountsWithExpiredTrash(systemDb(db), cutoffs, after, options.accountIds);
    for (const accountId of accounts) {
      if (options.signal?.aborted) return report;
      try {
        const done = await purgeAccount(tenantDb(db, accountId), cutoffs, batch, quota, options.hooks, options.signal);
        report.records += done.records;
        report.entities += done.entities;
        if (done.records || done.entities) report.accounts++;
      } catch (error) {
        report.failures.push({ accountId, error });
      }
    }
    if (accounts.length < ACCOUNT_PAGE) return report;
    after = accounts[accounts.length - 1]!;
  }
}

/** The next page of accounts (by ID) with expired trash: the purge's one cross-tenant read. */
async function accountsWithExpiredTrash(db: Kysely<DB>, cutoffs: Cutoffs, after: string, only: readonly string[] | undefined): Promise<string[]> {
  if (only?.length === 0) return [];
  let query = db.selectFrom('accounts').select('accounts.account_id');
  if (only) query = query.where('accounts.account_id', 'in', [...only]);
  const rows = await query
    .where('accounts.account_id', '>', after)
    .where(sql<SqlBool>`(
      EXISTS (SELECT 1 FROM records r
              WHERE r.account_id = accounts.account_id AND r.is_deleted AND r.date_deleted < ${cutoffs.records})
      OR EXISTS (SELECT 1 FROM entities e
              WHERE e.account_id = accounts.account_id AND e.is_deleted AND e.date_deleted < ${cutoffs.entities}))`)
    .orderBy('accounts.account_id')
    .limit(ACCOUNT_PAGE)
    .execute();
  return rows.map((row) => row.account_id);
}

async function purgeAccount(tenant: TenantDb, cutoffs: Cutoffs, batch: number, quota: QuotaService, hooks: PurgeHooks, signal: AbortSignal | undefined) {
  let records = 0;
  let entities = 0;

  // 1. Records trashed before the cutoff (in live entities or not).
  for (;;) {
    const deleted = await tenant.transaction(async (tx) => {
      const n = await deleteExpiredRecords(tx, quota, cutoffs.records, batch);
      await quota.release(tx, 'records.max', n);
      return n;
    });
    records += deleted;
    if (deleted < batch || signal?.aborted) break;
  }

  // 2. Entities trashed before the cutoff, one at a time, with all that hangs off them.
  let after = '';
  while (!signal?.aborted) {
    const page = await tenant.selectFrom('entities').select('entity_id')
      .where('is_deleted', '=', true).where('date_deleted', '<', cutoffs.entities)
      .where('entity_id', '>', after)
      .orderBy('entity_id').limit(ENTITY_PAGE).execute();
    for (const { entity_id: entityId } of page) {
      if (signal?.aborted) break;
      const done = await purgeEntity(tenant, entityId, cutoffs, batch, quota, hooks, signal);
      records += done.records;
      if (done.purged) entities++;
    }
    if (page.length < ENTITY_PAGE) break;
    after = page[page.length - 1]!.entity_id;
  }
  return { records, entities };
}

async function purgeEntity(tenant: TenantDb, entityId: string, cutoffs: Cutoffs, batch: number, quota: QuotaService, hooks: PurgeHooks, signal: AbortSignal | undefined) {
  let records = 0;
  for (;;) {
    const step = await tenant.transaction(async (tx) => {
      // A restore (FOR UPDATE) waits for this lock; record inserts (FK KEY SHARE) do not.
      const entity = await tx.selectFrom('entities').select('entity_id')
        .where('entity_id', '=', entityId).where('is_deleted', '=', true).where('date_deleted', '<', cutoffs.entities)
        .forNoKeyUpdate().executeTakeFirst();
      if (!entity) return { records: 0, purged: false, more: false }; // restored, re-trashed later, or purged by another process
      await tx.updateTable('entities').set({ purge_started_at: sql`coalesce(purge_started_at, now())` })
        .where('entity_id', '=', entityId).execute();

      // Live records first, then trashed ones: each matches one of the partial indexes.
      let n = await deleteRecordsWhere(tx, quota, sql<SqlBool>`records.entity_id = ${entityId} AND NOT records.is_deleted`, batch);
      if (n < batch) n += await deleteRecordsWhere(tx, quota, sql<SqlBool>`records.entity_id = ${entityId} AND records.is_deleted`, batch - n);
      await quota.release(tx, 'records.max', n);
      if (n === batch) return { records: n, purged: false, more: true };

      // No records left: the entity's properties, its per-entity counters and the entity itself.
      await tx.deleteFrom('properties').where('entity_id', '=', entityId).execute();
      const typeIds = await purgeTypesOfEntity(tx, quota, entityId);
      await tx.deleteFrom('quota_usage').where('scope', '=', entityId).execute();
      await tx.deleteFrom('entities').where('entity_id', '=', entityId).execute();
      await quota.release(tx, 'entities.max', 1);
      // After the entity (its own segments go with it): only other entities' segments are left to rebuild.
      for (const typeId of typeIds) await hooks.typeRemoved(tx, typeId);
      return { records: n, purged: true, more: false };
    });
    records += step.records;
    if (!step.more || signal?.aborted) return { records, purged: step.purged };
  }
}

/**
 * Deletes up to `limit` of the account's records trashed before `cutoff`; returns how many. Rows
 * locked by someone else (a restore, another server's purge) are skipped, not waited for, so the
 * purge never deadlocks with bulk requests and two purgers split the work; skipped rows are left
 * for the next run.
 */
async function deleteExpiredRecords(tx: TenantDb, quota: QuotaService, cutoff: Date, limit: number): Promise<number> {
  const rows = await tx.selectFrom('records').select('record_id')
    .where('is_deleted', '=', true).where('date_deleted', '<', cutoff)
    .limit(limit).forUpdate().skipLocked().execute();
  if (rows.length === 0) return 0;
  const ids = rows.map((r) => r.record_id);
  await purgeLinksOfRecords(tx, quota, ids);
  const result = await tx.deleteFrom('records').where('record_id', 'in', ids).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Deletes up to `limit` of the account's records matching `where` (an entity's records); returns
 * how many. The condition is on the DELETE itself too, so a row changed meanwhile is re-checked
 * on its new version.
 */
async function deleteRecordsWhere(tx: TenantDb, quota: QuotaService, where: RawBuilder<SqlBool>, limit: number): Promise<number> {
  // Locked first: no link to them can be added between their links' removal and their own.
  const chosen = (await tx.selectFrom('records').select('records.record_id').where(where).limit(limit).forUpdate().execute()).map((r) => r.record_id);
  if (chosen.length === 0) return 0;
  await purgeLinksOfRecords(tx, quota, chosen);
  const result = await tx.deleteFrom('records').where('records.record_id', 'in', chosen).where(where).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/* ---------- The server's timer ---------- */

export interface TrashPurgerOptions {
  db: Kysely<DB>;
  hooks: PurgeHooks;
  clock: Clock;
  logger: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  recordsRetentionDays: number;
  entitiesRetentionDays: number;
  /** Every 10 minutes by default. */
  intervalMs?: number;
}

export interface TrashPurger {
  /** Runs a purge now unless one is running; resolves when it ends (never rejects: errors are logged). */
  runNow(): Promise<void>;
  /** Stops the timer, asks a running purge to stop after its current transaction, and waits for it. */
  stop(): Promise<void>;
}

export const PURGE_INTERVAL_MS = 10 * 60_000;

/** Purges expired trash every `intervalMs` (src/lib/periodic.ts). */
export function startTrashPurger(options: TrashPurgerOptions): TrashPurger {
  const { db, clock, logger } = options;
  return startPeriodic(options.intervalMs ?? PURGE_INTERVAL_MS, (signal) =>
    purgeExpiredTrash(db, clock(), {
      hooks: options.hooks,
      recordsRetentionDays: options.recordsRetentionDays,
      entitiesRetentionDays: options.entitiesRetentionDays,
      signal,
    })
      .then((report) => {
        for (const { accountId, error } of report.failures) logger.error({ err: error, accountId }, 'trash purge failed for an account');
        if (report.records || report.entities) {
          logger.info({ accounts: report.accounts, records: report.records, entities: report.entities }, 'purged expired trash');
        }
      })
      .catch((error: unknown) => logger.error({ err: error }, 'trash purge failed')));
}
