import Type from 'typebox';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import { CreateMemberBody, Member, MemberParams, UpdateMemberBody } from './members.schemas.ts';
import type { MembersService } from './members.service.ts';

const tags = ['Members'];
const owner = { minRole: 'OWNER' as const };

export async function membersRoutes(app: TypedApp, { members }: { members: MembersService }) {
  app.get('/members', {
    config: owner,
    schema: { tags, summary: 'List the account\'s members (OWNER)', response: responses({ 200: Type.Array(Member) }) },
  }, (request) => members.list(request.tenant));

  app.post('/members', {
    config: owner,
    schema: { tags, summary: 'Add a member (OWNER)', body: CreateMemberBody, response: responses({ 201: Member }, [400, 403, 409]) },
  }, async (request, reply) => reply.code(201).send(await members.create(request.tenant, request.body)));

  app.get('/members/:memberId', {
    config: owner,
    schema: { tags, summary: 'Get a member (OWNER)', params: MemberParams, response: responses({ 200: Member }) },
  }, (request) => members.get(request.tenant, request.params.memberId));

  app.patch('/members/:memberId', {
    config: owner,
    schema: { tags, summary: 'Change a member\'s name, email or role (OWNER)', params: MemberParams, body: UpdateMemberBody, response: responses({ 200: Member }, [400, 403, 404, 409]) },
  }, (request) => members.update(request.tenant, request.params.memberId, request.body));

  app.delete('/members/:memberId', {
    config: owner,
    schema: {
      tags,
      summary: 'Remove a member and revoke their API keys (OWNER)',
      params: MemberParams,
      response: responses({ 200: Type.Object({ memberId: Type.String() }) }, [403, 404, 409]),
    },
  }, async (request) => {
    await members.remove(request.tenant, request.params.memberId);
    return { memberId: request.params.memberId };
  });
}
