import Type from 'typebox';
import { sql, type Kysely } from 'kysely';
import type { Registry } from 'prom-client';
import type { DB } from '../db/schema.ts';
import type { TypedApp } from './route-types.ts';

const Status = Type.Object({ status: Type.String() });
const tags = ['Operations'];

/** Probes and metrics; unauthenticated, outside /crm-core/v1. */
export async function opsRoutes(app: TypedApp, { db, metrics }: { db: Kysely<DB>; metrics: Registry }) {
  app.get('/healthz', {
    schema: { tags, summary: 'The process is up (never touches the database)', security: [], response: { 200: Status } },
  }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    schema: { tags, summary: 'The database answers', security: [], response: { 200: Status, 503: Type.Ref('ErrorBody') } },
  }, async () => {
    await sql`select 1`.execute(db);
    return { status: 'ready' };
  });

  app.get('/metrics', {
    schema: { tags, summary: 'Prometheus metrics', security: [], produces: ['text/plain'] },
  }, async (_request, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
}
