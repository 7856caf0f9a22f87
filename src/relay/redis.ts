/**
 * The distributed backends on Redis (ioredis): one `Broker` and one `Store` sharing a command
 * connection, plus a duplicate connection in subscriber mode.
 *
 * - Fan-out: sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`, Redis ≥ 7) when the server has it, else
 *   plain pub/sub. At-most-once, as Redis pub/sub is.
 * - History: one stream per topic with ids `<offset>-0`, trimmed by count (`MAXLEN`) and by age
 *   (`MINID` up to the first young entry); epoch and last offset in a hash. Append and fan-out run
 *   in one Lua script, so live delivery order equals offset order across all nodes.
 * - Direct messages: one stream per recipient with ids `<seq>-0`, enqueue + fan-out in one
 *   script; `XDEL` on ack. As durable as the server's AOF (`appendfsync always` for honest acks).
 * - Presence and heartbeats: a hash of entries plus a sorted set of expiry times (Redis 7.0 has
 *   no per-field TTL), pruned by a script on read.
 * - Every command runs through a cockatiel circuit breaker and ioredis' `commandTimeout`; the
 *   connection reconnects with capped exponential backoff. Latency goes to
 *   `ssc_broker_command_duration_seconds{backend="redis"}`, liveness to `ssc_broker_up`, the
 *   breaker to `ssc_circuit_breaker_state{name="redis"}`.
 *
 * Key layout (prefix `P`, default `ssc:`; `{…}` are cluster hash tags): see docs/RELAY.md.
 */
import { randomBytes } from 'node:crypto';
import { BrokenCircuitError, CircuitState, circuitBreaker, ConsecutiveBreaker, handleWhen } from 'cockatiel';
import Redis from 'ioredis';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import {
  type AppendResult,
  type BackendHealth,
  type Broker,
  type BrokerEnvelope,
  type BrokerHandler,
  type DirectMessage,
  type EnqueueResult,
  type HistoryLimits,
  identityChannel,
  type NodeInfo,
  type PresenceEntry,
  type Publication,
  RelayError,
  type Store,
  type StreamPosition,
  topicChannel,
} from './types.ts';

export interface RedisBackendOptions {
  url: string;
  keyPrefix: string;
  commandTimeoutMs: number;
  logger?: Logger;
  metrics?: Metrics;
  now?: () => number;
  /** Lifetime of a topic's epoch/offset hash after its last append (ms); default 30 days. */
  metaTtlMs?: number;
  /** Consecutive failures that open the breaker (default 5), and ms before it half-opens (5 s). */
  breakerThreshold?: number;
  breakerHalfOpenMs?: number;
  /** How long to wait for the first connection before starting degraded (ms, default 5 s). */
  connectTimeoutMs?: number;
  /** This node's id, written into the envelopes the scripts fan out (`BrokerEnvelope.node`). */
  nodeId?: string;
}

export interface RedisBackends {
  broker: Broker;
  store: Store;
  /** The command connection (shared by broker and store). */
  client: Redis;
  /** Closes both connections. */
  close(): Promise<void>;
}

/**
 * Appends publications to ARGV[1] topics in one call. ARGV[2] is the publish command, ARGV[3]
 * this node's id; then per topic t (KEYS[2t-1] its stream, KEYS[2t] its meta hash) a header —
 * count n, count bound, oldest time kept, stream TTL, channel, topic name, epoch for a new
 * topic, meta TTL — and n × (from, data, time). Each topic's publications get consecutive
 * offsets and go out as one envelope (`publication` for one, `publications` for several).
 * Returns the first offset and the epoch of each topic, in order.
 */
const APPEND_SCRIPT = `
local topics = tonumber(ARGV[1])
local out = {}
local a = 4
for t = 1, topics do
  local stream, meta = KEYS[2 * t - 1], KEYS[2 * t]
  local n = tonumber(ARGV[a])
  local maxCount, minTime, streamTtl, channel, topic, newEpoch, metaTtl =
    ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  a = a + 8
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = newEpoch
    redis.call('HSET', meta, 'epoch', epoch)
  end
  local last = redis.call('HINCRBY', meta, 'offset', n)
  local first = last - n + 1
  local pubs = {}
  for i = 0, n - 1 do
    local offset = first + i
    redis.call('XADD', stream, 'MAXLEN', '~', maxCount, offset .. '-0', 'f', ARGV[a], 'd', ARGV[a + 1], 't', ARGV[a + 2])
    pubs[i + 1] = { topic = topic, offset = offset, epoch = epoch, from = ARGV[a], data = ARGV[a + 1], time = tonumber(ARGV[a + 2]) }
    a = a + 3
  end
  -- Age: look at the oldest entry only; when it is too old, trim a batch up to the first young one.
  local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  if oldest and tonumber(oldest[2][6]) < tonumber(minTime) then
    local cut = nil
    for _, e in ipairs(redis.call('XRANGE', stream, '-', '+', 'COUNT', 64)) do
      if tonumber(e[2][6]) < tonumber(minTime) then cut = e[1] else break end
    end
    local c = tonumber(string.match(cut, '^(%d+)'))
    redis.call('XTRIM', stream, 'MINID', (c + 1) .. '-0')
  end
  redis.call('PEXPIRE', stream, streamTtl)
  redis.call('PEXPIRE', meta, metaTtl)
  if channel ~= '' then
    local env
    if n == 1 then
      env = cjson.encode({ kind = 'publication', node = ARGV[3], publication = pubs[1] })
    else
      env = cjson.encode({ kind = 'publications', node = ARGV[3], publications = pubs })
    end
    redis.call(ARGV[2], channel, env)
  end
  out[2 * t - 1] = first
  out[2 * t] = epoch
end
return out
`;

const ENQUEUE_SCRIPT = `
local n = redis.call('XLEN', KEYS[1])
if n >= tonumber(ARGV[4]) then return { -1, n } end
local id = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], id .. '-0', 'f', ARGV[1], 'd', ARGV[2], 't', ARGV[3])
if ARGV[5] ~= '' then
  local env = cjson.encode({ kind = 'direct', node = ARGV[8], message = {
    id = id, to = ARGV[6], from = ARGV[1], data = ARGV[2], time = tonumber(ARGV[3]) } })
  redis.call(ARGV[7], ARGV[5], env)
end
return { id, n + 1 }
`;

/** Live members of an expiring set: hash KEYS[1] of values, zset KEYS[2] of expiry scores. */
const LIVE_SCRIPT = `
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #dead > 0 then
  redis.call('HDEL', KEYS[1], unpack(dead))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
end
return redis.call('HVALS', KEYS[1])
`;

const KV_LIST_SCRIPT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

type Scripted = Redis & {
  sscAppend(...args: (string | number)[]): Promise<(number | string)[]>;
  sscEnqueue(...args: (string | number)[]): Promise<[number, number]>;
  sscLive(...args: (string | number)[]): Promise<string[]>;
  sscKvList(...args: (string | number)[]): Promise<string[]>;
};

const entryFields = (fields: string[]) => {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]] = fields[i + 1];
  return out;
};
const idNumber = (id: string) => Number(id.slice(0, id.indexOf('-')));
/** Most publications one append script call takes (its arguments: 3, then 8 per topic and 3 per publication). */
const MAX_APPEND_BATCH = 256;

/**
 * Connects the Redis broker and store. Resolves once connected, or after `connectTimeoutMs`
 * with the backends in a degraded state (commands fail with `unavailable` until Redis answers).
 *
 * @example
 * const { broker, store, close } = await createRedisBackends({ url, keyPrefix: 'ssc:', commandTimeoutMs: 2000, metrics });
 */
export async function createRedisBackends(options: RedisBackendOptions): Promise<RedisBackends> {
  const {
    url,
    keyPrefix: P,
    commandTimeoutMs,
    logger,
    metrics,
    now = Date.now,
    metaTtlMs = 30 * 86_400_000,
    breakerThreshold = 5,
    breakerHalfOpenMs = 5_000,
    connectTimeoutMs = 5_000,
    nodeId,
  } = options;

  const retryStrategy = (times: number) => Math.min(2 ** Math.min(times, 10) * 50, 5_000) + Math.floor(Math.random() * 100);
  const client = new Redis(url, {
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy,
    lazyConnect: true,
  }) as Scripted;
  // Its number of keys (two per topic) is the call's first argument.
  client.defineCommand('sscAppend', { lua: APPEND_SCRIPT });
  client.defineCommand('sscEnqueue', { numberOfKeys: 2, lua: ENQUEUE_SCRIPT });
  client.defineCommand('sscLive', { numberOfKeys: 2, lua: LIVE_SCRIPT });
  client.defineCommand('sscKvList', { numberOfKeys: 1, lua: KV_LIST_SCRIPT });
  // The subscriber keeps an offline queue so (re)subscriptions wait for the connection.
  const subscriber = new Redis(url, { retryStrategy, lazyConnect: true, autoResubscribe: true, maxRetriesPerRequest: null });

  let up = false;
  const setUp = (value: boolean) => {
    up = value;
    metrics?.brokerUp.set({ backend: 'redis' }, value ? 1 : 0);
  };
  setUp(false);
  client.on('ready', () => {
    setUp(true);
    logger?.info({ url: redactUrl(url) }, 'redis ready');
  });
  client.on('close', () => {
    if (up) logger?.warn({ url: redactUrl(url) }, 'redis connection closed; reconnecting');
    setUp(false);
  });
  client.on('error', (error) => logger?.debug({ err: error.message }, 'redis error'));
  subscriber.on('error', (error) => logger?.debug({ err: error.message }, 'redis subscriber error'));

  const breaker = circuitBreaker(
    handleWhen((error) => !(error instanceof RelayError)),
    { halfOpenAfter: breakerHalfOpenMs, breaker: new ConsecutiveBreaker(breakerThreshold) },
  );
  const breakerValue = (state: CircuitState) => (state === CircuitState.Closed ? 0 : state === CircuitState.HalfOpen ? 1 : 2);
  metrics?.circuitBreakerState.set({ name: 'redis' }, 0);
  breaker.onStateChange((state) => {
    metrics?.circuitBreakerState.set({ name: 'redis' }, breakerValue(state));
    logger?.warn({ breaker: 'redis', state: CircuitState[state] }, 'circuit breaker state changed');
  });

  /** Runs one command through the breaker, timing it. Errors become `RelayError`s. */
  async function run<T>(command: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw new RelayError('closed', 'redis backend is closed');
    const started = performance.now();
    try {
      return await breaker.execute(fn);
    } catch (error) {
      if (error instanceof RelayError) throw error;
      if (error instanceof BrokenCircuitError) throw new RelayError('unavailable', 'redis circuit breaker is open', { cause: error });
      const message = (error as Error).message ?? String(error);
      const code = /timed? ?out/i.test(message) ? 'timeout' : 'unavailable';
      throw new RelayError(code, `redis ${command}: ${message}`, { cause: error });
    } finally {
      metrics?.brokerCommandDuration.observe({ backend: 'redis', command }, (performance.now() - started) / 1000);
    }
  }

  let closed = false;
  const connectOne = (connection: Redis) =>
    Promise.race([
      connection.connect().then(
        () => true,
        () => false,
      ),
      Bun.sleep(connectTimeoutMs).then(() => false),
    ]);
  const [clientOk] = await Promise.all([connectOne(client), connectOne(subscriber)]);
  if (!clientOk) logger?.warn({ url: redactUrl(url) }, 'redis not reachable at startup; relay starts degraded');

  // Sharded pub/sub when the server knows SPUBLISH (Redis ≥ 7.0).
  let sharded = false;
  if (clientOk) {
    try {
      const info = (await client.call('COMMAND', 'INFO', 'SPUBLISH')) as unknown[];
      sharded = Array.isArray(info) && info[0] != null;
    } catch {
      sharded = false;
    }
  }
  const publishCommand = sharded ? 'SPUBLISH' : 'PUBLISH';
  const channelKey = (channel: string) => `${P}${channel}`;

  // ---- broker ------------------------------------------------------------------------------
  const handlers = new Map<string, BrokerHandler>();
  const onMessage = (key: string, message: string) => {
    const channel = key.startsWith(P) ? key.slice(P.length) : key;
    const handler = handlers.get(channel);
    if (!handler) return;
    let envelope: BrokerEnvelope;
    try {
      envelope = JSON.parse(message) as BrokerEnvelope;
    } catch {
      logger?.warn({ channel }, 'undecodable broker message dropped');
      return;
    }
    handler(envelope);
  };
  subscriber.on(sharded ? 'smessage' : 'message', onMessage);

  // After a reconnect ioredis resubscribes (autoResubscribe) right after 'ready'; a PING queued
  // behind those commands answers once they are in effect, and then the relay resyncs.
  const reconnectListeners: Array<() => void> = [];
  // Registered after the first connection, so every 'ready' seen here is a reconnect.
  subscriber.on('ready', () => {
    setImmediate(() => {
      subscriber.ping().then(
        () => {
          logger?.info('redis subscriber restored; resyncing from the store');
          for (const listener of reconnectListeners) listener();
        },
        (error) => logger?.warn({ err: (error as Error).message }, 'redis subscriber ping after reconnect failed'),
      );
    });
  });

  const presenceKeys = (topic: string) => [`${P}presence:{${topic}}`, `${P}presence-exp:{${topic}}`];
  const nodeKeys = [`${P}nodes`, `${P}nodes-exp`];

  const broker: Broker = {
    backend: 'redis',
    sharded,
    publish(channel, envelope) {
      return run('publish', async () => {
        await client.call(publishCommand, channelKey(channel), JSON.stringify(envelope));
      });
    },
    async subscribe(channel, handler) {
      handlers.set(channel, handler);
      try {
        await (sharded ? subscriber.ssubscribe(channelKey(channel)) : subscriber.subscribe(channelKey(channel)));
      } catch (error) {
        handlers.delete(channel);
        throw new RelayError('unavailable', `redis subscribe: ${(error as Error).message}`, { cause: error });
      }
    },
    async unsubscribe(channel) {
      handlers.delete(channel);
      if (closed) return;
      try {
        await (sharded ? subscriber.sunsubscribe(channelKey(channel)) : subscriber.unsubscribe(channelKey(channel)));
      } catch (error) {
        logger?.debug({ err: (error as Error).message, channel }, 'redis unsubscribe failed');
      }
    },
    presenceJoin(topic, entries, ttlMs) {
      if (entries.length === 0) return Promise.resolve();
      const [hash, zset] = presenceKeys(topic);
      const expires = now() + ttlMs;
      return run('presence_join', async () => {
        const multi = client.multi();
        for (const entry of entries) {
          const field = `${entry.nodeId}/${entry.clientId}`;
          multi.hset(hash, field, JSON.stringify(entry)).zadd(zset, expires, field);
        }
        multi.pexpire(hash, ttlMs * 4).pexpire(zset, ttlMs * 4);
        await multi.exec();
      });
    },
    presenceLeave(topic, nodeId, clientIds) {
      if (clientIds.length === 0) return Promise.resolve();
      const [hash, zset] = presenceKeys(topic);
      const fields = clientIds.map((id) => `${nodeId}/${id}`);
      return run('presence_leave', async () => {
        await client.multi().hdel(hash, ...fields).zrem(zset, ...fields).exec();
      });
    },
    presenceList(topic) {
      return run('presence_list', async () => {
        const values = await client.sscLive(...presenceKeys(topic), now());
        return values.map((v) => JSON.parse(v) as PresenceEntry);
      });
    },
    announce(info, ttlMs) {
      return run('announce', async () => {
        await client
          .multi()
          .hset(nodeKeys[0], info.nodeId, JSON.stringify(info))
          .zadd(nodeKeys[1], now() + ttlMs, info.nodeId)
          .exec();
      });
    },
    peers() {
      return run('peers', async () => {
        const values = await client.sscLive(nodeKeys[0], nodeKeys[1], now());
        return values.map((v) => JSON.parse(v) as NodeInfo).sort((a, b) => a.nodeId.localeCompare(b.nodeId));
      });
    },
    onReconnect(listener) {
      reconnectListeners.push(listener);
    },
    health: () => health('broker'),
    async close() {
      await closeAll();
    },
  };

  // ---- store -------------------------------------------------------------------------------
  const histKeys = (topic: string) => [`${P}hist:{${topic}}`, `${P}hmeta:{${topic}}`];
  const dmKeys = (identity: string) => [`${P}dm:{${identity}}`, `${P}dmseq:{${identity}}`];
  const cursorKey = (identity: string) => `${P}cursor:{${identity}}`;
  const kvKey = (ns: string, key: string) => `${P}kv:${ns}:${key}`;
  const kvIndex = (ns: string) => `${P}kvidx:${ns}`;
  const seriesKey = (name: string) => `${P}series:${name}`;

  async function position(topic: string): Promise<StreamPosition> {
    const [, meta] = histKeys(topic);
    // HSETNX creates the epoch of a new topic; the offset stays absent (= 0) until the first append.
    const [[, _set], [, values]] = (await client
      .multi()
      .hsetnx(meta, 'epoch', randomBytes(6).toString('hex'))
      .hmget(meta, 'epoch', 'offset')
      .pexpire(meta, metaTtlMs)
      .exec()) as [[null, number], [null, [string, string | null]], unknown];
    return { epoch: values[0], offset: Number(values[1] ?? 0) };
  }

  // Appends made in one turn of the event loop (every frame that arrived in it) go to Redis as
  // one script call — per topic consecutive offsets and one fan-out envelope — in call order per
  // topic. Any other store command first sends what is queued, so a connection's writes reach
  // Redis in the order it issued them.
  type QueuedAppend = { entry: { from: string; data: string; time: number }; resolve: (r: AppendResult) => void; reject: (e: unknown) => void };
  let appendQueue = new Map<string, { limits: HistoryLimits; items: QueuedAppend[] }>();
  let appendFlushQueued = false;
  function flushAppends() {
    appendFlushQueued = false;
    if (appendQueue.size === 0) return;
    const queued = appendQueue;
    appendQueue = new Map();
    // One script call for every topic queued (a single Redis instance: keys of any slot may
    // share a script), at most MAX_APPEND_BATCH publications per call.
    let batch: { topic: string; limits: HistoryLimits; items: QueuedAppend[] }[] = [];
    let size = 0;
    for (const [topic, { limits, items }] of queued) {
      for (let at = 0; at < items.length; at += MAX_APPEND_BATCH) {
        const part = items.slice(at, at + MAX_APPEND_BATCH);
        if (size > 0 && size + part.length > MAX_APPEND_BATCH) {
          appendBatch(batch);
          batch = [];
          size = 0;
        }
        batch.push({ topic, limits, items: part });
        size += part.length;
      }
    }
    if (batch.length > 0) appendBatch(batch);
  }
  function appendBatch(batch: { topic: string; limits: HistoryLimits; items: QueuedAppend[] }[]) {
    const keys: string[] = [];
    const args: (string | number)[] = [batch.length, publishCommand, nodeId ?? ''];
    for (const { topic, limits, items } of batch) {
      keys.push(...histKeys(topic));
      args.push(
        items.length,
        limits.maxCount,
        items[0]!.entry.time - limits.maxAgeMs,
        limits.maxAgeMs + 60_000,
        channelKey(topicChannel(topic)),
        topic,
        randomBytes(6).toString('hex'),
        Math.max(metaTtlMs, limits.maxAgeMs * 2),
      );
      for (const { entry } of items) args.push(entry.from, entry.data, entry.time);
    }
    run('append', () => client.sscAppend(keys.length, ...keys, ...args)).then(
      (out) => {
        for (let t = 0; t < batch.length; t++) {
          const { topic, items } = batch[t]!;
          const first = Number(out[2 * t]);
          const epoch = String(out[2 * t + 1]);
          for (let i = 0; i < items.length; i++) {
            const { entry, resolve } = items[i]!;
            resolve({ topic, offset: first + i, epoch, from: entry.from, data: entry.data, time: entry.time, published: true });
          }
        }
      },
      (error) => {
        for (const { items } of batch) for (const item of items) item.reject(error);
      },
    );
  }

  const store: Store = {
    backend: 'redis',
    append(topic, entry, limits) {
      if (closed) return Promise.reject(new RelayError('closed', 'redis backend is closed'));
      return new Promise<AppendResult>((resolve, reject) => {
        let queued = appendQueue.get(topic);
        if (!queued) appendQueue.set(topic, (queued = { limits, items: [] }));
        queued.limits = limits;
        queued.items.push({ entry, resolve, reject });
        if (!appendFlushQueued) {
          appendFlushQueued = true;
          setImmediate(flushAppends);
        }
      });
    },
    readSince(topic, since, { limit, maxCount, maxAgeMs, now: at }) {
      flushAppends();
      const [stream] = histKeys(topic);
      return run('read_since', async () => {
        const pos = await position(topic);
        // MAXLEN ~ trims whole nodes, so a few extra may linger: the count bound is applied here.
        const start = Math.max(since, pos.offset - maxCount);
        const entries = await client.xrange(stream, `(${start}-0`, '+', 'COUNT', limit);
        const cutoff = at - maxAgeMs;
        const publications: Publication[] = [];
        for (const [id, fields] of entries) {
          const offset = idNumber(id);
          const f = entryFields(fields);
          const time = Number(f.t);
          if (time < cutoff) continue;
          publications.push({ topic, offset, epoch: pos.epoch, from: f.f, data: f.d, time });
        }
        return { position: pos, publications };
      });
    },
    position: (topic) => {
      flushAppends();
      return run('position', () => position(topic));
    },
    enqueue(to, entry, maxCount) {
      flushAppends();
      const keys = dmKeys(to);
      return run('enqueue', async (): Promise<EnqueueResult> => {
        const [id, count] = await client.sscEnqueue(
          ...keys,
          entry.from,
          entry.data,
          entry.time,
          maxCount,
          channelKey(identityChannel(to)),
          to,
          publishCommand,
          nodeId ?? '',
        );
        if (id < 0) throw new RelayError('queue_full', `queue of ${to} holds ${count} pending messages`);
        return { id: Number(id), to, from: entry.from, data: entry.data, time: entry.time, published: true };
      });
    },
    pending(identity, afterId, limit) {
      const [stream] = dmKeys(identity);
      return run('pending', async () => {
        const entries = await client.xrange(stream, `(${afterId}-0`, '+', 'COUNT', limit);
        return entries.map(([id, fields]): DirectMessage => {
          const f = entryFields(fields);
          return { id: idNumber(id), to: identity, from: f.f, data: f.d, time: Number(f.t) };
        });
      });
    },
    ack(identity, ids) {
      if (ids.length === 0) return Promise.resolve(0);
      const [stream] = dmKeys(identity);
      return run('ack', () => client.xdel(stream, ...ids.map((id) => `${id}-0`)));
    },
    pendingCount(identity) {
      return run('pending_count', () => client.xlen(dmKeys(identity)[0]));
    },
    getCursor(identity, topic) {
      return run('cursor_get', async () => {
        const value = await client.hget(cursorKey(identity), topic);
        if (!value) return undefined;
        const at = value.lastIndexOf(':');
        return { epoch: value.slice(0, at), offset: Number(value.slice(at + 1)) };
      });
    },
    setCursor(identity, topic, pos) {
      flushAppends();
      return run('cursor_set', async () => {
        await client.hset(cursorKey(identity), topic, `${pos.epoch}:${pos.offset}`);
      });
    },
    kv: {
      get: (ns, key) => run('kv_get', async () => (await client.get(kvKey(ns, key))) ?? undefined),
      set: (ns, key, value, ttlMs = 0) =>
        run('kv_set', async () => {
          const multi = client.multi();
          if (ttlMs > 0) multi.set(kvKey(ns, key), value, 'PX', ttlMs).zadd(kvIndex(ns), now() + ttlMs, key);
          else multi.set(kvKey(ns, key), value).zadd(kvIndex(ns), '+inf', key);
          await multi.exec();
        }),
      delete: (ns, key) =>
        run('kv_delete', async () => {
          const [[, removed]] = (await client.multi().del(kvKey(ns, key)).zrem(kvIndex(ns), key).exec()) as [[null, number], unknown];
          return removed > 0;
        }),
      list: (ns) =>
        run('kv_list', async () => {
          const keys = await client.sscKvList(kvIndex(ns), now());
          if (keys.length === 0) return [];
          const values = await client.mget(...keys.map((k) => kvKey(ns, k)));
          const out: Array<{ key: string; value: string }> = [];
          keys.forEach((key, i) => {
            if (values[i] != null) out.push({ key, value: values[i]! });
          });
          return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        }),
    },
    series: {
      append: (name, points, retainMs = 0) =>
        run('series_append', async () => {
          if (points.length === 0) return;
          const key = seriesKey(name);
          const multi = client.multi();
          // Member `time:value` keeps points unique; a repeated time adds a second point.
          multi.zadd(key, ...points.flatMap(([time, value]) => [time, `${time}:${value}`]));
          if (retainMs > 0) multi.zremrangebyscore(key, '-inf', `(${now() - retainMs}`);
          await multi.exec();
        }),
      range: (name, from, to) =>
        run('series_range', async () => {
          const members = await client.zrangebyscore(seriesKey(name), from, to);
          return members.map((m): [number, number] => {
            const at = m.indexOf(':');
            return [Number(m.slice(0, at)), Number(m.slice(at + 1))];
          });
        }),
    },
    health: () => health('store'),
    async close() {
      await closeAll();
    },
  };

  async function health(role: 'broker' | 'store'): Promise<BackendHealth> {
    const state = CircuitState[breaker.state];
    if (closed) return { status: 'down', output: `redis ${role} closed` };
    if (client.status !== 'ready') {
      return { status: 'down', output: `redis ${role}: connection ${client.status}`, details: { breaker: state } };
    }
    try {
      const started = performance.now();
      await run('ping', () => client.ping());
      const ms = performance.now() - started;
      const status = breaker.state === CircuitState.Closed ? (ms > commandTimeoutMs / 2 ? 'warning' : 'healthy') : 'degraded';
      return {
        status,
        output: `redis ${role} ${status === 'healthy' ? 'answers' : 'slow or recovering'} (${ms.toFixed(1)} ms, breaker ${state})`,
        details: { pingMs: ms, breaker: state, sharded, subscriber: subscriber.status, channels: handlers.size },
      };
    } catch (error) {
      return { status: 'down', output: `redis ${role}: ${(error as Error).message}`, details: { breaker: state } };
    }
  }

  let closing: Promise<void> | undefined;
  function closeAll(): Promise<void> {
    closing ??= (async () => {
      closed = true;
      handlers.clear();
      setUp(false);
      await Promise.allSettled([client.quit(), subscriber.quit()]);
      client.disconnect();
      subscriber.disconnect();
    })();
    return closing;
  }

  return { broker, store, client, close: closeAll };
}

/** The URL without its password, for logs. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://<unparseable>';
  }
}
