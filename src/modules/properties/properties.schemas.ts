import Type, { type Static } from 'typebox';
import { Timestamp } from '../../http/schemas/common.ts';
import { FIELD_TYPES, KEY_PATTERN } from './field-types.ts';

export const FieldType = Type.Enum([...FIELD_TYPES], { description: 'The 12 field types (API.md §4)' });

export const PropertyOption = Type.Object({
  label: Type.String(),
  value: Type.String(),
  priority: Type.Integer(),
  color: Type.Union([Type.String(), Type.Null()]),
}, { title: 'PropertyOption' });

const OptionInput = Type.Object({
  label: Type.String({ minLength: 1, maxLength: 100 }),
  value: Type.String({ minLength: 1, maxLength: 100, description: 'Stored in records; unique within the property' }),
  priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000, description: 'Display order, unique; defaults to the 1-based position' })),
  color: Type.Optional(Type.Union([Type.String({ pattern: '^#(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$', description: 'Hex, e.g. #1E88E5' }), Type.Null()])),
}, { additionalProperties: false });
export type OptionInput = Static<typeof OptionInput>;

const Options = Type.Array(OptionInput, { maxItems: 500, description: 'Only for DROPDOWN, RADIO and MULTI_CHECKBOX' });

export const Property = Type.Object({
  propertyId: Type.String(),
  accountId: Type.String(),
  workspaceId: Type.Union([Type.String(), Type.Null()]),
  entityId: Type.String(),
  name: Type.String(),
  description: Type.Optional(Type.String({ description: 'Omitted when never set' })),
  fieldType: FieldType,
  propertyGroupId: Type.Union([Type.String(), Type.Null()]),
  options: Type.Array(PropertyOption, { description: 'Sorted by priority; [] for masked choice properties when the caller is a MEMBER' }),
  isMasked: Type.Boolean(),
  key: Type.Union([Type.String(), Type.Null()]),
  createdBy: Type.Union([Type.String(), Type.Null()]),
  updatedBy: Type.Union([Type.String(), Type.Null()]),
  dateCreated: Timestamp,
  dateUpdated: Timestamp,
}, { title: 'Property' });
export type Property = Static<typeof Property>;

const Name = Type.String({ minLength: 1, maxLength: 100, description: 'Unique among the entity\'s live properties' });
const Description = Type.String({ maxLength: 2000 });
const PropertyGroupId = Type.String({ minLength: 1, maxLength: 64 });
const Key = Type.String({ pattern: KEY_PATTERN, description: 'Unique within the entity; reserved words (name, tags, ownerId, recordId, …) are refused' });
const EntityRef = Type.String({ minLength: 1, maxLength: 64 });

export const CreatePropertyBody = Type.Object({
  entityId: EntityRef,
  name: Name,
  fieldType: FieldType,
  description: Type.Optional(Description),
  propertyGroupId: Type.Optional(Type.Union([PropertyGroupId, Type.Null()])),
  key: Type.Optional(Type.Union([Key, Type.Null()])),
  isMasked: Type.Optional(Type.Boolean()),
  options: Type.Optional(Options),
}, { additionalProperties: false });
export type CreatePropertyBody = Static<typeof CreatePropertyBody>;

export const BULK_MAX = 500;

export const BulkCreatePropertiesBody = Type.Object({
  properties: Type.Array(CreatePropertyBody, { minItems: 1, maxItems: BULK_MAX }),
}, { additionalProperties: false });
export type BulkCreatePropertiesBody = Static<typeof BulkCreatePropertiesBody>;

/** Solapi's bulk answer: `key` and `propertyGroupId` only when they were given. */
export const BulkCreatedProperty = Type.Object({
  propertyId: Type.String(),
  entityId: Type.String(),
  name: Type.String(),
  fieldType: FieldType,
  key: Type.Optional(Type.String()),
  propertyGroupId: Type.Optional(Type.String()),
  dateCreated: Timestamp,
}, { title: 'BulkCreatedProperty' });
export type BulkCreatedProperty = Static<typeof BulkCreatedProperty>;

export const UpdatePropertyBody = Type.Object({
  name: Type.Optional(Name),
  description: Type.Optional(Type.Union([Description, Type.Null()], { description: 'null removes it' })),
  fieldType: Type.Optional(FieldType),
  propertyGroupId: Type.Optional(Type.Union([PropertyGroupId, Type.Null()], { description: 'null removes the group' })),
  key: Type.Optional(Type.Union([Key, Type.Literal(''), Type.Null()], { description: '"" or null removes the key' })),
  isMasked: Type.Optional(Type.Boolean()),
  options: Type.Optional(Type.Array(OptionInput, { maxItems: 500, description: 'Replaces the whole list' })),
}, { additionalProperties: false });
export type UpdatePropertyBody = Static<typeof UpdatePropertyBody>;

export const PropertyParams = Type.Object({ propertyId: Type.String({ minLength: 1, maxLength: 64 }) });

export const PROPERTY_LIST_CAP = 500;

export const ListPropertiesQuery = Type.Object({
  entityId: Type.Optional(EntityRef),
  keyword: Type.Optional(Type.String({ maxLength: 100, description: 'Case-insensitive substring of the name' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: PROPERTY_LIST_CAP, description: 'Default and maximum 500' })),
});
export type ListPropertiesQuery = Static<typeof ListPropertiesQuery>;

export const DeletedProperty = Type.Object({ propertyId: Type.String(), entityId: Type.String() }, { title: 'DeletedProperty' });

export const UpdatePropertyQuery = Type.Object({
  force: Type.Optional(Type.Boolean({
    description: 'With a fieldType or options change: clear the values that cannot be converted instead of refusing (400)',
  })),
}, { additionalProperties: false });
export type UpdatePropertyQuery = Static<typeof UpdatePropertyQuery>;

/** [X] What a fieldType or options change did to the values records hold (live and trashed). */
export const ValueConversion = Type.Object({
  fromType: FieldType,
  toType: FieldType,
  records: Type.Integer({ description: 'Records that held a value' }),
  converted: Type.Integer({ description: 'Values rewritten for the new type (or dropped when empty and the new type cannot hold "" or [])' }),
  unchanged: Type.Integer({ description: 'Values already valid as they are' }),
  cleared: Type.Integer({ description: 'Values removed because they could not be converted (only with ?force=true; MULTI_CHECKBOX: records that lost some options)' }),
}, { title: 'ValueConversion' });
export type ValueConversion = Static<typeof ValueConversion>;

/** The PATCH answer: the property, plus `conversion` when stored values had to be examined. */
export const UpdatedProperty = Type.Object({
  ...Property.properties,
  conversion: Type.Optional(ValueConversion),
}, { title: 'UpdatedProperty' });
export type UpdatedProperty = Static<typeof UpdatedProperty>;
