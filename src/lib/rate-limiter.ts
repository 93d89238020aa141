import { Redis } from 'ioredis';
import type { Clock } from './clock.ts';

/**
 * Fixed-window request counters per API key and per account (docs/reliability.md, "Rate
 * limiting"). The window is `floor(now / window)`: every process that shares the store (Redis)
 * and has a synchronised clock counts into the same window. Only admitted requests count: a
 * request refused by one limit consumes no budget of the other (so a key hammering past its own
 * limit does not drain the account's budget for the account's other keys).
 */

export interface RateLimitRule {
  /** Requests admitted per window. */
  limit: number;
  windowMs: number;
}

export interface RateLimitRules {
  perKey?: RateLimitRule;
  perAccount?: RateLimitRule;
}

export interface RateLimitDecision {
  allowed: boolean;
  /** Which limit refused the request. */
  refusedBy?: 'key' | 'account';
  /** The rule the headers describe: the refusing one, else the one with the fewest requests left. */
  limit: number;
  remaining: number;
  /** Seconds until that rule's window resets (at least 1). */
  resetSeconds: number;
  windowMs: number;
}

export interface RateLimiter {
  /** The decision, or undefined when the counter store failed (fail open: the request goes through). */
  check(accountId: string, apiKey: string): Promise<RateLimitDecision | undefined>;
  close(): Promise<void>;
}

interface Counter {
  key: string;
  limit: number;
  /** Milliseconds the counter must live: to its window's end, plus a margin for clock skew between nodes. */
  ttlMs: number;
}

/** Atomically: if every counter is below its limit, increment them all. Returns [admitted, refusedIndex, ...counts]. */
export interface CounterStore {
  hit(counters: Counter[], now: number): Promise<{ admitted: boolean; refusedIndex: number; counts: number[] }>;
  close(): Promise<void>;
}

export interface Logger {
  warn(obj: object, msg: string): void;
}

/** Counters in this process only (no REDIS_URL): every node has its own budget. */
export function memoryCounterStore(): CounterStore {
  const counters = new Map<string, { count: number; expiresAt: number }>();
  let lastPrune = 0;
  return {
    async hit(list, now) {
      if (now - lastPrune > 10_000) {
        lastPrune = now;
        for (const [key, entry] of counters) if (entry.expiresAt <= now) counters.delete(key);
      }
      const entries = list.map((c) => {
        const entry = counters.get(c.key);
        return entry && entry.expiresAt > now ? entry : undefined;
      });
      const counts = entries.map((e) => e?.count ?? 0);
      const refusedIndex = list.findIndex((c, i) => counts[i]! >= c.limit);
      if (refusedIndex >= 0) return { admitted: false, refusedIndex, counts };
      list.forEach((c, i) => {
        const entry = entries[i] ?? { count: 0, expiresAt: now + c.ttlMs };
        entry.count++;
        counters.set(c.key, entry);
        counts[i] = entry.count;
      });
      return { admitted: true, refusedIndex: -1, counts };
    },
    async close() {
      counters.clear();
    },
  };
}

/**
 * KEYS: the counters; ARGV: limit and TTL (ms) of each. Reads every counter; when one is full,
 * refuses without incrementing anything; otherwise INCRs each, setting its expiry on creation.
 * One script = one atomic step, however many API nodes share the Redis.
 */
const HIT_SCRIPT = `
local counts = {}
for i = 1, #KEYS do
  counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
for i = 1, #KEYS do
  if counts[i] >= tonumber(ARGV[2 * i - 1]) then
    return {0, i, unpack(counts)}
  end
end
for i = 1, #KEYS do
  counts[i] = redis.call('INCR', KEYS[i])
  if counts[i] == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i]) end
end
return {1, 0, unpack(counts)}
`;

/** Counters shared by every node through Redis. Commands fail fast (no offline queue) while Redis is away. */
export function redisCounterStore(url: string, options: { commandTimeoutMs?: number; logger?: Logger } = {}): CounterStore {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 250,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 200, 5_000),
  });
  let lastError = 0;
  redis.on('error', (error: Error) => {
    // Reconnection errors repeat every few seconds while Redis is down: log them sparingly.
    const now = Date.now();
    if (now - lastError < 30_000) return;
    lastError = now;
    options.logger?.warn({ err: error }, 'rate limit: Redis connection error');
  });
  // During the first connection attempt a request waits for it (at most the command timeout)
  // rather than failing open, so a node just booted is limited from its first request. Once
  // that attempt has succeeded or failed, an unreachable Redis fails fast, without the wait.
  let firstConnection: Promise<void> | undefined = new Promise<void>((resolve) => {
    const settle = () => {
      firstConnection = undefined;
      resolve();
    };
    redis.once('ready', settle);
    redis.once('error', settle);
  });
  const commandTimeoutMs = options.commandTimeoutMs ?? 250;
  return {
    async hit(list, _now) {
      if (firstConnection) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([firstConnection, new Promise<void>((resolve) => { timer = setTimeout(resolve, commandTimeoutMs); })]);
        clearTimeout(timer);
      }
      const args = list.flatMap((c) => [String(c.limit), String(Math.max(1, Math.ceil(c.ttlMs)))]);
      const result = (await redis.eval(HIT_SCRIPT, list.length, ...list.map((c) => c.key), ...args)) as number[];
      const [admitted, refused, ...counts] = result.map(Number);
      return { admitted: admitted === 1, refusedIndex: (refused ?? 0) - 1, counts };
    },
    async close() {
      redis.disconnect();
    },
  };
}

/** Extra lifetime of a counter past its window, so nodes whose clocks differ a little still share it. */
const SKEW_MARGIN_MS = 5_000;

export function createRateLimiter(options: {
  rules: RateLimitRules;
  store: CounterStore;
  clock: Clock;
  /** Prefix of every counter key (Redis); lets several deployments or test runs share one Redis. */
  prefix?: string;
  logger?: Logger;
}): RateLimiter {
  const { rules, store, clock, logger } = options;
  const prefix = options.prefix ?? 'crm-core:ratelimit:';
  let lastWarning = 0;

  return {
    async check(accountId, apiKey) {
      const now = clock();
      const applied: { rule: RateLimitRule; scope: 'key' | 'account'; windowEnd: number }[] = [];
      const counters: Counter[] = [];
      // `{accountId}` is a Redis Cluster hash tag: both counters of a request live in one slot.
      for (const [scope, rule, id] of [['key', rules.perKey, apiKey], ['account', rules.perAccount, '']] as const) {
        if (!rule) continue;
        const window = Math.floor(now / rule.windowMs);
        const windowEnd = (window + 1) * rule.windowMs;
        applied.push({ rule, scope, windowEnd });
        counters.push({ key: `${prefix}{${accountId}}:${scope}:${id}:${rule.windowMs}:${window}`, limit: rule.limit, ttlMs: windowEnd - now + SKEW_MARGIN_MS });
      }
      if (!counters.length) return undefined;
      let result: Awaited<ReturnType<CounterStore['hit']>>;
      try {
        result = await store.hit(counters, now);
      } catch (error) {
        // Fail open: the limiter protects capacity, it is not a security boundary; refusing every
        // request because the counter store is away would turn a Redis outage into an API outage.
        if (now - lastWarning > 30_000 || lastWarning > now) {
          lastWarning = now;
          logger?.warn({ err: error }, 'rate limit store unreachable: requests are not being rate limited');
        }
        return undefined;
      }
      const describe = (i: number, remaining: number): RateLimitDecision => ({
        allowed: result.admitted,
        limit: applied[i]!.rule.limit,
        remaining,
        resetSeconds: Math.max(1, Math.ceil((applied[i]!.windowEnd - now) / 1000)),
        windowMs: applied[i]!.rule.windowMs,
      });
      if (!result.admitted) return { ...describe(result.refusedIndex, 0), refusedBy: applied[result.refusedIndex]!.scope };
      let tightest = 0;
      const left = applied.map((a, i) => Math.max(0, a.rule.limit - (result.counts[i] ?? 0)));
      for (let i = 1; i < applied.length; i++) if (left[i]! < left[tightest]!) tightest = i;
      return describe(tightest, left[tightest]!);
    },
    close: () => store.close(),
  };
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * `<count>/<window>`: "100/s", "100/1s", "6000/m", "1000/10m", "50000/h". Undefined for an
 * empty value (no limit); an Error describing the format otherwise.
 */
export function parseRateLimitRule(raw: string | undefined): RateLimitRule | undefined | Error {
  if (raw === undefined || raw.trim() === '') return undefined;
  const m = /^(\d{1,9})\s*\/\s*(\d{1,5})?\s*([smh])$/.exec(raw.trim());
  if (!m) return new Error('must look like 100/s, 100/10s, 6000/m or 50000/h');
  const limit = Number(m[1]);
  const windowMs = Number(m[2] ?? '1') * UNIT_MS[m[3]!]!;
  if (limit < 1) return new Error('the count must be at least 1');
  if (windowMs < 1_000 || windowMs > 86_400_000) return new Error('the window must be between 1s and 24h');
  return { limit, windowMs };
}
