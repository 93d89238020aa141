import type { Migration } from 'kysely/migration';
import * as foundation from './0001_foundation.ts';
import * as entitiesProperties from './0002_entities_properties.ts';
import * as records from './0003_records.ts';
import * as relationships from './0004_relationships.ts';
import * as recordIndexes from './0005_record_indexes.ts';
import * as authAndPurge from './0006_auth_and_purge.ts';
import * as idempotency from './0007_idempotency.ts';
import * as segments from './0008_segments.ts';
import * as relationshipIndexes from './0009_relationship_indexes.ts';
import * as versions from './0010_versions.ts';
import * as segmentDependencies from './0011_segment_dependencies.ts';
import * as activitiesEvents from './0012_activities_events.ts';
import * as jobsFiles from './0013_jobs_files.ts';
import * as rowLevelSecurity from './0014_row_level_security.ts';
import * as segmentMemberOrder from './0015_segment_member_order.ts';
import * as dropRecordDataGin from './0016_drop_record_data_gin.ts';
import * as tenantPolicySettingsOnce from './0017_tenant_policy_settings_once.ts';
import * as propertyStorageKeys from './0018_property_storage_keys.ts';
import * as recordNameGrams from './0019_record_name_grams.ts';

/** Ordered by name; never edit a migration that has shipped, add a new one. */
export const migrations: Record<string, Migration> = {
  '0001_foundation': foundation,
  '0002_entities_properties': entitiesProperties,
  '0003_records': records,
  '0004_relationships': relationships,
  '0005_record_indexes': recordIndexes,
  '0006_auth_and_purge': authAndPurge,
  '0007_idempotency': idempotency,
  '0008_segments': segments,
  '0009_relationship_indexes': relationshipIndexes,
  '0010_versions': versions,
  '0011_segment_dependencies': segmentDependencies,
  '0012_activities_events': activitiesEvents,
  '0013_jobs_files': jobsFiles,
  '0014_row_level_security': rowLevelSecurity,
  '0015_segment_member_order': segmentMemberOrder,
  '0016_drop_record_data_gin': dropRecordDataGin,
  '0017_tenant_policy_settings_once': tenantPolicySettingsOnce,
  '0018_property_storage_keys': propertyStorageKeys,
  '0019_record_name_grams': recordNameGrams,
};
