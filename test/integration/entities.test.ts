import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import type { Credentials } from '../helpers/sign.ts';
import { expectError, uniq } from '../helpers/assertions.ts';

const V1 = '/crm-core/v1';

/** Seed 001's fields, plus workspaceId (API.md §3). */
const ENTITY_FIELDS = [
  'entityId', 'accountId', 'workspaceId', 'name', 'slug', 'description', 'propertyIds', 'viewSettings', 'insightWidgets',
  'recordAccess', 'ownerId', 'priority', 'isDeleted', 'createdBy', 'updatedBy', 'dateCreated', 'dateUpdated',
].sort();
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const uniqueSlug = (base = 'e') => uniq(base);

describe('entities (API.md §3)', () => {
  let t: TestApp;
  let account: TestAccount;
  let admin: Credentials & { memberId: string };
  let member: Credentials & { memberId: string };

  const create = (creds: Credentials, body: Record<string, unknown>) => t.call(creds, 'POST', `${V1}/entities`, body);
  async function created(creds: Credentials, body: Record<string, unknown> = {}) {
    const res = await create(creds, { name: 'Entity', slug: uniqueSlug(), ...body });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
    admin = await t.addMember(account, 'ADMIN');
    member = await t.addMember(account, 'MEMBER');
  });
  after(() => t.close());

  describe('create', () => {
    test('returns exactly seed 001\'s fields with the documented defaults', async () => {
      const res = await create(account, { name: '고객', slug: 'customers', description: 'B2C 고객 정보를 관리하는 개체' });
      assert.equal(res.statusCode, 201, res.body);
      const e = res.json();
      assert.deepEqual(Object.keys(e).sort(), ENTITY_FIELDS);
      assert.match(e.entityId, /^CRMET1\d{15}[A-Za-z0-9]{11}$/);
      assert.equal(e.accountId, account.accountId);
      assert.equal(e.workspaceId, null);
      assert.equal(e.name, '고객');
      assert.equal(e.slug, 'customers');
      assert.equal(e.description, 'B2C 고객 정보를 관리하는 개체');
      assert.deepEqual(e.propertyIds, []);
      assert.deepEqual(e.insightWidgets, []);
      assert.equal(e.recordAccess, 'PUBLIC');
      assert.equal(e.ownerId, account.memberId);
      assert.equal(e.isDeleted, false);
      assert.equal(e.createdBy, account.memberId);
      assert.equal(e.updatedBy, account.memberId);
      assert.match(e.dateCreated, ISO_MS);
      assert.match(e.dateUpdated, ISO_MS);
      assert.equal(typeof e.priority, 'number');
      assert.deepEqual(e.viewSettings, {
        mode: 'TABLE',
        table: { pageSize: 25 },
        board: {
          groupByPropertyId: null, sumPropertyId: null, weightPropertyId: null, aggregationType: 'SUM', sortByPropertyId: null,
          sortOrder: 'DESC', closedWonValues: [], closedLostValues: [], dealRotting: { enabled: false, days: 14 },
        },
        calendar: { datePropertyId: null, titlePropertyId: null, colorPropertyId: null },
      });
      // GET returns the same object.
      const got = await t.call(account, 'GET', `${V1}/entities/${e.entityId}`);
      assert.equal(got.statusCode, 200);
      assert.deepEqual(got.json(), e);
    });

    test('description defaults to null; viewSettings given in part are merged over the defaults', async () => {
      const e = await created(account, { viewSettings: { table: { pageSize: 50 }, board: { dealRotting: { enabled: true } } } });
      assert.equal(e.description, null);
      assert.equal(e.viewSettings.table.pageSize, 50);
      assert.deepEqual(e.viewSettings.board.dealRotting, { enabled: true, days: 14 });
      assert.equal(e.viewSettings.mode, 'TABLE');
    });

    test('priority defaults to one past the last live entity; an explicit one is kept', async () => {
      const fresh = await t.newAccount();
      const a = await created(fresh);
      const b = await created(fresh);
      assert.equal(a.priority, 0);
      assert.equal(b.priority, 1);
      const c = await created(fresh, { priority: 10 });
      assert.equal(c.priority, 10);
      assert.equal((await created(fresh)).priority, 11);
    });

    test('slug must match ^[a-z][a-z0-9_-]{0,62}$ (400 naming slug)', async () => {
      for (const slug of ['', 'Customers', '1abc', '-abc', 'ab c', 'abc!', `a${'b'.repeat(63)}`, '한글']) {
        const res = await create(account, { name: 'x', slug });
        expectError(res, 400, 'ValidationError', 'slug');
      }
      for (const slug of ['a', `a${'b'.repeat(62)}`, 'a_b-c9']) {
        assert.equal((await create(account, { name: 'x', slug: `${slug}`.slice(0, 63) })).statusCode, 201, slug);
      }
    });

    test('name and slug are required; unknown fields and bad types are 400', async () => {
      expectError(await create(account, { slug: uniqueSlug() }), 400, 'ValidationError', 'name');
      expectError(await create(account, { name: 'x' }), 400, 'ValidationError', 'slug');
      expectError(await create(account, { name: '', slug: uniqueSlug() }), 400, 'ValidationError', 'name');
      expectError(await create(account, { name: 'x', slug: uniqueSlug(), bogus: 1 }), 400, 'ValidationError', 'bogus');
      expectError(await create(account, { name: 'x', slug: uniqueSlug(), recordAccess: 'PRIVATE' }), 400, 'ValidationError', 'recordAccess');
      expectError(await create(account, { name: 'x', slug: uniqueSlug(), priority: -1 }), 400, 'ValidationError', 'priority');
      expectError(await create(account, { name: 'x', slug: uniqueSlug(), viewSettings: { mode: 'GRID' } }), 400, 'ValidationError', 'viewSettings');
    });

    test('a duplicate slug is 409 DuplicateEntity', async () => {
      const slug = uniqueSlug();
      await created(account, { slug });
      expectError(await create(account, { name: 'again', slug }), 409, 'DuplicateEntity', slug);
    });

    test('the same slug in another account is fine', async () => {
      const other = await t.newAccount();
      const slug = uniqueSlug();
      await created(account, { slug });
      await created(other, { slug });
    });

    test('concurrent creates with one slug: exactly one wins, the rest are 409 DuplicateEntity', async () => {
      const slug = uniqueSlug('race');
      const results = await Promise.all(Array.from({ length: 8 }, () => create(account, { name: 'race', slug })));
      assert.equal(results.filter((r) => r.statusCode === 201).length, 1, results.map((r) => r.statusCode).join(','));
      for (const r of results.filter((r) => r.statusCode !== 201)) expectError(r, 409, 'DuplicateEntity');
    });

    test('ownerId defaults to the caller and must be a member of the account (400)', async () => {
      const e = await created(account, { ownerId: member.memberId });
      assert.equal(e.ownerId, member.memberId);
      expectError(await create(account, { name: 'x', slug: uniqueSlug(), ownerId: 'MEMnotamember00' }), 400, 'ValidationError', 'ownerId');
      const other = await t.newAccount();
      expectError(await create(account, { name: 'x', slug: uniqueSlug(), ownerId: other.memberId }), 400, 'ValidationError', 'ownerId');
    });

    test('only OWNERs create (403 for ADMIN and MEMBER)', async () => {
      expectError(await create(admin, { name: 'x', slug: uniqueSlug() }), 403, 'Forbidden');
      expectError(await create(member, { name: 'x', slug: uniqueSlug() }), 403, 'Forbidden');
    });
  });

  describe('list', () => {
    test('keyword matches name or slug case-insensitively; LIKE wildcards are literal', async () => {
      const fresh = await t.newAccount();
      await created(fresh, { name: 'Customers', slug: 'people' });
      await created(fresh, { name: 'Deals', slug: 'pipeline_deals' });
      await created(fresh, { name: '100% Done', slug: 'done' });
      const names = async (keyword: string) =>
        (await t.call(fresh, 'GET', `${V1}/entities?keyword=${encodeURIComponent(keyword)}`)).json().map((e: any) => e.name).sort();
      assert.deepEqual(await names('CUSTOM'), ['Customers']);
      assert.deepEqual(await names('PIPELINE'), ['Deals']);
      assert.deepEqual(await names('e'), ['100% Done', 'Customers', 'Deals']);
      assert.deepEqual(await names('%'), ['100% Done']);
      assert.deepEqual(await names('_'), ['Deals']);
      assert.deepEqual(await names('nothing'), []);
    });

    test('ordered by priority, then creation; trashed entities are left out', async () => {
      const fresh = await t.newAccount();
      const a = await created(fresh, { name: 'a', priority: 5 });
      const b = await created(fresh, { name: 'b', priority: 1 });
      const c = await created(fresh, { name: 'c', priority: 5 });
      const d = await created(fresh, { name: 'd', priority: 0 });
      assert.equal((await t.call(fresh, 'DELETE', `${V1}/entities/${d.entityId}`)).statusCode, 200);
      const list = (await t.call(fresh, 'GET', `${V1}/entities`)).json();
      assert.deepEqual(list.map((e: any) => e.entityId), [b.entityId, a.entityId, c.entityId]);
      for (const e of list) assert.deepEqual(Object.keys(e).sort(), ENTITY_FIELDS);
    });

    test('answers at most 200 entities', async () => {
      const fresh = await t.newAccount();
      for (let i = 0; i < 201; i += 1) await created(fresh, { name: `n${i}`, slug: `s${i}` });
      const list = (await t.call(fresh, 'GET', `${V1}/entities`)).json();
      assert.equal(list.length, 200);
      assert.equal(list[0].slug, 's0');
      assert.equal(list[199].slug, 's199');
    });
  });

  describe('recordAccess', () => {
    let fresh: TestAccount;
    let freshAdmin: Credentials & { memberId: string };
    let freshMember: Credentials & { memberId: string };
    let ownedMember: Credentials & { memberId: string };
    const ids: Record<string, string> = {};

    before(async () => {
      fresh = await t.newAccount();
      freshAdmin = await t.addMember(fresh, 'ADMIN');
      freshMember = await t.addMember(fresh, 'MEMBER');
      ownedMember = await t.addMember(fresh, 'MEMBER');
      ids.public = (await created(fresh, { name: 'public', recordAccess: 'PUBLIC' })).entityId;
      ids.ownerOnly = (await created(fresh, { name: 'ownerOnly', recordAccess: 'ENTITY_OWNER_ONLY', ownerId: ownedMember.memberId })).entityId;
      ids.adminOnly = (await created(fresh, { name: 'adminOnly', recordAccess: 'ADMIN_ONLY' })).entityId;
      ids.ownerOnlyByOwner = (await created(fresh, { name: 'ownerOnlyByOwner', recordAccess: 'ENTITY_OWNER_ONLY' })).entityId;
    });

    const visible = async (creds: Credentials) =>
      (await t.call(creds, 'GET', `${V1}/entities`)).json().map((e: any) => e.name).sort();

    test('GET /entities lists only what the caller may see', async () => {
      assert.deepEqual(await visible(fresh), ['adminOnly', 'ownerOnly', 'ownerOnlyByOwner', 'public']);
      assert.deepEqual(await visible(freshAdmin), ['adminOnly', 'public']);
      assert.deepEqual(await visible(freshMember), ['public']);
      assert.deepEqual(await visible(ownedMember), ['ownerOnly', 'public']);
    });

    test('GET /entities/{id} is 403 when recordAccess is not satisfied', async () => {
      const status = async (creds: Credentials, id: string) => (await t.call(creds, 'GET', `${V1}/entities/${id}`)).statusCode;
      assert.equal(await status(fresh, ids.ownerOnly!), 200);
      assert.equal(await status(fresh, ids.adminOnly!), 200);
      assert.equal(await status(freshAdmin, ids.adminOnly!), 200);
      assert.equal(await status(ownedMember, ids.ownerOnly!), 200);
      expectError(await t.call(freshAdmin, 'GET', `${V1}/entities/${ids.ownerOnly}`), 403, 'Forbidden');
      expectError(await t.call(freshMember, 'GET', `${V1}/entities/${ids.ownerOnly}`), 403, 'Forbidden');
      expectError(await t.call(freshMember, 'GET', `${V1}/entities/${ids.adminOnly}`), 403, 'Forbidden');
      expectError(await t.call(ownedMember, 'GET', `${V1}/entities/${ids.adminOnly}`), 403, 'Forbidden');
    });

    test('PATCH is 403 when recordAccess is not satisfied', async () => {
      expectError(await t.call(freshMember, 'PATCH', `${V1}/entities/${ids.adminOnly}`, { description: 'x' }), 403, 'Forbidden');
      assert.equal((await t.call(ownedMember, 'PATCH', `${V1}/entities/${ids.ownerOnly}`, { description: 'mine' })).statusCode, 200);
    });
  });

  describe('get', () => {
    test('404 for unknown IDs and for another account\'s entity; 400 for an absurd ID', async () => {
      expectError(await t.call(account, 'GET', `${V1}/entities/CRMET1260423081530123XYZ11122233`), 404, 'NotFound');
      const other = await t.newAccount();
      const theirs = await created(other);
      expectError(await t.call(account, 'GET', `${V1}/entities/${theirs.entityId}`), 404, 'NotFound');
      expectError(await t.call(account, 'PATCH', `${V1}/entities/${theirs.entityId}`, { name: 'mine' }), 404, 'NotFound');
      expectError(await t.call(account, 'DELETE', `${V1}/entities/${theirs.entityId}`), 404, 'NotFound');
      expectError(await t.call(account, 'POST', `${V1}/entities/${theirs.entityId}/restore`), 404, 'NotFound');
      expectError(await t.call(account, 'GET', `${V1}/entities/${'x'.repeat(65)}`), 400, 'ValidationError');
    });
  });

  describe('patch', () => {
    test('changes only the fields sent and records updatedBy', async () => {
      const e = await created(account, { name: 'Before', description: 'keep me' });
      const res = await t.call(member, 'PATCH', `${V1}/entities/${e.entityId}`, { name: 'After' });
      assert.equal(res.statusCode, 200, res.body);
      const p = res.json();
      assert.deepEqual(Object.keys(p).sort(), ENTITY_FIELDS);
      assert.equal(p.name, 'After');
      assert.equal(p.description, 'keep me');
      assert.equal(p.slug, e.slug);
      assert.equal(p.createdBy, account.memberId);
      assert.equal(p.updatedBy, member.memberId);
      assert.equal(p.dateCreated, e.dateCreated);
      assert.ok(p.dateUpdated >= e.dateUpdated);
      const cleared = (await t.call(account, 'PATCH', `${V1}/entities/${e.entityId}`, { description: null })).json();
      assert.equal(cleared.description, null);
      assert.equal(cleared.name, 'After');
      // The seed 002 sample body.
      const seed = await t.call(account, 'PATCH', `${V1}/entities/${e.entityId}`, { description: 'B2B/B2C 통합 고객 개체' });
      assert.equal(seed.json().description, 'B2B/B2C 통합 고객 개체');
      // An empty patch changes nothing but is fine.
      assert.equal((await t.call(account, 'PATCH', `${V1}/entities/${e.entityId}`, {})).json().name, 'After');
    });

    test('reorders through priority', async () => {
      const e = await created(account);
      assert.equal((await t.call(admin, 'PATCH', `${V1}/entities/${e.entityId}`, { priority: 0 })).json().priority, 0);
    });

    test('recordAccess and ownerId are OWNER-only (403); resending the current value is fine', async () => {
      const e = await created(account);
      expectError(await t.call(member, 'PATCH', `${V1}/entities/${e.entityId}`, { recordAccess: 'ADMIN_ONLY' }), 403, 'Forbidden', 'recordAccess');
      expectError(await t.call(admin, 'PATCH', `${V1}/entities/${e.entityId}`, { recordAccess: 'ADMIN_ONLY' }), 403, 'Forbidden');
      expectError(await t.call(admin, 'PATCH', `${V1}/entities/${e.entityId}`, { ownerId: admin.memberId }), 403, 'Forbidden', 'ownerId');
      assert.equal((await t.call(member, 'PATCH', `${V1}/entities/${e.entityId}`, { recordAccess: 'PUBLIC', ownerId: account.memberId, name: 'n' })).statusCode, 200);
      const changed = await t.call(account, 'PATCH', `${V1}/entities/${e.entityId}`, { recordAccess: 'ENTITY_OWNER_ONLY', ownerId: member.memberId });
      assert.equal(changed.statusCode, 200, changed.body);
      assert.equal(changed.json().recordAccess, 'ENTITY_OWNER_ONLY');
      assert.equal(changed.json().ownerId, member.memberId);
      // The refused attempts changed nothing.
      assert.equal((await t.call(account, 'GET', `${V1}/entities/${e.entityId}`)).json().name, 'n');
    });

    test('a new ownerId must be a member (400)', async () => {
      const e = await created(account);
      expectError(await t.call(account, 'PATCH', `${V1}/entities/${e.entityId}`, { ownerId: 'MEMnotamember00' }), 400, 'ValidationError', 'ownerId');
    });

    test('a slug collision is 409 DuplicateEntity; keeping one\'s own slug is fine', async () => {
      const a = await created(account);
      const b = await created(account);
      expectError(await t.call(account, 'PATCH', `${V1}/entities/${b.entityId}`, { slug: a.slug }), 409, 'DuplicateEntity');
      assert.equal((await t.call(account, 'PATCH', `${V1}/entities/${b.entityId}`, { slug: b.slug })).statusCode, 200);
      expectError(await t.call(account, 'PATCH', `${V1}/entities/${b.entityId}`, { slug: 'Bad Slug' }), 400, 'ValidationError', 'slug');
    });

    test('unknown fields are 400', async () => {
      const e = await created(account);
      expectError(await t.call(account, 'PATCH', `${V1}/entities/${e.entityId}`, { accountId: 'x' }), 400, 'ValidationError', 'accountId');
      expectError(await t.call(account, 'PATCH', `${V1}/entities/${e.entityId}`, { isDeleted: true }), 400, 'ValidationError');
    });
  });

  describe('trash and restore', () => {
    test('DELETE moves to the trash: 410 afterwards, listed in the trash, restorable', async () => {
      const e = await created(account);
      const del = await t.call(account, 'DELETE', `${V1}/entities/${e.entityId}`);
      assert.equal(del.statusCode, 200, del.body);
      assert.deepEqual(del.json(), { entityId: e.entityId });
      expectError(await t.call(account, 'GET', `${V1}/entities/${e.entityId}`), 410, 'Gone');
      expectError(await t.call(account, 'PATCH', `${V1}/entities/${e.entityId}`, { name: 'x' }), 410, 'Gone');
      expectError(await t.call(account, 'DELETE', `${V1}/entities/${e.entityId}`), 410, 'Gone');
      assert.ok(!(await t.call(account, 'GET', `${V1}/entities`)).json().some((x: any) => x.entityId === e.entityId));

      const trash = await t.call(account, 'GET', `${V1}/entities/trash`);
      assert.equal(trash.statusCode, 200, trash.body);
      const trashed = trash.json().find((x: any) => x.entityId === e.entityId);
      assert.ok(trashed);
      assert.equal(trashed.isDeleted, true);
      assert.deepEqual(Object.keys(trashed).sort(), ENTITY_FIELDS);

      const restored = await t.call(account, 'POST', `${V1}/entities/${e.entityId}/restore`);
      assert.equal(restored.statusCode, 200, restored.body);
      assert.equal(restored.json().isDeleted, false);
      assert.equal((await t.call(account, 'GET', `${V1}/entities/${e.entityId}`)).statusCode, 200);
      assert.ok(!(await t.call(account, 'GET', `${V1}/entities/trash`)).json().some((x: any) => x.entityId === e.entityId));
      // Restoring a live entity is a no-op.
      assert.equal((await t.call(account, 'POST', `${V1}/entities/${e.entityId}/restore`)).statusCode, 200);
    });

    test('delete, trash listing and restore are OWNER-only', async () => {
      const e = await created(account);
      expectError(await t.call(admin, 'DELETE', `${V1}/entities/${e.entityId}`), 403, 'Forbidden');
      expectError(await t.call(member, 'DELETE', `${V1}/entities/${e.entityId}`), 403, 'Forbidden');
      expectError(await t.call(admin, 'GET', `${V1}/entities/trash`), 403, 'Forbidden');
      expectError(await t.call(member, 'GET', `${V1}/entities/trash`), 403, 'Forbidden');
      await t.call(account, 'DELETE', `${V1}/entities/${e.entityId}`);
      expectError(await t.call(admin, 'POST', `${V1}/entities/${e.entityId}/restore`), 403, 'Forbidden');
    });

    test('a trashed entity frees its slug; restoring after the slug was taken is 409 DuplicateEntity', async () => {
      const slug = uniqueSlug();
      const first = await created(account, { slug });
      await t.call(account, 'DELETE', `${V1}/entities/${first.entityId}`);
      const second = await created(account, { slug });
      expectError(await t.call(account, 'POST', `${V1}/entities/${first.entityId}/restore`), 409, 'DuplicateEntity', slug);
      expectError(await t.call(account, 'GET', `${V1}/entities/${first.entityId}`), 410, 'Gone');
      // Rename the newcomer and the restore goes through.
      await t.call(account, 'PATCH', `${V1}/entities/${second.entityId}`, { slug: `${slug}-2` });
      assert.equal((await t.call(account, 'POST', `${V1}/entities/${first.entityId}/restore`)).statusCode, 200);
    });
  });

  describe('quota entities.max', () => {
    test('403 PlanQuotaExceeded at the limit; trashed entities keep their slot until purged', async () => {
      const fresh = await t.newAccount();
      await t.services.quota.setLimits(fresh.tenant, { 'entities.max': 2 });
      const a = await created(fresh);
      await created(fresh);
      expectError(await create(fresh, { name: 'x', slug: uniqueSlug() }), 403, 'PlanQuotaExceeded', 'entities.max: 2/2');
      await t.call(fresh, 'DELETE', `${V1}/entities/${a.entityId}`);
      expectError(await create(fresh, { name: 'x', slug: uniqueSlug() }), 403, 'PlanQuotaExceeded', 'entities.max: 2/2');
      // So a restore never fails on the quota.
      assert.equal((await t.call(fresh, 'POST', `${V1}/entities/${a.entityId}/restore`)).statusCode, 200);
      const usage = (await t.call(fresh, 'GET', `${V1}/usage`)).json();
      assert.equal(usage.limits.find((l: any) => l.key === 'entities.max').used, 2);
    });

    test('racing creates never overshoot the limit; a refused slug does not use a slot', async () => {
      const fresh = await t.newAccount();
      await t.services.quota.setLimits(fresh.tenant, { 'entities.max': 3 });
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => create(fresh, { name: `r${i}`, slug: `race-${i}` })));
      assert.equal(results.filter((r) => r.statusCode === 201).length, 3);
      for (const r of results.filter((r) => r.statusCode !== 201)) expectError(r, 403, 'PlanQuotaExceeded');
      const other = await t.newAccount();
      await t.services.quota.setLimits(other.tenant, { 'entities.max': 1 });
      const slug = uniqueSlug();
      await created(other, { slug: `${slug}-a` });
      await t.services.quota.setLimits(other.tenant, { 'entities.max': 2 });
      expectError(await create(other, { name: 'dup', slug: `${slug}-a` }), 409, 'DuplicateEntity');
      assert.equal((await create(other, { name: 'ok', slug: `${slug}-b` })).statusCode, 201);
    });
  });

  describe('workspaces (API.md §1.9)', () => {
    test('a workspace key creates in its workspace and sees only it plus account-wide entities', async () => {
      const fresh = await t.newAccount();
      const ws1 = await t.services.apiKeys.create(fresh.tenant, fresh.memberId, { workspaceId: 'ws1' });
      const ws2 = await t.services.apiKeys.create(fresh.tenant, fresh.memberId, { workspaceId: 'ws2' });
      const shared = await created(fresh, { name: 'shared', slug: 'shared' });
      const inWs1 = await created(ws1, { name: 'in-ws1', slug: 'same' });
      assert.equal(inWs1.workspaceId, 'ws1');
      // Unique keys include the workspace: the same slug in ws2 and account-wide is fine.
      const inWs2 = await created(ws2, { name: 'in-ws2', slug: 'same' });
      assert.equal(inWs2.workspaceId, 'ws2');
      expectError(await create(ws1, { name: 'again', slug: 'same' }), 409, 'DuplicateEntity');

      const names = async (creds: Credentials) => (await t.call(creds, 'GET', `${V1}/entities`)).json().map((e: any) => e.name).sort();
      assert.deepEqual(await names(fresh), ['in-ws1', 'in-ws2', 'shared']);
      assert.deepEqual(await names(ws1), ['in-ws1', 'shared']);
      assert.deepEqual(await names(ws2), ['in-ws2', 'shared']);

      expectError(await t.call(ws2, 'GET', `${V1}/entities/${inWs1.entityId}`), 404, 'NotFound');
      expectError(await t.call(ws2, 'PATCH', `${V1}/entities/${inWs1.entityId}`, { name: 'x' }), 404, 'NotFound');
      expectError(await t.call(ws2, 'DELETE', `${V1}/entities/${inWs1.entityId}`), 404, 'NotFound');
      assert.equal((await t.call(ws1, 'GET', `${V1}/entities/${shared.entityId}`)).statusCode, 200);

      await t.call(fresh, 'DELETE', `${V1}/entities/${inWs1.entityId}`);
      assert.deepEqual((await t.call(ws2, 'GET', `${V1}/entities/trash`)).json(), []);
      assert.equal((await t.call(ws1, 'GET', `${V1}/entities/trash`)).json().length, 1);
      expectError(await t.call(ws2, 'POST', `${V1}/entities/${inWs1.entityId}/restore`), 404, 'NotFound');
    });
  });
});
