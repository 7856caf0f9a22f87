/**
 * Rate limits and bans.
 *
 * - Rate limits (rate-limiter-flexible): per IP for HTTP routes and handshakes, per connection
 *   for frames. In memory by default; with `broker.type = "redis"` the per-IP limits are kept in
 *   Redis (shared by all nodes) with an in-memory insurance limiter for when Redis is down.
 * - Threat detection: suspicious events (handshake failures, replays, tampered frames, 401s,
 *   rate-limit hits) per source within a window; past the threshold the source is banned for
 *   `banSeconds`. Bans live in the ban list — a Map, or a Redis sorted set shared by every node
 *   (each node refreshes its view every second) — and are audited and counted.
 */
import type Redis from 'ioredis';
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config/index.ts';
import type { AuditEvent } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';

export type LimitScope = 'http' | 'handshake' | 'frame';

export interface Ban {
  source: string;
  until: number;
  reason: string;
}

/** Where bans are kept. */
export interface BanList {
  add(ban: Ban): Promise<void>;
  remove(source: string): Promise<boolean>;
  list(): Promise<Ban[]>;
  /** Synchronous check against the local view (refreshed from the shared store). */
  isBanned(source: string): Ban | undefined;
  close(): void;
}

/** Bans in process memory (embedded default). */
export function createMemoryBanList(now: () => number = Date.now): BanList {
  const bans = new Map<string, Ban>();
  const prune = () => {
    for (const [source, ban] of bans) if (ban.until <= now()) bans.delete(source);
  };
  return {
    async add(ban) {
      bans.set(ban.source, ban);
    },
    async remove(source) {
      return bans.delete(source);
    },
    async list() {
      prune();
      return [...bans.values()];
    },
    isBanned(source) {
      const ban = bans.get(source);
      if (ban && ban.until <= now()) {
        bans.delete(source);
        return undefined;
      }
      return ban;
    },
    close() {},
  };
}

/**
 * Bans in Redis, shared by every node: a sorted set (score = until, ms) and a hash of reasons.
 * Each node refreshes its local view every `refreshMs`, so a ban placed on one node is enforced
 * by the others within about a second.
 */
export function createRedisBanList(redis: Redis, keyPrefix: string, refreshMs = 1_000, onError?: (e: unknown) => void): BanList {
  const setKey = `${keyPrefix}bans`;
  const reasonKey = `${keyPrefix}bans:reason`;
  let view = new Map<string, Ban>();
  const refresh = async () => {
    const now = Date.now();
    await redis.zremrangebyscore(setKey, '-inf', now);
    const entries = await redis.zrangebyscore(setKey, now, '+inf', 'WITHSCORES');
    const sources = entries.filter((_, i) => i % 2 === 0);
    const reasons = sources.length ? await redis.hmget(reasonKey, ...sources) : [];
    const next = new Map<string, Ban>();
    for (let i = 0; i < sources.length; i++) {
      next.set(sources[i]!, { source: sources[i]!, until: Number(entries[i * 2 + 1]), reason: reasons[i] ?? '' });
    }
    view = next;
  };
  const timer = setInterval(() => refresh().catch((e) => onError?.(e)), refreshMs);
  timer.unref?.();
  refresh().catch((e) => onError?.(e));
  return {
    async add(ban) {
      await redis.multi().zadd(setKey, ban.until, ban.source).hset(reasonKey, ban.source, ban.reason).exec();
      view.set(ban.source, ban);
    },
    async remove(source) {
      const removed = await redis.zrem(setKey, source);
      await redis.hdel(reasonKey, source);
      view.delete(source);
      return removed > 0;
    },
    async list() {
      await refresh();
      return [...view.values()];
    },
    isBanned(source) {
      const ban = view.get(source);
      return ban && ban.until > Date.now() ? ban : undefined;
    },
    close() {
      clearInterval(timer);
    },
  };
}

export interface SecurityLimitsOptions {
  config: Config['security'];
  metrics: Metrics;
  audit: (event: AuditEvent) => void;
  banList: BanList;
  /** Redis client for shared per-IP limits (distributed mode). */
  redis?: Redis;
  keyPrefix?: string;
}

/** Rate limiters, threat detection and the ban list, as one object the transports consult. */
export function createSecurityLimits(options: SecurityLimitsOptions) {
  const { config, metrics, audit, banList } = options;
  const duration = config.rateLimit.windowSeconds;
  const limiter = (keyPrefix: string, points: number, shared: boolean): RateLimiterAbstract => {
    const memory = new RateLimiterMemory({ keyPrefix, points, duration });
    if (!shared || !options.redis) return memory;
    return new RateLimiterRedis({
      storeClient: options.redis,
      keyPrefix: `${options.keyPrefix ?? 'ssc:'}rl:${keyPrefix}`,
      points,
      duration,
      insuranceLimiter: memory,
      rejectIfRedisNotReady: true,
    });
  };
  const limiters: Record<LimitScope, RateLimiterAbstract> = {
    http: limiter('http', config.rateLimit.httpPerIp, true),
    handshake: limiter('hs', config.rateLimit.handshakesPerIp, true),
    frame: limiter('frame', config.rateLimit.framesPerConnection, false),
  };
  const suspicion = new RateLimiterMemory({
    keyPrefix: 'suspicion',
    points: config.bans.threshold,
    duration: config.bans.windowSeconds,
  });

  const refreshBanGauge = async () => metrics.bansActive.set((await banList.list()).length);

  const limits = {
    banList,
    /**
     * Consumes one point; returns null when allowed, or the seconds to wait. A refusal is
     * counted, audited and fed to threat detection.
     */
    async consume(scope: LimitScope, key: string, source = key): Promise<number | null> {
      try {
        await limiters[scope].consume(key);
        return null;
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        metrics.rateLimited.inc({ scope });
        const retryAfter = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
        // Audit the first refusal of a window, not every one (a flood must not flood the audit log).
        if (rejection.consumedPoints === limiters[scope].points + 1) {
          audit({ event: 'rate_limit.hit', scope, source, retryAfter });
        }
        await limits.suspicious(source, `rate_limit.${scope}`);
        return retryAfter;
      }
    },
    /** Records a suspicious event; bans the source past the threshold. Returns the ban if placed. */
    async suspicious(source: string, kind: string): Promise<Ban | undefined> {
      if (banList.isBanned(source)) return undefined;
      try {
        await suspicion.consume(source);
        return undefined;
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        const ban = { source, until: Date.now() + config.bans.banSeconds * 1000, reason: kind };
        await banList.add(ban);
        await suspicion.delete(source);
        audit({ event: 'ban.placed', source, reason: kind, seconds: config.bans.banSeconds });
        await refreshBanGauge();
        return ban;
      }
    },
    /** The active ban of a source, if any. */
    banned(source: string): Ban | undefined {
      return banList.isBanned(source);
    },
    async lift(source: string, by: string): Promise<boolean> {
      const removed = await banList.remove(source);
      if (removed) audit({ event: 'ban.lifted', source, by });
      await refreshBanGauge();
      return removed;
    },
    refreshBanGauge,
  };
  return limits;
}

export type SecurityLimits = ReturnType<typeof createSecurityLimits>;
