import Type, { type Static } from 'typebox';
import { Timestamp } from '../../http/schemas/common.ts';

/** Capped lists (API.md §1.6) and limits of §8. */
export const TYPE_LIST_CAP = 200;
export const BY_TYPE_CAP = 500;
export const BULK_MAX_LINKS = 10_000;
export const MATCH_MAX_IDS = 500;
export const MATCH_MAX_SELECTED = 5_000;
/** bulk-match reads at most this many counterpart records sharing the sources' values. */
export const MATCH_MAX_CANDIDATES = 50_000;
/** metadata is stored as given; this bounds its JSON text. */
export const METADATA_MAX_BYTES = 16 * 1024;

const Id = (description: string) => Type.String({ minLength: 1, maxLength: 64, description });
const TypeId = Id('CRMRT1…');
const EntityId = Id('CRMET1…');
const RecordId = Id('CRMRC1…');
const Label = Type.String({ maxLength: 100 });
const Description = Type.String({ maxLength: 2000 });
const Metadata = Type.Record(Type.String({ maxLength: 200 }), Type.Unknown(), {
  maxProperties: 100,
  description: `A free-form JSON object (e.g. role, isPrimary, startDate); at most ${METADATA_MAX_BYTES} bytes as JSON`,
});

/* ---------- Relationship types ---------- */

export const RelationshipType = Type.Object({
  relationshipTypeId: Type.String(),
  accountId: Type.String(),
  workspaceId: Type.Union([Type.String(), Type.Null()]),
  name: Type.String(),
  sourceEntityId: Type.String(),
  targetEntityId: Type.String(),
  sourceLabel: Type.Optional(Type.String({ description: 'Omitted when never set' })),
  targetLabel: Type.Optional(Type.String({ description: 'Omitted when never set' })),
  description: Type.Optional(Type.String({ description: 'Omitted when never set' })),
  dateCreated: Timestamp,
  dateUpdated: Timestamp,
}, { title: 'RelationshipType' });
export type RelationshipType = Static<typeof RelationshipType>;

export const CreateRelationshipTypeBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100 }),
  sourceEntityId: EntityId,
  targetEntityId: EntityId,
  sourceLabel: Type.Optional(Label),
  targetLabel: Type.Optional(Label),
  description: Type.Optional(Description),
}, { additionalProperties: false });
export type CreateRelationshipTypeBody = Static<typeof CreateRelationshipTypeBody>;

export const UpdateRelationshipTypeBody = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  sourceLabel: Type.Optional(Type.Union([Label, Type.Null()])),
  targetLabel: Type.Optional(Type.Union([Label, Type.Null()])),
  description: Type.Optional(Type.Union([Description, Type.Null()])),
  sourceEntityId: Type.Optional(Type.String({ maxLength: 64, description: 'Immutable: accepted only unchanged (400 otherwise)' })),
  targetEntityId: Type.Optional(Type.String({ maxLength: 64, description: 'Immutable: accepted only unchanged (400 otherwise)' })),
}, { additionalProperties: false, minProperties: 1 });
export type UpdateRelationshipTypeBody = Static<typeof UpdateRelationshipTypeBody>;

export const ListRelationshipTypesQuery = Type.Object({
  entityId: Type.Optional(Type.String({ maxLength: 64, description: 'Types whose source or target is this entity' })),
}, { additionalProperties: false });

export const TypeParams = Type.Object({ relationshipTypeId: Type.String({ maxLength: 64 }) });

export const DeleteTypeQuery = Type.Object({
  cascade: Type.Optional(Type.Boolean({ default: false, description: 'Also delete the relationships of the type (otherwise 409 while any exist)' })),
}, { additionalProperties: false });

export const DeletedType = Type.Object({
  relationshipTypeId: Type.String(),
  deletedRelationships: Type.Integer({ description: '[X] relationships removed with it (cascade)' }),
});

/* ---------- Relationships ---------- */

export const Relationship = Type.Object({
  relationshipId: Type.String(),
  accountId: Type.String(),
  workspaceId: Type.Union([Type.String(), Type.Null()]),
  relationshipTypeId: Type.String(),
  sourceEntityId: Type.String(),
  sourceRecordId: Type.String(),
  targetEntityId: Type.String(),
  targetRecordId: Type.String(),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  dateCreated: Timestamp,
  dateUpdated: Timestamp,
}, { title: 'Relationship' });
export type Relationship = Static<typeof Relationship>;

export const NamedRelationship = Type.Object({
  ...Relationship.properties,
  sourceRecordName: Type.String({ description: 'The record\'s name, or its ID when it has none' }),
  targetRecordName: Type.String({ description: 'The record\'s name, or its ID when it has none' }),
}, { title: 'NamedRelationship' });
export type NamedRelationship = Static<typeof NamedRelationship>;

export const CreateRelationshipBody = Type.Object({
  relationshipTypeId: TypeId,
  sourceEntityId: EntityId,
  sourceRecordId: RecordId,
  targetEntityId: EntityId,
  targetRecordId: RecordId,
  metadata: Type.Optional(Metadata),
}, { additionalProperties: false });
export type CreateRelationshipBody = Static<typeof CreateRelationshipBody>;

export const UpdateRelationshipBody = Type.Object({
  metadata: Metadata,
  sourceRecordId: Type.Optional(Type.String({ maxLength: 64, description: 'Immutable: accepted only unchanged (400 otherwise)' })),
  targetRecordId: Type.Optional(Type.String({ maxLength: 64, description: 'Immutable: accepted only unchanged (400 otherwise)' })),
}, { additionalProperties: false });
export type UpdateRelationshipBody = Static<typeof UpdateRelationshipBody>;

export const RelationshipParams = Type.Object({ relationshipId: Type.String({ maxLength: 64 }) });

export const ListRelationshipsQuery = Type.Object({
  relationshipTypeId: Type.Optional(Type.String({ maxLength: 64 })),
  entityId: Type.Optional(Type.String({ maxLength: 64, description: 'Relationships whose source or target record belongs to this entity' })),
  recordId: Type.Optional(Type.String({ maxLength: 64, description: '[X] relationships whose source or target is this record' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
  startKey: Type.Optional(Type.String({ maxLength: 200, description: 'nextKey of the previous page (opaque)' })),
}, { additionalProperties: false });
export type ListRelationshipsQuery = Static<typeof ListRelationshipsQuery>;

export const RelationshipPage = Type.Object({
  data: Type.Array(NamedRelationship),
  nextKey: Type.Optional(Type.String({ description: 'Pass as startKey for the next page; absent on the last page' })),
}, { title: 'RelationshipPage' });

export const DeletedRelationship = Type.Object({ relationshipId: Type.String() });

/* ---------- A record's related records [X] ---------- */

export const RecordParams = Type.Object({ recordId: Type.String({ maxLength: 64 }) });

const Direction = Type.Enum(['outgoing', 'incoming'], {
  description: 'outgoing: this record is the source and the related records are targets; incoming: the reverse',
});

export const RecordRelationsQuery = Type.Object({
  relationshipTypeId: Type.Optional(Type.String({ maxLength: 64, description: 'Only this type (required with startKey)' })),
  direction: Type.Optional(Direction),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Related records per group' })),
  startKey: Type.Optional(Type.String({ maxLength: 200, description: 'A group\'s nextKey: the next page of that group' })),
}, { additionalProperties: false });
export type RecordRelationsQuery = Static<typeof RecordRelationsQuery>;

export const RelatedRecord = Type.Object({
  relationshipId: Type.String(),
  recordId: Type.String(),
  name: Type.String({ description: 'The related record\'s name, or its ID when it has none' }),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  dateCreated: Timestamp,
});

export const RelationGroup = Type.Object({
  relationshipTypeId: Type.String(),
  name: Type.String({ description: 'The type\'s name' }),
  direction: Direction,
  label: Type.String({ description: 'What the related records are called: targetLabel (outgoing) or sourceLabel (incoming), else the type name' }),
  relatedEntityId: Type.String(),
  total: Type.Integer({ description: 'Live related records in this group' }),
  data: Type.Array(RelatedRecord, { description: 'Newest links first' }),
  nextKey: Type.Optional(Type.String({ description: 'Pass with this group\'s relationshipTypeId and direction for its next page' })),
}, { title: 'RelationGroup' });

export const RecordRelations = Type.Object({
  recordId: Type.String(),
  entityId: Type.String(),
  groups: Type.Array(RelationGroup, { description: 'One per relationship type and direction the record\'s entity takes part in' }),
}, { title: 'RecordRelations' });
export type RecordRelations = Static<typeof RecordRelations>;

/* ---------- Bulk ---------- */

/** Records chosen by a filter instead of IDs (API.md §8): the same keyword and filters as GET /records. */
export const Selector = Type.Object({
  keyword: Type.Optional(Type.String({ maxLength: 200, description: 'Name contains, case-insensitive' })),
  filters: Type.Optional(Type.String({ maxLength: 20_000, description: 'JSON {"<propertyId>": {"op", "value"}}, ANDed, as GET /records' })),
  segmentId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only records in this segment (of the same entity)' })),
}, { additionalProperties: false });
export type Selector = Static<typeof Selector>;

export const BulkLinkBody = Type.Object({
  relationshipTypeId: TypeId,
  sourceEntityId: EntityId,
  targetEntityId: EntityId,
  sourceRecordIds: Type.Optional(Type.Array(RecordId, { minItems: 1, maxItems: BULK_MAX_LINKS })),
  sourceFilter: Type.Optional(Selector),
  targetRecordIds: Type.Array(RecordId, { minItems: 1, maxItems: BULK_MAX_LINKS }),
}, { additionalProperties: false, description: `sourceRecordIds or sourceFilter; sources × targets ≤ ${BULK_MAX_LINKS}` });
export type BulkLinkBody = Static<typeof BulkLinkBody>;

export const BulkLinkResult = Type.Object({
  created: Type.Integer(),
  skipped: Type.Integer({ description: 'Pairs that were already linked (or a record paired with itself)' }),
});

const MatchField = Type.Object({
  type: Type.Enum(['name', 'property']),
  propertyId: Type.Optional(Type.String({ maxLength: 64, description: 'Required when type is property' })),
}, { additionalProperties: false });
export type MatchField = Static<typeof MatchField>;

export const BulkMatchBody = Type.Object({
  sourceEntityId: EntityId,
  relationshipTypeId: TypeId,
  criteria: Type.Array(Type.Object({ myField: MatchField, counterField: MatchField }, { additionalProperties: false }), {
    minItems: 1, maxItems: 10, description: 'All must match: values compared trimmed and case-insensitively',
  }),
  matchMode: Type.Enum(['FIRST', 'ALL'], { description: 'FIRST: the oldest matching counterpart only; ALL: every one' }),
  sourceRecordIds: Type.Optional(Type.Array(RecordId, { minItems: 1, maxItems: MATCH_MAX_IDS })),
  sourceFilter: Type.Optional(Selector),
}, { additionalProperties: false, description: `sourceRecordIds (≤${MATCH_MAX_IDS}) or sourceFilter (≤${MATCH_MAX_SELECTED} records)` });
export type BulkMatchBody = Static<typeof BulkMatchBody>;

export const BulkMatchResult = Type.Object({
  matched: Type.Integer({ description: 'Source records with at least one counterpart' }),
  created: Type.Integer(),
  skipped: Type.Integer({ description: 'Source records without a counterpart, plus pairs that were already linked' }),
});
