import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { registeredRoutes, type Route } from '../helpers/routes.ts';

/**
 * Tenant isolation (issue 8 item 1, docs/reliability.md "Tenant isolation"). Two accounts get the
 * same shapes (members, keys, entities, properties, records live and trashed, relationship types,
 * relationships, segments). Then, for every route of the OpenAPI document, account B sends the
 * request it would send for its own resources, once per ID in it with that ID swapped for A's
 * counterpart (and once with all of them swapped):
 * - an ID in the path → 404 NotFound (never 410, 403 or anything else that tells A's ID exists);
 * - an ID only in the body or query → 404, or 400 where the ID is validated as unknown, or for a
 *   bulk endpoint a per-item NotFound with nothing done; never a 2xx that did something, never 5xx;
 * - no answer to B ever contains any of A's IDs (beyond the one B itself sent);
 * - afterwards every row of A, in every table, is unchanged (a catalog-driven snapshot).
 * The same request with B's own IDs (the control) must not be a 404: that proves each attack got
 * as far as the ownership check, so the 404 comes from the tenant boundary.
 *
 * New routes are covered automatically: their path parameters and body fields are resolved by name
 * (KINDS); a route whose request needs more than that gets a RECIPES entry, and the test says so.
 */

const V1 = '/crm-core/v1';
const KINDS = ['member', 'apiKey', 'entity', 'property', 'record', 'relationshipType', 'relationship', 'segment', 'activity', 'importJob', 'exportJob'] as const;
type Kind = (typeof KINDS)[number];

/** One account's resources, index-aligned with the other account's (same shapes). */
interface Shapes {
  account: TestAccount;
  ids: Record<Kind, string[]>;
  /** A board column's nextKey of the account's first entity (its board groups by a dropdown). */
  boardKey?: string;
}

/** Which kind of ID a parameter or field name holds, and which of the account's IDs to use by default. */
function kindOf(name: string): { kind: Kind; index: number } | undefined {
  const base = name.replace(/^(source|target)(?=[A-Z])/, '').replace(/^./, (c) => c.toLowerCase()).replace(/Ids$/, 'Id');
  switch (base) {
    case 'memberId': return { kind: 'member', index: 1 }; // 0 is the OWNER the requests are signed with
    case 'ownerId': return { kind: 'member', index: 0 };
    case 'apiKey': return { kind: 'apiKey', index: 0 };
    case 'entityId': return { kind: 'entity', index: 0 };
    case 'propertyId': return { kind: 'property', index: 0 };
    case 'recordId': return { kind: 'record', index: 0 };
    case 'relationshipTypeId': return { kind: 'relationshipType', index: 0 };
    case 'relationshipId': return { kind: 'relationship', index: 0 };
    case 'segmentId': return { kind: 'segment', index: 0 };
    case 'activityId': return { kind: 'activity', index: 0 };
    default: return undefined;
  }
}

interface Recipe {
  params?: Record<string, string>;
  query?: string;
  body?: unknown;
}

/** Requests that need more than IDs by name: query strings, bodies, trashed resources for restores. */
function recipes(s: Shapes): Record<string, Recipe> {
  const { member, entity, property, record, relationshipType } = s.ids;
  const [E1, E2, E3] = entity;
  const [P1, , P3] = property;
  const [R1, R2, R3, T1, T2] = record;
  const condition = { operator: 'AND', conditions: [{ field: `data.${P1}`, operator: 'eq', value: 'Alpha' }] };
  return {
    'PATCH /members/:memberId': { body: { name: 'Renamed' } },
    'POST /members': { body: { name: 'New member' } },
    'POST /api-keys': { body: { memberId: member[1], name: 'New key' } },
    'POST /entities': { body: { name: 'New entity', slug: 'new-entity', ownerId: member[0] } },
    'PATCH /entities/:entityId': { body: { description: 'changed', ownerId: member[0] } },
    'POST /entities/:entityId/restore': { params: { entityId: E3! } },
    'GET /properties': { query: `entityId=${E1}` },
    'POST /properties': { body: { entityId: E1, name: 'New property', fieldType: 'TEXT' } },
    'POST /properties/bulk': { body: { properties: [{ entityId: E1, name: 'Bulk property', fieldType: 'TEXT' }] } },
    'PATCH /properties/:propertyId': { body: { name: 'Renamed property' } },
    'GET /records': { query: `entityId=${E1}&ownerId=${member[0]}&filters=${encodeURIComponent(JSON.stringify({ [P1!]: { op: 'eq', value: 'Alpha' } }))}` },
    'GET /records/trash': { query: `entityId=${E1}` },
    'POST /records': { body: { entityId: E1, name: 'New record', data: { [P1!]: 'v' }, ownerId: member[0] } },
    'POST /records/bulk': { body: { records: [{ entityId: E1, name: 'Bulk record', data: { [P1!]: 'v' } }] } },
    'POST /records/bulk/update': { body: { records: [{ recordId: R1, name: 'Bulk renamed', data: { [P1!]: 'w' } }] } },
    'POST /records/bulk/delete': { body: { recordIds: [R2], permanent: false } },
    'POST /records/bulk/restore': { body: { recordIds: [R3] } },
    'POST /records/search/advanced': { body: { entityId: E1, conditionGroup: condition } },
    'GET /records/search/fulltext/:entityId': { query: 'q=Alpha' },
    'PATCH /records/:recordId': { body: { name: 'Renamed record', data: { [P1!]: 'y' }, ownerId: member[0] } },
    'POST /records/:recordId/restore': { params: { recordId: R3! } },
    'GET /records/:recordId/relationships': { query: `relationshipTypeId=${relationshipType[0]}` },
    'POST /relationships/types': { body: { name: 'New type', sourceEntityId: E1, targetEntityId: E2 } },
    'GET /relationships/types': { query: `entityId=${E1}` },
    'PATCH /relationships/types/:relationshipTypeId': { body: { description: 'changed' } },
    'DELETE /relationships/types/:relationshipTypeId': { query: 'cascade=true' },
    'POST /relationships': {
      body: { relationshipTypeId: relationshipType[0], sourceEntityId: E1, sourceRecordId: R2, targetEntityId: E2, targetRecordId: T1 },
    },
    'GET /relationships/list': { query: `relationshipTypeId=${relationshipType[0]}&entityId=${E1}&recordId=${R1}` },
    'POST /relationships/bulk': {
      body: { relationshipTypeId: relationshipType[0], sourceEntityId: E1, targetEntityId: E2, sourceRecordIds: [R1], targetRecordIds: [T2] },
    },
    'POST /relationships/bulk-match': {
      body: {
        sourceEntityId: E1,
        relationshipTypeId: relationshipType[0],
        criteria: [{ myField: { type: 'property', propertyId: P1 }, counterField: { type: 'property', propertyId: P3 } }],
        matchMode: 'ALL',
        sourceRecordIds: [R1],
      },
    },
    'PATCH /relationships/:relationshipId': { body: { metadata: { role: 'changed' } } },
    'GET /segments': { query: `entityId=${E1}` },
    'POST /segments': { body: { entityId: E1, name: 'New segment', conditions: condition } },
    'POST /segments/preview': { body: { entityId: E1, conditions: condition } },
    'PATCH /segments/:segmentId': { body: { name: 'Renamed segment', conditions: condition } },
    'POST /activities': { body: { activityType: 'CALL', recordId: R1, ownerId: member[0], assignedMemberIds: [member[1]], relatedRecordIds: [T1] } },
    'GET /activities': { query: `recordId=${R1}&entityId=${E1}` },
    'PATCH /activities/:activityId': { body: { subject: 'changed', assignedMemberIds: [member[1]], relatedRecordIds: [T1] } },
    'POST /events': { body: { entityId: E1, recordId: R1, eventType: 'purchase', value: 1 } },
    'POST /events/bulk': { body: { events: [{ entityId: E1, recordId: R1, eventType: 'purchase' }, { entityId: E2, recordId: T1, eventType: 'visit' }] } },
    'GET /events': { query: `entityId=${E1}&recordId=${R1}` },
    'GET /events/summaries': { query: `entityId=${E1}&recordId=${R1}` },
    'POST /records/aggregate': { body: { entityId: E1, conditionGroup: condition } },
    'GET /entities/:entityId/board': { query: 'limit=1' },
    'GET /entities/:entityId/board/cards': { query: `startKey=${encodeURIComponent(s.boardKey ?? '')}` },
    'GET /records/import/:jobId/status': { params: { jobId: s.ids.importJob[0]! } },
    'GET /records/export/:jobId/status': { params: { jobId: s.ids.exportJob[0]! } },
    'POST /records/export/request': { body: { entityId: E1, format: 'csv', filters: JSON.stringify({ [P1!]: { op: 'eq', value: 'Alpha' } }) } },
  };
}

interface Built {
  method: string;
  url: string;
  body?: unknown;
  /** Parameters or fields whose kind is unknown: the route needs a recipe. */
  unresolved: string[];
  hasRecipe: boolean;
}

function build(route: Route, s: Shapes): Built {
  const local = route.path.slice(V1.length);
  const recipe = recipes(s)[`${route.method} ${local}`];
  const unresolved: string[] = [];
  const url = route.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => {
    const given = recipe?.params?.[name];
    if (given) return given;
    const kind = kindOf(name);
    const id = kind && s.ids[kind.kind][kind.index];
    if (!id) {
      unresolved.push(`path parameter ${name}`);
      return 'x';
    }
    return id;
  });
  return { method: route.method, url: recipe?.query ? `${url}?${recipe.query}` : url, body: recipe?.body, unresolved, hasRecipe: recipe !== undefined };
}

/** A response's JSON-ish text, for ID searches (IDs are plain alphanumerics: no escaping to worry about). */
const text = (res: LightMyRequestResponse) => res.body;

/** Every value of an `…Id`/`…Ids`/`apiKey` field anywhere in a JSON document. */
function harvestIds(value: unknown, into: Set<string>, field = ''): void {
  if (typeof value === 'string') {
    if (/(Id|Ids|apiKey|By)$/.test(field) && /^[A-Za-z0-9_-]{8,}$/.test(value)) into.add(value);
  } else if (Array.isArray(value)) {
    for (const item of value) harvestIds(item, into, field);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) harvestIds(v, into, k);
  }
}

describe('tenant isolation: account B never reaches account A\'s resources', () => {
  let t: TestApp;
  let A: Shapes;
  let B: Shapes;
  let routes: Route[];
  /** IDs that belong to A only (harvested from A's own answers, minus anything B also has). */
  let secretsOfA: Set<string>;
  /** B's ID → A's ID of the same shape. */
  const counterpart = new Map<string, string>();

  async function ok(res: LightMyRequestResponse, status: number): Promise<any> {
    assert.equal(res.statusCode, status, res.body);
    return res.json();
  }

  async function shapes(account: TestAccount): Promise<Shapes> {
    const call = (method: InjectOptions['method'], url: string, body?: unknown) => t.call(account, method, `${V1}${url}`, body);
    const ids: Record<Kind, string[]> = { member: [account.memberId], apiKey: [], entity: [], property: [], record: [], relationshipType: [], relationship: [], segment: [], activity: [], importJob: [], exportJob: [] };
    ids.member.push((await ok(await call('POST', '/members', { name: 'Colleague', role: 'MEMBER' }), 201)).memberId);
    ids.apiKey.push((await ok(await call('POST', '/api-keys', { name: 'Second key' }), 201)).apiKey);
    for (const [name, slug] of [['Companies', 'companies'], ['People', 'people'], ['Archived', 'archived']]) {
      ids.entity.push((await ok(await call('POST', '/entities', { name, slug }), 201)).entityId);
    }
    const [E1, E2, E3] = ids.entity as [string, string, string];
    for (const [entityId, name, fieldType] of [[E1, 'Code', 'TEXT'], [E1, 'Size', 'NUMBER'], [E2, 'Code', 'TEXT']]) {
      ids.property.push((await ok(await call('POST', '/properties', { entityId, name, fieldType }), 201)).propertyId);
    }
    const [P1, P2, P3] = ids.property as [string, string, string];
    for (const [entityId, name, data] of [
      [E1, 'Alpha', { [P1]: 'Alpha', [P2]: 10 }], [E1, 'Beta', { [P1]: 'Beta', [P2]: 20 }], [E1, 'Gamma', { [P1]: 'Gamma' }],
      [E2, 'Alpha Co', { [P3]: 'Alpha' }], [E2, 'Beta Co', { [P3]: 'Beta' }],
    ] as const) {
      ids.record.push((await ok(await call('POST', '/records', { entityId, name, data }), 201)).recordId);
    }
    const [R1, , R3, T1] = ids.record as [string, string, string, string];
    // A finished import job, inserted as its row: a pending one could be claimed by another test file's worker.
    const importJob = randomUUID();
    const now = new Date();
    await account.tenant.insertInto('jobs').values({
      account_id: account.accountId, job_id: importJob, kind: 'records.import', status: 'completed', params: JSON.stringify({ entityId: E1 }),
      result: JSON.stringify({ total: 0, created: 0, updated: 0, failedCount: 0, failed: [] }), created_by: account.memberId,
      date_created: now, date_updated: now, date_finished: now,
    }).execute();
    ids.importJob.push(importJob);
    // A finished export of this account's member (only its requester sees an export's status).
    const exportJob = randomUUID();
    await account.tenant.insertInto('jobs').values({
      account_id: account.accountId, job_id: exportJob, kind: 'records.export', status: 'completed', params: JSON.stringify({ entityId: E1 }),
      result: JSON.stringify({ rows: 0, fileId: 'CRMFL1260101000000000ABCDEFGHIJK', expiresAt: new Date(now.getTime() + 3600_000).toISOString() }),
      created_by: account.memberId, date_created: now, date_updated: now, date_finished: now,
    }).execute();
    ids.exportJob.push(exportJob);
    await ok(await call('DELETE', `/records/${R3}`), 200);
    await ok(await call('DELETE', `/entities/${E3}`), 200);
    ids.relationshipType.push((await ok(await call('POST', '/relationships/types', { name: 'Employs', sourceEntityId: E1, targetEntityId: E2 }), 201)).relationshipTypeId);
    ids.relationship.push((await ok(await call('POST', '/relationships', {
      relationshipTypeId: ids.relationshipType[0], sourceEntityId: E1, sourceRecordId: R1, targetEntityId: E2, targetRecordId: T1,
    }), 201)).relationshipId);
    if (routes.some((r) => r.method === 'POST' && r.path === `${V1}/segments`)) {
      const conditions = { operator: 'AND', conditions: [{ field: `data.${P1}`, operator: 'eq', value: 'Alpha' }] };
      // CACHED, so that its refresh route has members to rebuild.
      ids.segment.push((await ok(await call('POST', '/segments', { entityId: E1, name: 'Alphas', conditions, mode: 'CACHED' }), 201)).segmentId);
    }
    if (routes.some((r) => r.method === 'POST' && r.path === `${V1}/activities`)) {
      ids.activity.push((await ok(await call('POST', '/activities', { activityType: 'NOTE', recordId: R1, relatedRecordIds: [T1] }), 201)).activityId);
      await ok(await call('POST', '/events', { entityId: E1, recordId: R1, eventType: 'purchase', value: 5 }), 201);
    }
    let boardKey: string | undefined;
    if (routes.some((r) => r.method === 'GET' && r.path === `${V1}/entities/:entityId/board`)) {
      // A board over a dropdown with two live records in one column, so one card per page leaves a nextKey.
      const stage = (await ok(await call('POST', '/properties', {
        entityId: E1, name: 'Stage', fieldType: 'DROPDOWN', options: [{ label: 'Open', value: 'OPEN' }, { label: 'Won', value: 'WON' }],
      }), 201)).propertyId;
      ids.property.push(stage);
      for (const recordId of ids.record.slice(0, 2)) await ok(await call('PATCH', `/records/${recordId}`, { data: { [stage]: 'OPEN' } }), 200);
      await ok(await call('PATCH', `/entities/${E1}`, { viewSettings: { board: { groupByPropertyId: stage } } }), 200);
      const board = await ok(await call('GET', `/entities/${E1}/board?limit=1`), 200);
      boardKey = (board.columns as { nextKey?: string }[]).find((c) => c.nextKey)?.nextKey;
      assert.ok(boardKey, 'a board column has a next page');
    }
    return { account, ids, boardKey };
  }

  /** Every row of the account in every table of the schema, as sorted JSON lines. */
  async function snapshot(accountId: string): Promise<Record<string, string[]>> {
    const tables = (await sql<{ name: string }>`
      SELECT c.relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname NOT LIKE 'kysely%' ORDER BY 1`.execute(t.database.db)).rows;
    const out: Record<string, string[]> = {};
    for (const { name } of tables) {
      const rows = (await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(name)} WHERE account_id = ${accountId}`.execute(t.database.db)).rows;
      out[name] = rows.map((r) => JSON.stringify(r, Object.keys(r).sort())).sort();
    }
    return out;
  }

  const send = (creds: TestAccount, b: { method: string; url: string; body?: unknown }) =>
    t.call(creds, b.method as InjectOptions['method'], b.url, b.body);

  /** Routes of the API (not HEAD mirrors, not /docs, /healthz…) in the OpenAPI document. */
  let apiRoutes: Route[];

  before(async () => {
    t = await startTestApp();
    routes = registeredRoutes(t.app.printRoutes({ commonPrefix: false }));
    const doc = (await t.app.inject({ method: 'GET', url: `${V1}/public/openapi/json` })).json();
    const documented = new Set<string>();
    for (const [path, item] of Object.entries<Record<string, { security?: unknown[] }>>(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        // Public routes with an ID (signed downloads) carry their own credential, bound to the
        // account: jobs.test.ts checks that another account's valid link never reaches a file.
        if (op.security?.length === 0 && path.includes('{')) continue;
        documented.add(`${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`);
      }
    }
    apiRoutes = routes.filter((r) => r.method !== 'HEAD' && r.path.startsWith(V1) && documented.has(`${r.method} ${r.path}`));

    A = await shapes(await t.newAccount('Tenant A'));
    B = await shapes(await t.newAccount('Tenant B'));
    counterpart.set(B.account.accountId, A.account.accountId);
    for (const kind of KINDS) B.ids[kind].forEach((id, i) => { if (A.ids[kind][i]) counterpart.set(id, A.ids[kind][i]!); });

    // Everything A can see of its own, through every GET route.
    const seenByA = new Set<string>([A.account.accountId, ...KINDS.flatMap((k) => A.ids[k])]);
    const seenByB = new Set<string>([B.account.accountId, ...KINDS.flatMap((k) => B.ids[k])]);
    for (const route of apiRoutes.filter((r) => r.method === 'GET')) {
      for (const [shape, into] of [[A, seenByA], [B, seenByB]] as const) {
        const res = await send(shape.account, build(route, shape));
        if (res.statusCode === 200) harvestIds(res.json(), into);
      }
    }
    secretsOfA = new Set([...seenByA].filter((id) => !seenByB.has(id)));
  });
  after(() => t.close());

  test('the fixture covers every kind of ID, in both accounts, aligned', () => {
    for (const kind of KINDS) {
      if ((kind === 'segment' || kind === 'activity') && !A.ids[kind].length) continue; // no such routes in this build
      assert.ok(A.ids[kind].length > 0, `A has ${kind}s`);
      assert.equal(A.ids[kind].length, B.ids[kind].length, kind);
    }
    assert.ok(secretsOfA.size >= 15, `${secretsOfA.size} IDs of A known`);
  });

  test('every route, with A\'s IDs swapped in one at a time: 404 (or 400 for a body ID), nothing of A in any answer, A unchanged', async (ctx) => {
    const before = await snapshot(A.account.accountId);
    const problems: string[] = [];
    let attacks = 0;
    let covered = 0;
    const statuses = new Map<number, number>();
    /** 2xx answers that did nothing: bulk per-item NotFound, or an empty list for a query filter. */
    const emptyAnswers: string[] = [];
    const noIdRoutes: string[] = [];

    for (const route of apiRoutes) {
      const request = build(route, B);
      if (request.unresolved.length) {
        problems.push(`${route.method} ${route.path}: no ID of A known for ${request.unresolved.join(', ')}: add the kind to kindOf() or a recipe`);
        continue;
      }
      const pathPart = request.url.split('?')[0]!;
      const queryPart = request.url.slice(pathPart.length);
      const bodyText = request.body === undefined ? '' : JSON.stringify(request.body);
      const present = [...counterpart.keys()].filter((id) => request.url.includes(id) || bodyText.includes(id));
      if (!present.length) {
        noIdRoutes.push(`${route.method} ${route.path}`);
        continue;
      }
      covered++;
      // One variant per ID, and one with all of them swapped.
      const variants: string[][] = [...present.map((id) => [id]), ...(present.length > 1 ? [present] : [])];
      for (const swap of variants) {
        let url = request.url;
        let body = bodyText;
        for (const id of swap) {
          url = url.replaceAll(id, counterpart.get(id)!);
          body = body.replaceAll(id, counterpart.get(id)!);
        }
        const sent = swap.map((id) => counterpart.get(id)!);
        const res = await send(B.account, { method: route.method, url, body: body === '' ? undefined : JSON.parse(body) });
        attacks++;
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        const where = `${route.method} ${route.path} with A's ${swap.map((id) => B.ids && kindName(B, id)).join('+')}`;
        const inPath = swap.some((id) => pathPart.includes(id));
        const inQuery = swap.some((id) => queryPart.includes(id));
        const leaked = [...secretsOfA].filter((id) => !sent.includes(id) && text(res).includes(id));
        if (leaked.length) problems.push(`${where}: the answer contains A's ${leaked.join(', ')}: ${res.statusCode} ${res.body.slice(0, 200)}`);
        if (res.statusCode >= 500) {
          problems.push(`${where}: ${res.statusCode} ${res.body.slice(0, 200)}`);
          continue;
        }
        if (res.statusCode === 404) {
          if (res.json().errorCode !== 'NotFound') problems.push(`${where}: 404 with ${res.body.slice(0, 200)}`);
          continue;
        }
        // Solapi's export status answers an unknown job with a normal body, not 404 (API.md §5).
        if (route.path.endsWith('/export/:jobId/status') && res.statusCode === 200 && res.json().error === '작업을 찾을 수 없습니다.') continue;
        if (inPath) {
          problems.push(`${where}: expected 404, got ${res.statusCode} ${res.body.slice(0, 200)}`);
          continue;
        }
        if (res.statusCode === 400) continue; // an ID in the body or query validated as unknown
        if (res.statusCode >= 200 && res.statusCode < 300 && nothingDone(res.json(), inQuery)) {
          emptyAnswers.push(where);
          continue;
        }
        problems.push(`${where}: expected 404 or 400, got ${res.statusCode} ${res.body.slice(0, 300)}`);
      }
    }
    ctx.diagnostic(`${attacks} cross-tenant requests over ${covered} routes with IDs, answered ${[...statuses].map(([k, v]) => `${k}×${v}`).join(' ')}`);
    ctx.diagnostic(`2xx that did nothing: ${emptyAnswers.join('; ')}`);
    ctx.diagnostic(`routes without IDs: ${noIdRoutes.join(', ')}`);
    assert.deepEqual(problems, []);
    assert.deepEqual(await snapshot(A.account.accountId), before, 'every row of A is unchanged');
  });

  test('the same requests with B\'s own IDs get past the lookup (so the 404s above are the tenant boundary), and show nothing of A', async () => {
    const before = await snapshot(A.account.accountId);
    const problems: string[] = [];
    // Reads and writes first, deletions last (entities last of all: trashing one hides what hangs off it).
    // (Trashing a record hides its relationships; a relationship type's cascade removes them.)
    const deleteOrder = [`${V1}/relationships/:relationshipId`, `${V1}/relationships/types/:relationshipTypeId`];
    const rank = (r: Route) => (r.method !== 'DELETE' ? 0 : r.path.includes('/entities/') ? 9 : deleteOrder.includes(r.path) ? 1 + deleteOrder.indexOf(r.path) : 5);
    for (const route of [...apiRoutes].sort((x, y) => rank(x) - rank(y))) {
      const request = build(route, B);
      if (request.unresolved.length) continue; // reported by the test above
      const res = await send(B.account, request);
      const where = `${route.method} ${route.path} (B's own IDs)`;
      const leaked = [...secretsOfA].filter((id) => text(res).includes(id));
      if (leaked.length) problems.push(`${where}: the answer contains A's ${leaked.join(', ')}`);
      if (res.statusCode >= 500) problems.push(`${where}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      else if (res.statusCode === 404 || res.statusCode === 400) {
        problems.push(`${where}: ${res.statusCode} ${res.body.slice(0, 300)}${request.hasRecipe ? '' : ' (no recipe: add one to RECIPES)'}`);
      } else if (res.statusCode < 300 && bulkNotFound(res.json())) {
        problems.push(`${where}: the bulk answer reports B's own IDs as not found: ${res.body.slice(0, 300)}`);
      }
    }
    assert.deepEqual(problems, []);
    assert.deepEqual(await snapshot(A.account.accountId), before, 'B\'s own writes left A alone');
  });

  test('an Idempotency-Key A used is a fresh key for B (no replay across accounts)', async () => {
    const key = 'shared-idempotency-key';
    const mine = await t.call(A.account, 'POST', `${V1}/members`, { name: 'Keyed' }, { 'idempotency-key': key });
    assert.equal(mine.statusCode, 201, mine.body);
    const theirs = await t.call(B.account, 'POST', `${V1}/members`, { name: 'Keyed' }, { 'idempotency-key': key });
    assert.equal(theirs.statusCode, 201, theirs.body);
    assert.equal(theirs.headers['idempotent-replayed'], undefined);
    assert.ok(!theirs.body.includes(mine.json().memberId));
    assert.ok(!theirs.body.includes(A.account.accountId));
  });
});

/** Which of B's fixture IDs this is, for messages: `record[2]`. */
function kindName(s: Shapes, id: string): string {
  if (id === s.account.accountId) return 'accountId';
  for (const kind of KINDS) {
    const i = s.ids[kind].indexOf(id);
    if (i >= 0) return `${kind}[${i}]`;
  }
  return id;
}

/** A bulk answer in which some item failed as NotFound. */
function bulkNotFound(body: any): boolean {
  return Array.isArray(body?.failed) && body.failed.some((f: { errorCode?: string }) => f.errorCode === 'NotFound');
}

/**
 * A 2xx that did nothing with A's ID: a bulk answer where every item failed (NotFound or
 * validation) and nothing succeeded or was created, or (for a query filter) an empty list.
 */
function nothingDone(body: any, inQuery: boolean): boolean {
  if (body && typeof body === 'object' && Array.isArray(body.failed)) {
    const nothing = (body.succeeded ?? 0) === 0 && (body.created ?? 0) === 0;
    return nothing && body.failed.every((f: { errorCode?: string }) => f.errorCode === 'NotFound' || f.errorCode === 'ValidationError');
  }
  if (!inQuery) return false;
  if (Array.isArray(body)) return body.length === 0;
  return Array.isArray(body?.data) && body.data.length === 0;
}
