import Type, { type Static } from 'typebox';
import { MemberId, Timestamp, WorkspaceId } from '../../http/schemas/common.ts';

export const ApiKey = Type.Object({
  apiKey: Type.String(),
  accountId: Type.String(),
  memberId: MemberId,
  workspaceId: Type.Union([Type.String(), Type.Null()]),
  name: Type.Union([Type.String(), Type.Null()]),
  createdBy: Type.Union([Type.String(), Type.Null()]),
  dateCreated: Timestamp,
  lastUsedAt: Type.Union([Timestamp, Type.Null()]),
}, { title: 'ApiKey' });
export type ApiKey = Static<typeof ApiKey>;

export const CreatedApiKey = Type.Object({
  ...ApiKey.properties,
  apiSecret: Type.String({ description: 'Shown once, at creation; it cannot be read again.' }),
}, { title: 'CreatedApiKey' });
export type CreatedApiKey = Static<typeof CreatedApiKey>;

export const CreateApiKeyBody = Type.Object({
  memberId: Type.Optional(MemberId),
  workspaceId: Type.Optional(Type.Union([WorkspaceId, Type.Null()])),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
}, { additionalProperties: false });
export type CreateApiKeyBody = Static<typeof CreateApiKeyBody>;

export const ApiKeyParams = Type.Object({ apiKey: Type.String({ maxLength: 64 }) });
