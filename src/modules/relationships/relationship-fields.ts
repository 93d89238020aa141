import { AppError } from '../../errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import { relationshipTypeIdsIn, withRelationships, type RelationshipField, type RelationshipSide } from '../../query/relationship-conditions.ts';
import { catalogOf, type Catalog } from '../../query/validate.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { EntitiesService } from '../entities/entities.service.ts';
import type { PropertiesService } from '../properties/properties.service.ts';
import * as repo from './relationships.repository.ts';

/**
 * Loads what `relationship.<typeId>` conditions need before they are validated: for each type
 * the input names (and only those, so a search without relationship conditions costs nothing),
 * which side of it the filtered entity is on and the related entity's properties.
 */
export interface RelationshipFieldsLoader {
  extend(tenant: TenantDb, caller: Caller, entityId: string, catalog: Catalog, input: unknown): Promise<Catalog>;
}

export function createRelationshipFields(deps: { entities: EntitiesService; properties: PropertiesService }): RelationshipFieldsLoader {
  return {
    async extend(tenant, caller, entityId, catalog, input) {
      const typeIds = relationshipTypeIdsIn(input);
      if (typeIds.length === 0) return catalog;
      const fields = new Map<string, RelationshipField>();
      for (const type of await repo.typesTouching(tenant, caller, entityId, typeIds)) {
        const relatedId = type.source_entity_id === entityId ? type.target_entity_id : type.source_entity_id;
        try {
          await deps.entities.requireUsable(tenant, caller, relatedId);
        } catch (error) {
          // A type whose other entity is trashed or out of reach is not usable: left out, the
          // validator answers 400 at the condition's path. recordAccess stays a 403.
          if (error instanceof AppError && (error.status === 404 || error.status === 410)) continue;
          throw error;
        }
        const properties = await deps.properties.recordFields(tenant, relatedId);
        const sides: RelationshipSide[] = [];
        if (type.source_entity_id === entityId) sides.push('source');
        if (type.target_entity_id === entityId) sides.push('target');
        fields.set(type.relationship_type_id, {
          relationshipTypeId: type.relationship_type_id,
          sides,
          related: catalogOf(properties),
          masked: new Set(caller.role === 'MEMBER' ? properties.filter((p) => p.isMasked).map((p) => p.propertyId) : []),
          workspaceId: caller.workspaceId,
        });
      }
      return withRelationships(catalog, fields);
    },
  };
}
