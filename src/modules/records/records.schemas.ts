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
  segmentId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only records in this segment (of the same entity)' })),
}, { additionalProperties: false });
export type ListRecordsQuery = Static<typeof ListRecordsQuery>;

export const ConditionGroupSchema = Type.Object({
  operator: Type.Enum(['AND', 'OR']),
  conditions: Type.Array(Type.Unknown(), { maxItems: 50, description: 'conditions {field, operator, value} or nested groups (≤5 levels); see docs/query-language.md' }),
}, { description: 'API.md §6. The full grammar is #/components/schemas/ConditionGroup of this document; conditions are checked against the entity with 400s naming the JSON path.' });

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

/* ---------- Bulk (API.md §5) ---------- */

/** Items per bulk request (create, update, delete, restore). */
export const BULK_MAX = 1000;

export const BulkCreateBody = Type.Object({
  records: Type.Array(CreateRecordBody, { minItems: 1, maxItems: BULK_MAX, description: `1–${BULK_MAX} records; each is validated and created on its own` }),
}, { additionalProperties: false });
export type BulkCreateBody = Static<typeof BulkCreateBody>;

export const BulkUpdateItem = Type.Object({
  recordId: RecordId,
  name: Type.Optional(Name),
  data: Type.Optional(Data),
  tags: Type.Optional(Tags),
  ownerId: Type.Optional(Type.Union([MemberId, Type.Null()])),
}, { additionalProperties: false, minProperties: 2, description: 'recordId plus at least one change; the same rules as PATCH /records/{id}' });
export type BulkUpdateItem = Static<typeof BulkUpdateItem>;

export const BulkUpdateBody = Type.Object({
  records: Type.Array(BulkUpdateItem, { minItems: 1, maxItems: BULK_MAX, description: `1–${BULK_MAX} patches, each recordId at most once` }),
}, { additionalProperties: false });
export type BulkUpdateBody = Static<typeof BulkUpdateBody>;

const RecordIds = Type.Array(RecordId, { minItems: 1, maxItems: BULK_MAX, description: `1–${BULK_MAX} record IDs (repeats count once)` });

export const BulkDeleteBody = Type.Object({
  recordIds: RecordIds,
  permanent: Type.Optional(Type.Boolean({ default: false, description: 'true deletes for good (also from the trash) and frees records.max slots; false moves to the trash' })),
}, { additionalProperties: false });
export type BulkDeleteBody = Static<typeof BulkDeleteBody>;

export const BulkRestoreBody = Type.Object({ recordIds: RecordIds }, { additionalProperties: false });
export type BulkRestoreBody = Static<typeof BulkRestoreBody>;

export const BulkFailure = Type.Object({
  index: Type.Optional(Type.Integer({ description: 'Position of the item in the request (create, update)' })),
  recordId: Type.Optional(Type.String({ description: 'The record the item names (update, delete, restore)' })),
  errorCode: Type.String(),
  errorMessage: Type.String(),
  details: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
}, { title: 'BulkFailure' });
export type BulkFailure = Static<typeof BulkFailure>;

export const BulkResult = Type.Object({
  succeeded: Type.Integer({ description: 'Items that were applied' }),
  failed: Type.Array(BulkFailure, { description: 'Items that were not applied, in request order, with the error each would have had on its own' }),
  recordIds: Type.Optional(Type.Array(Type.String(), { description: '[X] bulk create: IDs of the created records, in request order of the items that succeeded' })),
}, { title: 'BulkResult' });
export type BulkResult = Static<typeof BulkResult>;
