/**
 * A seeded, reproducible "customers" data set for the records benchmarks (issue 4).
 *
 * - One property of each of the 12 field types (API.md §4), with Korean names and values.
 * - Skewed distributions: Zipf-like dropdown/radio/city/surname choices, a squared score, recent
 *   join dates more likely than old ones, and a share of missing values per property.
 * - Record n is a pure function of (seed, n): batches can be generated in any order, in any
 *   process, and the data set is identical between runs and engines (BENCH_SEED, default 20261123).
 *
 * Sizes: BENCH_RECORDS (10,000 / 100,000 / 1,000,000, or anything else divisible by the batch size).
 */
import type { Client } from './client.ts';

export const DEFAULT_SEED = 20261123;

/** mulberry32: tiny, fast, good enough for test data; one generator per record. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The generator of record n: a hash of (seed, n) so neighbouring records are unrelated. */
export function rngFor(seed: number, n: number): () => number {
  let h = Math.imul(seed ^ 0x9E3779B9, 0x85EBCA6B) ^ Math.imul(n + 1, 0xC2B2AE35);
  h = Math.imul(h ^ (h >>> 16), 0x7FEB352D);
  h = Math.imul(h ^ (h >>> 15), 0x846CA68B);
  return mulberry32(h ^ (h >>> 16));
}

/** Picks from `values` with probability ∝ weight (cumulative table built once). */
export function weighted<T>(values: readonly T[], weights: readonly number[]): (r: number) => T {
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  let sum = 0;
  for (const w of weights) cumulative.push((sum += w) / total);
  return (r) => {
    for (let i = 0; i < cumulative.length; i++) if (r < cumulative[i]!) return values[i]!;
    return values[values.length - 1]!;
  };
}

/** Zipf(s) over the values in the order given: the first is the most common. */
function zipf<T>(values: readonly T[], s = 1.1): (r: number) => T {
  return weighted(values, values.map((_, k) => 1 / (k + 1) ** s));
}

// Surnames with (rounded) shares of the Korean population; given names from common syllables.
const SURNAMES = ['김', '이', '박', '최', '정', '강', '조', '윤', '장', '임', '한', '오', '서', '신', '권', '황', '안', '송', '류', '홍'];
const SURNAME_SHARE = [21.5, 14.7, 8.4, 4.7, 4.3, 2.4, 2.1, 2.1, 2.0, 1.7, 1.5, 1.5, 1.5, 1.5, 1.4, 1.4, 1.3, 1.3, 1.2, 1.1];
const ROMAN: Record<string, string> = { 김: 'kim', 이: 'lee', 박: 'park', 최: 'choi', 정: 'jung', 강: 'kang', 조: 'cho', 윤: 'yoon', 장: 'jang', 임: 'lim', 한: 'han', 오: 'oh', 서: 'seo', 신: 'shin', 권: 'kwon', 황: 'hwang', 안: 'ahn', 송: 'song', 류: 'ryu', 홍: 'hong' };
const FIRST_SYLLABLES = ['민', '서', '지', '도', '하', '예', '시', '주', '수', '현', '준', '유', '은', '윤', '채', '다', '승', '연', '태', '소'];
const SECOND_SYLLABLES = ['준', '연', '우', '윤', '은', '원', '호', '아', '진', '현', '빈', '희', '영', '린', '율', '훈', '혁', '서', '민', '경'];

export const CITIES = ['서울', '경기', '부산', '인천', '대구', '대전', '광주', '울산', '세종', '강원', '충북', '충남', '전북', '전남', '경북', '경남', '제주'];
export const STAGES = ['LEAD', 'CONTACTED', 'QUALIFIED', 'PROPOSAL', 'WON', 'LOST'];
export const GRADES = ['BRONZE', 'SILVER', 'GOLD', 'VIP'];
export const INTERESTS = ['골프', '여행', '와인', '캠핑', '요리', '독서', '러닝', '사진'];
const MEMOS = ['재구매 의사 있음', '가격 문의', '배송 지연 불만', '신제품 관심', '전화 선호', '주말에만 연락 가능', '법인 고객'];
const DOMAINS = ['gmail.com', 'naver.com', 'daum.net', 'kakao.com', 'example.co.kr'];

/** The customers entity's properties: one per field type. `key` names them in generated data. */
export const CUSTOMER_PROPERTIES = [
  { key: 'email', name: '이메일', fieldType: 'EMAIL' },
  { key: 'phone', name: '휴대폰', fieldType: 'PHONE' },
  { key: 'city', name: '도시', fieldType: 'TEXT' },
  { key: 'memo', name: '메모', fieldType: 'TEXTAREA' },
  { key: 'homepage', name: '홈페이지', fieldType: 'URL' },
  { key: 'score', name: '점수', fieldType: 'NUMBER' },
  { key: 'stage', name: '단계', fieldType: 'DROPDOWN', options: STAGES },
  { key: 'grade', name: '등급', fieldType: 'RADIO', options: GRADES },
  { key: 'interests', name: '관심사', fieldType: 'MULTI_CHECKBOX', options: INTERESTS },
  { key: 'consent', name: '마케팅 동의', fieldType: 'CHECKBOX' },
  { key: 'joinedOn', name: '가입일', fieldType: 'DATE' },
  { key: 'lastContactAt', name: '최근 연락', fieldType: 'DATETIME' },
] as const;

export type CustomerKey = (typeof CUSTOMER_PROPERTIES)[number]['key'];
export type PropertyIds = Record<CustomerKey, string>;

const surname = weighted(SURNAMES, SURNAME_SHARE);
const first = zipf(FIRST_SYLLABLES, 0.8);
const second = zipf(SECOND_SYLLABLES, 0.8);
const city = zipf(CITIES, 1.2);
const stage = zipf(STAGES, 1.0);
const grade = zipf(GRADES, 1.5);
const interest = zipf(INTERESTS, 1.0);
const DAY = 86_400_000;
const JOIN_FROM = Date.UTC(2019, 0, 1);
const JOIN_DAYS = 7 * 365;

export interface GeneratedRecord {
  name: string;
  data: Record<string, unknown>;
  tags: string[];
}

/** Record n of the data set, with values keyed by the entity's property IDs. */
export function generateCustomer(n: number, ids: PropertyIds, seed = DEFAULT_SEED): GeneratedRecord {
  const r = rngFor(seed, n);
  const family = surname(r());
  const name = `${family}${first(r())}${second(r())}`;
  const data: Record<string, unknown> = {};
  const set = (key: CustomerKey, value: unknown, presence: number) => {
    if (r() < presence) data[ids[key]] = value;
  };
  set('email', `${ROMAN[family]}${n}@${DOMAINS[Math.floor(r() * DOMAINS.length)]}`, 0.95);
  set('phone', `010-${String(1000 + Math.floor(r() * 9000))}-${String(n % 10000).padStart(4, '0')}`, 0.9);
  set('city', city(r()), 0.97);
  set('memo', `${MEMOS[Math.floor(r() * MEMOS.length)]} (${n})`, 0.3);
  set('homepage', `https://www.example.co.kr/u/${n}`, 0.2);
  set('score', Math.floor(1000 * r() ** 2), 0.97);
  set('stage', stage(r()), 0.98);
  set('grade', grade(r()), 0.9);
  const picks = Math.floor(r() * 4);
  const chosen = new Set<string>();
  for (let i = 0; i < picks; i++) chosen.add(interest(r()));
  set('interests', [...chosen], 0.85);
  set('consent', r() < 0.6, 0.95);
  // Recent sign-ups are more common: the day offset is skewed towards the end of the range.
  set('joinedOn', new Date(JOIN_FROM + Math.floor(JOIN_DAYS * Math.sqrt(r())) * DAY).toISOString().slice(0, 10), 0.98);
  set('lastContactAt', new Date(Date.UTC(2025, 0, 1) + Math.floor(r() * 365 * DAY)).toISOString(), 0.7);
  const tags: string[] = [];
  if (r() < 0.1) tags.push('vip');
  if (r() < 0.05) tags.push('newsletter');
  return { name, data, tags };
}

/** Creates the customers entity and its 12 properties; returns their IDs. */
export async function createCustomersEntity(client: Client, slug = 'customers'): Promise<{ entityId: string; ids: PropertyIds }> {
  const entity = await client.request('POST', '/crm-core/v1/entities', { name: '고객', slug });
  if (entity.status !== 201 && entity.status !== 200) throw new Error(`entity create answered ${entity.status}: ${JSON.stringify(entity.body)}`);
  const entityId = entity.body.entityId as string;
  const ids = {} as PropertyIds;
  for (const p of CUSTOMER_PROPERTIES) {
    const res = await client.request('POST', '/crm-core/v1/properties', {
      entityId,
      name: p.name,
      fieldType: p.fieldType,
      ...('options' in p ? { options: p.options.map((value) => ({ label: value, value })) } : {}),
    });
    if (res.status >= 300) throw new Error(`property ${p.key} answered ${res.status}: ${JSON.stringify(res.body)}`);
    ids[p.key] = res.body.propertyId;
  }
  return { entityId, ids };
}

export interface LoadResult {
  records: number;
  elapsedMs: number;
  recordsPerSecond: number;
  /** Latency of each bulk request (ms). */
  latencies: number[];
  /** Every `sampleEvery`-th created record ID (for get-by-ID runs). */
  sampleIds: string[];
}

/**
 * Loads records [start, start + total) through POST /records/bulk, `batch` per request,
 * `concurrency` in flight (each worker builds its next body while the others' requests are in
 * flight). Any failed item fails the load.
 */
export async function loadCustomers(client: Client, entityId: string, ids: PropertyIds, options: { total: number; start?: number; batch?: number; concurrency?: number; seed?: number; sampleEvery?: number; onProgress?: (done: number) => void }): Promise<LoadResult> {
  const batch = options.batch ?? 1000;
  const concurrency = options.concurrency ?? 2;
  const sampleEvery = options.sampleEvery ?? 100;
  const batches = Math.ceil(options.total / batch);
  const latencies: number[] = [];
  const sampleIds: string[] = [];
  const start = options.start ?? 0;
  const body = (b: number) => {
    const records = [];
    for (let n = b * batch; n < Math.min(options.total, (b + 1) * batch); n++) records.push({ entityId, ...generateCustomer(start + n, ids, options.seed) });
    return { records };
  };
  let next = 0;
  let done = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < batches) {
      const b = next++;
      const payload = body(b);
      const t0 = performance.now();
      const res = await client.request('POST', '/crm-core/v1/records/bulk', payload);
      latencies.push(performance.now() - t0);
      if (res.status >= 300) throw new Error(`bulk ${b} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
      if (res.body.failed?.length) throw new Error(`bulk ${b}: ${res.body.failed.length} failed items, first ${JSON.stringify(res.body.failed[0])}`);
      const created = res.body.recordIds as string[];
      for (let i = 0; i < created.length; i++) if ((b * batch + i) % sampleEvery === 0) sampleIds.push(created[i]!);
      done += created.length;
      options.onProgress?.(done);
    }
  }));
  const elapsedMs = performance.now() - started;
  return { records: done, elapsedMs, recordsPerSecond: (done / elapsedMs) * 1000, latencies, sampleIds };
}
