import Type, { type Static } from 'typebox';
import { MemberId, Timestamp } from '../../http/schemas/common.ts';

const EntityId = Type.String({ pattern: '^CRMET1[0-9]{15}[A-Za-z0-9]{11}$', description: 'CRMET1…' });
const RecordId = Type.String({ maxLength: 64, description: 'CRMRC1…' });
const Name = Type.String({ maxLength: 500 });
const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 100, description: 'Replaces the whole list' });
const Data = Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
  maxProperties: 500,
  description: '{propertyId: value}; values follow the property\'s field type (API.md §4); null clears',
});

export const CrmRecord = Type.Object({
  recordId: Type.String(),
  accountId: Type.String(),
  entityId: Type.String(),
  name: Type.String(),
  data: Type.Record(Type.String(), Type.Unknown()),
  tags: Type.Array(Type.String()),
  ownerId: Type.Union([Type.String(), Type.Null()]),
  isDeleted: Type.Boolean(),
  createdBy: Type.Union([Type.String(), Type.Null()]),
  updatedBy: Type.Union([Type.String(), Type.Null()]),
  dateCreated: Timestamp,
  dateUpdated: Timestamp,
}, { title: 'Record' });
export type CrmRecord = Static<typeof CrmRecord>;

export const RecordPage = Type.Object({
  data: Type.Array(CrmRecord),
  nextKey: Type.Optional(Type.String({ description: 'Pass as startKey for the next page; absent on the last page' })),
}, { title: 'RecordPage' });

export const CreateRecordBody = Type.Object({
  entityId: EntityId,
  name: Type.Optional(Name),
  data: Type.Optional(Data),
  tags: Type.Optional(Tags),
  ownerId: Type.Optional(Type.Union([MemberId, Type.Null()])),
}, { additionalProperties: false });
export type CreateRecordBody = Static<typeof CreateRecordBody>;

export const UpdateRecordBody = Type.Object({
  name: Type.Optional(Name),
  data: Type.Optional(Data),
  tags: Type.Optional(Tags),
  ownerId: Type.Optional(Type.Union([MemberId, Type.Null()])),
}, { additionalProperties: false, minProperties: 1 });
export type UpdateRecordBody = Static<typeof UpdateRecordBody>;

export const RecordParams = Type.Object({ recordId: RecordId });
export const EntityParams = Type.Object({ entityId: Type.String({ maxLength: 64 }) });

const Limit = Type.Integer({ minimum: 1, maximum: 200, default: 20 });
const StartKey = Type.String({ maxLength: 2000, description: 'nextKey of the previous page (opaque)' });

export const ListRecordsQuery = Type.Object({
  entityId: EntityId,
  limit: Type.Optional(Limit),
  startKey: Type.Optional(StartKey),
  sortField: Type.Optional(Type.String({ maxLength: 64, description: 'dateCreated | dateUpdated | name | <propertyId>' })),
  sortDirection: Type.Optional(Type.Enum(['asc', 'desc'])),
  keyword: Type.Optional(Type.String({ maxLength: 200, description: 'name contains, case-insensitive' })),
  filters: Type.Optional(Type.String({ maxLength: 20_000, description: 'JSON {"<propertyId>": {"op": "...", "value": ...}}, ANDed' })),
  tags: Type.Optional(Type.String({ maxLength: 2000, description: 'comma-separated; records having any of them' })),
  ownerId: Type.Optional(Type.String({ maxLength: 64 })),
}, { additionalProperties: false });
export type ListRecordsQuery = Static<typeof ListRecordsQuery>;

export const ConditionGroupSchema = Type.Object({
  operator: Type.Enum(['AND', 'OR']),
  conditions: Type.Array(Type.Unknown(), { maxItems: 50, description: 'conditions {field, operator, value} or nested groups (≤5 levels); see docs/query-language.md' }),
}, { description: 'API.md §6' });

export const AdvancedSearchBody = Type.Object({
  entityId: EntityId,
  conditionGroup: Type.Optional(ConditionGroupSchema),
  sortFields: Type.Optional(Type.Array(Type.String({ maxLength: 65 }), { maxItems: 1, description: 'e.g. ["-dateCreated"]; one field, "-" for descending' })),
  limit: Type.Optional(Limit),
  startKey: Type.Optional(StartKey),
}, { additionalProperties: false });
export type AdvancedSearchBody = Static<typeof AdvancedSearchBody>;

export const FulltextQuery = Type.Object({
  q: Type.String({ minLength: 1, maxLength: 200 }),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
}, { additionalProperties: false });

export const TrashQuery = Type.Object({
  entityId: EntityId,
  limit: Type.Optional(Limit),
  startKey: Type.Optional(StartKey),
}, { additionalProperties: false });

export const DeletedRecord = Type.Object({ recordId: Type.String(), entityId: Type.String() });
