import { errors } from '../errors.ts';

/**
 * Row versions for optimistic concurrency (docs/reliability.md, "Optimistic concurrency").
 *
 * Records, entities, properties and segments carry a `version` column that every UPDATE of the
 * row increments (migration 0010). Services tag the objects they return with it (`withVersion`),
 * under a symbol so it never reaches the JSON body (the body shapes are Solapi's), and the HTTP
 * layer sends it as `ETag: "<version>"` (src/http/etag.ts). A PATCH or DELETE may carry the
 * client's `If-Match`, parsed into a Precondition; the service checks it with `assertPrecondition`
 * against the row it has locked (SELECT … FOR UPDATE) inside the transaction that then writes,
 * so no other write can slip in between the check and the write.
 */
export const VERSION: unique symbol = Symbol('crm-core.version');

/** An API object with the version of the row it was read from. */
export type Versioned<T> = T & { readonly [VERSION]: number };

/** Tags `value` (in place) with its row version; the tag survives object spread, not JSON. */
export function withVersion<T extends object>(value: T, version: number): Versioned<T> {
  return Object.assign(value, { [VERSION]: version });
}

/** The version `value` was tagged with, if it is a tagged object. */
export function versionOf(value: unknown): number | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const version = (value as { [VERSION]?: unknown })[VERSION];
  return typeof version === 'number' ? version : undefined;
}

/**
 * What a client's If-Match demands: `any` (`*`: the resource exists), or that the current
 * version be one of `versions` (the strong entity-tags it sent, their opaque text; weak tags never
 * match under If-Match's strong comparison and are dropped when parsing).
 */
export type Precondition = { any: true } | { any: false; tags: readonly string[] };

/** The entity-tag text of a version (what goes between the quotes of the ETag). */
export const versionTag = (version: number): string => String(version);

/** Throws 412 PreconditionFailed when `precondition` is given and `version` does not satisfy it. */
export function assertPrecondition(precondition: Precondition | undefined, version: number, what: string): void {
  if (precondition === undefined || precondition.any) return;
  if (precondition.tags.includes(versionTag(version))) return;
  throw errors.preconditionFailed(what);
}
