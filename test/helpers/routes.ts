/** A route the app registers, as Fastify prints it. */
export interface Route {
  method: string;
  /** The template as registered: `/crm-core/v1/members/:memberId`, `/docs/*`. */
  path: string;
  /** Its path parameters, `*` for a trailing wildcard. */
  params: string[];
}

/**
 * Every (method, path) the app registers, read from Fastify's route tree
 * (`printRoutes({ commonPrefix: false })`, one node per line, children indented by 4).
 */
export function registeredRoutes(tree: string): Route[] {
  const routes: Route[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    const parent = stack[depth - 1] ?? '';
    // The tree prints a wildcard child of `/docs` as `*`; the route is `/docs/*`.
    const path = m[2] === '*' && !parent.endsWith('/') ? `${parent}/*` : `${parent}${m[2]}`;
    stack[depth] = path;
    if (!m[3]) continue;
    for (const method of m[3].split(',').map((s) => s.trim())) {
      const params = [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map((p) => p[1]!);
      if (path.endsWith('*')) params.push('*');
      routes.push({ method, path, params });
    }
  }
  return routes;
}
