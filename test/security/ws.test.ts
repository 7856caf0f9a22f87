/**
 * The WebSocket entry under hostile input: random and mutated handshake messages and frames
 * (fast-check), and frame rate limits per connection and per identity.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { createInitiator } from '../../src/channel/index.ts';
import { connect } from '../../src/client/index.ts';
import { createCrypto } from '../../src/crypto/index.ts';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

const crypto = await createCrypto({ aead: 'auto', kem: 'auto', signer: 'auto', dh: 'auto', wasmSimd: true });
let server: SpawnedServer;
let fingerprint: string;
const buf = (u: Uint8Array) => u as Uint8Array<ArrayBuffer>;

beforeAll(async () => {
  server = await spawnServer({
    env: {
      SSC_SECURITY__RATE_LIMIT__HANDSHAKES_PER_IP: '100000',
      SSC_SECURITY__RATE_LIMIT__HTTP_PER_IP: '100000',
      SSC_SECURITY__BANS__THRESHOLD: '100000',
      SSC_SECURITY__RATE_LIMIT__FRAMES_PER_CONNECTION: '20',
      SSC_SECURITY__RATE_LIMIT__FRAMES_PER_IDENTITY: '30',
    },
  });
  fingerprint = String((await server.waitForLine((l) => l.msg === 'node identity loaded')).fingerprint);
});
afterAll(async () => {
  await server.stop('SIGKILL');
});

const wsUrl = () => `${server.publicUrl.replace('http', 'ws')}/v1/ws`;

/** Opens a socket, sends the messages, and resolves with the close code (or 'open' after the wait). */
async function send(messages: (Uint8Array | string)[], waitMs = 150): Promise<number | 'open'> {
  const ws = new WebSocket(wsUrl());
  ws.binaryType = 'arraybuffer';
  let code: number | undefined;
  const closed = new Promise<void>((resolve) => {
    ws.onclose = (e) => {
      code = e.code;
      resolve();
    };
  });
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('ws error'));
  });
  for (const m of messages) ws.send(typeof m === 'string' ? m : buf(m));
  await Promise.race([closed, Bun.sleep(waitMs)]);
  if (code === undefined) {
    ws.close();
    return 'open';
  }
  return code;
}

describe('WebSocket entry', () => {
  test('fuzz: random and mutated handshake messages get a channel close code, never a crash', async () => {
    const valid = await createInitiator({ crypto, serverFingerprint: fingerprint }).writeMessage();
    const mutated = fc
      .tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 40 }))
      .map(([index, xor, cut]) => {
        const copy = valid.slice(0, valid.length - cut);
        if (index < copy.length) copy[index]! ^= xor;
        return copy;
      });
    const codes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.uint8Array({ maxLength: 2_000 }), mutated, fc.string({ maxLength: 50 })), { minLength: 1, maxLength: 3 }), async (messages) => {
        const code = await send(messages);
        const key = String(code);
        codes.set(key, (codes.get(key) ?? 0) + 1);
        // Either a channel error close (4000–4099), or still waiting for the next handshake message.
        if (code !== 'open') expect(code).toBeGreaterThanOrEqual(4000);
        if (code !== 'open') expect(code).toBeLessThan(4100);
      }),
      { numRuns: 150 },
    );
    expect(codes.size).toBeGreaterThan(0);
    expect(server.proc.exitCode).toBeNull();
    expect(server.lines.filter((l) => l.msg === 'unhandled rejection' || l.msg === 'uncaught exception' || l.msg === 'channel failed')).toEqual([]);
    // The node still serves a real client.
    const client = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false });
    expect((await client.ping()).nodeId).toBeTruthy();
    client.close();
  });

  test('frames over the per-connection limit close the channel with 4029 and are audited', async () => {
    const client = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false, batch: false });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => client.on('close', resolve));
    const results = await Promise.allSettled(Array.from({ length: 25 }, () => client.ping()));
    expect(results.filter((r) => r.status === 'fulfilled').length).toBe(20);
    expect((await closed).code).toBe(4029);
  });

  test('a batch counts as many frames as it carries commands: one past the limit runs none of them', async () => {
    const client = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false });
    // 15 commands in one frame fit the window of 20.
    const first = await Promise.allSettled(Array.from({ length: 15 }, () => client.ping()));
    expect(first.filter((r) => r.status === 'fulfilled').length).toBe(15);
    const closed = new Promise<{ code: number; reason: string }>((resolve) => client.on('close', resolve));
    // 10 more in one frame would make 25: refused whole, the channel closed.
    const second = await Promise.allSettled(Array.from({ length: 10 }, () => client.ping()));
    expect(second.filter((r) => r.status === 'fulfilled').length).toBe(0);
    expect((await closed).code).toBe(4029);
  });

  test('an identity over its limit across several connections is closed too', async () => {
    const staticKey = crypto.dh.generateKeyPair();
    const a = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false, staticKey });
    const b = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false, staticKey, batch: false });
    for (let i = 0; i < 15; i++) await a.ping();
    const closedB = new Promise<{ code: number }>((resolve) => b.on('close', resolve));
    const results = await Promise.allSettled(Array.from({ length: 18 }, () => b.ping()));
    expect(results.filter((r) => r.status === 'fulfilled').length).toBe(15);
    expect((await closedB).code).toBe(4029);
    a.close();
    const metrics = await (await fetch(`${server.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/ssc_rate_limited_total\{[^}]*scope="identity"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/ssc_rate_limited_total\{[^}]*scope="frame"[^}]*\} [1-9]/);
  });
});
