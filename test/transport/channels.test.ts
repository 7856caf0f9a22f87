/**
 * Channels end to end against a real server process: WebSocket and HTTP transports, the
 * hybrid handshake, relay traffic, and what happens to hostile input.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInitiator } from '../../src/channel/index.ts';
import { connect, type SecureClient } from '../../src/client/index.ts';
import { createCrypto } from '../../src/crypto/index.ts';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

/** The events of one relay frame: one JSON object, or a batch (a JSON array of them). */
function eventsOf(plaintext: Uint8Array): Record<string, any>[] {
  const value = JSON.parse(new TextDecoder().decode(plaintext));
  return Array.isArray(value) ? value : [value];
}

let server: SpawnedServer;
let fingerprint: string;
const clients: SecureClient[] = [];
const crypto = await createCrypto({ aead: 'auto', kem: 'auto', signer: 'auto', dh: 'auto', wasmSimd: true });

beforeAll(async () => {
  server = await spawnServer({
    env: {
      SSC_SECURITY__BANS__THRESHOLD: '1000',
      SSC_SECURITY__RATE_LIMIT__HANDSHAKES_PER_IP: '1000',
    },
  });
  fingerprint = String((await server.waitForLine((l) => l.msg === 'node identity loaded')).fingerprint);
});
afterAll(async () => {
  for (const c of clients) c.close();
  if (process.env.DEBUG_SSC) console.log(server.lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => JSON.stringify(l).slice(0, 400)));
  await server.stop('SIGKILL');
});

const open = async (options: Parameters<typeof connect>[1] = {}) => {
  const client = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false, ...options });
  clients.push(client);
  return client;
};

/** DOM typings want ArrayBuffer-backed views; ours are. */
const buf = (u: Uint8Array) => u as Uint8Array<ArrayBuffer>;

const waitFor = async <T>(fn: () => T | undefined, timeoutMs = 5_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = fn();
    if (value !== undefined && value !== false) return value;
    await Bun.sleep(10);
  }
  throw new Error('timed out');
};

/** Runs a raw WebSocket handshake with a hand-driven initiator; returns the socket and session. */
async function rawChannel(options: { protocol?: string; serverFingerprint?: string } = {}) {
  const driver = createInitiator({ crypto, serverFingerprint: options.serverFingerprint ?? fingerprint, protocol: options.protocol, allowClassical: true });
  const ws = new WebSocket(`${server.publicUrl.replace('http', 'ws')}/v1/ws`);
  ws.binaryType = 'arraybuffer';
  const inbox: Uint8Array[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.onclose = (e) => resolve({ code: e.code, reason: e.reason });
  });
  ws.onmessage = (e) => inbox.push(new Uint8Array(e.data as ArrayBuffer));
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('ws error'));
  });
  ws.send(buf(await driver.writeMessage()));
  const next = () => waitFor(() => inbox.shift());
  return { ws, driver, inbox, closed, next };
}

describe('WebSocket channels', () => {
  test('two clients handshake, publish and subscribe, and exchange an acknowledged direct message', async () => {
    const alice = await open();
    const bob = await open();
    expect(alice.serverFingerprint).toBe(fingerprint);
    const publications: string[] = [];
    const messages: string[] = [];
    bob.on('publication', (p) => publications.push(`${p.topic}:${p.text()}`));
    bob.on('message', (m) => messages.push(`${m.from}:${m.text()}`));
    await bob.subscribe('public:room');
    await alice.publish('public:room', 'one');
    await alice.publish('public:room', new Uint8Array([0xff, 0x00, 0x41]));
    await waitFor(() => publications.length === 2 || undefined);
    expect(publications[0]).toBe('public:room:one');
    const stored = await alice.send(bob.identity, 'secret for bob');
    expect(stored.id).toBeGreaterThan(0);
    await waitFor(() => messages.length === 1 || undefined);
    expect(messages[0]).toBe(`${alice.identity}:secret for bob`);
    const pong = await alice.ping();
    expect(pong.nodeId).toBeTruthy();
    const presence = await alice.presence('public:room');
    expect(JSON.stringify(presence)).toContain(bob.identity);
  });

  test('a direct message to an offline identity is stored and delivered when it connects', async () => {
    const alice = await open();
    const bobKey = crypto.dh.generateKeyPair();
    const probe = await open({ staticKey: bobKey });
    const bobIdentity = probe.identity;
    probe.close();
    await Bun.sleep(50);
    await alice.send(bobIdentity, 'while you were away');
    const bob = await open({ staticKey: bobKey });
    const received: string[] = [];
    bob.on('message', (m) => received.push(m.text()));
    await waitFor(() => received.length === 1 || undefined);
    expect(received).toEqual(['while you were away']);
  });

  test('a wrong pinned server identity is rejected by the client (man in the middle)', async () => {
    const wrong = 'ab'.repeat(32);
    await expect(connect(server.publicUrl, { serverFingerprint: wrong, crypto, reconnect: false })).rejects.toThrow(/IDENTITY_MISMATCH|identity/i);
  });

  test('a downgrade to a classical protocol is refused by the server with close code 4014', async () => {
    const { closed } = await rawChannel({ protocol: 'Noise_XX_25519_ChaChaPoly_SHA256' });
    const { code, reason } = await closed;
    expect(code).toBe(4014);
    expect(reason).toBe('PROTOCOL_NOT_ALLOWED');
  });

  test('hostile frames close that channel with a specific code, are audited and counted; others keep working', async () => {
    const bystander = await open();
    // Garbage instead of a handshake message.
    const garbage = new WebSocket(`${server.publicUrl.replace('http', 'ws')}/v1/ws`);
    const garbageClosed = new Promise<number>((resolve) => {
      garbage.onclose = (e) => resolve(e.code);
    });
    await new Promise<void>((resolve) => {
      garbage.onopen = () => resolve();
    });
    garbage.send(buf(new Uint8Array([1, 2, 3, 4, 5])));
    expect(await garbageClosed).toBe(4010);

    // A tampered frame after a good handshake.
    const { ws, driver, next, closed } = await rawChannel();
    await driver.readMessage(await next());
    ws.send(buf(await driver.writeMessage()));
    const session = driver.session();
    const frame = session.seal(0x10, new TextEncoder().encode(JSON.stringify({ id: 1, cmd: 'ping' })));
    ws.send(buf(frame.slice()));
    const reply = session.open(await next());
    expect(reply.type).toBe(0x10);
    const tampered = session.seal(0x10, new TextEncoder().encode(JSON.stringify({ id: 2, cmd: 'ping' })));
    tampered[tampered.length - 1] ^= 1;
    ws.send(buf(tampered));
    expect((await closed).code).toBe(4004);

    // A text message on a binary protocol.
    const text = await rawChannel();
    text.ws.send('hello');
    expect((await text.closed).code).toBe(4002);

    expect((await bystander.ping()).nodeId).toBeTruthy();
    const metrics = await (await fetch(`${server.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/ssc_handshakes_total\{[^}]*result="failure"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/ssc_errors_total\{[^}]*kind="bad_input"[^}]*\} [1-9]/);
    await Bun.sleep(300);
    const audit = readFileSync(join(server.logDir, 'audit.log'), 'utf8');
    expect(audit).toContain('"event":"handshake.failure"');
    expect(audit).toContain('"event":"frame.rejected"');
    expect(audit).toContain('"code":"DECRYPT_FAILED"');
  });

  test('pipelined commands keep their order: publish, subscribe, publish, history sent back to back', async () => {
    const { ws, driver, next, inbox } = await rawChannel();
    await driver.readMessage(await next());
    ws.send(buf(await driver.writeMessage()));
    const session = driver.session();
    const topic = `public:pipeline-${Date.now()}`;
    const data = (text: string) => Buffer.from(text).toString('base64');
    const commands = [
      { id: 1, cmd: 'publish', topic, data: data('first') },
      { id: 2, cmd: 'subscribe', topic },
      { id: 3, cmd: 'publish', topic, data: data('second') },
      { id: 4, cmd: 'history', topic, since: 0 },
      { id: 5, cmd: 'ping' },
    ];
    for (const command of commands) ws.send(buf(session.seal(0x10, new TextEncoder().encode(JSON.stringify(command)))));
    const events: Record<string, any>[] = [];
    while (!events.some((e) => e.type === 'reply' && e.id === 5)) {
      await waitFor(() => inbox.length > 0 || undefined);
      const opened = session.open(inbox.shift()!);
      events.push(...eventsOf(opened.plaintext));
    }
    const replies = events.filter((e) => e.type === 'reply');
    expect(replies.map((r) => r.id)).toEqual([1, 2, 3, 4, 5]);
    expect(replies.every((r) => r.ok)).toBe(true);
    // The subscription sees the second publication (live), not the first (before it subscribed).
    const live = events.filter((e) => e.type === 'publication').map((e) => Buffer.from(e.data, 'base64').toString());
    expect(live).toEqual(['second']);
    // History, asked after both publishes, holds both in order.
    const history = replies.find((r) => r.id === 4)!.result.publications.map((p: { data: string }) => Buffer.from(p.data, 'base64').toString());
    expect(history).toEqual(['first', 'second']);
    ws.close();
  });

  test('a batch frame of commands is answered in order; the events of one turn come back batched in one frame', async () => {
    const { ws, driver, next, inbox } = await rawChannel();
    await driver.readMessage(await next());
    ws.send(buf(await driver.writeMessage()));
    const session = driver.session();
    const topic = `public:batch-${Date.now()}`;
    const data = (text: string) => Buffer.from(text).toString('base64');
    const commands = [
      { id: 1, cmd: 'subscribe', topic },
      ...Array.from({ length: 20 }, (_, i) => ({ id: 2 + i, cmd: 'publish', topic, data: data(`m${i}`) })),
      { id: 22, cmd: 'ping' },
    ];
    ws.send(buf(session.seal(0x10, new TextEncoder().encode(JSON.stringify(commands)))));
    const frames: Record<string, any>[][] = [];
    const events = () => frames.flat();
    while (!events().some((e) => e.type === 'reply' && e.id === 22) || events().filter((e) => e.type === 'publication').length < 20) {
      await waitFor(() => inbox.length > 0 || undefined);
      frames.push(eventsOf(session.open(inbox.shift()!).plaintext));
    }
    const replies = events().filter((e) => e.type === 'reply');
    expect(replies.map((r) => r.id)).toEqual(commands.map((c) => c.id));
    expect(replies.every((r) => r.ok)).toBe(true);
    const live = events().filter((e) => e.type === 'publication');
    expect(live.map((p) => p.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(live.map((p) => Buffer.from(p.data, 'base64').toString())).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    // 42 events, far fewer frames: the publications of one turn travel together.
    expect(frames.length).toBeLessThan(10);
    expect(Math.max(...frames.map((f) => f.length))).toBeGreaterThanOrEqual(20);
    ws.close();
  });

  test('the SDK batches the commands of one synchronous stretch and reads batched events', async () => {
    const alice = await open();
    const bob = await open();
    const topic = `public:sdk-batch-${Date.now()}`;
    await alice.subscribe(topic);
    const got: string[] = [];
    alice.on('publication', (p) => got.push(p.text()));
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => bob.publish(topic, `n${i}`)));
    expect(results.map((r) => r.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await waitFor(() => got.length === 50 || undefined);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `n${i}`));
    // Commands still gathered when the client closes go out before its CLOSE frame.
    void bob.publish(topic, 'last words').catch(() => undefined);
    bob.close();
    await waitFor(() => got.length === 51 || undefined);
    expect(got.at(-1)).toBe('last words');
  });

  test('a replayed frame on a WebSocket closes the channel (4003)', async () => {
    const { ws, driver, next, closed } = await rawChannel();
    await driver.readMessage(await next());
    ws.send(buf(await driver.writeMessage()));
    const session = driver.session();
    const frame = session.seal(0x10, new TextEncoder().encode(JSON.stringify({ id: 1, cmd: 'ping' })));
    ws.send(buf(frame));
    await next();
    ws.send(buf(frame));
    expect((await closed).code).toBe(4003);
  });

  test('frames of many channels in one burst (opened in one batch): a replay or a forgery closes only its channel, the rest run in order', async () => {
    const opened = async () => {
      const raw = await rawChannel();
      await raw.driver.readMessage(await raw.next());
      raw.ws.send(buf(await raw.driver.writeMessage()));
      const session = raw.driver.session();
      const ping = (id: number) => session.seal(0x10, new TextEncoder().encode(JSON.stringify({ id, cmd: 'ping' })));
      // The channel is open once the server answers a first ping.
      raw.ws.send(buf(ping(0)));
      expect(eventsOf(session.open(await raw.next()).plaintext)[0]).toMatchObject({ type: 'reply', id: 0, ok: true });
      return { ...raw, session, ping };
    };
    const replaying = await opened();
    const forging = await opened();
    const honest = await Promise.all([opened(), opened()]);
    // One synchronous stretch: the server reads these in one or a few turns, many channels each.
    const replayed = replaying.ping(1);
    const forged = forging.ping(1);
    forged[forged.length - 1] ^= 1;
    for (let id = 1; id <= 20; id++) {
      for (const h of honest) h.ws.send(buf(h.ping(id)));
      if (id === 3) {
        replaying.ws.send(buf(replayed));
        replaying.ws.send(buf(replayed));
        forging.ws.send(buf(forged));
      }
    }
    expect((await replaying.closed).code).toBe(4003);
    expect((await forging.closed).code).toBe(4004);
    for (const h of honest) {
      const ids: number[] = [];
      while (ids.length < 20) for (const event of eventsOf(h.session.open(await h.next()).plaintext)) ids.push(event.id);
      expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      // Still open: a later ping is answered.
      h.ws.send(buf(h.ping(21)));
      expect(eventsOf(h.session.open(await h.next()).plaintext)[0]).toMatchObject({ type: 'reply', id: 21, ok: true });
      h.ws.close();
    }
  });
});

describe('HTTP channels', () => {
  async function httpChannel() {
    const driver = createInitiator({ crypto, serverFingerprint: fingerprint });
    const first = await fetch(`${server.publicUrl}/v1/channels`, { method: 'POST', body: buf(await driver.writeMessage()) });
    expect(first.status).toBe(200);
    const id = first.headers.get('x-channel-id')!;
    await driver.readMessage(new Uint8Array(await first.arrayBuffer()));
    const finish = await fetch(`${server.publicUrl}/v1/channels/${id}/handshake`, { method: 'POST', body: buf(await driver.writeMessage()) });
    expect(finish.status).toBe(204);
    return { id, session: driver.session() };
  }
  const batch = (frames: Uint8Array[]): Uint8Array<ArrayBuffer> => {
    const out = new Uint8Array(frames.reduce((n, f) => n + 4 + f.length, 0));
    let offset = 0;
    for (const frame of frames) {
      new DataView(out.buffer).setUint32(offset, frame.length);
      out.set(frame, offset + 4);
      offset += 4 + frame.length;
    }
    return out;
  };
  const command = (session: Awaited<ReturnType<typeof httpChannel>>['session'], body: object) =>
    session.seal(0x10, new TextEncoder().encode(JSON.stringify(body)));

  test('frames sent out of order are accepted once, replays are refused, replies arrive over SSE', async () => {
    const { id, session } = await httpChannel();
    const f1 = command(session, { id: 1, cmd: 'ping' });
    const f2 = command(session, { id: 2, cmd: 'ping' });
    const f3 = command(session, { id: 3, cmd: 'ping' });
    const sent = await fetch(`${server.publicUrl}/v1/channels/${id}/frames`, { method: 'POST', body: batch([f3, f1]) });
    expect(await sent.json()).toMatchObject({ accepted: 2, results: [{ ok: true }, { ok: true }] });
    const again = await fetch(`${server.publicUrl}/v1/channels/${id}/frames`, { method: 'POST', body: batch([f1, f2, f3]) });
    const result = (await again.json()) as { accepted: number; results: { ok: boolean; code?: string }[] };
    expect(result.accepted).toBe(1);
    expect(result.results.map((r) => r.code ?? 'ok')).toEqual(['REPLAY', 'ok', 'REPLAY']);

    // Replies for ids 3, 1 and 2 wait in the outbox and stream out over SSE.
    const controller = new AbortController();
    const events = await fetch(`${server.publicUrl}/v1/channels/${id}/events`, { signal: controller.signal });
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    const reader = events.body!.getReader();
    let text = '';
    const replies: number[] = [];
    while (replies.length < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
      for (const match of text.matchAll(/data: ([A-Za-z0-9+/=]+)\n/g)) {
        const opened = session.open(new Uint8Array(Buffer.from(match[1]!, 'base64')));
        for (const event of eventsOf(opened.plaintext)) replies.push(event.id);
      }
      text = text.slice(text.lastIndexOf('\n\n') + 2);
    }
    controller.abort();
    expect(replies.sort()).toEqual([1, 2, 3]);
  });

  test('a forged frame is refused on its own and the channel lives on; bad requests get structured errors', async () => {
    const { id, session } = await httpChannel();
    const good = command(session, { id: 1, cmd: 'ping' });
    const forged = command(session, { id: 2, cmd: 'ping' });
    forged[12] ^= 0x80;
    const response = await fetch(`${server.publicUrl}/v1/channels/${id}/frames`, { method: 'POST', body: batch([forged, good]) });
    expect(((await response.json()) as { results: { code?: string }[] }).results.map((r) => r.code ?? 'ok')).toEqual(['DECRYPT_FAILED', 'ok']);
    const truncated = await fetch(`${server.publicUrl}/v1/channels/${id}/frames`, { method: 'POST', body: new Uint8Array([0, 0, 0, 50, 1]) });
    expect(truncated.status).toBe(400);
    expect(((await truncated.json()) as { error: { code: string } }).error.code).toBe('FRAME_TRUNCATED');
    const unknown = await fetch(`${server.publicUrl}/v1/channels/${'0'.repeat(32)}/frames`, { method: 'POST', body: batch([good]) });
    expect(unknown.status).toBe(404);
    const badHandshake = await fetch(`${server.publicUrl}/v1/channels`, { method: 'POST', body: new Uint8Array(10) });
    expect(badHandshake.status).toBe(400);
    expect(((await badHandshake.json()) as { error: { code: string } }).error.code).toBe('HANDSHAKE_FAILED');
  });
});
