import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { conditionLanguageSchemas } from '../../query/json-schema.ts';

/** Where the condition language's grammar is published (components.schemas). */
export const CONDITION_SCHEMA_NAMES = { group: 'ConditionGroup', condition: 'Condition', relatedGroup: 'RelatedConditionGroup' } as const;

export const OPENAPI_PATH = '/crm-core/v1/public/openapi/json';

/**
 * The OpenAPI 3.1 document is generated from the route schemas, so it cannot drift from what
 * the server validates. Solapi serves its spec at the same path.
 */
export async function registerOpenApi(app: FastifyInstance, options: { docsEnabled: boolean; version: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'crm-core',
        version: options.version,
        description:
          'Self-hostable CRM core speaking Solapi\'s /crm-core/v1 API. Every /crm-core/v1 route except /public ' +
          'needs `Authorization: HMAC-SHA256 apiKey=…, date=…, salt=…, signature=…` where signature = ' +
          'hex(HMAC-SHA256(apiSecret, date + salt)). Errors are `{errorCode, errorMessage}`. POST, PATCH and DELETE ' +
          'accept `Idempotency-Key` (1–255 printable ASCII): a retry within 24 h gets the stored response with ' +
          '`Idempotent-Replayed: true`; another request under the same key is 422 IdempotencyKeyReused, one still ' +
          'running is 409 IdempotencyKeyInProgress. A record, entity, property or segment comes with ' +
          '`ETag: "<version>"`; PATCH and DELETE of one accept `If-Match` and answer 412 PreconditionFailed (nothing ' +
          'written) when it names another version. When rate limits are configured, answers carry RateLimit-Limit, ' +
          'RateLimit-Remaining and RateLimit-Reset, and 429 TooManyRequests carries Retry-After.',
      },
      components: {
        // The swagger types want OpenAPI's SchemaObject; these are plain JSON Schema 2020-12, which 3.1 takes as is.
        schemas: conditionLanguageSchemas(CONDITION_SCHEMA_NAMES) as never,
        securitySchemes: {
          SolapiHmac: {
            type: 'apiKey',
            in: 'header',
            name: 'Authorization',
            description: 'HMAC-SHA256 apiKey=<key>, date=<ISO-8601>, salt=<12-64 chars>, signature=<hex>',
          },
        },
      },
      security: [{ SolapiHmac: [] }],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });
  app.get(OPENAPI_PATH, {
    schema: {
      tags: ['Operations'],
      summary: 'This OpenAPI 3.1 document (public, no signature needed)',
      security: [],
      response: { 200: Type.Object({}, { additionalProperties: true, description: 'An OpenAPI 3.1 document' }) },
    },
  }, () => app.swagger());
  if (options.docsEnabled) {
    // Swagger UI's assets are served from the package itself: the page works without network.
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { docExpansion: 'list', deepLinking: true },
      theme: { title: 'crm-core API' },
    });
  }
}
