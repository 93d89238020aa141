import { errors, type ErrorDetail } from '../../errors.ts';
import type { FieldType } from '../../db/schema.ts';
import { DATE_TYPES, SINGLE_CHOICE_TYPES } from '../properties/field-types.ts';
import type { InsightWidget, InsightWidgetInput, ViewSettings, ViewSettingsInput } from './entities.schemas.ts';

/** What view and widget validation needs to know about an entity's live properties. */
export interface PropertyInfo {
  propertyId: string;
  /** Where its values live in `records.data` (query/data-key.ts). */
  storageKey: string;
  name: string;
  fieldType: FieldType;
  optionValues: string[];
}

export function defaultViewSettings(): ViewSettings {
  return {
    mode: 'TABLE',
    table: { pageSize: 25 },
    board: {
      groupByPropertyId: null,
      sumPropertyId: null,
      weightPropertyId: null,
      aggregationType: 'SUM',
      sortByPropertyId: null,
      sortOrder: 'DESC',
      closedWonValues: [],
      closedLostValues: [],
      dealRotting: { enabled: false, days: 14 },
    },
    calendar: { datePropertyId: null, titlePropertyId: null, colorPropertyId: null },
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep-merges `patch` into `base`: objects merge key by key, everything else (arrays too) replaces. */
function deepMerge(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(patch)) return patch === undefined ? base : patch;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value !== undefined) out[key] = deepMerge(base[key], value);
  }
  return out;
}

/** The settings after applying `input` over `current` (stored settings, or the defaults on create). */
export function mergeViewSettings(current: ViewSettings | undefined, input: ViewSettingsInput | undefined): ViewSettings {
  // Stored settings are merged over the defaults too, so fields added later get their default.
  const base = deepMerge(defaultViewSettings(), current ?? {});
  return deepMerge(base, input ?? {}) as ViewSettings;
}

type Kind = { types: ReadonlySet<FieldType> | null; label: string };
const ANY: Kind = { types: null, label: 'any type' };
const SINGLE_CHOICE: Kind = { types: SINGLE_CHOICE_TYPES, label: 'DROPDOWN or RADIO' };
const NUMBER: Kind = { types: new Set<FieldType>(['NUMBER']), label: 'NUMBER' };
const DATE: Kind = { types: DATE_TYPES, label: 'DATE or DATETIME' };
const GROUPABLE: Kind = {
  types: new Set<FieldType>(['DROPDOWN', 'RADIO', 'MULTI_CHECKBOX', 'CHECKBOX', 'DATE', 'DATETIME']),
  label: 'DROPDOWN, RADIO, MULTI_CHECKBOX, CHECKBOX, DATE or DATETIME',
};

class Problems {
  readonly list: ErrorDetail[] = [];
  add(path: string, message: string): void {
    this.list.push({ path, message });
  }
  throwIfAny(): void {
    if (!this.list.length) return;
    const first = this.list[0]!;
    const more = this.list.length > 1 ? ` (and ${this.list.length - 1} more)` : '';
    throw errors.validation(`${first.path}: ${first.message}${more}`, this.list);
  }
}

function checkRef(problems: Problems, byId: Map<string, PropertyInfo>, path: string, id: string | null | undefined, kind: Kind): PropertyInfo | undefined {
  if (id === null || id === undefined) return undefined;
  const property = byId.get(id);
  if (!property) {
    problems.add(path, `${id} is not a live property of this entity`);
    return undefined;
  }
  if (kind.types && !kind.types.has(property.fieldType)) {
    problems.add(path, `property "${property.name}" is ${property.fieldType}; it must be ${kind.label}`);
    return undefined;
  }
  return property;
}

/** Throws a 400 naming every field of `settings` that does not fit the entity's properties. */
export function validateViewSettings(settings: ViewSettings, properties: PropertyInfo[], prefix = '/viewSettings'): void {
  const problems = new Problems();
  collectViewProblems(problems, settings, properties, prefix);
  problems.throwIfAny();
}

function collectViewProblems(problems: Problems, settings: ViewSettings, properties: PropertyInfo[], prefix: string): void {
  const byId = new Map(properties.map((p) => [p.propertyId, p]));
  const { board, calendar } = settings;
  const groupBy = checkRef(problems, byId, `${prefix}/board/groupByPropertyId`, board.groupByPropertyId, SINGLE_CHOICE);
  checkRef(problems, byId, `${prefix}/board/sumPropertyId`, board.sumPropertyId, NUMBER);
  checkRef(problems, byId, `${prefix}/board/weightPropertyId`, board.weightPropertyId, NUMBER);
  checkRef(problems, byId, `${prefix}/board/sortByPropertyId`, board.sortByPropertyId, ANY);
  checkRef(problems, byId, `${prefix}/calendar/datePropertyId`, calendar.datePropertyId, DATE);
  checkRef(problems, byId, `${prefix}/calendar/titlePropertyId`, calendar.titlePropertyId, ANY);
  checkRef(problems, byId, `${prefix}/calendar/colorPropertyId`, calendar.colorPropertyId, SINGLE_CHOICE);

  for (const field of ['closedWonValues', 'closedLostValues'] as const) {
    const values = board[field];
    const path = `${prefix}/board/${field}`;
    if (new Set(values).size !== values.length) problems.add(path, 'values must be distinct');
    if (!values.length) continue;
    if (board.groupByPropertyId === null) {
      problems.add(path, 'needs board.groupByPropertyId');
    } else if (groupBy) {
      const known = new Set(groupBy.optionValues);
      const unknown = values.filter((v) => !known.has(v));
      if (unknown.length) problems.add(path, `not option values of "${groupBy.name}": ${unknown.join(', ')}`);
    }
  }
  const lost = new Set(board.closedLostValues);
  const both = board.closedWonValues.filter((v) => lost.has(v));
  if (both.length) problems.add(`${prefix}/board/closedLostValues`, `values cannot be both won and lost: ${both.join(', ')}`);

  if (settings.mode === 'BOARD' && board.groupByPropertyId === null) {
    problems.add(`${prefix}/mode`, 'BOARD needs board.groupByPropertyId');
  }
  if (settings.mode === 'CALENDAR' && calendar.datePropertyId === null) {
    problems.add(`${prefix}/mode`, 'CALENDAR needs calendar.datePropertyId');
  }
}

/** Fills a widget's optional fields (groupBy, dateBucket, segmentId, metric.propertyId → null). */
export function normalizeWidgets(input: InsightWidgetInput[], properties: PropertyInfo[]): InsightWidget[] {
  const byId = new Map(properties.map((p) => [p.propertyId, p]));
  return input.map((w) => {
    const groupBy = w.groupBy ?? null;
    const groupProperty = groupBy ? byId.get(groupBy) : undefined;
    const isDateGroup = groupProperty !== undefined && DATE_TYPES.has(groupProperty.fieldType);
    return {
      widgetId: w.widgetId,
      type: w.type,
      title: w.title,
      metric: { op: w.metric.op, propertyId: w.metric.propertyId ?? null },
      groupBy,
      dateBucket: w.dateBucket ?? (isDateGroup ? 'month' : null),
      segmentId: w.segmentId ?? null,
    };
  });
}

/** Throws a 400 naming every widget field that does not fit the entity's properties. */
export function validateWidgets(widgets: InsightWidget[], properties: PropertyInfo[], prefix = '/insightWidgets'): void {
  const problems = new Problems();
  collectWidgetProblems(problems, widgets, properties, prefix);
  problems.throwIfAny();
}

function collectWidgetProblems(problems: Problems, widgets: InsightWidget[], properties: PropertyInfo[], prefix: string): void {
  const byId = new Map(properties.map((p) => [p.propertyId, p]));
  const seen = new Set<string>();
  widgets.forEach((w, i) => {
    const path = `${prefix}/${i}`;
    if (seen.has(w.widgetId)) problems.add(`${path}/widgetId`, `duplicate widgetId "${w.widgetId}"`);
    seen.add(w.widgetId);

    if (w.metric.op === 'count') {
      if (w.metric.propertyId !== null) problems.add(`${path}/metric/propertyId`, 'count takes no propertyId');
    } else if (w.metric.propertyId === null) {
      problems.add(`${path}/metric/propertyId`, `${w.metric.op} needs a NUMBER propertyId`);
    } else {
      checkRef(problems, byId, `${path}/metric/propertyId`, w.metric.propertyId, NUMBER);
    }

    let groupProperty: PropertyInfo | undefined;
    if (w.type === 'KPI') {
      if (w.groupBy !== null) problems.add(`${path}/groupBy`, 'a KPI widget has no groupBy');
    } else if (w.groupBy === null) {
      problems.add(`${path}/groupBy`, `a ${w.type} widget needs groupBy`);
    } else if (w.type === 'FUNNEL') {
      groupProperty = checkRef(problems, byId, `${path}/groupBy`, w.groupBy, SINGLE_CHOICE);
    } else if (w.groupBy !== 'ownerId' && w.groupBy !== 'tags') {
      groupProperty = checkRef(problems, byId, `${path}/groupBy`, w.groupBy, GROUPABLE);
    }
    const isDateGroup = groupProperty !== undefined && DATE_TYPES.has(groupProperty.fieldType);
    if (w.dateBucket !== null && !isDateGroup) problems.add(`${path}/dateBucket`, 'only for a DATE or DATETIME groupBy');
  });
}

/** Why `properties` (after a property change or delete) no longer fit the entity's settings, or []. */
export function settingsProblems(settings: ViewSettings, widgets: InsightWidget[], properties: PropertyInfo[]): ErrorDetail[] {
  const problems = new Problems();
  collectViewProblems(problems, settings, properties, '/viewSettings');
  collectWidgetProblems(problems, widgets, properties, '/insightWidgets');
  return problems.list;
}
