import { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import type { DB } from '../../db/schema.ts';
import { tenantDb } from '../../db/tenant.ts';
import { errors } from '../../errors.ts';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import type { FilesService } from './files.service.ts';

export interface FilesRoutesOptions {
  files: FilesService;
  db: Kysely<DB>;
}

const DownloadQuery = Type.Object({
  account: Type.String({ minLength: 1, maxLength: 64 }),
  expires: Type.String({ minLength: 1, maxLength: 16 }),
  signature: Type.String({ minLength: 1, maxLength: 128 }),
}, { additionalProperties: false });

/** `filename*` (RFC 6266 / 5987) keeps Korean file names intact; `filename` is the ASCII fallback. */
function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

// responses() adds 401 to every route; a signed download never answers it (no API key is read).
const { 401: _unsigned, ...publicResponses } = responses({ 200: Type.Unknown({ description: 'The file\'s bytes' }) }, [400, 403, 404, 410]);

/**
 * Signed downloads (export files). Registered outside the authenticated scope: the signature in
 * the query is the credential (FilesService.verifyDownload), so a browser or curl can fetch it.
 */
export async function filesRoutes(app: TypedApp, { files, db }: FilesRoutesOptions) {
  app.get('/files/:fileId/download', {
    schema: {
      tags: ['Files'],
      security: [],
      summary: 'Download a stored file through a signed, expiring link',
      description: 'The link comes from an export (downloadUrl). No API key: the signature is the credential. '
        + 'A tampered link is 403; an expired one is 410.',
      params: Type.Object({ fileId: Type.String({ maxLength: 64 }) }),
      querystring: DownloadQuery,
      response: publicResponses,
    },
  }, async (request, reply) => {
    const accountId = files.verifyDownload(request.params.fileId, request.query);
    const tenant = tenantDb(db, accountId);
    const file = await files.info(tenant, request.params.fileId);
    if (!file?.complete) throw errors.notFound('File');
    reply
      .header('content-type', file.contentType)
      .header('content-length', String(file.size))
      .header('content-disposition', contentDisposition(file.name))
      .header('cache-control', 'private, no-store');
    return reply.send(Readable.from(files.read(tenant, file.fileId)));
  });
}
