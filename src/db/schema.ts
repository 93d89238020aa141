import type { ColumnType, Generated } from 'kysely';

/** Timestamps are written as Date (or left to the default) and always read back as Date. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export type Role = 'OWNER' | 'ADMIN' | 'MEMBER';

export interface AccountsTable {
  account_id: string;
  name: string;
  date_created: Timestamp;
  date_updated: Timestamp;
}

export interface AccountPlansTable {
  account_id: string;
  /** Plan limits by key (API.md §1.8); a missing key means unlimited. */
  limits: ColumnType<Record<string, number | boolean>, string, string>;
  date_updated: Timestamp;
}

export interface MembersTable {
  account_id: string;
  member_id: string;
  name: string;
  email: string | null;
  role: Role;
  date_created: Timestamp;
  date_updated: Timestamp;
}

export interface ApiKeysTable {
  account_id: string;
  api_key: string;
  member_id: string;
  /** The member's role, kept equal to members.role by the members service (one-round-trip auth). */
  member_role: Role;
  workspace_id: string | null;
  name: string | null;
  /** The secret sealed with the master key (lib/secret-box.ts), never the plain secret. */
  sealed_secret: string;
  created_by: string | null;
  date_created: Timestamp;
  last_used_at: Timestamp | null;
}

/** Signatures seen within the replay window, shared by every API node through the database. */
export interface RequestNoncesTable {
  account_id: string;
  nonce: string;
  expires_at: Timestamp;
}

/** Running counts behind plan limits; `scope` is '' for account-wide limits or an entity ID. */
export interface QuotaUsageTable {
  account_id: string;
  quota: string;
  scope: string;
  used: Generated<number>;
}

export type RecordAccess = 'PUBLIC' | 'ENTITY_OWNER_ONLY' | 'ADMIN_ONLY';

export type FieldType =
  | 'TEXT' | 'TEXTAREA' | 'NUMBER' | 'PHONE' | 'EMAIL' | 'URL'
  | 'CHECKBOX' | 'MULTI_CHECKBOX' | 'DATE' | 'DATETIME' | 'DROPDOWN' | 'RADIO';

/** jsonb: written as a JSON string, read back parsed. */
type Json<T> = ColumnType<T, string | undefined, string>;

export interface EntitiesTable {
  account_id: string;
  entity_id: string;
  workspace_id: string | null;
  name: string;
  slug: string;
  description: string | null;
  /** The live property IDs in column order: the one place that order is kept. */
  property_ids: Json<string[]>;
  /** The last number given to a property's storage key in this entity (0018). */
  property_seq: Generated<number>;
  view_settings: Json<unknown>;
  insight_widgets: Json<unknown[]>;
  record_access: RecordAccess;
  owner_id: string;
  priority: number;
  is_deleted: ColumnType<boolean, boolean | undefined, boolean>;
  date_deleted: Timestamp | null;
  /** Set by the trash purge before its first batch; a restore is refused from then on. */
  purge_started_at: Timestamp | null;
  /** Row version (0010): +1 in every UPDATE of the row; the API's ETag. */
  version: Generated<number>;
  created_by: string | null;
  updated_by: string | null;
  date_created: Timestamp;
  date_updated: Timestamp;
}

export interface PropertyOptionJson {
  label: string;
  value: string;
  priority: number;
  color: string | null;
}

export interface PropertiesTable {
  account_id: string;
  property_id: string;
  workspace_id: string | null;
  entity_id: string;
  name: string;
  description: string | null;
  field_type: FieldType;
  property_group_id: string | null;
  options: Json<PropertyOptionJson[]>;
  is_masked: ColumnType<boolean, boolean | undefined, boolean>;
  key: string | null;
  /** The key of this property's values in `records.data` (0018; the property ID before it). */
  storage_key: string;
  /** Row version (0010): +1 in every UPDATE of the row; the API's ETag. */
  version: Generated<number>;
  is_deleted: ColumnType<boolean, boolean | undefined, boolean>;
  date_deleted: Timestamp | null;
  created_by: string | null;
  updated_by: string | null;
  date_created: Timestamp;
  date_updated: Timestamp;
}

export interface RecordsTable {
  account_id: string;
  record_id: string;
  entity_id: string;
  name: ColumnType<string, string | undefined, string>;
  /** Property values by property ID, normalised per field type. */
  data: Json<Record<string, unknown>>;
  tags: ColumnType<string[], string[] | undefined, string[]>;
  /** Row version (0010): +1 in every UPDATE of the row; the API's ETag. */
  version: Generated<number>;
  owner_id: string | null;
  is_deleted: ColumnType<boolean, boolean | undefined, boolean>;
  date_deleted: Timestamp | null;
  created_by: string | null;
  updated_by: string | null;
  date_created: Timestamp;
  date_updated: Timestamp;
}

export interface RelationshipTypesTable {
  account_id: string;
  relationship_type_id: string;
  workspace_id: string | null;
  name: string;
  source_entity_id: string;
  target_entity_id: string;
  source_label: string | null;
  target_label: string | null;
  description: string | null;
  date_created: Timestamp;
  date_updated: Timestamp;
}

export interface RelationshipsTable {
  account_id: string;
  relationship_id: string;
  relationship_type_id: string;
  workspace_id: string | null;
  /** Always in the type's direction (a reversed create is normalised). */
  source_entity_id: string;
  source_record_id: string;
  target_entity_id: string;
  target_record_id: string;
  metadata: Json<Record<string, unknown>>;
  date_created: Timestamp;
  date_updated: Timestamp;
}

export interface SegmentsTable {
  account_id: string;
  segment_id: string;
  workspace_id: string | null;
  entity_id: string;
  name: string;
  description: string | null;
  color: string | null;
  /** The §6 condition group as sent (validated on write, re-validated on read). */
  conditions: Json<unknown>;
  mode: 'REALTIME' | 'CACHED';
  priority: number;
  is_active: ColumnType<boolean, boolean | undefined, boolean>;
  owner_id: string | null;
  member_count: ColumnType<number, number | undefined, number>;
  last_evaluated_at: Timestamp | null;
  /** Row version (0010): +1 in every UPDATE of the row; the API's ETag. */
  version: Generated<number>;
  /** Relationship types the conditions name: writes across them can move members (segments.maintenance.ts). */
  depends_on_types: ColumnType<string[], string[] | undefined, string[]>;
  created_by: string | null;
  updated_by: string | null;
  date_created: Timestamp;
  date_updated: Timestamp;
}

export interface SegmentMembersTable {
  account_id: string;
  segment_id: string;
  record_id: string;
  date_entered: Timestamp;
  /** The record's date_created (immutable; 0015): a default-sorted page of members is a range of (segment_id, record_created, record_id). */
  record_created: Timestamp;
}

export interface SegmentEventsTable {
  account_id: string;
  seq: ColumnType<string, never, never>;
  segment_id: string;
  record_id: string;
  event_type: 'segment.entered' | 'segment.exited';
  occurred_at: Timestamp;
}

export type ActivityType = 'CALL' | 'EMAIL' | 'MEETING' | 'NOTE' | 'TASK' | 'MESSAGE' | 'OTHER';
export type ActivityOutcome = 'COMPLETED' | 'CANCELLED' | 'RESCHEDULED' | 'NO_ANSWER' | 'PENDING';

/** An activity (0012): on a record, or a standalone calendar item (record_id NULL, API "CALENDAR"). */
export interface ActivitiesTable {
  account_id: string;
  activity_id: string;
  workspace_id: string | null;
  entity_id: string | null;
  record_id: string | null;
  activity_type: ActivityType;
  subject: string | null;
  description: string | null;
  related_record_ids: ColumnType<string[], string[] | undefined, string[]>;
  attachment_ids: ColumnType<string[], string[] | undefined, string[]>;
  outcome: ActivityOutcome | null;
  outcome_note: string | null;
  scheduled_at: Timestamp | null;
  due_date: Timestamp | null;
  completed_at: Timestamp | null;
  assigned_member_ids: ColumnType<string[], string[] | undefined, string[]>;
  duration_minutes: number | null;
  metadata: Json<Record<string, unknown>>;
  visibility: 'PRIVATE' | 'PUBLIC';
  owner_id: string | null;
  created_by: string | null;
  updated_by: string | null;
  date_created: Timestamp;
  date_updated: Timestamp;
}

/** A record's event (0012): append-only. */
export interface EventsTable {
  account_id: string;
  event_id: string;
  entity_id: string;
  record_id: string;
  event_type: string;
  category: string | null;
  label: string | null;
  value: number | null;
  properties: Json<Record<string, unknown>>;
  occurred_at: Timestamp;
  date_created: Timestamp;
}

/** One claimed Idempotency-Key and, once the request finished, the response it got (0007). */
export interface IdempotencyKeysTable {
  account_id: string;
  idempotency_key: string;
  /** sha256 of (method, path and query, API key, canonical JSON body). */
  fingerprint: string;
  request_method: string;
  request_path: string;
  state: 'pending' | 'completed';
  /** Random per claim: only the claimer (or whoever took a stale claim over) may complete it. */
  lock_token: string;
  status_code: number | null;
  response_headers: ColumnType<Record<string, string> | null, string | null, string | null>;
  response_body: string | null;
  created_at: Timestamp;
  locked_at: Timestamp;
  expires_at: Timestamp;
}

export type JobStatus = 'pending' | 'processing' | 'completed' | 'failed';

/** A durable background job (0013): exports, imports. */
export interface JobsTable {
  account_id: string;
  job_id: string;
  kind: string;
  status: JobStatus;
  params: Json<unknown>;
  progress: ColumnType<number, number | undefined, number>;
  total: number | null;
  checkpoint: ColumnType<unknown, string | null | undefined, string | null>;
  result: ColumnType<unknown, string | null | undefined, string | null>;
  error: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  lease_owner: string | null;
  lease_until: Timestamp | null;
  created_by: string | null;
  date_created: Timestamp;
  date_updated: Timestamp;
  date_finished: Timestamp | null;
  expires_at: Timestamp | null;
}

/** A stored file (0013); its bytes are in file_chunks. `size` is int8 (pg returns a string). */
export interface FilesTable {
  account_id: string;
  file_id: string;
  name: string;
  content_type: string;
  size: ColumnType<string, number | undefined, number>;
  complete: ColumnType<boolean, boolean | undefined, boolean>;
  created_by: string | null;
  date_created: Timestamp;
  expires_at: Timestamp;
}

export interface FileChunksTable {
  account_id: string;
  file_id: string;
  seq: number;
  data: Uint8Array;
}

export interface DB {
  accounts: AccountsTable;
  account_plans: AccountPlansTable;
  members: MembersTable;
  api_keys: ApiKeysTable;
  request_nonces: RequestNoncesTable;
  quota_usage: QuotaUsageTable;
  entities: EntitiesTable;
  properties: PropertiesTable;
  records: RecordsTable;
  relationship_types: RelationshipTypesTable;
  relationships: RelationshipsTable;
  segments: SegmentsTable;
  segment_members: SegmentMembersTable;
  segment_events: SegmentEventsTable;
  idempotency_keys: IdempotencyKeysTable;
  activities: ActivitiesTable;
  events: EventsTable;
  jobs: JobsTable;
  files: FilesTable;
  file_chunks: FileChunksTable;
}

/** Every table that holds one tenant's rows; each has `account_id` leading its keys. */
export type TenantTable = keyof DB;
