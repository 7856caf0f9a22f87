/**
 * The relay across real server processes: three nodes sharing one real redis-server, and the
 * durability of stored direct messages across restarts (SQLite default and Redis).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect, type SecureClient } from '../../src/client/index.ts';
import { createCrypto } from '../../src/crypto/index.ts';
import { type RedisServer, startRedis } from '../helpers/redis.ts';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

const crypto = await createCrypto({ aead: 'auto', kem: 'auto', signer: 'auto', dh: 'auto', wasmSimd: true });
const servers: SpawnedServer[] = [];
const clients: SecureClient[] = [];
let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis({ appendOnly: true });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
  await redis.stop('SIGKILL');
});

async function node(env: Record<string, string>, dataDir?: string) {
  const server = await spawnServer({ env, dataDir });
  servers.push(server);
  const fingerprint = String((await server.waitForLine((l) => l.msg === 'node identity loaded')).fingerprint);
  return { server, fingerprint };
}
async function client(n: { server: SpawnedServer; fingerprint: string }, options: Parameters<typeof connect>[1] = {}) {
  const c = await connect(n.server.publicUrl, { serverFingerprint: n.fingerprint, crypto, reconnect: false, ...options });
  clients.push(c);
  return c;
}
const waitFor = async (fn: () => boolean, timeoutMs = 8_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await Bun.sleep(10);
  }
};

describe('three nodes on one Redis', () => {
  test('topic and direct messages cross nodes; presence and history are global; order per publisher holds', async () => {
    const env = { SSC_BROKER__TYPE: 'redis', SSC_BROKER__REDIS__URL: redis.url, SSC_BROKER__REDIS__KEY_PREFIX: `mn${Date.now()}:` };
    const [a, b, c] = await Promise.all([node(env), node(env), node(env)]);
    const onA = await client(a);
    const onB = await client(b);
    const onC = await client(c);
    const seen: string[] = [];
    onC.on('publication', (p) => seen.push(p.text()));
    await onC.subscribe('public:global');
    await Bun.sleep(100);
    for (let i = 0; i < 20; i++) await onA.publish('public:global', `a${i}`);
    await waitFor(() => seen.length === 20);
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => `a${i}`));

    const presence = await onB.presence('public:global');
    expect(JSON.stringify(presence)).toContain(onC.identity);
    const history = (await onB.history('public:global', { since: 0 })) as { publications: { data: string }[] };
    expect(history.publications.map((p) => Buffer.from(p.data, 'base64').toString())).toEqual(seen);

    const direct: string[] = [];
    onC.on('message', (m) => direct.push(`${m.from}:${m.text()}`));
    await onA.send(onC.identity, 'from a');
    await onB.send(onC.identity, 'from b');
    await waitFor(() => direct.length === 2);
    expect(direct.sort()).toEqual([`${onA.identity}:from a`, `${onB.identity}:from b`].sort());

    const peers = await (await fetch(`${a.server.opsUrl}/health/detailed`)).json();
    expect(JSON.stringify(peers)).toContain('consensus');
  });

  test('a direct message to an offline identity survives a restart of the receiving node (Redis)', async () => {
    const env = { SSC_BROKER__TYPE: 'redis', SSC_BROKER__REDIS__URL: redis.url, SSC_BROKER__REDIS__KEY_PREFIX: `dr${Date.now()}:` };
    const sender = await node(env);
    let receiver = await node(env);
    const key = crypto.dh.generateKeyPair();
    const probe = await client(receiver, { staticKey: key });
    const identity = probe.identity;
    probe.close();
    const alice = await client(sender);
    for (const text of ['one', 'two', 'three']) await alice.send(identity, text);
    // Restart the receiving node (graceful) on the same data dir.
    const dataDir = receiver.server.dataDir;
    expect(await receiver.server.stop()).toBe(0);
    receiver = await node(env, dataDir);
    const bob = await client(receiver, { staticKey: key });
    const got: string[] = [];
    bob.on('message', (m) => got.push(m.text()));
    await waitFor(() => got.length === 3);
    expect(got).toEqual(['one', 'two', 'three']);
    await Bun.sleep(200); // let the auto-acks land
    bob.close();
    const again = await client(receiver, { staticKey: key });
    const replay: string[] = [];
    again.on('message', (m) => replay.push(m.text()));
    await again.ping();
    await Bun.sleep(300);
    expect(replay).toEqual([]);
  });
});

describe('embedded default (SQLite)', () => {
  test('a stored direct message survives a SIGKILL of the server, is delivered once in order, then acked', async () => {
    let only = await node({});
    const dataDir = only.server.dataDir;
    const key = crypto.dh.generateKeyPair();
    const probe = await client(only, { staticKey: key });
    const identity = probe.identity;
    probe.close();
    const alice = await client(only);
    for (const text of ['first', 'second', 'third']) await alice.send(identity, text);
    alice.close();
    // Acknowledged to the sender means durable: even a crash keeps them.
    await only.server.stop('SIGKILL');
    only = await node({}, dataDir);
    const bob = await client(only, { staticKey: key });
    const got: string[] = [];
    bob.on('message', (m) => got.push(m.text()));
    await waitFor(() => got.length === 3);
    expect(got).toEqual(['first', 'second', 'third']);
    await Bun.sleep(200);
    bob.close();
    expect(await only.server.stop()).toBe(0);
    only = await node({}, dataDir);
    const after = await client(only, { staticKey: key });
    const replay: string[] = [];
    after.on('message', (m) => replay.push(m.text()));
    await after.ping();
    await Bun.sleep(300);
    expect(replay).toEqual([]);
  });
});
