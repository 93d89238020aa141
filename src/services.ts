import type { Kysely } from 'kysely';
import type { DB } from './db/schema.ts';
import type { TenantDb } from './db/tenant.ts';
import type { RecordSet } from './modules/relationships/relationship-links.ts';
import type { Clock } from './lib/clock.ts';
import type { SecretBox } from './lib/secret-box.ts';
import { createAccountsService, type AccountsService } from './modules/accounts/accounts.service.ts';
import { createActivitiesService, type ActivitiesService } from './modules/activities/activities.service.ts';
import { createApiKeysService, type ApiKeysService } from './modules/api-keys/api-keys.service.ts';
import { createEntitiesService, type EntitiesService } from './modules/entities/entities.service.ts';
import { createEventsService, type EventsService } from './modules/events/events.service.ts';
import { createIdempotencyService, type IdempotencyService } from './modules/idempotency/idempotency.service.ts';
import { createMembersService, type MembersService } from './modules/members/members.service.ts';
import { createQuotaService, type QuotaService } from './modules/plans/quota.service.ts';
import { createPropertiesService, type PropertiesService } from './modules/properties/properties.service.ts';
import { createPropertyIndexes, type PropertyIndexes } from './modules/records/property-indexes.ts';
import { createRecordsService, type RecordsService } from './modules/records/records.service.ts';
import { createRelationshipFields } from './modules/relationships/relationship-fields.ts';
import { createRelationshipTypesService, type RelationshipTypesService } from './modules/relationships/relationship-types.service.ts';
import { createRelationshipsService, type RelationshipsService } from './modules/relationships/relationships.service.ts';
import { createConditionEvaluation } from './modules/records/records.evaluation.ts';
import { createSegmentsService, type SegmentsService } from './modules/segments/segments.service.ts';
import { createInsightsService, type InsightsService } from './modules/insights/insights.service.ts';
import { createRecordAggregates } from './modules/records/records.aggregate.ts';
import { createFilesService, type FilesService } from './modules/files/files.service.ts';
import { createJobsService, type JobsService } from './modules/jobs/jobs.service.ts';
import { createExportsService, type ExportSettings, type ExportsService } from './modules/exports/exports.service.ts';
import { createImportsService, type ImportsOptions, type ImportsService } from './modules/imports/imports.service.ts';

export interface Services {
  accounts: AccountsService;
  members: MembersService;
  apiKeys: ApiKeysService;
  quota: QuotaService;
  entities: EntitiesService;
  properties: PropertiesService;
  records: RecordsService;
  relationshipTypes: RelationshipTypesService;
  relationships: RelationshipsService;
  segments: SegmentsService;
  /** Aggregates, the board view and insight widgets (POST /records/aggregate, GET /entities/{id}/board|insights). */
  insights: InsightsService;
  activities: ActivitiesService;
  events: EventsService;
  /** Sort indexes per property, built in the background on first use (records). */
  propertyIndexes: PropertyIndexes;
  /** The Idempotency-Key store (src/http/plugins/idempotency.ts). */
  idempotency: IdempotencyService;
  /** Stored files (export downloads, uploaded imports), bytes in PostgreSQL. */
  files: FilesService;
  /** Durable background jobs; server.ts starts the worker. */
  jobs: JobsService;
  /** Record exports (POST /records/export/request; the records.export job). */
  exports: ExportsService;
  /** Record import (CSV/XLSX): POST /records/import, the Excel endpoints, the records.import job. */
  imports: ImportsService;
}

/** The composition root: every service built once, wired to the ones it calls. */
export function createServices(deps: {
  db: Kysely<DB>;
  secretBox: SecretBox;
  clock: Clock;
  /** Where background work (property index builds) reports failures. */
  onBackgroundError?: (error: unknown, context: Record<string, unknown>) => void;
  /** Entities below this many live records get no property sort indexes (default 5,000). */
  propertyIndexMinRecords?: number;
  /** A pending Idempotency-Key claim older than this may be taken over (default 60 s). */
  idempotencyPendingTimeoutMs?: number;
  /** How long a job's claim lasts without renewal before another worker may take it (default 30 s). */
  jobLeaseMs?: number;
  /** Export thresholds (default: 10,000 records sync, pages of 1,000). */
  exportSettings?: Partial<ExportSettings>;
  /** Record import limits: sync threshold, batch size, upload size (imports.service.ts). */
  imports?: ImportsOptions;
}): Services {
  const quota = createQuotaService();
  // Members and API keys call each other (a removed member's keys are revoked), so the
  // members service reaches the API keys service through a late-bound hook.
  const hooks: { apiKeys?: ApiKeysService } = {};
  const members = createMembersService({
    beforeRemove: (tenant, memberId) => hooks.apiKeys!.revokeAllOf(tenant, memberId),
    afterRoleChange: (tenant, memberId, role) => hooks.apiKeys!.memberRoleChanged(tenant, memberId, role),
  });
  const apiKeys = createApiKeysService({ ...deps, members, quota });
  hooks.apiKeys = apiKeys;
  const accounts = createAccountsService({ db: deps.db, members, apiKeys });
  // Properties hang off entities; entities read their live properties back through a late-bound hook.
  // (The hook runs only on requests, after `properties` below is initialised.)
  // Segments keep CACHED members in step with entity, property, record and link writes, and
  // records read through segments (GET /records?segmentId=): the writers reach segments, and
  // segments reach relationships, through late-bound hooks (they run only on requests).
  const late: { segments?: SegmentsService; relationships?: RelationshipsService } = {};
  const entities = createEntitiesService({
    members, quota,
    liveProperties: (tenant, entityId) => properties.liveInfo(tenant, entityId),
    visibilityChanged: (tx, entityId) => late.segments!.entityVisibilityChanged(tx, entityId),
  });
  const properties = createPropertiesService({ entities, quota, definitionsChanged: (tx, entityId) => late.segments!.entityChanged(tx, entityId) });
  const propertyIndexes = createPropertyIndexes({
    db: deps.db,
    minRecords: deps.propertyIndexMinRecords,
    onError: (error, propertyId) => deps.onBackgroundError?.(error, { task: 'property sort index', propertyId }),
  });
  // Records filter across relationships (relationship.<typeId> conditions); relationships read records.
  const relationshipFields = createRelationshipFields({ entities, properties });
  const records = createRecordsService({
    entities, properties, members, quota, clock: deps.clock, propertyIndexes, relationshipFields,
    hooks: {
      recordsChanged: (tx, entityId, recordIds, fields) => late.segments!.recordsChanged(tx, entityId, recordIds, fields),
      recordsDeleting: (tx, recordIds) => late.segments!.recordsDeleting(tx, recordIds),
    },
    segmentFilter: (tenant, caller, segmentId, entityId) => late.segments!.recordFilter(tenant, caller, segmentId, entityId),
  });
  const evaluation = createConditionEvaluation({ properties, relationshipFields, clock: deps.clock });
  const segments = createSegmentsService({ entities, members, quota, records, evaluation, clock: deps.clock, links: () => late.relationships! });
  late.segments = segments;
  const linkHooks = {
    linksChanged: (tx: TenantDb, ends: readonly RecordSet[]) => segments.linksChanged(tx, ends),
    typeRemoved: (tx: TenantDb, typeId: string) => segments.typeRemoved(tx, typeId),
  };
  const relationshipTypes = createRelationshipTypesService({ entities, quota, clock: deps.clock, hooks: linkHooks });
  const relationships = createRelationshipsService({ entities, properties, types: relationshipTypes, records, quota, clock: deps.clock, hooks: linkHooks });
  late.relationships = relationships;
  const aggregates = createRecordAggregates({
    entities, properties, relationshipFields, clock: deps.clock,
    segmentFilter: (tenant, caller, segmentId, entityId) => segments.recordFilter(tenant, caller, segmentId, entityId),
  });
  const insights = createInsightsService({ entities, properties, records, aggregates, clock: deps.clock });
  const files = createFilesService({ db: deps.db, secretBox: deps.secretBox, clock: deps.clock });
  const jobs = createJobsService({ db: deps.db, clock: deps.clock, leaseMs: deps.jobLeaseMs });
  const exports = createExportsService({ entities, properties, records, members, quota, files, jobs, clock: deps.clock, settings: deps.exportSettings });
  const imports = createImportsService({ entities, properties, records, members, quota, files, jobs, clock: deps.clock, options: deps.imports });
  const idempotency = createIdempotencyService({ db: deps.db, clock: deps.clock, pendingTimeoutMs: deps.idempotencyPendingTimeoutMs });
  const activities = createActivitiesService({ entities, records, members, clock: deps.clock });
  const events = createEventsService({ entities, records, clock: deps.clock });
  return { accounts, members, apiKeys, quota, entities, properties, records, relationshipTypes, relationships, segments, activities, events, insights, propertyIndexes, idempotency, files, jobs, exports, imports };
}
