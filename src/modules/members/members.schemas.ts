import Type, { type Static } from 'typebox';
import { MemberId, Role, Timestamp } from '../../http/schemas/common.ts';

export const Member = Type.Object({
  memberId: MemberId,
  accountId: Type.String(),
  name: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  role: Role,
  dateCreated: Timestamp,
  dateUpdated: Timestamp,
}, { title: 'Member' });
export type Member = Static<typeof Member>;

const Name = Type.String({ minLength: 1, maxLength: 100 });
const Email = Type.String({ format: 'email', maxLength: 254 });

export const CreateMemberBody = Type.Object({
  name: Name,
  email: Type.Optional(Type.Union([Email, Type.Null()])),
  role: Type.Optional(Role),
}, { additionalProperties: false });
export type CreateMemberBody = Static<typeof CreateMemberBody>;

export const UpdateMemberBody = Type.Object({
  name: Type.Optional(Name),
  email: Type.Optional(Type.Union([Email, Type.Null()])),
  role: Type.Optional(Role),
}, { additionalProperties: false, minProperties: 1 });
export type UpdateMemberBody = Static<typeof UpdateMemberBody>;

export const MemberParams = Type.Object({ memberId: Type.String({ maxLength: 64 }) });
