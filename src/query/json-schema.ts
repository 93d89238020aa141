import { MAX_COUNT } from './relationship-conditions.ts';
import { LIMITS, OPERATORS, RELATIONSHIP_OPERATORS } from './types.ts';

/**
 * The condition language (API.md §6) as JSON Schema, published in the OpenAPI document under
 * components.schemas (openapi.ts). Built from the same constants the validator uses, so the
 * document cannot drift from the language. It states the shape; what depends on the entity
 * (which properties exist, their types, which operator fits which type) is checked by
 * validate.ts, whose 400s name the JSON path. Nesting is recursive through `$ref`s to the
 * component names given.
 */
export function conditionLanguageSchemas(names: { group: string; condition: string; relatedGroup: string }): Record<string, Record<string, unknown>> {
  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
  const fieldOperators = [...new Set(Object.values(OPERATORS).flat())];
  const propertyCondition = {
    type: 'object',
    required: ['field', 'operator'],
    additionalProperties: false,
    properties: {
      field: {
        type: 'string',
        pattern: '^(name|tags|ownerId|dateCreated|dateUpdated|data\\.CRMPP1[0-9]{15}[A-Za-z0-9]{11})$',
        description: 'A system field, or data.<propertyId> of the entity',
      },
      operator: {
        enum: fieldOperators,
        description: Object.entries(OPERATORS).map(([kind, ops]) => `${kind}: ${ops.join(', ')}`).join('; '),
      },
      value: {
        description: `Fits the operator: none for isEmpty/isNotEmpty, a list (≤ ${LIMITS.maxListValues}) for in/notIn/hasAnyOf/hasAllOf/hasNoneOf, [a, b] for between, a day count for the relative date operators, text ≤ ${LIMITS.maxTextLength} characters`,
      },
    },
  };
  const relationshipCondition = {
    type: 'object',
    required: ['field', 'operator'],
    additionalProperties: false,
    properties: {
      field: { type: 'string', pattern: '^relationship\\.CRMRT1[0-9]{15}[A-Za-z0-9]{11}$', description: 'relationship.<relationshipTypeId> [X]' },
      operator: { enum: [...RELATIONSHIP_OPERATORS] },
      value: { type: 'integer', minimum: 0, maximum: MAX_COUNT, description: 'countGte / countLte only' },
      where: { ...ref(names.relatedGroup), description: 'Only related records matching this group count (one hop: no relationship conditions inside)' },
    },
  };
  const group = (condition: object, self: string) => ({
    type: 'object',
    required: ['operator', 'conditions'],
    additionalProperties: false,
    properties: {
      operator: { enum: ['AND', 'OR'] },
      conditions: { type: 'array', maxItems: LIMITS.maxConditionsPerGroup, items: { anyOf: [condition, ref(self)] } },
    },
    description: `API.md §6: nested groups up to ${LIMITS.maxDepth} levels, ≤ ${LIMITS.maxConditionsPerGroup} entries per group`,
  });
  return {
    [names.condition]: { anyOf: [propertyCondition, relationshipCondition] },
    [names.group]: group(ref(names.condition), names.group),
    [names.relatedGroup]: group(propertyCondition, names.relatedGroup),
  };
}
