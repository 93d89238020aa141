import type { FastifyInstance } from 'fastify';
import { errors } from '../../errors.ts';
import type { RateLimiter } from '../../lib/rate-limiter.ts';

/** `100 requests per 1s`, `6000 requests per 1m`. */
function per(windowMs: number): string {
  if (windowMs % 3_600_000 === 0) return `${windowMs / 3_600_000}h`;
  if (windowMs % 60_000 === 0) return `${windowMs / 60_000}m`;
  return `${windowMs / 1000}s`;
}

/**
 * Rate limits per API key and per account (docs/reliability.md, "Rate limiting"). Registered in
 * the authenticated /crm-core/v1 scope right after registerAuth, so only authenticated requests
 * count, and a forged request naming someone else's API key cannot spend that key's budget.
 * /healthz, /readyz, /metrics and the public OpenAPI document are outside that scope.
 *
 * Every answer carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (seconds) for
 * the limit closest to exhaustion; a refused request is 429 TooManyRequests with Retry-After.
 */
export function registerRateLimit(app: FastifyInstance, deps: { limiter: RateLimiter }): void {
  app.addHook('onRequest', async (request, reply) => {
    const decision = await deps.limiter.check(request.caller.accountId, request.caller.apiKey);
    if (!decision) return; // store unreachable: fail open (logged by the limiter)
    const headers = {
      'ratelimit-limit': String(decision.limit),
      'ratelimit-remaining': String(decision.remaining),
      'ratelimit-reset': String(decision.resetSeconds),
    };
    if (!decision.allowed) {
      const who = decision.refusedBy === 'key' ? 'this API key' : 'this account';
      throw errors.tooManyRequests(
        `Rate limit exceeded for ${who}: ${decision.limit} requests per ${per(decision.windowMs)}. Retry after ${decision.resetSeconds} s.`,
        { ...headers, 'retry-after': String(decision.resetSeconds) },
      );
    }
    reply.headers(headers);
  });
}
