import Type, { type Static } from 'typebox';
import { MemberId, Timestamp } from '../../http/schemas/common.ts';
import { EntityId } from '../entities/entities.schemas.ts';
import { ConditionGroupSchema, CrmRecord, ListRecordsQuery } from '../records/records.schemas.ts';

/** GET /segments answers at most this many (API.md §1.6). */
export const SEGMENT_LIST_CAP = 500;
/** Records a preview returns beside its count. */
export const PREVIEW_SAMPLE = 10;

export const SegmentId = Type.String({ minLength: 1, maxLength: 64, description: 'CRMSG1… (32 characters)' });
export const SegmentParams = Type.Object({ segmentId: SegmentId });
export const ExplainParams = Type.Object({ segmentId: SegmentId, recordId: Type.String({ minLength: 1, maxLength: 64 }) });

const Mode = Type.Enum(['REALTIME', 'CACHED'], {
  description: 'REALTIME evaluates on every read; CACHED keeps its members, maintained with every write (never stale)',
});
const Name = Type.String({ minLength: 1, maxLength: 100 });
const Description = Type.Union([Type.String({ maxLength: 2000 }), Type.Null()]);
const Color = Type.Union([Type.String({ pattern: '^#(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$', description: 'Hex, e.g. #1E88E5' }), Type.Null()]);
const Priority = Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'List order, ascending' });

export const Segment = Type.Object({
  segmentId: Type.String(),
  accountId: Type.String(),
  workspaceId: Type.Union([Type.String(), Type.Null()]),
  entityId: Type.String(),
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  color: Type.Union([Type.String(), Type.Null()]),
  conditions: ConditionGroupSchema,
  mode: Mode,
  priority: Type.Integer(),
  isActive: Type.Boolean(),
  ownerId: Type.Union([Type.String(), Type.Null()]),
  isValid: Type.Boolean({ description: '[X] false when the conditions no longer fit the entity (a property deleted or retyped): the segment then has no members' }),
  invalidReason: Type.Optional(Type.String({ description: '[X] why isValid is false' })),
  memberCount: Type.Optional(Type.Integer({ description: 'Active CACHED segments only: the exact number of members' })),
  lastEvaluatedAt: Type.Optional(Type.Union([Timestamp, Type.Null()], { description: 'Active CACHED segments only: the last full rebuild' })),
  createdBy: Type.Union([Type.String(), Type.Null()]),
  updatedBy: Type.Union([Type.String(), Type.Null()]),
  dateCreated: Timestamp,
  dateUpdated: Timestamp,
}, { title: 'Segment' });
export type Segment = Static<typeof Segment>;

export const CreateSegmentBody = Type.Object({
  entityId: EntityId,
  name: Name,
  description: Type.Optional(Description),
  color: Type.Optional(Color),
  conditions: ConditionGroupSchema,
  mode: Type.Optional(Mode),
  priority: Type.Optional(Priority),
  isActive: Type.Optional(Type.Boolean({ default: true })),
  ownerId: Type.Optional(Type.Union([MemberId, Type.Null()])),
}, { additionalProperties: false });
export type CreateSegmentBody = Static<typeof CreateSegmentBody>;

export const UpdateSegmentBody = Type.Object({
  name: Type.Optional(Name),
  description: Type.Optional(Description),
  color: Type.Optional(Color),
  conditions: Type.Optional(ConditionGroupSchema),
  mode: Type.Optional(Mode),
  priority: Type.Optional(Priority),
  isActive: Type.Optional(Type.Boolean()),
  ownerId: Type.Optional(Type.Union([MemberId, Type.Null()])),
}, { additionalProperties: false, minProperties: 1 });
export type UpdateSegmentBody = Static<typeof UpdateSegmentBody>;

export const ListSegmentsQuery = Type.Object({ entityId: Type.Optional(EntityId) }, { additionalProperties: false });

/** The same paging, sorting and filtering as GET /records, inside the segment. */
export const SegmentRecordsQuery = Type.Omit(ListRecordsQuery, ['entityId']);
export type SegmentRecordsQuery = Static<typeof SegmentRecordsQuery>;

export const DeletedSegment = Type.Object({ segmentId: Type.String() });
export const SegmentCount = Type.Object({ count: Type.Integer() });

export const PreviewBody = Type.Object({ entityId: EntityId, conditions: ConditionGroupSchema }, { additionalProperties: false });
export const Preview = Type.Object({
  count: Type.Integer(),
  sample: Type.Array(CrmRecord, { description: `Up to ${PREVIEW_SAMPLE} matching records, newest first` }),
});

export const ExplainedNode = Type.Object({
  passed: Type.Boolean(),
}, { additionalProperties: true, description: 'The condition (field, operator, value[, where]) or group (operator, conditions) with `passed`' });
export const Explanation = Type.Object({
  segmentId: Type.String(),
  recordId: Type.String(),
  isMember: Type.Boolean(),
  isValid: Type.Boolean(),
  tree: Type.Union([ExplainedNode, Type.Null()], { description: 'The condition tree annotated per node; null when the segment is invalid' }),
});

export const SegmentEvent = Type.Object({
  eventType: Type.Enum(['segment.entered', 'segment.exited']),
  segmentId: Type.String(),
  recordId: Type.String(),
  occurredAt: Timestamp,
  seq: Type.String({ description: 'Increasing within the account' }),
});
export const SegmentEventsQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  startKey: Type.Optional(Type.String({ maxLength: 40, description: 'nextKey of the previous page' })),
}, { additionalProperties: false });
export const SegmentEventPage = Type.Object({ data: Type.Array(SegmentEvent), nextKey: Type.Optional(Type.String()) });
