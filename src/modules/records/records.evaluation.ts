import { sql, type RawBuilder, type SqlBool } from 'kysely';
import { AppError, errors } from '../../errors.ts';
import type { TenantDb } from '../../db/tenant.ts';
import type { Clock } from '../../lib/clock.ts';
import { compileConditionGroup } from '../../query/compile.ts';
import type { Condition, ConditionGroup } from '../../query/types.ts';
import { catalogOf, conditionsOf, validateConditionGroup, type Catalog } from '../../query/validate.ts';
import type { Caller } from '../api-keys/api-keys.service.ts';
import type { PropertiesService, RecordField } from '../properties/properties.service.ts';
import type { RelationshipFieldsLoader } from '../relationships/relationship-fields.ts';
import * as repo from './records.repository.ts';

/** How a group is compiled: for any statement (per record), or for one over every record of the entity. */
export type SqlForm = 'perRecord' | 'wholeEntity';

/**
 * Condition groups stored by other modules (segments), evaluated over an entity's records.
 *
 * A stored group is re-validated against the entity as it is now, so a segment whose property
 * was deleted or changed type is reported invalid (and matches nothing) instead of failing. It is
 * resolved with the account's view (no caller): a segment means the same records to everyone
 * who may read it; who may read it is checked by the caller's own request.
 */
export type Resolved = { valid: true; group: ConditionGroup; catalog: Catalog } | { valid: false; reason: string };

/** An annotated condition tree: what each node evaluated to for one record (segment explain). */
export type ExplainedNode =
  | { operator: 'AND' | 'OR'; passed: boolean; conditions: ExplainedNode[] }
  | (Condition & { passed: boolean });

export interface ConditionEvaluation {
  /** Validates a group for the entity: the group, or a 400 naming `path` (`conditions.…`). */
  checkConditions(tenant: TenantDb, entityId: string, conditions: unknown, path?: string): Promise<ConditionGroup>;
  /** The group as SQL over `records` (per record), or undefined when it no longer fits the entity. */
  conditionsSql(tenant: TenantDb, entityId: string, conditions: unknown): Promise<RawBuilder<SqlBool> | undefined>;
  /**
   * Both SQL forms, validated once: 'wholeEntity' is for the WHERE of a statement over all the
   * entity's records (a count), where relationship conditions are computed once as a set
   * (compile.ts, wholeEntity); a preview pages with one form and counts with the other.
   */
  conditionsSqlForms(tenant: TenantDb, entityId: string, conditions: unknown): Promise<Record<SqlForm, RawBuilder<SqlBool>> | undefined>;
  /**
   * Each group as SQL over `records` (an invalid group as FALSE: it matches nothing), validated
   * against one catalog. `fields`: the entity's live properties when the caller already holds
   * them (a record write does). For segment maintenance, which evaluates them with memberships.
   */
  compileAll(tenant: TenantDb, entityId: string, groups: readonly unknown[], fields?: readonly RecordField[]): Promise<RawBuilder<SqlBool>[]>;
  /** `SELECT record_id, record_created` of the live records matching, for a set-based rebuild; undefined when invalid. */
  matchingIds(tenant: TenantDb, entityId: string, conditions: unknown): Promise<ReturnType<typeof repo.matchingRecordIds> | undefined>;
  /** Exact count of the live records matching `where` (from conditionsSql or a membership filter). */
  countWhere(tenant: TenantDb, entityId: string, where: RawBuilder<SqlBool>): Promise<number>;
  /** Every node of the group evaluated for one live record; undefined when the record is not live in the entity. */
  explain(tenant: TenantDb, entityId: string, group: ConditionGroup, recordId: string): Promise<ExplainedNode | undefined>;
  resolve(tenant: TenantDb, entityId: string, conditions: unknown): Promise<Resolved>;
  /**
   * The entity's live properties read without the record-values lock that record writes share
   * with property conversions: for evaluating *another* entity's records (segment maintenance
   * across links), where waiting for that entity's conversion while holding segment locks the
   * conversion's rebuild needs would deadlock. The segment locks already order the two.
   */
  fieldsWithoutLock(tenant: TenantDb, entityId: string): Promise<RecordField[]>;
  /** Many stored groups of one entity at once: its properties are read once (segment lists). */
  resolveAll(tenant: TenantDb, entityId: string, groups: readonly unknown[]): Promise<Resolved[]>;
  /**
   * 403 when the caller may not filter on a property the group uses: a MEMBER and a masked
   * property of the entity, or of the related entity inside a relationship `where` (either
   * would reveal the values through counts and matches).
   */
  assertMayFilter(tenant: TenantDb, caller: Caller, entityId: string, group: ConditionGroup): Promise<void>;
}

const ACCOUNT_VIEW: Caller = { accountId: '', memberId: '', role: 'OWNER', apiKey: '', workspaceId: null };

function isGroup(node: Condition | ConditionGroup): node is ConditionGroup {
  return 'conditions' in node;
}

/** Every node of the tree in pre-order (the group itself first). */
function nodesOf(group: ConditionGroup): (Condition | ConditionGroup)[] {
  const out: (Condition | ConditionGroup)[] = [group];
  for (const node of group.conditions) {
    if (isGroup(node)) out.push(...nodesOf(node));
    else out.push(node);
  }
  return out;
}

export function createConditionEvaluation(deps: { properties: PropertiesService; relationshipFields: RelationshipFieldsLoader; clock: Clock }): ConditionEvaluation {
  const { properties, relationshipFields, clock } = deps;

  /** The entity's catalog for all of `inputs` at once: its properties read once, the relationship types they name added. */
  async function catalogFor(tenant: TenantDb, entityId: string, inputs: readonly unknown[], known?: readonly RecordField[]): Promise<Catalog> {
    const fields = known ?? await properties.recordFields(tenant, entityId);
    return relationshipFields.extend(tenant, { ...ACCOUNT_VIEW, accountId: tenant.accountId }, entityId, catalogOf(fields), inputs);
  }

  function validateWith(catalog: Catalog, conditions: unknown, path: string): Resolved {
    try {
      return { valid: true, group: validateConditionGroup(conditions, catalog, path), catalog };
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return { valid: false, reason: error.message };
      throw error;
    }
  }

  async function resolveAll(tenant: TenantDb, entityId: string, groups: readonly unknown[], path = 'conditions', known?: readonly RecordField[]): Promise<Resolved[]> {
    let catalog: Catalog;
    try {
      catalog = await catalogFor(tenant, entityId, groups, known);
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return groups.map(() => ({ valid: false, reason: error.message }));
      throw error;
    }
    return groups.map((conditions) => validateWith(catalog, conditions, path));
  }

  async function resolve(tenant: TenantDb, entityId: string, conditions: unknown, path = 'conditions'): Promise<Resolved> {
    return (await resolveAll(tenant, entityId, [conditions], path))[0]!;
  }

  const compile = (group: ConditionGroup, catalog: Catalog, wholeEntityOf?: TenantDb) =>
    compileConditionGroup(group, catalog, { now: clock(), ...(wholeEntityOf ? { wholeEntity: { accountId: wholeEntityOf.accountId } } : {}) });

  async function fieldsWithoutLock(tenant: TenantDb, entityId: string): Promise<RecordField[]> {
    return (await properties.liveInfo(tenant, entityId))
      .map((p) => ({ propertyId: p.propertyId, storageKey: p.storageKey, fieldType: p.fieldType, optionValues: p.optionValues, isMasked: false }));
  }

  async function conditionsSql(tenant: TenantDb, entityId: string, conditions: unknown) {
    const resolved = await resolve(tenant, entityId, conditions);
    return resolved.valid ? compile(resolved.group, resolved.catalog) : undefined;
  }

  async function conditionsSqlForms(tenant: TenantDb, entityId: string, conditions: unknown) {
    const resolved = await resolve(tenant, entityId, conditions);
    if (!resolved.valid) return undefined;
    return { perRecord: compile(resolved.group, resolved.catalog), wholeEntity: compile(resolved.group, resolved.catalog, tenant) };
  }

  return {
    resolve: (tenant, entityId, conditions) => resolve(tenant, entityId, conditions),
    resolveAll: (tenant, entityId, groups) => resolveAll(tenant, entityId, groups),

    fieldsWithoutLock,
    conditionsSql,
    conditionsSqlForms,

    async checkConditions(tenant, entityId, conditions, path = 'conditions') {
      const resolved = await resolve(tenant, entityId, conditions, path);
      if (!resolved.valid) throw errors.validation(resolved.reason, [{ path, message: resolved.reason }]);
      return resolved.group;
    },

    async compileAll(tenant, entityId, groups, fields) {
      // One catalog for every group: a write costs the same few queries however many segments watch it.
      return (await resolveAll(tenant, entityId, groups, 'conditions', fields))
        .map((resolved) => (resolved.valid ? compile(resolved.group, resolved.catalog) : sql<SqlBool>`false`));
    },

    async matchingIds(tenant, entityId, conditions) {
      // Rebuilds hold their segment FOR UPDATE, which orders them against conversions of this
      // entity (a conversion rebuilds the entity's segments before it commits): no values lock is
      // needed, and taking one here could deadlock with a conversion of a linked entity.
      const [resolved] = await resolveAll(tenant, entityId, [conditions], 'conditions', await fieldsWithoutLock(tenant, entityId));
      return resolved!.valid ? repo.matchingRecordIds(tenant, entityId, compile(resolved!.group, resolved!.catalog, tenant)) : undefined;
    },

    countWhere: repo.countRecords,

    async assertMayFilter(tenant, caller, entityId, group) {
      if (caller.role !== 'MEMBER') return;
      const fields = await properties.recordFields(tenant, entityId);
      const masked = new Set(fields.filter((f) => f.isMasked).map((f) => f.propertyId));
      const own = conditionsOf(group).map((c) => c.field.replace(/^data\./, '')).find((id) => masked.has(id));
      if (own) throw errors.forbidden(`Property ${own} is masked: filtering on it needs the ADMIN role.`);
      // The caller's own catalog marks the related entities' masked properties: validating with it refuses them in `where`.
      validateConditionGroup(group, await relationshipFields.extend(tenant, caller, entityId, catalogOf(fields), group), 'conditions');
    },

    async explain(tenant, entityId, group, recordId) {
      const resolved = await resolve(tenant, entityId, group);
      if (!resolved.valid) return undefined;
      const nodes = nodesOf(resolved.group);
      const flags = (await repo.evaluateRecords(tenant, entityId, [recordId], nodes.map((node) =>
        isGroup(node) ? compile(node, resolved.catalog) : compile({ operator: 'AND', conditions: [node] }, resolved.catalog)))).get(recordId);
      if (!flags) return undefined;
      let i = 0;
      const annotate = (node: Condition | ConditionGroup): ExplainedNode => {
        const passed = flags[i++]!;
        return isGroup(node)
          ? { operator: node.operator, passed, conditions: node.conditions.map(annotate) }
          : { ...node, passed };
      };
      return annotate(resolved.group);
    },
  };
}
