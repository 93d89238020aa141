import type { FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyInstance {
    /** PUBLIC_BASE_URL (config), e.g. https://crm.example.com; links are built from the request when absent. */
    publicBaseUrl: string | undefined;
  }
}

/**
 * An absolute URL for `path` (which starts with `/`): under PUBLIC_BASE_URL when configured
 * (behind a proxy the request's Host may be internal), else from the request's protocol and Host.
 */
export function absoluteUrl(request: FastifyRequest, path: string): string {
  const base = request.server.publicBaseUrl ?? `${request.protocol}://${request.host}`;
  return `${base.replace(/\/+$/, '')}${path}`;
}
