import Type from 'typebox';
import { responses } from '../../http/schemas/common.ts';
import type { TypedApp } from '../../http/route-types.ts';
import { COUNT_LIMITS, PLAN_LIMIT_KEYS } from './plan-limits.ts';
import type { QuotaService } from './quota.service.ts';

const Usage = Type.Object({
  accountId: Type.String(),
  limits: Type.Array(Type.Object({
    key: Type.String({ description: 'Plan limit key (API.md §1.8)' }),
    max: Type.Union([Type.Number(), Type.Boolean(), Type.Null()], { description: 'null = unlimited' }),
    used: Type.Union([Type.Integer(), Type.Null()], { description: 'Current usage; per-entity limits report the fullest entity; null for switches' }),
  })),
}, { title: 'Usage' });

export async function usageRoutes(app: TypedApp, { quota }: { quota: QuotaService }) {
  app.get('/usage', {
    schema: { tags: ['Plans'], summary: 'Every plan limit with its current usage', response: responses({ 200: Usage }, []) },
  }, async (request) => {
    const { limits, used } = await quota.usage(request.tenant);
    return {
      accountId: request.caller.accountId,
      limits: PLAN_LIMIT_KEYS.map((key) => ({
        key,
        max: limits[key] ?? null,
        used: key in COUNT_LIMITS ? used.get(key) ?? 0 : null,
      })),
    };
  });
}
