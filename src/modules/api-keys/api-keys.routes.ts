import Type from 'typebox';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import { ApiKey, ApiKeyParams, CreateApiKeyBody, CreatedApiKey } from './api-keys.schemas.ts';
import type { ApiKeysService } from './api-keys.service.ts';

const tags = ['API keys'];
const owner = { minRole: 'OWNER' as const };

export async function apiKeysRoutes(app: TypedApp, { apiKeys }: { apiKeys: ApiKeysService }) {
  app.get('/api-keys', {
    config: owner,
    schema: { tags, summary: 'List API keys, without secrets (OWNER)', response: responses({ 200: Type.Array(ApiKey) }) },
  }, (request) => apiKeys.list(request.tenant));

  app.post('/api-keys', {
    config: owner,
    schema: {
      tags,
      summary: 'Create an API key for a member (OWNER); the secret is in this response only',
      body: CreateApiKeyBody,
      response: responses({ 201: CreatedApiKey }, [400, 403]),
    },
  }, async (request, reply) => reply.code(201).send(await apiKeys.create(request.tenant, request.caller.memberId, request.body ?? {})));

  app.delete('/api-keys/:apiKey', {
    config: owner,
    schema: {
      tags,
      summary: 'Revoke an API key (OWNER)',
      params: ApiKeyParams,
      response: responses({ 200: Type.Object({ apiKey: Type.String() }) }, [403, 404]),
    },
  }, async (request) => {
    await apiKeys.revoke(request.tenant, request.params.apiKey);
    return { apiKey: request.params.apiKey };
  });
}
