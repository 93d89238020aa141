import type { FieldType } from '../../db/schema.ts';

/**
 * The 12 field types (API.md §4) and what each allows, in one place: properties validate their
 * options with it, views and widgets check bindings with it, and records will validate values
 * with it.
 */
export const FIELD_TYPES = [
  'TEXT', 'TEXTAREA', 'NUMBER', 'PHONE', 'EMAIL', 'URL',
  'CHECKBOX', 'MULTI_CHECKBOX', 'DATE', 'DATETIME', 'DROPDOWN', 'RADIO',
] as const satisfies readonly FieldType[];

/** Types whose values are option `value`s; only these carry `options`. */
export const CHOICE_TYPES: ReadonlySet<FieldType> = new Set(['DROPDOWN', 'RADIO', 'MULTI_CHECKBOX']);
/** Single-choice types: one option per record, so they can drive a board column or a funnel. */
export const SINGLE_CHOICE_TYPES: ReadonlySet<FieldType> = new Set(['DROPDOWN', 'RADIO']);
export const DATE_TYPES: ReadonlySet<FieldType> = new Set(['DATE', 'DATETIME']);
export const TEXT_TYPES: ReadonlySet<FieldType> = new Set(['TEXT', 'TEXTAREA', 'PHONE', 'EMAIL', 'URL']);

export function isChoiceType(type: FieldType): boolean {
  return CHOICE_TYPES.has(type);
}

/**
 * Property keys that would collide with a record's own fields or the condition language's
 * field names (§5, §6). Compared case-insensitively.
 */
export const RESERVED_KEYS: ReadonlySet<string> = new Set([
  'name', 'tags', 'ownerid', 'recordid', 'entityid', 'accountid', 'workspaceid', 'data',
  'createdby', 'updatedby', 'datecreated', 'dateupdated', 'isdeleted', 'id', 'relationship',
  'propertyid', 'segmentid',
]);

export const KEY_PATTERN = '^[A-Za-z][A-Za-z0-9_]{0,62}$';

export function isReservedKey(key: string): boolean {
  return RESERVED_KEYS.has(key.toLowerCase());
}
