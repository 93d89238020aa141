import Type, { type Static } from 'typebox';
import { MemberId, Timestamp } from '../../http/schemas/common.ts';

export const EntityId = Type.String({ minLength: 1, maxLength: 64, description: 'CRMET1… (32 characters)' });
export const PropertyRef = Type.String({ minLength: 1, maxLength: 64, description: 'A property ID (CRMPP1…) of this entity' });
const NullableRef = Type.Union([PropertyRef, Type.Null()]);

export const RecordAccess = Type.Enum(['PUBLIC', 'ENTITY_OWNER_ONLY', 'ADMIN_ONLY'], {
  description: 'PUBLIC: every member; ENTITY_OWNER_ONLY: the entity\'s ownerId and OWNERs; ADMIN_ONLY: ADMIN and OWNER',
});

export const Slug = Type.String({ pattern: '^[a-z][a-z0-9_-]{0,62}$', description: 'Unique among the live entities of the account (and workspace)' });
const Name = Type.String({ minLength: 1, maxLength: 100 });
const Description = Type.Union([Type.String({ maxLength: 2000 }), Type.Null()]);
const Priority = Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Sidebar order, ascending' });

const ViewMode = Type.Enum(['TABLE', 'BOARD', 'CALENDAR']);
const AggregationType = Type.Enum(['SUM', 'AVG', 'MIN', 'MAX', 'COUNT']);
const SortOrder = Type.Enum(['ASC', 'DESC']);
const OptionValues = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 200, description: 'Option values of board.groupByPropertyId' });

/** The stored, complete view settings (seed 001's shape). */
export const ViewSettings = Type.Object({
  mode: ViewMode,
  table: Type.Object({ pageSize: Type.Integer({ minimum: 1, maximum: 200 }) }),
  board: Type.Object({
    groupByPropertyId: NullableRef,
    sumPropertyId: NullableRef,
    weightPropertyId: NullableRef,
    aggregationType: AggregationType,
    sortByPropertyId: NullableRef,
    sortOrder: SortOrder,
    closedWonValues: OptionValues,
    closedLostValues: OptionValues,
    dealRotting: Type.Object({ enabled: Type.Boolean(), days: Type.Integer({ minimum: 1, maximum: 3650 }) }),
  }),
  calendar: Type.Object({
    datePropertyId: NullableRef,
    titlePropertyId: NullableRef,
    colorPropertyId: NullableRef,
  }),
}, { title: 'ViewSettings' });
export type ViewSettings = Static<typeof ViewSettings>;

/**
 * What a client sends: any subset, deep-merged over the current settings (defaults on create).
 * Arrays are replaced, not merged.
 */
export const ViewSettingsInput = Type.Object({
  mode: Type.Optional(ViewMode),
  table: Type.Optional(Type.Object({ pageSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })) }, { additionalProperties: false })),
  board: Type.Optional(Type.Object({
    groupByPropertyId: Type.Optional(NullableRef),
    sumPropertyId: Type.Optional(NullableRef),
    weightPropertyId: Type.Optional(NullableRef),
    aggregationType: Type.Optional(AggregationType),
    sortByPropertyId: Type.Optional(NullableRef),
    sortOrder: Type.Optional(SortOrder),
    closedWonValues: Type.Optional(OptionValues),
    closedLostValues: Type.Optional(OptionValues),
    dealRotting: Type.Optional(Type.Object({
      enabled: Type.Optional(Type.Boolean()),
      days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
    }, { additionalProperties: false })),
  }, { additionalProperties: false })),
  calendar: Type.Optional(Type.Object({
    datePropertyId: Type.Optional(NullableRef),
    titlePropertyId: Type.Optional(NullableRef),
    colorPropertyId: Type.Optional(NullableRef),
  }, { additionalProperties: false })),
}, { additionalProperties: false, title: 'ViewSettingsInput' });
export type ViewSettingsInput = Static<typeof ViewSettingsInput>;

const WidgetType = Type.Enum(['KPI', 'BAR', 'PIE', 'FUNNEL'], {
  description: 'KPI: one number (no groupBy); BAR/PIE: one bucket per group; FUNNEL: buckets in option order of a DROPDOWN/RADIO groupBy',
});
const MetricOp = Type.Enum(['count', 'sum', 'avg', 'min', 'max']);
const DateBucket = Type.Enum(['day', 'week', 'month']);
const WidgetId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'Unique within the entity' });
const SegmentRef = Type.String({ pattern: '^CRMSG1[0-9]{15}[A-Za-z0-9]{11}$' });
const GroupBy = Type.String({ minLength: 1, maxLength: 64, description: 'A propertyId of this entity, "ownerId" or "tags"' });

/**
 * Our insight widget (API.md §10 [X]); it is the saved form of a `POST /records/aggregate` call.
 * Rules: `metric.op` count takes no propertyId, the others need a NUMBER property; KPI has no
 * groupBy, BAR/PIE/FUNNEL need one (FUNNEL: a DROPDOWN/RADIO property); groupBy may be a
 * DROPDOWN/RADIO/MULTI_CHECKBOX/CHECKBOX/DATE/DATETIME property, "ownerId" or "tags";
 * `dateBucket` only (and then by default "month") for DATE/DATETIME group-bys.
 */
export const InsightWidget = Type.Object({
  widgetId: WidgetId,
  type: WidgetType,
  title: Type.String({ minLength: 1, maxLength: 100 }),
  metric: Type.Object({ op: MetricOp, propertyId: NullableRef }),
  groupBy: Type.Union([GroupBy, Type.Null()]),
  dateBucket: Type.Union([DateBucket, Type.Null()]),
  segmentId: Type.Union([SegmentRef, Type.Null()], { description: 'Restricts the widget to a segment of this entity' }),
}, { title: 'InsightWidget' });
export type InsightWidget = Static<typeof InsightWidget>;

export const InsightWidgetInput = Type.Object({
  widgetId: WidgetId,
  type: WidgetType,
  title: Type.String({ minLength: 1, maxLength: 100 }),
  metric: Type.Object({ op: MetricOp, propertyId: Type.Optional(NullableRef) }, { additionalProperties: false }),
  groupBy: Type.Optional(Type.Union([GroupBy, Type.Null()])),
  dateBucket: Type.Optional(Type.Union([DateBucket, Type.Null()])),
  segmentId: Type.Optional(Type.Union([SegmentRef, Type.Null()])),
}, { additionalProperties: false, title: 'InsightWidgetInput' });
export type InsightWidgetInput = Static<typeof InsightWidgetInput>;

const InsightWidgetsInput = Type.Array(InsightWidgetInput, { maxItems: 50, description: 'Replaces the whole list' });

export const Entity = Type.Object({
  entityId: Type.String(),
  accountId: Type.String(),
  workspaceId: Type.Union([Type.String(), Type.Null()]),
  name: Type.String(),
  slug: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  propertyIds: Type.Array(Type.String(), { description: 'The live properties in table-column order' }),
  viewSettings: ViewSettings,
  insightWidgets: Type.Array(InsightWidget),
  recordAccess: RecordAccess,
  ownerId: Type.String(),
  priority: Type.Integer(),
  isDeleted: Type.Boolean(),
  createdBy: Type.Union([Type.String(), Type.Null()]),
  updatedBy: Type.Union([Type.String(), Type.Null()]),
  dateCreated: Timestamp,
  dateUpdated: Timestamp,
}, { title: 'Entity' });
export type Entity = Static<typeof Entity>;

export const CreateEntityBody = Type.Object({
  name: Name,
  slug: Slug,
  description: Type.Optional(Description),
  viewSettings: Type.Optional(ViewSettingsInput),
  insightWidgets: Type.Optional(InsightWidgetsInput),
  recordAccess: Type.Optional(RecordAccess),
  ownerId: Type.Optional(MemberId),
  priority: Type.Optional(Priority),
}, { additionalProperties: false });
export type CreateEntityBody = Static<typeof CreateEntityBody>;

export const UpdateEntityBody = Type.Object({
  name: Type.Optional(Name),
  slug: Type.Optional(Slug),
  description: Type.Optional(Description),
  propertyIds: Type.Optional(Type.Array(PropertyRef, { maxItems: 2000, description: 'A permutation of the entity\'s live properties' })),
  viewSettings: Type.Optional(ViewSettingsInput),
  insightWidgets: Type.Optional(InsightWidgetsInput),
  recordAccess: Type.Optional(RecordAccess),
  ownerId: Type.Optional(MemberId),
  priority: Type.Optional(Priority),
}, { additionalProperties: false });
export type UpdateEntityBody = Static<typeof UpdateEntityBody>;

export const EntityParams = Type.Object({ entityId: EntityId });
export const ListEntitiesQuery = Type.Object({
  keyword: Type.Optional(Type.String({ maxLength: 100, description: 'Case-insensitive substring of name or slug' })),
});

export const DeletedEntity = Type.Object({ entityId: Type.String() }, { title: 'DeletedEntity' });

