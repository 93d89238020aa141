import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { errors } from '../../errors.ts';
import type { DB, Role } from '../../db/schema.ts';
import { tenantDb, type TenantDb } from '../../db/tenant.ts';
import type { ApiKeysService, Caller } from '../../modules/api-keys/api-keys.service.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The least role allowed to call the route (OWNER ⊃ ADMIN ⊃ MEMBER); MEMBER when absent. */
    minRole?: Role;
  }
  interface FastifyRequest {
    caller: Caller;
    /** The caller's account: the only database handle route handlers get. */
    tenant: TenantDb;
  }
}

const RANK: Record<Role, number> = { MEMBER: 1, ADMIN: 2, OWNER: 3 };

export function hasRole(role: Role, least: Role): boolean {
  return RANK[role] >= RANK[least];
}

/**
 * Authenticates every request of the scope it is registered in, before the body is even read,
 * then enforces the route's `minRole`.
 */
export function registerAuth(app: FastifyInstance, deps: { apiKeys: ApiKeysService; db: Kysely<DB> }): void {
  app.decorateRequest('caller', null as unknown as Caller);
  app.decorateRequest('tenant', null as unknown as TenantDb);
  app.addHook('onRequest', async (request) => {
    const caller = await deps.apiKeys.authenticate(request.headers.authorization);
    request.caller = caller;
    request.tenant = tenantDb(deps.db, caller.accountId);
    request.log = request.log.child({ accountId: caller.accountId, memberId: caller.memberId });
    const least = request.routeOptions.config.minRole ?? 'MEMBER';
    if (!hasRole(caller.role, least)) throw errors.forbidden(`This action needs the ${least} role.`);
  });
}
