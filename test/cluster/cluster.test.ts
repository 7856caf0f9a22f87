/**
 * The cluster view: signed heartbeats verified under TOFU and configured keys, tampering and
 * key changes reported, untrusted nodes' live traffic and presence dropped by the relay; and two
 * real server processes on one Redis showing each other verified in /health/detailed, with a
 * forged heartbeat and a forged envelope from a rogue node id refused end to end.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { createCluster } from '../../src/cluster/index.ts';
import { connect } from '../../src/client/index.ts';
import { configSchema } from '../../src/config/index.ts';
import { createCrypto } from '../../src/crypto/index.ts';
import { createNativeSigner } from '../../src/crypto/native.ts';
import {
  createMemoryBroker,
  createMemoryHub,
  createRelay,
  type NodeInfo,
  type RelayEvent,
} from '../../src/relay/index.ts';
import { fingerprintOf } from '../../src/security/node-keys.ts';
import { createSqliteStore } from '../../src/relay/sqlite.ts';
import { type RedisServer, startRedis } from '../helpers/redis.ts';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

const signer = createNativeSigner();
// biome-ignore lint/suspicious/noExplicitAny: a health+json check, read loosely
type Check = Record<string, any>;
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

function identity() {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const { publicKey } = signer.generateKeyPair(seed);
  return { seed, publicKey, fingerprint: fingerprintOf(publicKey) };
}

function clusterConfig(input: Record<string, unknown> = {}) {
  return configSchema.parse({ cluster: { heartbeatSeconds: 1, ...input } }).cluster;
}

/** A node of the view: its identity, its cluster, and a way to announce into a shared record list. */
function node(
  nodeId: string,
  records: Map<string, NodeInfo>,
  options: { config?: Record<string, unknown>; dataDir?: string; id?: ReturnType<typeof identity> } = {},
) {
  const id = options.id ?? identity();
  const cluster = createCluster({
    config: clusterConfig(options.config),
    nodeId,
    version: '1.2.3',
    identity: id,
    signer,
    peers: async () => [...records.values()],
    address: () => `http://${nodeId}:3000`,
    load: () => 0.5,
    dataDir: options.dataDir,
  });
  const announce = (connections = 1) => {
    const info = cluster.describe({ nodeId, startedAt: Date.now() - 1000, at: Date.now(), connections });
    records.set(nodeId, info);
    return info;
  };
  return { id, cluster, announce };
}

describe('signed heartbeats', () => {
  test('TOFU: peers verify each other, pins persist, a key change is invalid', async () => {
    const records = new Map<string, NodeInfo>();
    const dataDir = mkdtempSync(join(tmpdir(), 'ssc-cluster-'));
    const a = node('a', records, { dataDir });
    const b = node('b', records);
    a.announce();
    b.announce(7);
    const view = await a.cluster.refresh();
    expect(view.peers.map((p) => [p.nodeId, p.status, p.self])).toEqual([
      ['a', 'verified', true],
      ['b', 'verified', false],
    ]);
    expect(view.peers[1]).toMatchObject({
      version: '1.2.3',
      address: 'http://b:3000',
      connections: 7,
      load: 0.5,
      fingerprint: b.id.fingerprint,
    });
    expect((await a.cluster.check()).status).toBe('healthy');

    // b comes back with another key under the same node id: pinned on disk, so a restarted a refuses it too.
    const a2 = node('a', records, { dataDir, id: a.id });
    const impostor = node('b', records);
    impostor.announce();
    const after = await a2.cluster.refresh();
    expect(after.peers.find((p) => p.nodeId === 'b')).toMatchObject({ status: 'invalid' });
    expect(after.peers.find((p) => p.nodeId === 'b')!.reason).toContain('key changed');
    const check = await a2.cluster.check();
    expect(check.status).toBe('critical');
    expect(check.output).toContain('1 invalid');
    expect(a2.cluster.trusts('b')).toBe(false);
    expect(a2.cluster.trusts('never-seen')).toBe(true);
  });

  test('tampered, unsigned, replayed and self-impersonating records are not verified', async () => {
    const records = new Map<string, NodeInfo>();
    const a = node('a', records);
    const b = node('b', records);
    a.announce();
    const signed = b.announce(3);
    records.set('b', { ...signed, connections: 3000 });
    records.set('c', { nodeId: 'c', startedAt: 0, at: Date.now(), connections: 1 });
    const old = b.cluster.describe({ nodeId: 'd', startedAt: 0, at: Date.now() - 120_000, connections: 1 });
    records.set('d', old);
    // Someone else's key signing under a's own node id.
    const evil = node('a', new Map());
    records.set('a', evil.cluster.describe({ nodeId: 'a', startedAt: 0, at: Date.now(), connections: 1 }));
    const view = await a.cluster.refresh();
    const by = Object.fromEntries(view.peers.map((p) => [p.nodeId, p]));
    expect(by.a).toMatchObject({ status: 'invalid' });
    expect(by.b).toMatchObject({ status: 'invalid', reason: 'signature does not verify' });
    expect(by.c).toMatchObject({ status: 'unverified', reason: 'heartbeat is not signed' });
    expect(by.d).toMatchObject({ status: 'invalid', reason: 'heartbeat time is outside the live window' });
  });

  test('configured keys: a listed key verifies, an unlisted one is unverified, a bad entry is refused at start', async () => {
    const records = new Map<string, NodeInfo>();
    const bId = identity();
    const a = node('a', records, {
      config: { trust: 'configured', trustedKeys: { [bId.fingerprint]: b64(bId.publicKey) } },
    });
    const b = node('b', records, { id: bId });
    const c = node('c', records);
    a.announce();
    b.announce();
    c.announce();
    const view = await a.cluster.refresh();
    expect(view.peers.map((p) => p.status)).toEqual(['verified', 'verified', 'unverified']);
    expect((await a.cluster.check()).status).toBe('warning');
    expect(() =>
      node('x', records, {
        config: { trust: 'configured', trustedKeys: { [bId.fingerprint]: b64(identity().publicKey) } },
      }),
    ).toThrow(/not the ML-DSA-65 key/);
  });
});

describe('relay trust', () => {
  test("an untrusted node's live publications and presence are dropped; trusted ones pass", async () => {
    const hub = createMemoryHub();
    const dir = mkdtempSync(join(tmpdir(), 'ssc-cluster-relay-'));
    const store = createSqliteStore({ path: join(dir, 'relay.sqlite') });
    const config = configSchema.parse({});
    const untrusted = new Set(['rogue']);
    const trustNode = (id: string) => !untrusted.has(id);
    const make = (nodeId: string, withTrust: boolean) =>
      createRelay({
        config,
        broker: createMemoryBroker({ hub }),
        store,
        nodeId,
        heartbeatMs: 60_000,
        trustNode: withTrust ? trustNode : undefined,
      });
    const good = make('good', true);
    const friend = make('friend', false);
    const rogue = make('rogue', false);
    const attach = (relay: ReturnType<typeof make>, id: string) => {
      const events: RelayEvent[] = [];
      const session = relay.attach({
        id,
        identity: `${id}-identity`,
        deliver: (e) => {
          events.push(...e);
          return true;
        },
        close() {},
      });
      return { session, events };
    };
    const reader = attach(good, 'reader');
    const fromFriend = attach(friend, 'f');
    const fromRogue = attach(rogue, 'r');
    for (const c of [reader, fromFriend, fromRogue])
      expect((await c.session.handle({ id: 1, cmd: 'subscribe', topic: 'public:t' })).ok).toBe(true);
    await fromFriend.session.handle({ id: 2, cmd: 'publish', topic: 'public:t', data: 'AA==' });
    await fromRogue.session.handle({ id: 2, cmd: 'publish', topic: 'public:t', data: 'AQ==' });
    await Bun.sleep(20);
    const got = reader.events
      .filter((e) => e.type === 'publication')
      .map((e) => (e as { from: string }).from);
    expect(got).toEqual(['f-identity']);
    const presence = await reader.session.handle({ id: 3, cmd: 'presence', topic: 'public:t' });
    expect((presence as unknown as { result: { identities: string[] } }).result.identities).toEqual([
      'f-identity',
      'reader-identity',
    ]);
    for (const r of [good, friend, rogue]) await r.close();
    await store.close();
  });
});

describe('two nodes on one Redis', () => {
  let redis: RedisServer;
  const servers: SpawnedServer[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const s of servers) await s.stop('SIGKILL');
    await redis?.stop();
  });

  test('each shows the other verified; a forged heartbeat is invalid and a forged envelope is not delivered', async () => {
    const env = (id: string) => ({
      SSC_NODE_ID: id,
      SSC_BROKER__TYPE: 'redis',
      SSC_BROKER__REDIS__URL: redis.url,
      SSC_CLUSTER__HEARTBEAT_SECONDS: '1',
      SSC_SECURITY__ADMIN_TOKEN: 'cluster-test-admin-token',
      SSC_LOG__LEVEL: 'info',
    });
    servers.push(await spawnServer({ env: env('n1') }), await spawnServer({ env: env('n2') }));
    const [n1, n2] = servers;
    const detailed = async (s: SpawnedServer) =>
      (await (await fetch(`${s.opsUrl}/health/detailed?fresh=1`)).json()) as {
        checks: Record<string, Array<Check>>;
      };
    let cluster: Check | undefined;
    for (let i = 0; i < 50; i++) {
      cluster = (await detailed(n1!)).checks['consensus:cluster']?.[0];
      if (cluster?.details?.peers?.filter((p: { status: string }) => p.status === 'verified').length === 2)
        break;
      await Bun.sleep(200);
    }
    expect(cluster!.severity).toBe('healthy');
    expect(
      cluster!.details.peers.map((p: { nodeId: string; status: string }) => `${p.nodeId}:${p.status}`),
    ).toEqual(['n1:verified', 'n2:verified']);
    const peers = await fetch(`${n2!.opsUrl}/api/cluster/peers`, {
      headers: { authorization: 'Bearer cluster-test-admin-token' },
    });
    expect(peers.status).toBe(200);
    expect(((await peers.json()) as { peers: unknown[] }).peers).toHaveLength(2);
    expect((await fetch(`${n2!.opsUrl}/api/cluster/peers`)).status).toBe(401);

    // A rogue writes a heartbeat with a copied signature and inflated figures, then an envelope.
    const crypto = await createCrypto({
      aead: 'auto',
      kem: 'auto',
      signer: 'auto',
      dh: 'auto',
      wasmSimd: true,
    });
    const fingerprint = String((await n1!.waitForLine((l) => l.msg === 'node identity loaded')).fingerprint);
    const reader = await connect(n1!.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false });
    const seen: string[] = [];
    reader.on('publication', (p) => seen.push(p.text()));
    await reader.subscribe('public:watch');
    const raw = new Redis(redis.url);
    const stored = JSON.parse((await raw.hget('ssc:nodes', 'n2'))!) as NodeInfo;
    await raw
      .multi()
      .hset('ssc:nodes', 'rogue', JSON.stringify({ ...stored, nodeId: 'rogue', connections: 99_999 }))
      .zadd('ssc:nodes-exp', Date.now() + 60_000, 'rogue')
      .exec();
    for (let i = 0; i < 50; i++) {
      cluster = (await detailed(n1!)).checks['consensus:cluster']?.[0];
      if (cluster?.severity === 'critical') break;
      await Bun.sleep(200);
    }
    expect(cluster!.severity).toBe('critical');
    expect(cluster!.details.peers.find((p: { nodeId: string }) => p.nodeId === 'rogue').status).toBe(
      'invalid',
    );
    await Bun.sleep(1_200); // the periodic refresh has judged the rogue by now
    const envelope = (node: string, data: string) =>
      JSON.stringify({
        kind: 'publication',
        node,
        publication: { topic: 'public:watch', offset: 10_000, epoch: 'x', from: 'f', data, time: Date.now() },
      });
    const publishCommand = (await raw.call('COMMAND', 'INFO', 'SPUBLISH')) ? 'SPUBLISH' : 'PUBLISH';
    await raw.call(publishCommand, 'ssc:t:public:watch', envelope('rogue', btoa('from rogue')));
    await raw.call(publishCommand, 'ssc:t:public:watch', envelope('n2', btoa('from n2')));
    for (let i = 0; i < 50 && seen.length < 1; i++) await Bun.sleep(50);
    await Bun.sleep(200);
    expect(seen).toEqual(['from n2']);
    reader.close();
    raw.disconnect();
  }, 60_000);
});
