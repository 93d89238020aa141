import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { Services } from '../services.ts';
import type { RateLimiter } from '../lib/rate-limiter.ts';
import { activitiesRoutes } from '../modules/activities/activities.routes.ts';
import { apiKeysRoutes } from '../modules/api-keys/api-keys.routes.ts';
import { entitiesRoutes } from '../modules/entities/entities.routes.ts';
import { eventsRoutes } from '../modules/events/events.routes.ts';
import { membersRoutes } from '../modules/members/members.routes.ts';
import { usageRoutes } from '../modules/plans/usage.routes.ts';
import { propertiesRoutes } from '../modules/properties/properties.routes.ts';
import { DEFAULT_BULK_BODY_LIMIT, recordsRoutes } from '../modules/records/records.routes.ts';
import { relationshipsRoutes } from '../modules/relationships/relationships.routes.ts';
import { segmentsRoutes } from '../modules/segments/segments.routes.ts';
import { insightsRoutes } from '../modules/insights/insights.routes.ts';
import { filesRoutes } from '../modules/files/files.routes.ts';
import { importsRoutes } from '../modules/imports/imports.routes.ts';
import { exportsRoutes } from '../modules/exports/exports.routes.ts';
import { clientErrorHandler, frameworkErrorHandler, registerErrorHandling } from './error-handler.ts';
import { registerETags } from './etag.ts';
import { opsRoutes } from './ops.routes.ts';
import { registerAuth } from './plugins/auth.ts';
import { registerIdempotency } from './plugins/idempotency.ts';
import { createHttpMetrics, registerMetrics } from './plugins/metrics.ts';
import { registerOpenApi } from './plugins/openapi.ts';
import { registerRateLimit } from './plugins/rate-limit.ts';
import { ErrorBody } from './schemas/common.ts';
import { registerBodyParsers, typeboxValidatorCompiler } from './validation.ts';

export const API_PREFIX = '/crm-core/v1';
const VERSION = '0.1.0';

export interface AppOptions {
  db: Kysely<DB>;
  services: Services;
  /** The process's pino logger; tests leave it out and get a silent app. */
  logger?: FastifyBaseLogger;
  bodyLimit?: number;
  /** Body limit of the bulk endpoints. */
  bulkBodyLimit?: number;
  docsEnabled?: boolean;
  /** Per-key and per-account request limits (src/lib/rate-limiter.ts); absent = no limits. */
  rateLimiter?: RateLimiter;
  /** PUBLIC_BASE_URL: the origin of links the server hands out (see src/http/public-url.ts). */
  publicBaseUrl?: string;
}

/** A caller-supplied request id is echoed when it is short and printable; otherwise we mint one. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the HTTP application without listening (tests drive it with inject() or a real port). */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const metrics = createHttpMetrics();
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Slow-client protection; Fastify leaves these off by default.
    requestTimeout: 120_000,
    connectionTimeout: 120_000,
    // On close: stop accepting, answer 503 on kept-alive sockets, close idle ones, let in-flight requests finish.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // Routing errors (bad percent-encoding, over-long path parameters) in our error format.
    frameworkErrors: frameworkErrorHandler(metrics),
    // Requests Node's HTTP parser refuses (oversized headers, malformed HTTP), in our format too.
    clientErrorHandler: clientErrorHandler(metrics),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(typeboxValidatorCompiler);
  app.addSchema(ErrorBody);
  registerErrorHandling(app);

  // JSON only (any other Content-Type is 415); an empty body is "no body". See registerBodyParsers.
  registerBodyParsers(app);

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  registerMetrics(app, metrics);
  await registerOpenApi(app, { docsEnabled: options.docsEnabled ?? true, version: VERSION });
  await app.register(opsRoutes, { db: options.db, metrics: metrics.registry });
  app.decorate('publicBaseUrl', options.publicBaseUrl);
  // Signed downloads carry their credential in the link, so they live outside the API-key scope.
  await app.register(filesRoutes, { files: options.services.files, db: options.db, prefix: API_PREFIX });

  await app.register(async (api) => {
    registerAuth(api, { apiKeys: options.services.apiKeys, db: options.db });
    // Order matters: authenticate, then count the request, then claim its Idempotency-Key.
    if (options.rateLimiter) registerRateLimit(api, { limiter: options.rateLimiter });
    registerIdempotency(api, { idempotency: options.services.idempotency });
    registerETags(api);
    await api.register(membersRoutes, { members: options.services.members });
    await api.register(apiKeysRoutes, { apiKeys: options.services.apiKeys });
    await api.register(usageRoutes, { quota: options.services.quota });
    await api.register(entitiesRoutes, { entities: options.services.entities });
    await api.register(propertiesRoutes, { properties: options.services.properties });
    await api.register(recordsRoutes, { records: options.services.records, bulkBodyLimit: options.bulkBodyLimit });
    await api.register(exportsRoutes, { exports: options.services.exports });
    await api.register(importsRoutes, { imports: options.services.imports });
    await api.register(segmentsRoutes, { segments: options.services.segments });
    await api.register(insightsRoutes, { insights: options.services.insights });
    await api.register(relationshipsRoutes, {
      types: options.services.relationshipTypes,
      relationships: options.services.relationships,
      bulkBodyLimit: options.bulkBodyLimit ?? DEFAULT_BULK_BODY_LIMIT,
    });
    await api.register(activitiesRoutes, { activities: options.services.activities });
    await api.register(eventsRoutes, { events: options.services.events, bulkBodyLimit: options.bulkBodyLimit ?? DEFAULT_BULK_BODY_LIMIT });
  }, { prefix: API_PREFIX });

  return app;
}
