/**
 * Fuzzing the two parsers that face the network: handshake messages and transport frames.
 * Whatever the input, only `ChannelError` may be thrown, and valid traffic still works after.
 */
import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { ChannelError, createInitiator, createResponder, decodePayload, Session } from '../../src/channel/index.ts';
import { nobleSuite } from './fixtures.ts';
import { makeServer } from './helpers.ts';

const noble = nobleSuite();
const RUNS = 10_000;

/** Random byte edits: flip, overwrite, truncate, extend, splice. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), extra: fc.uint8Array({ maxLength: 16 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(input: Uint8Array, m: Mutation): Uint8Array {
  const out = input.slice();
  const at = input.length ? m.kind === 'extend' ? 0 : (m as { at: number }).at % input.length : 0;
  switch (m.kind) {
    case 'flip':
      out[at] ^= 1 << m.bit;
      return out;
    case 'set':
      out[at] = m.value === out[at] ? m.value ^ 0xff : m.value;
      return out;
    case 'truncate':
      return out.subarray(0, at);
    case 'extend':
      return new Uint8Array([...out, ...m.extra]);
    case 'splice':
      return new Uint8Array([...out.subarray(0, at), ...m.extra, ...out.subarray(at + 1)]);
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Runs `fn`; returns normally on success or ChannelError, fails the property on anything else. */
async function onlyChannelErrors(fn: () => unknown | Promise<unknown>): Promise<'ok' | 'error'> {
  try {
    await fn();
    return 'ok';
  } catch (error) {
    if (!(error instanceof ChannelError)) throw new Error(`non-ChannelError thrown: ${String(error)}`);
    return 'error';
  }
}

describe('frame parser fuzz', () => {
  const k1 = new Uint8Array(32).fill(3);
  const k2 = new Uint8Array(32).fill(4);
  const common = { aead: noble.chachaPoly, handshakeHash: new Uint8Array(32), protocolName: 'fuzz', rekeyMessages: 50, maxFrameBytes: 512 };

  test(`${RUNS} random and ${RUNS} mutated frames: only ChannelError, state intact`, () => {
    const sender = new Session({ ...common, sendKey: k1, receiveKey: k2, initiator: true });
    const receiver = new Session({ ...common, sendKey: k2, receiveKey: k1, initiator: false });
    const originals = Array.from({ length: 200 }, (_, i) => sender.seal(0x10 + (i % 3), new TextEncoder().encode(`frame ${i}`)));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          receiver.open(bytes);
          return false; // a random frame must never authenticate
        } catch (error) {
          return error instanceof ChannelError;
        }
      }),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(fc.nat({ max: originals.length - 1 }), mutation, (i, m) => {
        const bad = mutate(originals[i], m);
        if (sameBytes(bad, originals[i])) return true;
        try {
          receiver.open(bad);
          return false;
        } catch (error) {
          return error instanceof ChannelError;
        }
      }),
      { numRuns: RUNS },
    );
    // Every genuine frame (incl. the REKEY frames at every 50th) still opens, locally reordered
    // (reordering may cross one rekey boundary, see PROTOCOL.md "Rekey").
    const order = originals.map((_, i) => i);
    for (let i = 0; i + 5 < order.length; i += 6) [order[i], order[i + 5]] = [order[i + 5], order[i]];
    for (const i of order) expect(new TextDecoder().decode(receiver.open(originals[i]).plaintext)).toBe(`frame ${i}`);
  });
});

describe('handshake parser fuzz', () => {
  const keys = makeServer(noble);
  const responder = () => createResponder({ crypto: noble, staticKey: keys.staticKey, identity: keys.identity, clientAuth: 'none', handshakeTimeoutMs: 600_000 });

  test(`${RUNS} random first messages and payloads: only ChannelError`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 1400 }), fc.uint8Array({ maxLength: 40 }).map((b) => new Uint8Array([1, 1, ...b]))), async (bytes) => {
        expect(await onlyChannelErrors(() => responder().readMessage(bytes))).toBe('error');
        await onlyChannelErrors(() => decodePayload(bytes));
      }),
      { numRuns: RUNS },
    );
  });

  test(`${RUNS} mutated handshake messages (1, 2 and 3): only ChannelError, the handshake still completes`, async () => {
    const client = createInitiator({ crypto: noble, serverFingerprint: keys.fingerprint, handshakeTimeoutMs: 600_000 });
    const server = responder();
    const m1 = await client.writeMessage();
    // Message 1 is unauthenticated (XX): a mutation may still parse; it must never throw anything else.
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        await onlyChannelErrors(() => responder().readMessage(mutate(m1, m)));
      }),
      { numRuns: Math.floor(RUNS / 5) },
    );
    await server.readMessage(m1);
    const m2 = await server.writeMessage();
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const bad = mutate(m2, m);
        if (sameBytes(bad, m2)) return;
        expect(await onlyChannelErrors(() => client.readMessage(bad))).toBe('error');
      }),
      { numRuns: Math.floor(RUNS * 0.4) },
    );
    await client.readMessage(m2);
    const m3 = await client.writeMessage();
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const bad = mutate(m3, m);
        if (sameBytes(bad, m3)) return;
        expect(await onlyChannelErrors(() => server.readMessage(bad))).toBe('error');
      }),
      { numRuns: Math.floor(RUNS * 0.4) },
    );
    await server.readMessage(m3);
    const a = client.session();
    const b = server.session();
    expect(new TextDecoder().decode(b.open(a.seal(0x10, new TextEncoder().encode('still fine'))).plaintext)).toBe('still fine');
  }, 120_000);
});
