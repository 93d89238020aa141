import { sql, type RawBuilder, type SqlBool } from 'kysely';
import { AppError, errors } from '../../errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { compileConditionGroup } from '../../query/compile.ts';
import { dataKey } from '../../query/data-key.ts';
import type { ConditionGroup } from '../../query/types.ts';
import { catalogOf, conditionsOf, validateConditionGroup } from '../../query/validate.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { EntitiesService } from '../entities/entities.service.ts';
import type { PropertiesService, RecordField } from '../properties/properties.service.ts';
import type { RelationshipFieldsLoader } from '../relationships/relationship-fields.ts';
import { FULL_SCAN_SETTINGS } from './records.repository.ts';
import { isId } from '../../lib/ids.ts';

/**
 * Aggregates over an entity's live records (API.md §10, POST /records/aggregate): count, sum,
 * avg, min and max of NUMBER properties, optionally grouped by a choice property, the owner,
 * tags or date buckets, over the records a condition group and/or a segment select.
 *
 * One scan: the records the filter selects are read once, each gives its group key and metric
 * values (an inner SELECT), and an outer GROUP BY folds them. Sums are PostgreSQL numerics read
 * back as text, so they are exact; the total of single-valued groupings is folded from the
 * buckets here (exact decimal addition) instead of a GROUPING SETS pass, which PostgreSQL
 * cannot run in parallel. Multi-valued groupings (MULTI_CHECKBOX, tags: a record counts in
 * each of its values) get their total from a second query.
 */

export type MetricOp = 'count' | 'sum' | 'avg' | 'min' | 'max';
export type DateBucket = 'day' | 'week' | 'month';

export interface MetricSpec {
  op: MetricOp;
  propertyId?: string | null;
}

export interface AggregateRequest {
  entityId: string;
  conditionGroup?: unknown;
  segmentId?: string;
  /** A property ID of the entity, "ownerId", "tags", "dateCreated" or "dateUpdated". */
  groupBy?: string | null;
  dateBucket?: DateBucket | null;
  /** IANA zone the date buckets of DATETIME values and dateCreated/dateUpdated are cut in (default UTC). */
  timeZone?: string;
  metrics?: MetricSpec[];
  /**
   * Internal (board): Σ value × weight / 100 per bucket, of two NUMBER properties. Checked like
   * a metric (masking, type); reported in `weighted` (exact decimal text).
   */
  weighted?: { propertyId: string; weightPropertyId: string };
}

export interface AggregateValues {
  count: number;
  /** One per requested metric: count → number of records; sum → number (0 without values); avg/min/max → number or null. */
  values: (number | null)[];
}

export interface AggregateBucket extends AggregateValues {
  /** Option value, member ID, tag, "true"/"false", or the bucket's first day (YYYY-MM-DD; months YYYY-MM); null: no value. */
  key: string | null;
  /** Option label (choice groupings). */
  label?: string;
}

export interface AggregateResult {
  entityId: string;
  groupBy: string | null;
  dateBucket: DateBucket | null;
  timeZone: string;
  metrics: { op: MetricOp; propertyId: string | null }[];
  total: AggregateValues;
  buckets: AggregateBucket[];
}

/** What internal callers get on top of the public answer: exact sums per bucket and in total. */
export interface DetailedAggregate extends AggregateResult {
  exact: {
    /** Per bucket key (null: no value): exact sum text per metric (null for non-sums), and the weighted sum. */
    buckets: Map<string | null, { sums: (string | null)[]; weighted: string | null }>;
    total: { sums: (string | null)[]; weighted: string | null };
  };
}

export interface RecordAggregates {
  aggregate(tenant: TenantDb, caller: Caller, request: AggregateRequest): Promise<DetailedAggregate>;
}

export interface RecordAggregatesDeps {
  entities: EntitiesService;
  properties: PropertiesService;
  relationshipFields: RelationshipFieldsLoader;
  clock: Clock;
  segmentFilter: (tenant: TenantDb, caller: Caller, segmentId: string, entityId: string) => Promise<RawBuilder<SqlBool>>;
}

/** More buckets than this is a 400: a coarser dateBucket or a narrower filter is needed. */
export const MAX_BUCKETS = 10_000;
/** Date buckets between the first and last non-empty one are listed (count 0) up to this many in all. */
const MAX_FILLED_BUCKETS = MAX_BUCKETS;
const MAX_METRICS = 10;

/** IANA names (Asia/Seoul, America/Argentina/Buenos_Aires, Etc/GMT+9, UTC). No offsets: PostgreSQL reads "+09:00" POSIX-style. */
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;

type Grouping =
  | { kind: 'none' }
  | { kind: 'choice'; propertyId: string; key: string; options: string[] }
  | { kind: 'checkbox'; propertyId: string; key: string }
  | { kind: 'owner' }
  | { kind: 'tags' }
  | { kind: 'multi'; propertyId: string; key: string; options: string[] }
  | { kind: 'date'; source: { propertyId: string; key: string; fieldType: 'DATE' | 'DATETIME' } | { column: 'date_created' | 'date_updated' }; bucket: DateBucket };

const invalid = (path: string, message: string) => errors.validation(`${path}: ${message}`, [{ path, message }]);

/** The group key of a records row as text (NULL: no value); tags give the text[], MULTI_CHECKBOX the jsonb array. */
function keySql(g: Grouping, timeZone: string): RawBuilder<unknown> {
  switch (g.kind) {
    case 'none': return sql`NULL::text`;
    case 'choice':
    case 'checkbox': return sql`(records.data ->> ${dataKey(g.key)})`;
    case 'owner': return sql`records.owner_id`;
    case 'tags': return sql`records.tags`;
    case 'multi': return sql`(records.data -> ${dataKey(g.key)})`;
    case 'date': {
      const unit = sql.raw(`'${g.bucket}'`);
      const format = sql.raw(g.bucket === 'month' ? `'YYYY-MM'` : `'YYYY-MM-DD'`);
      if ('propertyId' in g.source && g.source.fieldType === 'DATE') {
        // A calendar date has no time zone: bucketed as it is.
        const v = sql`(records.data ->> ${dataKey(g.source.key)})`;
        if (g.bucket === 'day') return v;
        if (g.bucket === 'month') return sql`left(${v}, 7)`;
        return sql`to_char(date_trunc('week', ${v}::timestamp), 'YYYY-MM-DD')`;
      }
      const instant = 'propertyId' in g.source
        ? sql`(records.data ->> ${dataKey(g.source.key)})::timestamptz`
        : sql.ref(`records.${g.source.column}`);
      return sql`to_char(date_trunc(${unit}, ${instant} AT TIME ZONE ${timeZone}), ${format})`;
    }
  }
}

/* ---------- Exact decimals (numeric text from PostgreSQL: "-12.50", never exponents) ---------- */

function parseDecimal(text: string): { units: bigint; scale: number } {
  const negative = text.startsWith('-');
  const [whole = '0', fraction = ''] = text.replace(/^[-+]/, '').split('.');
  const units = BigInt(`${whole}${fraction}` || '0');
  return { units: negative ? -units : units, scale: fraction.length };
}

/** a + b, exactly, for PostgreSQL numeric text. */
export function addDecimal(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  const scale = Math.max(x.scale, y.scale);
  const sum = x.units * 10n ** BigInt(scale - x.scale) + y.units * 10n ** BigInt(scale - y.scale);
  const negative = sum < 0n;
  const digits = (negative ? -sum : sum).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const fraction = scale ? `.${digits.slice(digits.length - scale)}` : '';
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/* ---------- Calendar steps for gap filling (keys are local calendar dates) ---------- */

function nextKey(key: string, bucket: DateBucket): string {
  if (bucket === 'month') {
    const [y, m] = key.split('-').map(Number) as [number, number];
    return m === 12 ? `${String(y + 1).padStart(4, '0')}-01` : `${String(y).padStart(4, '0')}-${String(m + 1).padStart(2, '0')}`;
  }
  const ms = Date.parse(`${key}T00:00:00.000Z`) + (bucket === 'week' ? 7 : 1) * 86_400_000;
  return new Date(ms).toISOString().slice(0, 10);
}

/** Every key from `first` to `last` inclusive, or undefined when there would be more than `max`. */
function keyRange(first: string, last: string, bucket: DateBucket, max: number): string[] | undefined {
  const keys = [first];
  while (keys[keys.length - 1]! < last) {
    if (keys.length >= max) return undefined;
    keys.push(nextKey(keys[keys.length - 1]!, bucket));
  }
  return keys;
}

/** The zone if it is an IANA name this runtime knows; a 400 naming `path` otherwise. */
export function checkTimeZone(timeZone: string, path = 'timeZone'): string {
  let known = ZONE_NAME.test(timeZone) && timeZone.length <= 64;
  if (known) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone });
    } catch {
      known = false;
    }
  }
  if (!known) throw invalid(path, `"${timeZone.slice(0, 64)}" is not an IANA time zone name (e.g. Asia/Seoul, UTC)`);
  return timeZone;
}

/* ---------- The service ---------- */

interface RawRow {
  k: string | null;
  n: string | number;
  [column: string]: unknown;
}

/** Per metric property: exact sum, number of values, min, max (text, from the database). */
interface PropertyStats { sum: string | null; count: number; min: string | null; max: string | null }

interface Folded {
  count: number;
  stats: PropertyStats[];
  weighted: string | null;
}

function foldRow(row: RawRow, propertyCount: number, hasWeighted: boolean): Folded {
  const stats: PropertyStats[] = [];
  for (let i = 0; i < propertyCount; i++) {
    stats.push({
      sum: (row[`s${i}`] as string | null) ?? null,
      count: Number(row[`c${i}`] ?? 0),
      min: (row[`lo${i}`] as string | null) ?? null,
      max: (row[`hi${i}`] as string | null) ?? null,
    });
  }
  return { count: Number(row.n), stats, weighted: hasWeighted ? ((row.w as string | null) ?? null) : null };
}

function mergeFolded(a: Folded, b: Folded): Folded {
  return {
    count: a.count + b.count,
    stats: a.stats.map((s, i) => {
      const t = b.stats[i]!;
      const pick = (x: string | null, y: string | null, better: (p: number, q: number) => boolean) =>
        x === null ? y : y === null ? x : better(Number(y), Number(x)) ? y : x;
      return {
        sum: addDecimal(s.sum, t.sum),
        count: s.count + t.count,
        min: pick(s.min, t.min, (p, q) => p < q),
        max: pick(s.max, t.max, (p, q) => p > q),
      };
    }),
    weighted: addDecimal(a.weighted, b.weighted),
  };
}

const emptyFolded = (propertyCount: number): Folded => ({
  count: 0,
  stats: Array.from({ length: propertyCount }, () => ({ sum: null, count: 0, min: null, max: null })),
  weighted: null,
});

export function createRecordAggregates(deps: RecordAggregatesDeps): RecordAggregates {
  const { entities, properties, relationshipFields, clock } = deps;

  function resolveGrouping(request: AggregateRequest, byId: Map<string, RecordField>, masked: boolean): Grouping {
    const groupBy = request.groupBy ?? null;
    const dateBucket = request.dateBucket ?? null;
    const notDate = () => {
      if (dateBucket !== null) throw invalid('dateBucket', 'only for a DATE or DATETIME property, dateCreated or dateUpdated');
    };
    if (groupBy === null) {
      notDate();
      return { kind: 'none' };
    }
    if (groupBy === 'ownerId') return (notDate(), { kind: 'owner' });
    if (groupBy === 'tags') return (notDate(), { kind: 'tags' });
    if (groupBy === 'dateCreated' || groupBy === 'dateUpdated') {
      return { kind: 'date', source: { column: groupBy === 'dateCreated' ? 'date_created' : 'date_updated' }, bucket: dateBucket ?? 'month' };
    }
    const field = isId('property', groupBy) ? byId.get(groupBy) : undefined;
    if (!field) throw invalid('groupBy', `"${groupBy.slice(0, 64)}" is not a live property of this entity, ownerId, tags, dateCreated or dateUpdated`);
    if (masked && field.isMasked) throw errors.forbidden(`Property ${groupBy} is masked: grouping by it needs the ADMIN role.`);
    switch (field.fieldType) {
      case 'DROPDOWN':
      case 'RADIO': return (notDate(), { kind: 'choice', propertyId: groupBy, key: field.storageKey, options: field.optionValues });
      case 'MULTI_CHECKBOX': return (notDate(), { kind: 'multi', propertyId: groupBy, key: field.storageKey, options: field.optionValues });
      case 'CHECKBOX': return (notDate(), { kind: 'checkbox', propertyId: groupBy, key: field.storageKey });
      case 'DATE':
      case 'DATETIME': return { kind: 'date', source: { propertyId: groupBy, key: field.storageKey, fieldType: field.fieldType }, bucket: dateBucket ?? 'month' };
      default:
        throw invalid('groupBy', `property ${groupBy} is ${field.fieldType}; group by a DROPDOWN, RADIO, MULTI_CHECKBOX, CHECKBOX, DATE or DATETIME property, ownerId, tags, dateCreated or dateUpdated`);
    }
  }

  function numberProperty(byId: Map<string, RecordField>, masked: boolean, propertyId: string | null | undefined, path: string, op: string): string {
    if (propertyId === null || propertyId === undefined) throw invalid(path, `${op} needs a NUMBER propertyId`);
    const field = isId('property', propertyId) ? byId.get(propertyId) : undefined;
    if (!field) throw invalid(path, `"${propertyId.slice(0, 64)}" is not a live property of this entity`);
    if (field.fieldType !== 'NUMBER') throw invalid(path, `property ${propertyId} is ${field.fieldType}; ${op} needs a NUMBER property`);
    if (masked && field.isMasked) throw errors.forbidden(`Property ${propertyId} is masked: aggregating it needs the ADMIN role.`);
    return propertyId;
  }

  /** An aggregate reads every matching record: with FULL_SCAN_SETTINGS (JIT off). */
  async function run<R>(tenant: TenantDb, statement: RawBuilder<R>): Promise<R[]> {
    try {
      return await tenant.transaction(async (tx) => {
        await tx.executeRaw(FULL_SCAN_SETTINGS);
        return (await tx.executeRaw(statement)).rows;
      });
    } catch (error) {
      // A zone ICU knows but the database's tz data does not.
      if (error instanceof Error && /time zone .* not recognized/i.test(error.message)) throw invalid('timeZone', 'not known to the database');
      throw error;
    }
  }

  return {
    async aggregate(tenant, caller, request) {
      await entities.requireUsable(tenant, caller, request.entityId);
      const fields = await properties.recordFields(tenant, request.entityId);
      const byId = new Map(fields.map((f) => [f.propertyId, f]));
      const masked = caller.role === 'MEMBER';

      const timeZone = checkTimeZone(request.timeZone ?? 'UTC');
      const grouping = resolveGrouping(request, byId, masked);
      const metricsIn = request.metrics?.length ? request.metrics : [{ op: 'count' as const }];
      if (metricsIn.length > MAX_METRICS) throw invalid('metrics', `at most ${MAX_METRICS} metrics`);
      const metrics = metricsIn.map((m, i) => {
        if (m.op === 'count') {
          if (m.propertyId !== undefined && m.propertyId !== null) throw invalid(`metrics[${i}].propertyId`, 'count takes no propertyId');
          return { op: m.op, propertyId: null };
        }
        return { op: m.op, propertyId: numberProperty(byId, masked, m.propertyId, `metrics[${i}].propertyId`, m.op) };
      });
      const weighted = request.weighted && {
        propertyId: numberProperty(byId, masked, request.weighted.propertyId, 'weighted.propertyId', 'a weighted sum'),
        weightPropertyId: numberProperty(byId, masked, request.weighted.weightPropertyId, 'weighted.weightPropertyId', 'a weighted sum'),
      };

      // The filter: the §6 condition group (validated, masked properties refused to MEMBERs) AND the segment.
      const catalog = await relationshipFields.extend(tenant, caller, request.entityId, catalogOf(fields), request.conditionGroup);
      const group: ConditionGroup = request.conditionGroup === undefined
        ? { operator: 'AND', conditions: [] }
        : validateConditionGroup(request.conditionGroup, catalog, 'conditionGroup');
      if (masked) {
        const used = conditionsOf(group).map((c) => c.field.replace(/^data\./, '')).find((id) => byId.get(id)?.isMasked);
        if (used) throw errors.forbidden(`Property ${used} is masked: filtering on it needs the ADMIN role.`);
      }
      let where = compileConditionGroup(group, catalog, { now: clock(), wholeEntity: { accountId: tenant.accountId } });
      if (request.segmentId !== undefined) {
        where = sql<SqlBool>`(${where}) AND (${await deps.segmentFilter(tenant, caller, request.segmentId, request.entityId)})`;
      }

      // Distinct metric properties, each read once as numeric v<i>.
      const metricProperties = [...new Set(metrics.flatMap((m) => (m.propertyId ? [m.propertyId] : [])))];
      const valueOf = (propertyId: string) => sql`(records.data ->> ${dataKey(byId.get(propertyId)!.storageKey)})::numeric`;
      const multi = grouping.kind === 'multi' || grouping.kind === 'tags';
      let inner = tenant.selectFrom('records')
        .where('records.entity_id', '=', request.entityId)
        .where('records.is_deleted', '=', false)
        .where(where)
        .select(sql`${keySql(grouping, timeZone)}`.as(multi ? 'ks' : 'k'));
      metricProperties.forEach((p, i) => {
        inner = inner.select(sql`${valueOf(p)}`.as(`v${i}`));
      });
      if (weighted) inner = inner.select(sql`${valueOf(weighted.propertyId)} * ${valueOf(weighted.weightPropertyId)} / 100`.as('vw'));

      // Only the aggregates the metrics need: numeric sums and min/max are most of the cost.
      const needs = (propertyId: string, ops: MetricOp[]) => metrics.some((m) => m.propertyId === propertyId && ops.includes(m.op));
      const aggregates = sql.join([
        sql`count(*) AS n`,
        ...metricProperties.flatMap((propertyId, i) => [
          ...(needs(propertyId, ['sum', 'avg']) ? [sql.raw(`sum(t.v${i})::text AS s${i}`), sql.raw(`count(t.v${i}) AS c${i}`)] : []),
          ...(needs(propertyId, ['min']) ? [sql.raw(`min(t.v${i})::text AS lo${i}`)] : []),
          ...(needs(propertyId, ['max']) ? [sql.raw(`max(t.v${i})::text AS hi${i}`)] : []),
        ]),
        ...(weighted ? [sql.raw('sum(t.vw)::text AS w')] : []),
      ]);
      const hasWeighted = weighted !== undefined;
      const fold = (row: RawRow) => foldRow(row, metricProperties.length, hasWeighted);
      // Choice keys are joined to the option list (a VALUES list) and grouped by it: PostgreSQL has no
      // statistics inside the JSONB document and would plan GROUP BY data->>'P' for a million groups
      // (a serial hash or a sort); grouped by a VALUES column it knows there are a few, and runs a
      // parallel partial aggregate. Values outside the options fall into the null bucket.
      const optionList = (options: readonly string[]) => sql`(VALUES ${sql.join(options.map((o) => sql`(${o}::text)`))}) AS o(v)`;
      const choices = grouping.kind === 'choice' ? grouping.options : grouping.kind === 'multi' ? grouping.options : grouping.kind === 'checkbox' ? ['true', 'false'] : [];

      let rows: RawRow[] = [];
      let total: Folded;
      if (grouping.kind === 'none' || ((grouping.kind === 'choice' || grouping.kind === 'multi') && choices.length === 0)) {
        const [row] = await run(tenant, sql<RawRow>`SELECT NULL::text AS k, ${aggregates} FROM (${inner}) AS t`);
        total = fold(row!);
        if (grouping.kind !== 'none') rows = [row!];
      } else if (multi) {
        const source = grouping.kind === 'tags'
          ? sql`(${inner}) AS t LEFT JOIN LATERAL unnest(t.ks) AS g(k) ON TRUE`
          // Each option joined to the records holding it (jsonb `?`: one probe per record and option, no arrays built).
          : sql`(${inner}) AS t LEFT JOIN ${optionList(choices)} ON t.ks ? o.v`;
        const key = grouping.kind === 'tags' ? sql`g.k` : sql`o.v`;
        rows = await run(tenant, sql<RawRow>`
          WITH grouped AS MATERIALIZED (SELECT ${key} AS k, ${aggregates} FROM ${source} GROUP BY ${key})
          SELECT * FROM grouped LIMIT ${MAX_BUCKETS + 1}`);
        const [row] = await run(tenant, sql<RawRow>`SELECT NULL::text AS k, ${aggregates} FROM (${inner}) AS t`);
        total = fold(row!);
      } else if (choices.length) {
        rows = await run(tenant, sql<RawRow>`SELECT o.v AS k, ${aggregates} FROM (${inner}) AS t LEFT JOIN ${optionList(choices)} ON o.v = t.k GROUP BY o.v`);
        total = rows.map(fold).reduce(mergeFolded, emptyFolded(metricProperties.length));
      } else {
        // Owners and date buckets. MATERIALIZED: planned for all groups (a hash), not for the first 10,001 (a sort).
        rows = await run(tenant, sql<RawRow>`
          WITH grouped AS MATERIALIZED (SELECT t.k, ${aggregates} FROM (${inner}) AS t GROUP BY t.k)
          SELECT * FROM grouped LIMIT ${MAX_BUCKETS + 1}`);
        total = rows.map(fold).reduce(mergeFolded, emptyFolded(metricProperties.length));
      }
      if (rows.length > MAX_BUCKETS) {
        throw invalid(request.dateBucket ? 'dateBucket' : 'groupBy', `more than ${MAX_BUCKETS} groups; use a coarser dateBucket or a narrower filter`);
      }

      // Buckets in a stable order; choice options, checkbox true/false and their "no value" bucket listed even when empty.
      const found = new Map<string | null, Folded>(rows.map((row) => [row.k === null ? null : String(row.k), fold(row)]));
      let keys: (string | null)[];
      switch (grouping.kind) {
        case 'none': keys = []; break;
        case 'choice':
        case 'multi': keys = [...grouping.options, null]; break;
        case 'checkbox': keys = ['true', 'false', null]; break;
        case 'date': {
          const valued = [...found.keys()].filter((k): k is string => k !== null).sort();
          const filled = valued.length ? keyRange(valued[0]!, valued[valued.length - 1]!, grouping.bucket, MAX_FILLED_BUCKETS) : [];
          keys = [...(filled ?? valued), ...(found.has(null) ? [null] : [])];
          break;
        }
        default: {
          // Owners and tags: largest first, then by key; "no value" last.
          const valued = [...found.entries()].filter(([k]) => k !== null)
            .sort(([ka, a], [kb, b]) => b.count - a.count || (ka! < kb! ? -1 : 1)).map(([k]) => k);
          keys = [...valued, ...(found.has(null) ? [null] : [])];
        }
      }
      const statsIndex = new Map(metricProperties.map((p, i) => [p, i]));
      const present = (f: Folded): AggregateValues => ({
        count: f.count,
        values: metrics.map((m) => {
          if (m.op === 'count') return f.count;
          const s = f.stats[statsIndex.get(m.propertyId!)!]!;
          switch (m.op) {
            case 'sum': return s.sum === null ? 0 : Number(s.sum);
            case 'avg': return s.count === 0 || s.sum === null ? null : Number(s.sum) / s.count;
            case 'min': return s.min === null ? null : Number(s.min);
            case 'max': return s.max === null ? null : Number(s.max);
          }
        }),
      });
      const exactOf = (f: Folded) => ({
        sums: metrics.map((m) => (m.op === 'sum' ? f.stats[statsIndex.get(m.propertyId!)!]!.sum ?? '0' : null)),
        weighted: hasWeighted ? f.weighted ?? '0' : null,
      });

      let labels = new Map<string, string>();
      if (grouping.kind === 'choice' || grouping.kind === 'multi') {
        try {
          const property = await properties.get(tenant, caller, grouping.propertyId);
          labels = new Map(property.options.map((o) => [o.value, o.label]));
        } catch (error) {
          if (!(error instanceof AppError)) throw error;
        }
      }

      const empty = emptyFolded(metricProperties.length);
      const exactBuckets = new Map<string | null, { sums: (string | null)[]; weighted: string | null }>();
      const buckets: AggregateBucket[] = keys.map((key) => {
        const f = found.get(key) ?? empty;
        exactBuckets.set(key, exactOf(f));
        const label = key === null ? undefined : labels.get(key);
        return { key, ...(label === undefined ? {} : { label }), ...present(f) };
      });

      return {
        entityId: request.entityId,
        groupBy: request.groupBy ?? null,
        dateBucket: grouping.kind === 'date' ? grouping.bucket : null,
        timeZone,
        metrics,
        total: present(total),
        buckets,
        exact: { buckets: exactBuckets, total: exactOf(total) },
      };
    },
  };
}
