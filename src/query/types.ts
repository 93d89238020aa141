import type { FieldType } from '../db/schema.ts';

/** The condition language of API.md §6, after validation. */
export type Logic = 'AND' | 'OR';

export interface ConditionGroup {
  operator: Logic;
  conditions: (Condition | ConditionGroup)[];
}

export interface Condition {
  field: string;
  operator: Operator;
  value?: unknown;
  /** Relationship conditions only: the related records that count (relationship-conditions.ts). */
  where?: ConditionGroup;
}

/** The kinds of field the language knows; properties map onto these by field type. */
export type FieldKind = 'text' | 'number' | 'date' | 'datetime' | 'checkbox' | 'choice' | 'multi';

export const OPERATORS = {
  text: ['eq', 'neq', 'contains', 'notContains', 'startsWith', 'endsWith', 'in', 'notIn', 'isEmpty', 'isNotEmpty'],
  number: ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'between', 'in', 'notIn', 'isEmpty', 'isNotEmpty'],
  date: ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'between', 'isEmpty', 'isNotEmpty', 'withinLastDays', 'withinNextDays', 'olderThanDays'],
  datetime: ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'between', 'isEmpty', 'isNotEmpty', 'withinLastDays', 'withinNextDays', 'olderThanDays'],
  checkbox: ['eq', 'isEmpty', 'isNotEmpty'],
  choice: ['eq', 'neq', 'in', 'notIn', 'isEmpty', 'isNotEmpty'],
  multi: ['hasAnyOf', 'hasAllOf', 'hasNoneOf', 'isEmpty', 'isNotEmpty'],
} as const satisfies Record<FieldKind, readonly string[]>;

/** Operators of `relationship.<relationshipTypeId>` fields. */
export const RELATIONSHIP_OPERATORS = ['exists', 'notExists', 'countGte', 'countLte'] as const;
export type RelationshipOperator = (typeof RELATIONSHIP_OPERATORS)[number];

export type Operator = (typeof OPERATORS)[FieldKind][number] | RelationshipOperator;

export const FIELD_KIND: Record<FieldType, FieldKind> = {
  TEXT: 'text',
  TEXTAREA: 'text',
  EMAIL: 'text',
  PHONE: 'text',
  URL: 'text',
  NUMBER: 'number',
  DATE: 'date',
  DATETIME: 'datetime',
  CHECKBOX: 'checkbox',
  DROPDOWN: 'choice',
  RADIO: 'choice',
  MULTI_CHECKBOX: 'multi',
};

/** What the language needs to know about an entity's live properties. */
export interface CatalogProperty {
  propertyId: string;
  /** Where its values live in `records.data` (data-key.ts). */
  storageKey: string;
  fieldType: FieldType;
  /** Option values of choice properties (DROPDOWN, RADIO, MULTI_CHECKBOX). */
  optionValues?: readonly string[];
}

/** A resolved field: where its value lives and how it behaves. */
export type ResolvedField =
  | { source: 'column'; column: 'name' | 'owner_id' | 'tags' | 'date_created' | 'date_updated'; kind: FieldKind }
  | { source: 'data'; propertyId: string; storageKey: string; kind: FieldKind; optionValues?: readonly string[] };

export const LIMITS = { maxDepth: 5, maxConditionsPerGroup: 50, maxListValues: 500, maxTextLength: 1000 } as const;
