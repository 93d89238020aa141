/**
 * Plan limit keys (API.md §1.8). Numeric limits count things; `records.exportEnabled` is a
 * switch. A key absent from an account's plan is unlimited (the self-hosted default).
 */
export const COUNT_LIMITS = {
  'records.max': { scope: 'account' },
  'entities.max': { scope: 'account' },
  'relationships.max': { scope: 'account' },
  'apiKeys.max': { scope: 'account' },
  'properties.maxPerEntity': { scope: 'entity' },
  'relationshipTypes.maxPerEntity': { scope: 'entity' },
  'segments.maxPerEntity': { scope: 'entity' },
} as const;

export const SETTING_LIMITS = {
  'records.exportEnabled': 'boolean',
  'rateLimit.perSecond': 'number',
} as const;

export type CountLimit = keyof typeof COUNT_LIMITS;
export type SettingLimit = keyof typeof SETTING_LIMITS;
export type PlanLimits = Partial<Record<CountLimit | 'rateLimit.perSecond', number> & Record<'records.exportEnabled', boolean>>;

export const PLAN_LIMIT_KEYS = [...Object.keys(COUNT_LIMITS), ...Object.keys(SETTING_LIMITS)] as (CountLimit | SettingLimit)[];

/** Validates a partial plan; returns the problems (empty when valid). */
export function planProblems(limits: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(limits)) {
    if (key in COUNT_LIMITS || key === 'rateLimit.perSecond') {
      if (value !== null && (typeof value !== 'number' || !Number.isInteger(value) || value < 0)) {
        problems.push(`${key} must be a non-negative integer or null (unlimited)`);
      }
    } else if (key === 'records.exportEnabled') {
      if (value !== null && typeof value !== 'boolean') problems.push(`${key} must be true, false or null`);
    } else {
      problems.push(`unknown plan limit "${key}"; known: ${PLAN_LIMIT_KEYS.join(', ')}`);
    }
  }
  return problems;
}
