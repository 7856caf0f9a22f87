/**
 * Durability: direct messages to an offline identity survive a restart of the relay and its
 * store — SQLite (close and reopen the file) and Redis (relay restart, and a crash of
 * `redis-server` itself with AOF `appendfsync always`) — and are delivered once acked, in order.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema } from '../../src/config/index.ts';
import { createRelay, createRelayBackends, type Relay, type RelayBackends } from '../../src/relay/index.ts';
import { createSqliteStore } from '../../src/relay/sqlite.ts';
import { type RedisServer, startRedis } from '../helpers/redis.ts';
import { attachClient, b64, identity, unb64 } from './harness.ts';

type Config = ReturnType<typeof configSchema.parse>;
const open: Array<{ relay: Relay; backends: RelayBackends }> = [];

async function startNode(config: Config, nodeId = 'node-a') {
  const backends = await createRelayBackends(config);
  const relay = createRelay({ config, broker: backends.broker, store: backends.store, nodeId });
  const node = { relay, backends };
  open.push(node);
  return node;
}
async function stopNode(node: { relay: Relay; backends: RelayBackends }) {
  open.splice(open.indexOf(node), 1);
  await node.relay.close();
  await node.backends.close();
}
afterEach(async () => {
  for (const node of open.splice(0)) {
    await node.relay.close();
    await node.backends.close();
  }
});

/** Sends `n` direct messages from a fresh sender on `node` to `to`; returns their ids. */
async function sendAll(relay: Relay, to: string, texts: string[]) {
  const sender = attachClient(relay);
  const ids: number[] = [];
  for (const text of texts) ids.push((await sender.ok({ cmd: 'send', to, data: b64(text) })).id);
  return { sender, ids };
}

async function receive(relay: Relay, who: string, expected: number) {
  const client = attachClient(relay, who);
  await client.waitFor(() => client.messages().length >= expected, `${expected} messages`);
  await Bun.sleep(50); // nothing more arrives
  return client;
}

describe('durability [sqlite]', () => {
  test('a direct message to an offline identity survives restarts; delivered once acked, in order', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ssc-relay-dur-'));
    const config = configSchema.parse({ server: { dataDir }, broker: { type: 'memory' } });
    const to = identity();

    let node = await startNode(config);
    const { ids } = await sendAll(node.relay, to, ['one', 'two', 'three', 'four']);
    // A topic's history and epoch survive too.
    const pub = attachClient(node.relay);
    const first = await pub.ok({ cmd: 'publish', topic: 'public:log', data: b64('kept') });
    await stopNode(node);

    node = await startNode(config);
    let r = await receive(node.relay, to, 4);
    expect(r.messages().map((m) => unb64(m.data))).toEqual(['one', 'two', 'three', 'four']);
    expect(r.messages().map((m) => m.id)).toEqual(ids);
    await r.ok({ cmd: 'ack', ids: ids.slice(0, 2) });
    const history = await r.ok({ cmd: 'history', topic: 'public:log' });
    expect(history).toMatchObject({ epoch: first.epoch, offset: 1 });
    await stopNode(node);

    node = await startNode(config);
    r = await receive(node.relay, to, 2);
    expect(r.messages().map((m) => unb64(m.data))).toEqual(['three', 'four']);
    await r.ok({ cmd: 'ack', ids: r.messages().map((m) => m.id) });
    // New ids keep increasing after a restart.
    const { ids: later } = await sendAll(node.relay, identity(), ['x']);
    expect(later[0]).toBeGreaterThan(ids[3]);
    await stopNode(node);

    node = await startNode(config);
    r = attachClient(node.relay, to);
    await r.ok({ cmd: 'ping' });
    await Bun.sleep(50);
    expect(r.messages()).toHaveLength(0);
    expect((await node.backends.store.health()).details).toMatchObject({ journalMode: 'wal' });
  });
});

describe('unclean exit [sqlite]', () => {
  test('a process that dies without closing the store: committed history kept, every topic gets a new epoch', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ssc-relay-crash-'));
    const path = join(dataDir, 'relay.sqlite');
    // A child process appends (offsets are handed out before their commit) and exits without close.
    const script = `
      import { createSqliteStore } from ${JSON.stringify(join(import.meta.dir, '../../src/relay/sqlite.ts'))};
      const store = createSqliteStore({ path: ${JSON.stringify(path)} });
      const limits = { maxCount: 100, maxAgeMs: 3_600_000 };
      let last;
      for (const data of ['YQ==', 'Yg==', 'Yw==']) last = await store.append('public:crash', { from: 'x', data, time: Date.now() }, limits);
      console.log(JSON.stringify(last));
      process.exit(0);
    `;
    const child = Bun.spawnSync([process.execPath, '-e', script], { stdout: 'pipe', stderr: 'pipe' });
    if (child.exitCode !== 0) throw new Error(`child exited with ${child.exitCode} (signal ${child.signalCode}): ${child.stderr.toString().slice(-2_000)}`);
    const before = JSON.parse(child.stdout.toString().trim()) as { epoch: string; offset: number };
    expect(before.offset).toBe(3);

    const config = configSchema.parse({ server: { dataDir }, broker: { type: 'memory' } });
    let node = await startNode(config);
    const reader = attachClient(node.relay);
    const history = await reader.ok({ cmd: 'history', topic: 'public:crash' });
    // The three committed publications are kept; the epoch is new, so a client holding
    // (old epoch, 3) is told recovered: false rather than being handed a reused offset.
    expect(history.epoch).not.toBe(before.epoch);
    expect(history.publications.map((p: { offset: number; data: string }) => [p.offset, p.data])).toEqual([
      [1, 'YQ=='],
      [2, 'Yg=='],
      [3, 'Yw=='],
    ]);
    const resumed = await reader.ok({ cmd: 'subscribe', topic: 'public:crash', since: { epoch: before.epoch, offset: 3 } });
    expect(resumed).toMatchObject({ epoch: history.epoch, offset: 3, recovered: false, replayed: 0 });
    const next = await reader.ok({ cmd: 'publish', topic: 'public:crash', data: b64('d') });
    expect(next).toMatchObject({ epoch: history.epoch, offset: 4 });

    // A clean close keeps the epoch.
    await stopNode(node);
    node = await startNode(config);
    const again = await attachClient(node.relay).ok({ cmd: 'history', topic: 'public:crash' });
    expect(again).toMatchObject({ epoch: history.epoch, offset: 4 });
  });
});

describe('durability [redis]', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis({ appendOnly: true });
  });
  afterAll(async () => {
    await redis?.stop();
  });
  const redisConfig = (keyPrefix: string) =>
    configSchema.parse({ broker: { type: 'redis', redis: { url: redis.url, keyPrefix, commandTimeoutMs: 2_000 } } });

  test('survives a restart of the receiving relay', async () => {
    const config = redisConfig('dur1:');
    const to = identity();
    const sendingNode = await startNode(config, 'node-a');
    let receiving = await startNode(config, 'node-b');
    const online = attachClient(receiving.relay, to);
    const { ids } = await sendAll(sendingNode.relay, to, ['a1', 'a2']);
    await online.waitFor(() => online.messages().length === 2, 'live delivery');
    // Delivered but never acked: the receiving node restarts.
    await stopNode(receiving);
    await sendAll(sendingNode.relay, to, ['a3']);
    receiving = await startNode(config, 'node-b');
    const r = await receive(receiving.relay, to, 3);
    expect(r.messages().map((m) => unb64(m.data))).toEqual(['a1', 'a2', 'a3']);
    expect(r.messages().slice(0, 2).map((m) => m.id)).toEqual(ids);
    await r.ok({ cmd: 'ack', ids: r.messages().map((m) => m.id) });
    await stopNode(receiving);
    receiving = await startNode(config, 'node-b');
    const again = attachClient(receiving.relay, to);
    await again.ok({ cmd: 'ping' });
    await Bun.sleep(50);
    expect(again.messages()).toHaveLength(0);
  });

  test('survives a crash of redis-server (AOF, appendfsync always)', async () => {
    const config = redisConfig('dur2:');
    const to = identity();
    let node = await startNode(config);
    await sendAll(node.relay, to, ['c1', 'c2', 'c3']);
    await stopNode(node);
    await redis.stop('SIGKILL');
    await redis.restart();
    node = await startNode(config);
    const r = await receive(node.relay, to, 3);
    expect(r.messages().map((m) => unb64(m.data))).toEqual(['c1', 'c2', 'c3']);
  });
});

describe('embedded store WAL', () => {
  test('under sustained appends the WAL keeps starting over instead of growing with what was written', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ssc-wal-')), 'relay.sqlite');
    // 256 frames (1 MiB) instead of 64 MiB, so a short run crosses the limit many times.
    const store = createSqliteStore({ path, walRestartFrames: 256 });
    const from = 'f'.repeat(64);
    const data = 'x'.repeat(172);
    const limits = { maxCount: 1000, maxAgeMs: 3_600_000 };
    let appends = 0;
    let maxWal = 0;
    const end = performance.now() + 20_000;
    try {
      while (appends < 80_000 && performance.now() < end) {
        const batch: Promise<unknown>[] = [];
        for (let i = 0; i < 256; i++) batch.push(store.append(`public:t${i % 32}`, { from, data, time: Date.now() }, limits));
        await Promise.all(batch);
        appends += 256;
        maxWal = Math.max(maxWal, statSync(`${path}-wal`).size);
      }
      // Every append was committed: the history holds the last offsets of each topic.
      const read = await store.readSince('public:t0', 0, { limit: 1, maxCount: 1000, maxAgeMs: 3_600_000, now: Date.now() });
      expect(read.position.offset).toBe(appends / 32);
    } finally {
      await store.close();
    }
    // Each append costs ~2 KiB of WAL frames (pages rewritten per commit): a WAL that never
    // started over would hold all of them (~160 MiB here; 278 MiB measured for 130k appends).
    console.log(`wal: ${appends} appends, largest WAL ${(maxWal / 2 ** 20).toFixed(1)} MiB`);
    expect(appends).toBeGreaterThanOrEqual(80_000);
    expect(maxWal).toBeLessThan(64 * 2 ** 20);
  });
});
