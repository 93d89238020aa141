import { errors, type ErrorDetail } from '../../errors.ts';
import type { Property } from '../properties/properties.schemas.ts';
import type { CrmRecord } from '../records/records.schemas.ts';
import type { Cell } from './csv-writer.ts';

/**
 * The columns of an export file (docs/exports.md): `recordId`, `name`, then one column per
 * property (its name as the header), then `tags`, `ownerId`, `dateCreated`, `dateUpdated`.
 * Values are written for people: choice values as their option labels, multi-choice and tags
 * joined with ", ", dates as stored (DATE `YYYY-MM-DD`, instants ISO-8601 UTC), numbers and
 * checkboxes typed. A masked value (MEMBER callers) is written as the mask the API returns.
 */
export interface ExportColumn {
  header: string;
  value(record: CrmRecord): Cell;
}

export const LEADING_COLUMNS = ['recordId', 'name'] as const;
export const TRAILING_COLUMNS = ['tags', 'ownerId', 'dateCreated', 'dateUpdated'] as const;

const LIST_SEPARATOR = ', ';

/** A property value as a cell; anything of an unexpected shape (a mask, say) is written as text. */
export function propertyCell(property: Pick<Property, 'fieldType' | 'options'>, labels: Map<string, string>, value: unknown): Cell {
  if (value === null || value === undefined) return null;
  switch (property.fieldType) {
    case 'NUMBER':
      if (typeof value === 'number') return value;
      break;
    case 'CHECKBOX':
      if (typeof value === 'boolean') return value;
      break;
    case 'DROPDOWN':
    case 'RADIO':
      if (typeof value === 'string') return labels.get(value) ?? value;
      break;
    case 'MULTI_CHECKBOX':
      if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? labels.get(v) ?? v : String(v))).join(LIST_SEPARATOR);
      break;
    default:
      break;
  }
  return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
}

/**
 * The columns for `order` (property IDs), checked against the entity's live properties as the
 * caller sees them: an unknown or repeated ID is a 400 naming its position.
 */
export function exportColumns(properties: readonly Property[], order: readonly string[], requested: boolean): ExportColumn[] {
  const byId = new Map(properties.map((p) => [p.propertyId, p]));
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  order.forEach((id, i) => {
    if (!byId.has(id)) details.push({ path: `propertyIds/${i}`, message: `${id.slice(0, 64)} is not a live property of this entity` });
    else if (seen.has(id)) details.push({ path: `propertyIds/${i}`, message: `${id} is listed twice` });
    seen.add(id);
  });
  if (requested && details.length) {
    throw errors.validation(`${details[0]!.path}: ${details[0]!.message}${details.length > 1 ? ` (and ${details.length - 1} more)` : ''}`, details);
  }
  const propertyColumns = order.filter((id, i) => byId.has(id) && order.indexOf(id) === i).map((id): ExportColumn => {
    const property = byId.get(id)!;
    const labels = new Map(property.options.filter((o) => o.label !== '').map((o) => [o.value, o.label]));
    return { header: property.name, value: (record) => propertyCell(property, labels, record.data[id]) };
  });
  return [
    { header: 'recordId', value: (r) => r.recordId },
    { header: 'name', value: (r) => r.name },
    ...propertyColumns,
    { header: 'tags', value: (r) => (r.tags.length ? r.tags.join(LIST_SEPARATOR) : null) },
    { header: 'ownerId', value: (r) => r.ownerId },
    { header: 'dateCreated', value: (r) => r.dateCreated },
    { header: 'dateUpdated', value: (r) => r.dateUpdated },
  ];
}
