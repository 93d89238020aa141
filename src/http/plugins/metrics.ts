import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Route label of requests refused before routing: bad percent-encoding or an over-long path
 * parameter (Fastify's frameworkErrors), or bytes Node's HTTP parser refused (clientErrorHandler).
 */
export const UNROUTED = 'unrouted';
/** Method label when the HTTP parser refused the request before reading a method. */
export const UNPARSED_METHOD = 'UNPARSED';

/**
 * Prometheus metrics for this process: request counts and latencies by route template (never
 * the raw URL, which would explode label cardinality with IDs) plus Node's default metrics.
 * Created before the Fastify instance, so that the handlers of requests refused before routing,
 * which no hook sees, count them too.
 */
export interface HttpMetrics {
  registry: Registry;
  /** One answered request; `seconds` is absent when the start is unknown (a parser refusal). */
  observe(method: string, route: string, status: number, seconds?: number): void;
}

export function createHttpMetrics(): HttpMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'crm_core_' });
  const requests = new Counter({
    name: 'crm_core_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'crm_core_http_request_duration_seconds',
    help: 'Time from receiving a request to sending its response',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return {
    registry,
    observe(method, route, status, seconds) {
      requests.inc({ method, route, status: String(status) });
      if (seconds !== undefined) duration.observe({ method, route }, seconds);
    },
  };
}

/** Counts every request that reached routing (matched or the 404 handler's 'unmatched'). */
export function registerMetrics(app: FastifyInstance, metrics: HttpMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.observe(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });
}
