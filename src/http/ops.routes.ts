import Type from 'typebox';
import { sql, type Kysely } from 'kysely';
import type { Registry } from 'prom-client';
import type { DB } from '../db/schema.ts';
import { errors } from '../errors.ts';
import type { TypedApp } from './route-types.ts';

const Status = Type.Object({ status: Type.String() });
const tags = ['Operations'];

/** A database that does not answer within this long is "not ready" (503), rather than a hung probe. */
const READY_TIMEOUT_MS = 5_000;

/** Probes and metrics; unauthenticated, outside /crm-core/v1. */
export async function opsRoutes(app: TypedApp, { db, metrics }: { db: Kysely<DB>; metrics: Registry }) {
  app.get('/healthz', {
    schema: { tags, summary: 'The process is up (never touches the database)', security: [], response: { 200: Status } },
  }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    schema: { tags, summary: 'The database answers', security: [], response: { 200: Status, 503: Type.Ref('ErrorBody') } },
  }, async () => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(errors.serviceUnavailable('The database did not answer in time.')), READY_TIMEOUT_MS);
    });
    try {
      await Promise.race([sql`select 1`.execute(db), timeout]);
    } finally {
      clearTimeout(timer);
    }
    return { status: 'ready' };
  });

  app.get('/metrics', {
    schema: {
      tags,
      summary: 'Prometheus metrics (text exposition format)',
      security: [],
      response: {
        200: {
          description: 'Prometheus text exposition format',
          content: { 'text/plain': { schema: Type.String() } },
        },
      },
    },
  }, async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
}
