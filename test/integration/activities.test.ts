import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { purgeExpiredTrash } from '../../src/modules/trash/trash.purge.ts';
import { apiOf, startTestApp, type TestAccount, type TestApp } from '../helpers/app.ts';
import { systemDb } from '../../src/db/tenant.ts';
import { expectError, uniq } from '../helpers/assertions.ts';
import type { Credentials } from '../helpers/sign.ts';

const UNKNOWN_RECORD = 'CRMRC1260101000000000ABCDEFGHIJK';
const UNKNOWN_MEMBER = 'MEMzzzzzzzzzzz';
const ALWAYS = ['activityId', 'accountId', 'workspaceId', 'entityId', 'recordId', 'activityType', 'relatedRecordIds', 'attachmentIds',
  'assignedMemberId', 'assignedMemberIds', 'metadata', 'visibility', 'ownerId', 'createdBy', 'dateCreated', 'dateUpdated'];


describe('activities (API.md §9)', () => {
  let t: TestApp;
  let account: TestAccount;
  let member: Credentials & { memberId: string };
  let other: Credentials & { memberId: string };
  let admin: Credentials & { memberId: string };
  let entityId: string;
  let recordId: string;

  const { call, ok } = apiOf(() => t, () => account);
  const entity = async (extra: Record<string, unknown> = {}) => (await ok('POST', '/entities', { name: 'E', slug: uniq('e'), ...extra })).entityId as string;
  const record = async (entity: string = entityId) => (await ok('POST', '/records', { entityId: entity, name: uniq('r') })).recordId as string;
  const activity = (body: Record<string, unknown>, creds: Credentials = account) => ok('POST', '/activities', { activityType: 'NOTE', ...body }, creds);
  const ids = (page: { data: { activityId: string }[] }) => page.data.map((a) => a.activityId);
  /** The page holds exactly `expected`, newest (largest ID) first. */
  const same = (page: { data: { activityId: string }[] }, expected: string[]) => {
    assert.deepEqual(ids(page), [...ids(page)].sort().reverse(), 'newest first');
    assert.deepEqual([...ids(page)].sort(), [...expected].sort());
  };

  before(async () => {
    t = await startTestApp();
    account = await t.newAccount();
    member = await t.addMember(account, 'MEMBER');
    other = await t.addMember(account, 'MEMBER');
    admin = await t.addMember(account, 'ADMIN');
    entityId = await entity();
    recordId = await record();
  });
  after(() => t.close());

  test('create on a record: the documented fields, defaults, entityId from the record; GET returns the same', async () => {
    const res = await call('POST', '/activities', {
      recordId, activityType: 'CALL', subject: '신규 고객 첫 통화', description: '도입 검토 상담', scheduledAt: '2026-04-25T14:00:00+09:00',
      assignedMemberIds: [member.memberId], durationMinutes: 15, metadata: { channel: 'phone' },
    });
    assert.equal(res.statusCode, 201, res.body);
    const a = res.json();
    assert.match(a.activityId, /^CRMAC1\d{15}[A-Za-z0-9]{11}$/);
    assert.deepEqual(Object.keys(a).sort(), [...ALWAYS, 'subject', 'description', 'outcome', 'scheduledAt', 'durationMinutes'].sort());
    assert.equal(a.accountId, account.accountId);
    assert.equal(a.entityId, entityId);
    assert.equal(a.recordId, recordId);
    assert.equal(a.scheduledAt, '2026-04-25T05:00:00.000Z');
    assert.equal(a.outcome, 'PENDING');
    assert.equal(a.visibility, 'PUBLIC');
    assert.equal(a.ownerId, account.memberId);
    assert.equal(a.createdBy, account.memberId);
    assert.equal(a.assignedMemberId, member.memberId);
    assert.deepEqual(a.assignedMemberIds, [member.memberId]);
    assert.deepEqual(a.relatedRecordIds, []);
    assert.equal(a.workspaceId, null);
    assert.deepEqual(await ok('GET', `/activities/${a.activityId}`), a);
    const bare = await activity({ recordId, entityId });
    assert.ok(!('subject' in bare) && !('dueDate' in bare) && !('completedAt' in bare) && !('outcomeNote' in bare));
    assert.equal(bare.assignedMemberId, null);
  });

  test('standalone calendar items: recordId CALENDAR, optionally under an entity; recordId=CALENDAR lists only them', async () => {
    const free = await activity({ activityType: 'MEETING', scheduledAt: '2026-05-01T01:00:00Z' });
    assert.equal(free.recordId, 'CALENDAR');
    assert.equal(free.entityId, null);
    const filed = await activity({ recordId: 'CALENDAR', entityId, activityType: 'MEETING' });
    assert.equal(filed.entityId, entityId);
    const onRecord = await activity({ recordId });
    const calendar = ids(await ok('GET', '/activities?recordId=CALENDAR&limit=200'));
    assert.ok(calendar.includes(free.activityId) && calendar.includes(filed.activityId));
    assert.ok(!calendar.includes(onRecord.activityId));
    const scheduled = await ok('GET', '/activities/record/CALENDAR/scheduled');
    assert.ok(scheduled.some((a: any) => a.activityId === free.activityId));
  });

  test('validation: enumerations, dates, unknown fields, members, related records, entity mismatch → 400', async () => {
    const bad = async (body: Record<string, unknown>, mention: string) =>
      expectError(await call('POST', '/activities', { activityType: 'NOTE', recordId, ...body }), 400, 'ValidationError', mention);
    await bad({ activityType: 'LUNCH' }, 'activityType');
    await bad({ outcome: 'MAYBE' }, 'outcome');
    await bad({ visibility: 'SECRET' }, 'visibility');
    await bad({ scheduledAt: '2026-02-30T00:00:00Z' }, 'scheduledAt');
    await bad({ dueDate: 'tomorrow' }, 'dueDate');
    await bad({ durationMinutes: -1 }, 'durationMinutes');
    await bad({ extra: 1 }, 'extra');
    await bad({ subject: 'x'.repeat(501) }, 'subject');
    await bad({ assignedMemberIds: [UNKNOWN_MEMBER] }, 'assignedMemberIds');
    await bad({ assignedMemberId: UNKNOWN_MEMBER }, 'assignedMemberId');
    await bad({ assignedMemberIds: ['not-a-member-id'] }, 'assignedMemberIds');
    await bad({ ownerId: UNKNOWN_MEMBER }, 'ownerId');
    await bad({ relatedRecordIds: [UNKNOWN_RECORD] }, 'relatedRecordIds');
    await bad({ metadata: { big: 'x'.repeat(17_000) } }, 'metadata');
    await bad({ entityId: await entity() }, 'entityId');
    const trashed = await record();
    await ok('DELETE', `/records/${trashed}`);
    await bad({ relatedRecordIds: [trashed] }, 'trash');
    const fine = await activity({ recordId, relatedRecordIds: [await record(), await record()] });
    assert.equal(fine.relatedRecordIds.length, 2);
  });

  test('the named record or entity: 404 unknown, 410 trashed, 403 recordAccess', async () => {
    expectError(await call('POST', '/activities', { activityType: 'NOTE', recordId: UNKNOWN_RECORD }), 404, 'NotFound');
    const trashed = await record();
    await ok('DELETE', `/records/${trashed}`);
    expectError(await call('POST', '/activities', { activityType: 'NOTE', recordId: trashed }), 410, 'Gone');
    expectError(await call('GET', `/activities?recordId=${trashed}`), 410, 'Gone');
    expectError(await call('GET', `/activities/record/${trashed}/scheduled`), 410, 'Gone');
    expectError(await call('GET', `/activities?recordId=${UNKNOWN_RECORD}`), 404, 'NotFound');
    const gone = await entity();
    await ok('DELETE', `/entities/${gone}`);
    expectError(await call('POST', '/activities', { activityType: 'NOTE', entityId: gone }), 410, 'Gone');
    expectError(await call('GET', `/activities?entityId=${gone}`), 410, 'Gone');
    expectError(await call('POST', '/activities', { activityType: 'NOTE', entityId: 'CRMET1260101000000000ABCDEFGHIJK' }), 404, 'NotFound');

    const locked = await entity({ recordAccess: 'ADMIN_ONLY' });
    const lockedRecord = await record(locked);
    const hidden = await activity({ recordId: lockedRecord });
    expectError(await call('POST', '/activities', { activityType: 'NOTE', recordId: lockedRecord }, member), 403, 'Forbidden');
    expectError(await call('GET', `/activities/${hidden.activityId}`, undefined, member), 403, 'Forbidden');
    expectError(await call('GET', `/activities?entityId=${locked}`, undefined, member), 403, 'Forbidden');
    expectError(await call('GET', `/activities/record/${lockedRecord}/scheduled`, undefined, member), 403, 'Forbidden');
    assert.ok(!ids(await ok('GET', '/activities?limit=200', undefined, member)).includes(hidden.activityId));
    assert.equal((await ok('GET', `/activities/${hidden.activityId}`, undefined, admin)).activityId, hidden.activityId);
  });

  test('assignedMemberIds wins over the legacy assignedMemberId, on create and on patch; null clears', async () => {
    const both = await activity({ recordId, assignedMemberId: member.memberId, assignedMemberIds: [other.memberId, admin.memberId, other.memberId] });
    assert.deepEqual(both.assignedMemberIds, [other.memberId, admin.memberId]);
    assert.equal(both.assignedMemberId, other.memberId);
    const legacy = await activity({ recordId, assignedMemberId: member.memberId });
    assert.deepEqual(legacy.assignedMemberIds, [member.memberId]);
    const patched = await ok('PATCH', `/activities/${legacy.activityId}`, { assignedMemberId: other.memberId, assignedMemberIds: [admin.memberId] });
    assert.deepEqual(patched.assignedMemberIds, [admin.memberId]);
    const single = await ok('PATCH', `/activities/${legacy.activityId}`, { assignedMemberId: member.memberId });
    assert.deepEqual(single.assignedMemberIds, [member.memberId]);
    const cleared = await ok('PATCH', `/activities/${legacy.activityId}`, { assignedMemberId: null });
    assert.deepEqual(cleared.assignedMemberIds, []);
    assert.equal(cleared.assignedMemberId, null);
    expectError(await call('PATCH', `/activities/${legacy.activityId}`, { assignedMemberIds: [UNKNOWN_MEMBER] }), 400, 'ValidationError', 'assignedMemberIds');
  });

  test('patch: fields replaced, null clears, metadata wholesale; immutable and unknown fields 400; unknown 404', async () => {
    const a = await activity({ recordId, activityType: 'TASK', subject: 's', dueDate: '2026-06-01T00:00:00Z', metadata: { a: 1, b: 2 } });
    const patched = await ok('PATCH', `/activities/${a.activityId}`, {
      outcome: 'COMPLETED', outcomeNote: '완료', completedAt: '2026-05-30T09:00:00.5Z', subject: null, metadata: { c: 3 }, visibility: 'PRIVATE', activityType: 'CALL',
    });
    assert.equal(patched.outcome, 'COMPLETED');
    assert.equal(patched.outcomeNote, '완료');
    assert.equal(patched.completedAt, '2026-05-30T09:00:00.500Z');
    assert.ok(!('subject' in patched));
    assert.deepEqual(patched.metadata, { c: 3 });
    assert.equal(patched.visibility, 'PRIVATE');
    assert.equal(patched.activityType, 'CALL');
    assert.equal(patched.dueDate, '2026-06-01T00:00:00.000Z');
    assert.equal(patched.dateCreated, a.dateCreated);
    assert.ok(patched.dateUpdated >= a.dateUpdated);
    expectError(await call('PATCH', `/activities/${a.activityId}`, { recordId: await record() }), 400, 'ValidationError', 'recordId');
    expectError(await call('PATCH', `/activities/${a.activityId}`, {}), 400, 'ValidationError');
    expectError(await call('PATCH', `/activities/${a.activityId}`, { outcome: 'DONE' }), 400, 'ValidationError', 'outcome');
    expectError(await call('PATCH', `/activities/${a.activityId}`, { scheduledAt: 'soon' }), 400, 'ValidationError', 'scheduledAt');
    expectError(await call('PATCH', '/activities/CRMAC1260101000000000ABCDEFGHIJK', { subject: 'x' }), 404, 'NotFound');
    expectError(await call('DELETE', '/activities/CRMAC1260101000000000ABCDEFGHIJK'), 404, 'NotFound');
  });

  test('MEMBERs see their own, PUBLIC and unowned activities; ADMIN and OWNER see all', async () => {
    const e = await entity();
    const r = await record(e);
    const ownersPrivate = await activity({ recordId: r, visibility: 'PRIVATE' });
    const ownersPublic = await activity({ recordId: r, visibility: 'PUBLIC' });
    const unowned = await activity({ recordId: r, visibility: 'PRIVATE', ownerId: null });
    const assigned = await activity({ recordId: r, visibility: 'PRIVATE', assignedMemberIds: [member.memberId] });
    const membersOwn = await activity({ recordId: r, visibility: 'PRIVATE' }, member);
    assert.equal(membersOwn.ownerId, member.memberId);
    const othersPrivate = await activity({ recordId: r, visibility: 'PRIVATE' }, other);

    const seen = async (creds: Credentials) => new Set(ids(await ok('GET', `/activities?entityId=${e}&limit=200`, undefined, creds)));
    const asMember = await seen(member);
    for (const a of [ownersPublic, unowned, assigned, membersOwn]) assert.ok(asMember.has(a.activityId), a.activityId);
    for (const a of [ownersPrivate, othersPrivate]) assert.ok(!asMember.has(a.activityId), a.activityId);
    expectError(await call('GET', `/activities/${ownersPrivate.activityId}`, undefined, member), 404, 'NotFound');
    assert.equal((await ok('GET', `/activities/record/${r}/scheduled`, undefined, member)).length, 0);
    assert.equal((await seen(admin)).size, 6);
    assert.equal((await seen(account)).size, 6);
  });

  test('MEMBERs change and delete only their own (owner, creator, assignee); only ADMIN+ move ownerId', async () => {
    const mine = await activity({ recordId }, member);
    const ownersPublic = await activity({ recordId, visibility: 'PUBLIC' });
    const assignedToMe = await activity({ recordId, assignedMemberIds: [member.memberId] });
    expectError(await call('POST', '/activities', { activityType: 'NOTE', recordId, ownerId: other.memberId }, member), 403, 'Forbidden');

    assert.equal((await ok('PATCH', `/activities/${mine.activityId}`, { subject: 'mine' }, member)).subject, 'mine');
    assert.equal((await ok('PATCH', `/activities/${assignedToMe.activityId}`, { outcome: 'COMPLETED' }, member)).outcome, 'COMPLETED');
    expectError(await call('PATCH', `/activities/${ownersPublic.activityId}`, { subject: 'x' }, member), 403, 'Forbidden');
    expectError(await call('DELETE', `/activities/${ownersPublic.activityId}`, undefined, member), 403, 'Forbidden');
    expectError(await call('PATCH', `/activities/${mine.activityId}`, { ownerId: other.memberId }, member), 403, 'Forbidden');
    assert.equal((await ok('PATCH', `/activities/${mine.activityId}`, { ownerId: member.memberId }, member)).ownerId, member.memberId, 'unchanged is fine');
    assert.equal((await ok('PATCH', `/activities/${ownersPublic.activityId}`, { subject: 'by admin', ownerId: other.memberId }, admin)).ownerId, other.memberId);
    expectError(await call('PATCH', `/activities/${ownersPublic.activityId}`, { ownerId: UNKNOWN_MEMBER }, admin), 400, 'ValidationError', 'ownerId');

    assert.deepEqual(await ok('DELETE', `/activities/${mine.activityId}`, undefined, member), { activityId: mine.activityId });
    expectError(await call('GET', `/activities/${mine.activityId}`), 404, 'NotFound');
    assert.deepEqual(await ok('DELETE', `/activities/${ownersPublic.activityId}`, undefined, admin), { activityId: ownersPublic.activityId });
  });

  test('list filters: recordId, entityId, activityType, date range on a chosen date field', async () => {
    const e = await entity();
    const [r1, r2] = [await record(e), await record(e)];
    const call1 = await activity({ recordId: r1, activityType: 'CALL', scheduledAt: '2026-03-01T00:00:00Z' });
    const meet = await activity({ recordId: r1, activityType: 'MEETING', scheduledAt: '2026-03-10T00:00:00Z', dueDate: '2026-04-01T00:00:00Z' });
    const note = await activity({ recordId: r2, activityType: 'NOTE' });
    same(await ok('GET', `/activities?recordId=${r1}`), [meet.activityId, call1.activityId]);
    same(await ok('GET', `/activities?entityId=${e}`), [note.activityId, meet.activityId, call1.activityId]);
    same(await ok('GET', `/activities?entityId=${e}&activityType=CALL`), [call1.activityId]);
    same(await ok('GET', `/activities?entityId=${e}&from=2026-03-05T00:00:00Z&to=2026-03-31T00:00:00Z`), [meet.activityId]);
    same(await ok('GET', `/activities?entityId=${e}&from=2026-03-01T00:00:00Z`), [meet.activityId, call1.activityId]);
    same(await ok('GET', `/activities?entityId=${e}&dateField=dueDate&to=2026-05-01T00:00:00Z`), [meet.activityId]);
    assert.equal(ids(await ok('GET', `/activities?entityId=${e}&dateField=dateCreated&from=2020-01-01T00:00:00Z`)).length, 3);
    expectError(await call('GET', `/activities?entityId=${e}&activityType=LUNCH`), 400, 'ValidationError', 'activityType');
    expectError(await call('GET', `/activities?entityId=${e}&from=yesterday`), 400, 'ValidationError', 'from');
    expectError(await call('GET', `/activities?entityId=${e}&from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z`), 400, 'ValidationError', 'to');
    expectError(await call('GET', `/activities?entityId=${e}&dateField=dueDate`), 400, 'ValidationError', 'dateField');
    expectError(await call('GET', '/activities?startKey=garbage'), 400, 'ValidationError', 'startKey');
    expectError(await call('GET', '/activities?limit=201'), 400, 'ValidationError', 'limit');
  });

  test('keyset pages never skip or repeat an activity while others are inserted', async () => {
    const e = await entity();
    const r = await record(e);
    const existing: string[] = [];
    for (let i = 0; i < 25; i++) existing.push((await activity({ recordId: r, subject: `a${i}` })).activityId);
    const seen: string[] = [];
    let startKey: string | undefined;
    let pages = 0;
    do {
      const page = await ok('GET', `/activities?entityId=${e}&limit=4${startKey ? `&startKey=${startKey}` : ''}`);
      seen.push(...ids(page));
      startKey = page.nextKey;
      pages++;
      await activity({ recordId: r, subject: `during ${pages}` });
    } while (startKey);
    assert.equal(new Set(seen).size, seen.length, 'no activity repeated');
    for (const id of existing) assert.ok(seen.includes(id), `${id} was skipped`);
    const last = await ok('GET', `/activities?entityId=${e}&limit=200`);
    assert.ok(!('nextKey' in last));
  });

  test('scheduled: only activities with scheduledAt or dueDate, soonest first, limit', async () => {
    const r = await record();
    const late = await activity({ recordId: r, activityType: 'MEETING', scheduledAt: '2026-09-01T00:00:00Z' });
    const soon = await activity({ recordId: r, activityType: 'TASK', dueDate: '2026-07-01T00:00:00Z' });
    const mid = await activity({ recordId: r, activityType: 'CALL', scheduledAt: '2026-08-01T00:00:00Z', dueDate: '2026-10-01T00:00:00Z' });
    await activity({ recordId: r, activityType: 'NOTE' });
    const list = await ok('GET', `/activities/record/${r}/scheduled`);
    assert.deepEqual(list.map((a: any) => a.activityId), [soon.activityId, mid.activityId, late.activityId]);
    assert.deepEqual((await ok('GET', `/activities/record/${r}/scheduled?limit=1`)).map((a: any) => a.activityId), [soon.activityId]);
    assert.deepEqual((await ok('GET', `/activities/record/${r}/scheduled?from=2026-07-15T00:00:00Z`)).map((a: any) => a.activityId), [mid.activityId, late.activityId]);
    expectError(await call('GET', `/activities/record/${UNKNOWN_RECORD}/scheduled`), 404, 'NotFound');
    expectError(await call('GET', `/activities/record/${r}/scheduled?limit=0`), 400, 'ValidationError', 'limit');
  });

  test('hidden with their trashed record or entity, back on restore, removed on purge', async () => {
    const e = await entity();
    const r = await record(e);
    const a = await activity({ recordId: r, scheduledAt: '2026-07-01T00:00:00Z' });
    const cal = await activity({ entityId: e });
    const listed = async () => ids(await ok('GET', '/activities?limit=200'));

    await ok('DELETE', `/records/${r}`);
    expectError(await call('GET', `/activities/${a.activityId}`), 404, 'NotFound');
    expectError(await call('PATCH', `/activities/${a.activityId}`, { subject: 'x' }), 404, 'NotFound');
    assert.ok(!(await listed()).includes(a.activityId));
    assert.ok(!ids(await ok('GET', `/activities?entityId=${e}`)).includes(a.activityId));
    await ok('POST', `/records/${r}/restore`);
    assert.deepEqual(await ok('GET', `/activities/${a.activityId}`), a);
    assert.ok((await listed()).includes(a.activityId));

    await ok('DELETE', `/entities/${e}`);
    expectError(await call('GET', `/activities/${a.activityId}`), 404, 'NotFound');
    expectError(await call('GET', `/activities/${cal.activityId}`), 404, 'NotFound');
    const afterTrash = await listed();
    assert.ok(!afterTrash.includes(a.activityId) && !afterTrash.includes(cal.activityId));
    await ok('POST', `/entities/${e}/restore`);
    assert.deepEqual(await ok('GET', `/activities/${cal.activityId}`), cal);

    const rows = (id: string) => systemDb(t.database.db).selectFrom('activities').select('activity_id').where('account_id', '=', account.accountId).where('activity_id', '=', id).execute();
    await ok('DELETE', `/records/${r}`);
    const report = await purgeExpiredTrash(t.database.db, Date.now() + 15 * 86_400_000, { hooks: t.services.segments, accountIds: [account.accountId] });
    assert.deepEqual(report.failures, []);
    assert.equal((await rows(a.activityId)).length, 0, 'purged with its record');
    assert.equal((await rows(cal.activityId)).length, 1);
    await ok('DELETE', `/entities/${e}`);
    const report2 = await purgeExpiredTrash(t.database.db, Date.now() + 31 * 86_400_000, { hooks: t.services.segments, accountIds: [account.accountId] });
    assert.deepEqual(report2.failures, []);
    assert.equal((await rows(cal.activityId)).length, 0, 'a calendar item goes with its purged entity');
  });

  test('permanent record delete removes its activities', async () => {
    const r = await record();
    const a = await activity({ recordId: r });
    await ok('POST', '/records/bulk/delete', { recordIds: [r], permanent: true });
    expectError(await call('GET', `/activities/${a.activityId}`), 404, 'NotFound');
    const left = await systemDb(t.database.db).selectFrom('activities').select('activity_id').where('account_id', '=', account.accountId).where('activity_id', '=', a.activityId).execute();
    assert.equal(left.length, 0);
  });

  test('workspaces and tenants: a workspace key sees its workspace and account-wide rows only; other accounts 404', async () => {
    const key = await ok('POST', '/api-keys', { workspaceId: 'ws_a' });
    const wsA = { apiKey: key.apiKey, apiSecret: key.apiSecret };
    const keyB = await ok('POST', '/api-keys', { workspaceId: 'ws_b' });
    const wsB = { apiKey: keyB.apiKey, apiSecret: keyB.apiSecret };
    const inA = await activity({ subject: 'ws a' }, wsA);
    assert.equal(inA.workspaceId, 'ws_a');
    const shared = await activity({ subject: 'account-wide' });
    expectError(await call('GET', `/activities/${inA.activityId}`, undefined, wsB), 404, 'NotFound');
    expectError(await call('DELETE', `/activities/${inA.activityId}`, undefined, wsB), 404, 'NotFound');
    const seenByB = ids(await ok('GET', '/activities?recordId=CALENDAR&limit=200', undefined, wsB));
    assert.ok(!seenByB.includes(inA.activityId) && seenByB.includes(shared.activityId));
    assert.equal((await ok('GET', `/activities/${inA.activityId}`, undefined, wsA)).activityId, inA.activityId);
    // An entity of workspace A: its records cannot be named from workspace B.
    const entA = (await ok('POST', '/entities', { name: 'A', slug: uniq('wa') }, wsA)).entityId;
    const recA = (await ok('POST', '/records', { entityId: entA }, wsA)).recordId;
    expectError(await call('POST', '/activities', { activityType: 'NOTE', recordId: recA }, wsB), 404, 'NotFound');

    const stranger = await t.newAccount();
    expectError(await call('GET', `/activities/${shared.activityId}`, undefined, stranger), 404, 'NotFound');
    expectError(await call('POST', `/activities`, { activityType: 'NOTE', recordId }, stranger), 404, 'NotFound');
    assert.ok(!ids((await call('GET', `/activities?limit=200`, undefined, stranger)).json()).includes(shared.activityId));
  });
});
