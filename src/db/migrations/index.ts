import type { Migration } from 'kysely/migration';
import * as foundation from './0001_foundation.ts';
import * as entitiesProperties from './0002_entities_properties.ts';
import * as records from './0003_records.ts';
import * as authAndPurge from './0006_auth_and_purge.ts';

/** Ordered by name; never edit a migration that has shipped, add a new one. */
export const migrations: Record<string, Migration> = {
  '0001_foundation': foundation,
  '0002_entities_properties': entitiesProperties,
  '0003_records': records,
  '0006_auth_and_purge': authAndPurge,
};
