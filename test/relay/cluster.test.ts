/**
 * Relays in one process on one real `redis-server` (different node ids): three nodes exchange
 * topic and direct messages with global presence, history and peers; a lost subscriber
 * connection is resynced from the store; a Redis outage answers with codes, trips the breaker
 * and recovers. (The same across real server processes: multinode.test.ts.)
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { configSchema } from '../../src/config/index.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { createRedisBackends, createRelay, type Relay } from '../../src/relay/index.ts';
import { type RedisServer, startRedis } from '../helpers/redis.ts';
import { attachClient, b64, createTracker, redisFactory, unb64 } from './harness.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

describe('three relays on one Redis', () => {
  const tracker = createTracker();
  afterEach(() => tracker.closeAll());

  test('topic and direct messages cross nodes; presence, history and peers are global', async () => {
    const cluster = await redisFactory(() => redis.url).cluster();
    const nodes: Relay[] = [];
    for (const nodeId of ['n1', 'n2', 'n3']) nodes.push((await tracker.relay(cluster, { nodeId })).relay);
    const clients = nodes.map((relay) => attachClient(relay));
    for (const c of clients) await c.ok({ cmd: 'subscribe', topic: 'public:mesh' });
    // Each client publishes 10, pipelined; everyone gets all 30, each publisher's in order.
    await Promise.all(
      clients.flatMap((c, n) =>
        Array.from({ length: 10 }, (_, i) => c.ok({ cmd: 'publish', topic: 'public:mesh', data: b64(`${n}:${i}`) })),
      ),
    );
    for (const c of clients) {
      await c.waitFor(() => c.publications().length === 30, '30 publications');
      const got = c.publications().map((p) => unb64(p.data));
      for (let n = 0; n < 3; n++) {
        expect(got.filter((d) => d.startsWith(`${n}:`))).toEqual(Array.from({ length: 10 }, (_, i) => `${n}:${i}`));
      }
      // One global order: offsets 1..30 as delivered, the same on every node.
      expect(c.publications().map((p) => p.offset)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    }
    // Direct messages between every pair.
    for (const from of clients) {
      for (const to of clients) if (from !== to) await from.ok({ cmd: 'send', to: to.identity, data: b64(`${from.identity}`) });
    }
    for (const c of clients) {
      await c.waitFor(() => c.messages().length === 2, 'two direct messages');
      expect(c.messages().map((m) => m.from).sort()).toEqual(
        clients.filter((x) => x !== c).map((x) => x.identity).sort(),
      );
    }
    const presence = await clients[0].ok({ cmd: 'presence', topic: 'public:mesh' });
    expect(presence.clients.map((c: { nodeId: string }) => c.nodeId).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(presence.identities).toEqual(clients.map((c) => c.identity).sort());
    const history = await clients[2].ok({ cmd: 'history', topic: 'public:mesh' });
    expect(history.publications).toHaveLength(30);
    for (const relay of nodes) await relay.heartbeat();
    expect((await nodes[1].peers()).map((p) => p.nodeId)).toEqual(['n1', 'n2', 'n3']);
    // A client leaving one node disappears from presence everywhere.
    await clients[1].session.detach();
    const after = await clients[2].ok({ cmd: 'presence', topic: 'public:mesh' });
    expect(after.clients.map((c: { nodeId: string }) => c.nodeId).sort()).toEqual(['n1', 'n3']);
  });
});

describe('subscriber connection lost and restored', () => {
  const tracker = createTracker();
  afterEach(() => tracker.closeAll());

  test('publications and direct messages of the gap are filled from the store, in order, once', async () => {
    const cluster = await redisFactory(() => redis.url).cluster();
    const { relay: one } = await tracker.relay(cluster, { nodeId: 'n1' });
    const { relay: two } = await tracker.relay(cluster, { nodeId: 'n2' });
    const a = attachClient(one);
    const b = attachClient(two);
    await a.ok({ cmd: 'subscribe', topic: 'public:gap' });
    await b.ok({ cmd: 'publish', topic: 'public:gap', data: b64('p0') });
    await b.ok({ cmd: 'send', to: a.identity, data: b64('d0') });
    await a.waitFor(() => a.publications().length === 1 && a.messages().length === 1, 'before the cut');
    // Drop every pub/sub connection; ioredis reconnects after ~100 ms and resubscribes.
    const killer = Bun.spawnSync(['redis-cli', '-p', String(redis.port), 'CLIENT', 'KILL', 'TYPE', 'pubsub']);
    expect(Number(killer.stdout.toString().trim())).toBeGreaterThan(0);
    for (let i = 1; i <= 5; i++) {
      await b.ok({ cmd: 'publish', topic: 'public:gap', data: b64(`p${i}`) });
      await b.ok({ cmd: 'send', to: a.identity, data: b64(`d${i}`) });
    }
    await a.waitFor(() => one.stats().resyncs >= 1, 'resync', 10_000);
    for (let i = 6; i <= 8; i++) {
      await b.ok({ cmd: 'publish', topic: 'public:gap', data: b64(`p${i}`) });
      await b.ok({ cmd: 'send', to: a.identity, data: b64(`d${i}`) });
    }
    await a.waitFor(() => a.publications().length === 9 && a.messages().length === 9, 'all nine of each', 10_000);
    await Bun.sleep(100);
    expect(a.publications().map((p) => unb64(p.data))).toEqual(Array.from({ length: 9 }, (_, i) => `p${i}`));
    expect(a.publications().map((p) => p.offset)).toEqual(Array.from({ length: 9 }, (_, i) => i + 1));
    expect(a.messages().map((m) => unb64(m.data))).toEqual(Array.from({ length: 9 }, (_, i) => `d${i}`));
  }, 30_000);
});

describe('redis outage', () => {
  test('commands fail with a code while Redis is down; breaker opens; live fan-out resumes after', async () => {
    const own = await startRedis();
    const metrics = createMetrics({ defaultMetrics: false });
    const backends = await createRedisBackends({
      url: own.url,
      keyPrefix: 'out:',
      commandTimeoutMs: 500,
      metrics,
      breakerThreshold: 3,
      breakerHalfOpenMs: 300,
    });
    const config = configSchema.parse({});
    const relay = createRelay({ config, broker: backends.broker, store: backends.store, nodeId: 'n1', metrics });
    try {
      const gauge = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0]?.value;
      expect(backends.broker.sharded).toBe(true);
      expect(await gauge('ssc_broker_up')).toBe(1);
      const a = attachClient(relay);
      const b = attachClient(relay);
      await a.ok({ cmd: 'subscribe', topic: 'public:o' });
      await b.ok({ cmd: 'publish', topic: 'public:o', data: b64('before') });
      await a.waitFor(() => a.publications().length === 1, 'before');

      await own.stop('SIGKILL');
      await Bun.sleep(100);
      const codes = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const reply = await b.cmd({ cmd: 'publish', topic: 'public:o', data: b64('down') });
        expect(reply.ok).toBe(false);
        if (!reply.ok) codes.add(reply.error.code);
      }
      expect([...codes].every((c) => c === 'unavailable' || c === 'timeout')).toBe(true);
      expect(await gauge('ssc_broker_up')).toBe(0);
      expect(await gauge('ssc_circuit_breaker_state')).toBe(2);
      expect((await backends.store.health()).status).toBe('down');

      await own.restart();
      // Reconnects with backoff; the breaker half-opens and closes on the first success.
      const deadline = Date.now() + 15_000;
      let reply = await b.cmd({ cmd: 'publish', topic: 'public:o', data: b64('after') });
      while (!reply.ok && Date.now() < deadline) {
        await Bun.sleep(200);
        reply = await b.cmd({ cmd: 'publish', topic: 'public:o', data: b64('after') });
      }
      expect(reply).toMatchObject({ ok: true });
      expect(await gauge('ssc_circuit_breaker_state')).toBe(0);
      expect(await gauge('ssc_broker_up')).toBe(1);
      // The subscriber connection resubscribed by itself: live delivery works again.
      await a.waitFor(() => a.publications().some((p) => unb64(p.data) === 'after'), 'live after restart', 10_000);
      const latency = (await metrics.registry.getSingleMetric('ssc_broker_command_duration_seconds')!.get()).values;
      expect(latency.some((v) => v.labels.backend === 'redis' && v.labels.command === 'append')).toBe(true);
    } finally {
      await relay.close();
      await backends.close();
      metrics.close();
      await own.stop();
    }
  }, 30_000);
});
