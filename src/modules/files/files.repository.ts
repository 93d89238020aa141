import { sql, type Kysely } from 'kysely';
import type { DB } from '../../db/schema.ts';
import type { TenantDb } from '../../db/tenant.ts';

export interface NewFile {
  fileId: string;
  name: string;
  contentType: string;
  createdBy: string | null;
  now: Date;
  expiresAt: Date;
}

export async function insertFile(tenant: TenantDb, file: NewFile): Promise<void> {
  await tenant
    .insertInto('files')
    .values({
      account_id: tenant.accountId,
      file_id: file.fileId,
      name: file.name,
      content_type: file.contentType,
      created_by: file.createdBy,
      date_created: file.now,
      expires_at: file.expiresAt,
    })
    .execute();
}

export async function insertChunk(tenant: TenantDb, fileId: string, seq: number, data: Uint8Array): Promise<void> {
  await tenant.insertInto('file_chunks').values({ account_id: tenant.accountId, file_id: fileId, seq, data }).execute();
}

export async function markComplete(tenant: TenantDb, fileId: string, size: number): Promise<void> {
  await tenant.updateTable('files').set({ complete: true, size }).where('file_id', '=', fileId).execute();
}

export function findFile(tenant: TenantDb, fileId: string) {
  return tenant.selectFrom('files').selectAll().where('file_id', '=', fileId).executeTakeFirst();
}

/** One chunk at a time, so a reader holds at most one chunk in memory. */
export async function chunkAt(tenant: TenantDb, fileId: string, seq: number): Promise<Uint8Array | undefined> {
  const row = await tenant.selectFrom('file_chunks').select('data').where('file_id', '=', fileId).where('seq', '=', seq).executeTakeFirst();
  return row?.data;
}

export async function deleteFile(tenant: TenantDb, fileId: string): Promise<void> {
  await tenant.deleteFrom('files').where('file_id', '=', fileId).execute();
}

/**
 * Deletes up to `limit` expired files of every account (their chunks cascade). A system sweep:
 * the only cross-account statement in this module.
 */
export async function deleteExpired(db: Kysely<DB>, now: Date, limit: number): Promise<number> {
  const result = await sql`
    DELETE FROM files
    WHERE (account_id, file_id) IN (SELECT account_id, file_id FROM files WHERE expires_at <= ${now} LIMIT ${limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
