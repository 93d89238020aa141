import { AppError, errors } from '../../errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { EntitiesService } from '../entities/entities.service.ts';
import type { Entity } from '../entities/entities.schemas.ts';
import type { PropertiesService } from '../properties/properties.service.ts';
import { addDecimal, checkTimeZone, type AggregateRequest, type AggregateResult, type MetricSpec, type RecordAggregates } from '../records/records.aggregate.ts';
import type { CrmRecord } from '../records/records.schemas.ts';
import type { RecordsService } from '../records/records.service.ts';

/**
 * Insights (API.md §10 [X]): the aggregate endpoint, the board view computed from an entity's
 * `viewSettings.board`, and the evaluation of its stored `insightWidgets`. Everything goes
 * through the entities, properties and records services (access, masking, trash and segment
 * rules are theirs); this module owns no table.
 */

export type BoardCard = CrmRecord & { isRotting: boolean };

export interface Totals { count: number; sum: number | null; weightedSum: number | null }

export interface BoardColumn extends Totals {
  value: string | null;
  label: string | null;
  color: string | null;
  closed: 'WON' | 'LOST' | null;
  aggregate: number | null;
  cards: BoardCard[];
  nextKey?: string;
}

export interface Board {
  entityId: string;
  groupByPropertyId: string;
  sumPropertyId: string | null;
  weightPropertyId: string | null;
  aggregationType: string;
  sortByPropertyId: string | null;
  sortOrder: string;
  dealRotting: { enabled: boolean; days: number };
  columns: BoardColumn[];
  total: Totals;
  closedWon: Totals;
  closedLost: Totals;
}

export interface EvaluatedWidget {
  widgetId: string;
  type: string;
  title: string;
  metric: { op: MetricSpec['op']; propertyId: string | null };
  groupBy: string | null;
  dateBucket: 'day' | 'week' | 'month' | null;
  segmentId: string | null;
  data?: AggregateResult;
  error?: { errorCode: string; errorMessage: string };
}

export interface InsightsService {
  aggregate(tenant: TenantDb, caller: Caller, request: AggregateRequest): Promise<AggregateResult>;
  board(tenant: TenantDb, caller: Caller, entityId: string, options?: { limit?: number }): Promise<Board>;
  boardCards(tenant: TenantDb, caller: Caller, entityId: string, startKey: string, limit?: number): Promise<{ data: BoardCard[]; nextKey?: string }>;
  widgets(tenant: TenantDb, caller: Caller, entityId: string, options?: { timeZone?: string }): Promise<{ entityId: string; timeZone: string; widgets: EvaluatedWidget[] }>;
}

export interface InsightsServiceDeps {
  entities: EntitiesService;
  properties: PropertiesService;
  records: RecordsService;
  aggregates: RecordAggregates;
  clock: Clock;
}

const DAY_MS = 86_400_000;

/** A column's cursor: which column, and the records keyset cursor within it. */
function encodeColumnKey(column: string | null, key: string): string {
  return Buffer.from(JSON.stringify({ c: column, k: key })).toString('base64url');
}

function decodeColumnKey(startKey: string): { column: string | null; key: string } {
  try {
    const parsed = JSON.parse(Buffer.from(startKey, 'base64url').toString('utf8')) as { c?: unknown; k?: unknown };
    if ((typeof parsed.c === 'string' || parsed.c === null) && typeof parsed.k === 'string') return { column: parsed.c, key: parsed.k };
  } catch { /* fall through */ }
  throw errors.validation('startKey: not a board column cursor', [{ path: 'startKey', message: 'malformed' }]);
}

const toNumber = (exact: string | null | undefined): number | null => (exact === null || exact === undefined ? null : Number(exact));

export function createInsightsService(deps: InsightsServiceDeps): InsightsService {
  const { entities, properties, records, aggregates, clock } = deps;

  function boardSettings(entity: Entity) {
    const board = entity.viewSettings.board;
    if (board.groupByPropertyId === null) {
      throw errors.validation('viewSettings.board.groupByPropertyId: the entity has no board (set viewSettings.board.groupByPropertyId)', [
        { path: 'viewSettings.board.groupByPropertyId', message: 'not set' },
      ]);
    }
    return { ...board, groupByPropertyId: board.groupByPropertyId };
  }

  type Settings = ReturnType<typeof boardSettings>;

  /** One column's page of cards: GET /records with the column's filter and the board's sort. */
  async function cardsOf(tenant: TenantDb, caller: Caller, entityId: string, settings: Settings, column: string | null, limit: number, startKey?: string) {
    const filter = column === null ? { op: 'isEmpty' } : { op: 'eq', value: column };
    const page = await records.list(tenant, caller, {
      entityId,
      limit,
      ...(startKey === undefined ? {} : { startKey }),
      filters: JSON.stringify({ [settings.groupByPropertyId]: filter }),
      sortField: settings.sortByPropertyId ?? 'dateCreated',
      sortDirection: settings.sortOrder === 'ASC' ? 'asc' : 'desc',
    });
    const closed = column !== null && (settings.closedWonValues.includes(column) || settings.closedLostValues.includes(column));
    const rotBefore = clock() - settings.dealRotting.days * DAY_MS;
    const cards: BoardCard[] = page.data.map((record) => ({
      ...record,
      isRotting: settings.dealRotting.enabled && !closed && Date.parse(record.dateUpdated) < rotBefore,
    }));
    return { cards, nextKey: page.nextKey === undefined ? undefined : encodeColumnKey(column, page.nextKey) };
  }

  return {
    async aggregate(tenant, caller, request) {
      const { exact: _exact, ...result } = await aggregates.aggregate(tenant, caller, request);
      return result;
    },

    async board(tenant, caller, entityId, options = {}) {
      const entity = await entities.get(tenant, caller, entityId);
      const settings = boardSettings(entity);
      const limit = options.limit ?? 20;
      const sumId = settings.sumPropertyId;
      const weightId = settings.weightPropertyId;
      const metrics: MetricSpec[] = [];
      if (sumId) {
        metrics.push({ op: 'sum', propertyId: sumId });
        if (settings.aggregationType !== 'COUNT' && settings.aggregationType !== 'SUM') {
          metrics.push({ op: settings.aggregationType.toLowerCase() as MetricSpec['op'], propertyId: sumId });
        }
      }
      const result = await aggregates.aggregate(tenant, caller, {
        entityId,
        groupBy: settings.groupByPropertyId,
        metrics: metrics.length ? metrics : [{ op: 'count' }],
        ...(sumId && weightId ? { weighted: { propertyId: sumId, weightPropertyId: weightId } } : {}),
      });
      const property = await properties.get(tenant, caller, settings.groupByPropertyId);
      const optionsByValue = new Map(property.options.map((o) => [o.value, o]));
      const won = new Set(settings.closedWonValues);
      const lost = new Set(settings.closedLostValues);

      // Exact totals: the buckets' exact sums added as decimals.
      const zero = () => ({ count: 0, sum: sumId ? '0' : null as string | null, weighted: sumId && weightId ? '0' : null as string | null });
      const acc = { total: zero(), won: zero(), lost: zero() };
      const columns: BoardColumn[] = [];
      // Columns are the options (and "none"); a stray value outside the options has no column.
      for (const bucket of result.buckets.filter((b) => b.key === null || optionsByValue.has(b.key))) {
        const exact = result.exact.buckets.get(bucket.key)!;
        const closed = bucket.key !== null && won.has(bucket.key) ? 'WON' : bucket.key !== null && lost.has(bucket.key) ? 'LOST' : null;
        const sum = sumId ? exact.sums[0]! : null;
        for (const target of [acc.total, ...(closed === 'WON' ? [acc.won] : closed === 'LOST' ? [acc.lost] : [])]) {
          target.count += bucket.count;
          target.sum = sumId ? addDecimal(target.sum, sum) : null;
          target.weighted = exact.weighted === null ? null : addDecimal(target.weighted, exact.weighted);
        }
        let aggregate: number | null;
        if (!sumId || settings.aggregationType === 'COUNT') aggregate = bucket.count;
        else if (settings.aggregationType === 'SUM') aggregate = bucket.values[0]!;
        else aggregate = bucket.values[1]!;
        const option = bucket.key === null ? undefined : optionsByValue.get(bucket.key);
        const { cards, nextKey } = await cardsOf(tenant, caller, entityId, settings, bucket.key, limit);
        columns.push({
          value: bucket.key,
          label: option?.label ?? null,
          color: option?.color ?? null,
          closed,
          count: bucket.count,
          sum: toNumber(sum),
          weightedSum: toNumber(exact.weighted),
          aggregate,
          cards,
          ...(nextKey === undefined ? {} : { nextKey }),
        });
      }
      const totals = (t: ReturnType<typeof zero>): Totals => ({ count: t.count, sum: toNumber(t.sum), weightedSum: toNumber(t.weighted) });
      return {
        entityId,
        groupByPropertyId: settings.groupByPropertyId,
        sumPropertyId: sumId,
        weightPropertyId: weightId,
        aggregationType: settings.aggregationType,
        sortByPropertyId: settings.sortByPropertyId,
        sortOrder: settings.sortOrder,
        dealRotting: settings.dealRotting,
        columns,
        total: totals(acc.total),
        closedWon: totals(acc.won),
        closedLost: totals(acc.lost),
      };
    },

    async boardCards(tenant, caller, entityId, startKey, limit = 20) {
      const entity = await entities.get(tenant, caller, entityId);
      const settings = boardSettings(entity);
      const { column, key } = decodeColumnKey(startKey);
      if (column !== null) {
        const property = await properties.get(tenant, caller, settings.groupByPropertyId);
        if (!property.options.some((o) => o.value === column)) {
          throw errors.validation(`startKey: "${column.slice(0, 100)}" is no longer a column of the board`, [{ path: 'startKey', message: 'unknown column' }]);
        }
      }
      const { cards, nextKey } = await cardsOf(tenant, caller, entityId, settings, column, limit, key);
      return nextKey === undefined ? { data: cards } : { data: cards, nextKey };
    },

    async widgets(tenant, caller, entityId, options = {}) {
      const entity = await entities.get(tenant, caller, entityId);
      const timeZone = checkTimeZone(options.timeZone ?? 'UTC');
      const widgets: EvaluatedWidget[] = [];
      // One after the other: a dashboard of many widgets must not take the whole connection pool.
      for (const w of entity.insightWidgets) {
        const base: EvaluatedWidget = {
          widgetId: w.widgetId, type: w.type, title: w.title, metric: w.metric, groupBy: w.groupBy, dateBucket: w.dateBucket, segmentId: w.segmentId,
        };
        try {
          const { exact: _exact, ...data } = await aggregates.aggregate(tenant, caller, {
            entityId,
            groupBy: w.groupBy,
            dateBucket: w.dateBucket,
            timeZone,
            metrics: [{ op: w.metric.op, propertyId: w.metric.propertyId }],
            ...(w.segmentId === null ? {} : { segmentId: w.segmentId }),
          });
          widgets.push({ ...base, data });
        } catch (error) {
          if (!(error instanceof AppError) || error.status >= 500) throw error;
          widgets.push({ ...base, error: { errorCode: error.code, errorMessage: error.message } });
        }
      }
      return { entityId, timeZone, widgets };
    },
  };
}
