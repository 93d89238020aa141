import Type, { type Static, type TSchema } from 'typebox';
import { MemberId, Timestamp } from '../../http/schemas/common.ts';

/** `recordId` of a standalone calendar item (API.md §9). */
export const CALENDAR = 'CALENDAR';
/** metadata is stored as given; this bounds its JSON text. */
export const METADATA_MAX_BYTES = 16 * 1024;
export const MAX_ASSIGNEES = 20;
export const MAX_RELATED_RECORDS = 50;
export const MAX_ATTACHMENTS = 20;

export const ACTIVITY_TYPES = ['CALL', 'EMAIL', 'MEETING', 'NOTE', 'TASK', 'MESSAGE', 'OTHER'] as const;
export const OUTCOMES = ['COMPLETED', 'CANCELLED', 'RESCHEDULED', 'NO_ANSWER', 'PENDING'] as const;

const ActivityType = Type.Enum([...ACTIVITY_TYPES]);
const Outcome = Type.Enum([...OUTCOMES]);
const Visibility = Type.Enum(['PRIVATE', 'PUBLIC'], {
  description: 'PRIVATE: MEMBERs other than its owner, creator and assignees do not see it; ADMIN and OWNER see everything',
});
const Instant = (description: string) => Type.String({ minLength: 1, maxLength: 40, description: `${description} (ISO-8601 instant)` });
const Subject = Type.String({ maxLength: 500 });
const Description = Type.String({ maxLength: 10_000 });
const OutcomeNote = Type.String({ maxLength: 2000 });
const Duration = Type.Integer({ minimum: 0, maximum: 525_600, description: 'Minutes (≤ one year)' });
const RecordRef = Type.String({ minLength: 1, maxLength: 64, description: 'CRMRC1…' });
const RelatedRecordIds = Type.Array(RecordRef, {
  maxItems: MAX_RELATED_RECORDS, description: 'Other records the activity concerns; each must exist and be live when written',
});
const AttachmentIds = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: MAX_ATTACHMENTS, description: 'Opaque file IDs, stored as given' });
const AssignedMemberIds = Type.Array(MemberId, { maxItems: MAX_ASSIGNEES, description: 'Members of the account (400 otherwise); duplicates are dropped' });
const Metadata = Type.Record(Type.String({ maxLength: 200 }), Type.Unknown(), {
  maxProperties: 100, description: `A free-form JSON object, at most ${METADATA_MAX_BYTES} bytes as JSON`,
});

export const Activity = Type.Object({
  activityId: Type.String(),
  accountId: Type.String(),
  workspaceId: Type.Union([Type.String(), Type.Null()], { description: '[X] the workspace of the API key that created it' }),
  entityId: Type.Union([Type.String(), Type.Null()], { description: 'null only for a calendar item filed under no entity' }),
  recordId: Type.String({ description: `The record, or "${CALENDAR}" for a standalone calendar item` }),
  activityType: ActivityType,
  subject: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  relatedRecordIds: Type.Array(Type.String()),
  attachmentIds: Type.Array(Type.String()),
  outcome: Type.Optional(Outcome),
  outcomeNote: Type.Optional(Type.String()),
  scheduledAt: Type.Optional(Timestamp),
  dueDate: Type.Optional(Timestamp),
  completedAt: Type.Optional(Timestamp),
  assignedMemberId: Type.Union([Type.String(), Type.Null()], { description: 'Legacy: the first of assignedMemberIds' }),
  assignedMemberIds: Type.Array(Type.String()),
  durationMinutes: Type.Optional(Type.Integer()),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  visibility: Visibility,
  ownerId: Type.Union([Type.String(), Type.Null()]),
  createdBy: Type.Union([Type.String(), Type.Null()]),
  dateCreated: Timestamp,
  dateUpdated: Timestamp,
}, { title: 'Activity', description: 'Optional fields are omitted when unset' });
export type Activity = Static<typeof Activity>;

export const CreateActivityBody = Type.Object({
  recordId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: `A live record, or "${CALENDAR}" (the default) for a standalone calendar item` })),
  entityId: Type.Optional(Type.String({
    minLength: 1, maxLength: 64,
    description: 'The record\'s entity (taken from the record when left out; 400 when it differs); optional for calendar items',
  })),
  activityType: ActivityType,
  subject: Type.Optional(Subject),
  description: Type.Optional(Description),
  relatedRecordIds: Type.Optional(RelatedRecordIds),
  attachmentIds: Type.Optional(AttachmentIds),
  outcome: Type.Optional(Outcome),
  outcomeNote: Type.Optional(OutcomeNote),
  scheduledAt: Type.Optional(Instant('When it takes place')),
  dueDate: Type.Optional(Instant('When it is due')),
  completedAt: Type.Optional(Instant('When it was done')),
  assignedMemberId: Type.Optional(Type.Union([MemberId, Type.Null()], { description: 'Legacy single assignee; assignedMemberIds wins when both are sent' })),
  assignedMemberIds: Type.Optional(AssignedMemberIds),
  durationMinutes: Type.Optional(Duration),
  metadata: Type.Optional(Metadata),
  visibility: Type.Optional(Type.Enum(['PRIVATE', 'PUBLIC'], { default: 'PUBLIC' })),
  ownerId: Type.Optional(Type.Union([MemberId, Type.Null()], { description: 'Default: the caller. MEMBERs may only name themselves (or null)' })),
}, { additionalProperties: false });
export type CreateActivityBody = Static<typeof CreateActivityBody>;

const nullable = <T extends TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));

export const UpdateActivityBody = Type.Object({
  activityType: Type.Optional(ActivityType),
  subject: nullable(Subject),
  description: nullable(Description),
  relatedRecordIds: Type.Optional(RelatedRecordIds),
  attachmentIds: Type.Optional(AttachmentIds),
  outcome: nullable(Outcome),
  outcomeNote: nullable(OutcomeNote),
  scheduledAt: nullable(Instant('When it takes place')),
  dueDate: nullable(Instant('When it is due')),
  completedAt: nullable(Instant('When it was done')),
  assignedMemberId: Type.Optional(Type.Union([MemberId, Type.Null()], { description: 'Legacy single assignee; assignedMemberIds wins when both are sent' })),
  assignedMemberIds: Type.Optional(AssignedMemberIds),
  durationMinutes: nullable(Duration),
  metadata: Type.Optional(Metadata),
  visibility: Type.Optional(Visibility),
  ownerId: Type.Optional(Type.Union([MemberId, Type.Null()], { description: 'ADMIN and OWNER only (403 for MEMBERs)' })),
}, { additionalProperties: false, minProperties: 1, description: 'Fields sent replace the stored ones (metadata wholesale); null clears. recordId and entityId are immutable.' });
export type UpdateActivityBody = Static<typeof UpdateActivityBody>;

export const ActivityParams = Type.Object({ activityId: Type.String({ minLength: 1, maxLength: 64 }) });
export const RecordParams = Type.Object({ recordId: Type.String({ minLength: 1, maxLength: 64, description: `A record ID or "${CALENDAR}"` }) });

export const DATE_FIELDS = ['scheduledAt', 'dueDate', 'completedAt', 'dateCreated'] as const;
export type DateField = (typeof DATE_FIELDS)[number];

export const ListActivitiesQuery = Type.Object({
  recordId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: `A record's activities, or "${CALENDAR}" for standalone calendar items only` })),
  entityId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  activityType: Type.Optional(ActivityType),
  from: Type.Optional(Instant('[X] date range start, inclusive')),
  to: Type.Optional(Instant('[X] date range end, exclusive')),
  dateField: Type.Optional(Type.Enum([...DATE_FIELDS], { default: 'scheduledAt', description: '[X] the date from/to apply to; activities without it are left out' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 20 })),
  startKey: Type.Optional(Type.String({ maxLength: 200, description: 'nextKey of the previous page (opaque)' })),
}, { additionalProperties: false });
export type ListActivitiesQuery = Static<typeof ListActivitiesQuery>;

export const ActivityPage = Type.Object({
  data: Type.Array(Activity, { description: 'Newest first' }),
  nextKey: Type.Optional(Type.String({ description: 'Pass as startKey for the next page; absent on the last page' })),
}, { title: 'ActivityPage' });

export const ScheduledQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 20 })),
  from: Type.Optional(Instant('[X] only those dated at or after this instant')),
}, { additionalProperties: false });
export type ScheduledQuery = Static<typeof ScheduledQuery>;

export const DeletedActivity = Type.Object({ activityId: Type.String() });
