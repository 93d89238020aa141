import Type, { type Static } from 'typebox';
import { ConditionGroupSchema, CrmRecord } from '../records/records.schemas.ts';

const EntityId = Type.String({ pattern: '^CRMET1[0-9]{15}[A-Za-z0-9]{11}$', description: 'CRMET1…' });
const MetricOp = Type.Enum(['count', 'sum', 'avg', 'min', 'max']);
const DateBucket = Type.Enum(['day', 'week', 'month'], { description: 'Weeks start on Monday; keys are the first day (YYYY-MM-DD), months YYYY-MM' });
const TimeZone = Type.String({ minLength: 1, maxLength: 64, description: 'IANA zone name (default UTC), e.g. Asia/Seoul: date buckets of DATETIME values and dateCreated/dateUpdated are cut at its midnights. DATE values have no zone.' });

export const Metric = Type.Object({
  op: MetricOp,
  propertyId: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()], { description: 'A NUMBER property (sum/avg/min/max); none for count' })),
}, { additionalProperties: false });

export const AggregateBody = Type.Object({
  entityId: EntityId,
  conditionGroup: Type.Optional(ConditionGroupSchema),
  segmentId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only records in this segment (of the same entity); ANDed with conditionGroup' })),
  groupBy: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()], {
    description: 'A DROPDOWN/RADIO/MULTI_CHECKBOX/CHECKBOX/DATE/DATETIME property ID, "ownerId", "tags", "dateCreated" or "dateUpdated". MULTI_CHECKBOX and tags count a record in each of its values.',
  })),
  dateBucket: Type.Optional(Type.Union([DateBucket, Type.Null()], { description: 'For date group-bys (default month)' })),
  timeZone: Type.Optional(TimeZone),
  metrics: Type.Optional(Type.Array(Metric, { minItems: 1, maxItems: 10, description: 'Default [{"op":"count"}]' })),
}, { additionalProperties: false, title: 'AggregateRequest' });
export type AggregateBody = Static<typeof AggregateBody>;

const Value = Type.Union([Type.Number(), Type.Null()]);
const Values = Type.Object({
  count: Type.Integer({ description: 'Records in the bucket' }),
  values: Type.Array(Value, { description: 'One per metric, in request order: count → records; sum → number (0 without values); avg/min/max → number, null without values' }),
});

export const AggregateResult = Type.Object({
  entityId: Type.String(),
  groupBy: Type.Union([Type.String(), Type.Null()]),
  dateBucket: Type.Union([DateBucket, Type.Null()]),
  timeZone: Type.String(),
  metrics: Type.Array(Type.Object({ op: MetricOp, propertyId: Type.Union([Type.String(), Type.Null()]) })),
  total: Values,
  buckets: Type.Array(Type.Object({
    key: Type.Union([Type.String(), Type.Null()], { description: 'Option value, member ID, tag, "true"/"false", or the bucket\'s first day; null: records without a value' }),
    label: Type.Optional(Type.String({ description: 'Option label (choice group-bys)' })),
    count: Type.Integer(),
    values: Type.Array(Value),
  }), { description: 'Choice group-bys: every option in option order, then null (all listed, empty ones with count 0). Dates: ascending, gaps filled with empty buckets, null last. Owners/tags: largest first, null last.' }),
}, { title: 'AggregateResult' });

/* ---------- Board ---------- */

export const BoardQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Cards per column' })),
}, { additionalProperties: false });

export const BoardCardsQuery = Type.Object({
  startKey: Type.String({ minLength: 1, maxLength: 4000, description: 'A column\'s nextKey from GET /entities/{id}/board (or from this endpoint)' }),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
}, { additionalProperties: false });

export const BoardCard = Type.Object({
  ...CrmRecord.properties,
  isRotting: Type.Boolean({ description: 'dealRotting enabled, not in a closed column, and not updated for more than dealRotting.days days' }),
}, { title: 'BoardCard' });

const Totals = Type.Object({
  count: Type.Integer(),
  sum: Type.Union([Type.Number(), Type.Null()], { description: 'Σ sumPropertyId; null when the board has none' }),
  weightedSum: Type.Union([Type.Number(), Type.Null()], { description: 'Σ sumPropertyId × weightPropertyId / 100; null when the board lacks either' }),
});

export const BoardColumn = Type.Object({
  value: Type.Union([Type.String(), Type.Null()], { description: 'The option value; null: the "none" column (records without a value)' }),
  label: Type.Union([Type.String(), Type.Null()]),
  color: Type.Union([Type.String(), Type.Null()]),
  closed: Type.Union([Type.Enum(['WON', 'LOST']), Type.Null()]),
  count: Type.Integer(),
  sum: Type.Union([Type.Number(), Type.Null()]),
  weightedSum: Type.Union([Type.Number(), Type.Null()]),
  aggregate: Type.Union([Type.Number(), Type.Null()], { description: 'board.aggregationType of sumPropertyId (COUNT: count)' }),
  cards: Type.Array(BoardCard),
  nextKey: Type.Optional(Type.String({ description: 'Pass to GET /entities/{id}/board/cards for this column\'s next cards' })),
}, { title: 'BoardColumn' });

export const Board = Type.Object({
  entityId: Type.String(),
  groupByPropertyId: Type.String(),
  sumPropertyId: Type.Union([Type.String(), Type.Null()]),
  weightPropertyId: Type.Union([Type.String(), Type.Null()]),
  aggregationType: Type.String(),
  sortByPropertyId: Type.Union([Type.String(), Type.Null()]),
  sortOrder: Type.String(),
  dealRotting: Type.Object({ enabled: Type.Boolean(), days: Type.Integer() }),
  columns: Type.Array(BoardColumn),
  total: Totals,
  closedWon: Totals,
  closedLost: Totals,
}, { title: 'Board' });

export const BoardCardsPage = Type.Object({
  data: Type.Array(BoardCard),
  nextKey: Type.Optional(Type.String()),
}, { title: 'BoardCardsPage' });

/* ---------- Insight widgets ---------- */

export const InsightsQuery = Type.Object({
  timeZone: Type.Optional(TimeZone),
}, { additionalProperties: false });

export const EvaluatedWidget = Type.Object({
  widgetId: Type.String(),
  type: Type.String(),
  title: Type.String(),
  metric: Type.Object({ op: MetricOp, propertyId: Type.Union([Type.String(), Type.Null()]) }),
  groupBy: Type.Union([Type.String(), Type.Null()]),
  dateBucket: Type.Union([DateBucket, Type.Null()]),
  segmentId: Type.Union([Type.String(), Type.Null()]),
  data: Type.Optional(AggregateResult),
  error: Type.Optional(Type.Object({ errorCode: Type.String(), errorMessage: Type.String() }, { description: 'Why this widget could not be computed (e.g. Forbidden: a masked property for a MEMBER; NotFound: its segment was deleted)' })),
}, { title: 'EvaluatedWidget' });

export const Insights = Type.Object({
  entityId: Type.String(),
  timeZone: Type.String(),
  widgets: Type.Array(EvaluatedWidget),
}, { title: 'Insights' });

export const EntityParams = Type.Object({ entityId: Type.String({ maxLength: 64 }) });
