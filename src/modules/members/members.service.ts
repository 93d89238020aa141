import { errors } from '../../errors.ts';
import { uniqueViolation } from '../../db/errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Role } from '../../db/schema.ts';
import { newMemberId } from '../../lib/ids.ts';
import * as repo from './members.repository.ts';
import type { CreateMemberBody, Member, UpdateMemberBody } from './members.schemas.ts';


function toMember(row: repo.MemberRow): Member {
  return {
    memberId: row.member_id,
    accountId: row.account_id,
    name: row.name,
    email: row.email,
    role: row.role,
    dateCreated: row.date_created.toISOString(),
    dateUpdated: row.date_updated.toISOString(),
  };
}

export interface MembersService {
  get(tenant: TenantDb, memberId: string): Promise<Member>;
  exists(tenant: TenantDb, memberId: string): Promise<boolean>;
  /**
   * Inside a transaction that is about to write a row referencing the member (an API key): its
   * role when it exists, and then it can neither be removed nor change role before that
   * transaction ends. Take it before any other lock (quota counters) so removal and reference
   * always lock in the same order.
   */
  lockForReference(tx: TenantDb, memberId: string): Promise<Role | undefined>;
  list(tenant: TenantDb): Promise<Member[]>;
  create(tenant: TenantDb, input: CreateMemberBody): Promise<Member>;
  update(tenant: TenantDb, memberId: string, input: UpdateMemberBody): Promise<Member>;
  remove(tenant: TenantDb, memberId: string): Promise<void>;
}

export interface MembersServiceDeps {
  /** Runs in the removal's transaction before the member row goes (its API keys are revoked there). */
  beforeRemove: (tenant: TenantDb, memberId: string) => Promise<void>;
  /** Runs in the update's transaction when the role changed (API keys carry their member's role). */
  afterRoleChange: (tenant: TenantDb, memberId: string, role: Role) => Promise<void>;
}

export function createMembersService(deps: MembersServiceDeps): MembersService {
  /** Refuses changes that would leave the account without an OWNER. */
  async function assertOwnerRemains(tenant: TenantDb, memberId: string): Promise<void> {
    const owners = await repo.lockOwners(tenant);
    if (owners.length === 1 && owners[0] === memberId) {
      throw errors.conflict('An account must keep at least one OWNER.');
    }
  }

  return {
    async get(tenant, memberId) {
      const row = await repo.findMember(tenant, memberId);
      if (!row) throw errors.notFound('Member');
      return toMember(row);
    },

    async exists(tenant, memberId) {
      return (await repo.findMember(tenant, memberId)) !== undefined;
    },

    lockForReference(tx, memberId) {
      return repo.lockMemberForReference(tx, memberId);
    },

    async list(tenant) {
      return (await repo.listMembers(tenant)).map(toMember);
    },

    async create(tenant, input) {
      try {
        const row = await repo.insertMember(tenant, {
          member_id: newMemberId(),
          name: input.name,
          email: input.email ?? null,
          role: input.role ?? 'MEMBER',
        });
        return toMember(row);
      } catch (error) {
        if (uniqueViolation(error) !== undefined) throw errors.conflict('A member with this email already exists.');
        throw error;
      }
    },

    async update(tenant, memberId, input) {
      return tenant.transaction(async (tx) => {
        if (input.role !== undefined && input.role !== 'OWNER') await assertOwnerRemains(tx, memberId);
        try {
          const row = await repo.updateMember(tx, memberId, input);
          if (!row) throw errors.notFound('Member');
          if (input.role !== undefined) await deps.afterRoleChange(tx, memberId, row.role);
          return toMember(row);
        } catch (error) {
          if (uniqueViolation(error) !== undefined) throw errors.conflict('A member with this email already exists.');
          throw error;
        }
      });
    },

    async remove(tenant, memberId) {
      await tenant.transaction(async (tx) => {
        await assertOwnerRemains(tx, memberId);
        if (!(await repo.lockMember(tx, memberId))) throw errors.notFound('Member');
        await deps.beforeRemove(tx, memberId);
        await repo.deleteMember(tx, memberId);
      });
    },
  };
}
