import { timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../../db/schema.ts';
import { systemDb, type TenantDb } from '../../db/tenant.ts';
import { errors } from '../../errors.ts';
import type { Clock } from '../../lib/clock.ts';
import { isId, newId } from '../../lib/ids.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import * as repo from './files.repository.ts';
import { deleteInBatches } from '../../lib/batches.ts';

/**
 * Stored files (exports, uploaded imports). The bytes live in PostgreSQL in ~1 MiB chunks
 * (file_chunks), not on a node's disk: API nodes stay stateless, any node serves any file, a
 * file survives restarts, and writing or reading one takes one chunk of memory at a time.
 * A file is readable once `finish()` marked it complete, and is swept after `expiresAt`.
 *
 * Downloads need no API key: a download path carries the account, the file, an expiry and an
 * HMAC of the three under a key derived from the master key (SecretBox.mac), so any node
 * sharing MASTER_KEY verifies it, and nobody can forge one or stretch its expiry.
 */
export interface StoredFile {
  fileId: string;
  name: string;
  contentType: string;
  size: number;
  complete: boolean;
  expiresAt: Date;
  dateCreated: Date;
}

export interface FileWriter {
  readonly fileId: string;
  /** Buffers and writes 1 MiB chunks as they fill (each chunk its own statement: constant memory). */
  write(chunk: Uint8Array | string): Promise<void>;
  /** Writes the rest and marks the file complete. */
  finish(): Promise<StoredFile>;
  /** Deletes whatever was written. */
  abort(): Promise<void>;
}

export interface FilesService {
  create(tenant: TenantDb, input: { name: string; contentType: string; expiresAt: Date; createdBy?: string | null }): Promise<FileWriter>;
  info(tenant: TenantDb, fileId: string): Promise<StoredFile | undefined>;
  /** The bytes of a complete file, chunk by chunk. */
  read(tenant: TenantDb, fileId: string): AsyncIterable<Uint8Array>;
  remove(tenant: TenantDb, fileId: string): Promise<void>;
  /** A signed, expiring download path, served without an API key by the files routes. */
  downloadPath(accountId: string, fileId: string, expiresAt: Date): string;
  /** Checks a download path's signature and expiry; returns the account to read the file from. */
  verifyDownload(fileId: string, query: { account: string; expires: string; signature: string }): string;
  /** Deletes expired files of every account; returns how many. */
  sweepExpired(): Promise<number>;
}

export const CHUNK_BYTES = 1024 * 1024;
const MAC_PURPOSE = 'file download';
const SWEEP_BATCH = 500;

const toView = (row: NonNullable<Awaited<ReturnType<typeof repo.findFile>>>): StoredFile => ({
  fileId: row.file_id,
  name: row.name,
  contentType: row.content_type,
  size: Number(row.size),
  complete: row.complete,
  expiresAt: row.expires_at,
  dateCreated: row.date_created,
});

export function createFilesService(deps: { db: Kysely<DB>; secretBox: SecretBox; clock: Clock }): FilesService {
  const signatureOf = (accountId: string, fileId: string, expires: string) => deps.secretBox.mac(MAC_PURPOSE, `${accountId}\n${fileId}\n${expires}`);

  return {
    async create(tenant, input) {
      const now = new Date(deps.clock());
      const fileId = newId('file', now);
      await repo.insertFile(tenant, { fileId, name: input.name, contentType: input.contentType, createdBy: input.createdBy ?? null, now, expiresAt: input.expiresAt });
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let seq = 0;
      let size = 0;
      const flush = async (all: boolean) => {
        while (pendingBytes >= CHUNK_BYTES || (all && pendingBytes > 0)) {
          const joined = Buffer.concat(pending, pendingBytes);
          const take = Math.min(CHUNK_BYTES, joined.length);
          await repo.insertChunk(tenant, fileId, seq++, joined.subarray(0, take));
          pending = take < joined.length ? [joined.subarray(take)] : [];
          pendingBytes = joined.length - take;
        }
      };
      return {
        fileId,
        async write(chunk) {
          const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
          if (bytes.length === 0) return;
          pending.push(bytes);
          pendingBytes += bytes.length;
          size += bytes.length;
          if (pendingBytes >= CHUNK_BYTES) await flush(false);
        },
        async finish() {
          await flush(true);
          await repo.markComplete(tenant, fileId, size);
          return { fileId, name: input.name, contentType: input.contentType, size, complete: true, expiresAt: input.expiresAt, dateCreated: now };
        },
        async abort() {
          pending = [];
          await repo.deleteFile(tenant, fileId);
        },
      };
    },

    async info(tenant, fileId) {
      if (!isId('file', fileId)) return undefined;
      const row = await repo.findFile(tenant, fileId);
      return row ? toView(row) : undefined;
    },

    async *read(tenant, fileId) {
      for (let seq = 0; ; seq++) {
        const chunk = await repo.chunkAt(tenant, fileId, seq);
        if (!chunk) return;
        yield chunk;
      }
    },

    remove: (tenant, fileId) => repo.deleteFile(tenant, fileId),

    downloadPath(accountId, fileId, expiresAt) {
      const expires = String(Math.floor(expiresAt.getTime() / 1000));
      const query = new URLSearchParams({ account: accountId, expires, signature: signatureOf(accountId, fileId, expires) });
      return `/crm-core/v1/files/${encodeURIComponent(fileId)}/download?${query}`;
    },

    verifyDownload(fileId, query) {
      const expected = Buffer.from(signatureOf(query.account, fileId, query.expires));
      const given = Buffer.from(query.signature);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
        throw errors.forbidden('The download link is not valid (its signature does not match).');
      }
      if (!/^\d{1,12}$/.test(query.expires) || Number(query.expires) * 1000 <= deps.clock()) {
        throw errors.gone('The download link', 'has expired; request the export again');
      }
      return query.account;
    },

    sweepExpired: () => deleteInBatches(SWEEP_BATCH, (size) => repo.deleteExpired(systemDb(deps.db), new Date(deps.clock()), size)),
  };
}
