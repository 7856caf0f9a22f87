import { describe, expect, test } from 'bun:test';
import {
  ChannelError,
  createInitiator,
  createMemoryPinStore,
  createResponder,
  DEFAULT_PROTOCOL,
  IDENTITY_LABEL,
  identityMessage,
  isProtocolAllowed,
  PROTOCOLS,
  responderPolicyFromConfig,
} from '../../src/channel/index.ts';
import { channelSchema } from '../../src/config/schema.ts';
import { backendMixes } from './backends.ts';
import { nobleSuite, type TestSuite } from './fixtures.ts';
import { connect, makeClientIdentity, makeServer, runHandshake } from './helpers.ts';

const noble = nobleSuite();
const NK = PROTOCOLS[0x02];
const CLASSICAL_XX = PROTOCOLS[0x81];
const text = (s: string) => new TextEncoder().encode(s);

async function expectCode(promise: Promise<unknown>, code: string) {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ChannelError);
    expect((error as ChannelError).code).toBe(code as ChannelError['code']);
    return error as ChannelError;
  }
  throw new Error(`expected ${code}`);
}

function exchange(a: ReturnType<ReturnType<typeof createInitiator>['session']>, b: typeof a) {
  const f1 = a.seal(0x10, text('ping'));
  expect(new TextDecoder().decode(b.open(f1).plaintext)).toBe('ping');
  const f2 = b.seal(0x11, text('pong'));
  const opened = a.open(f2);
  expect(opened.type).toBe(0x11);
  expect(new TextDecoder().decode(opened.plaintext)).toBe('pong');
}

const mixes: [TestSuite, TestSuite][] = [[noble, noble]];
for (const other of backendMixes()) mixes.push([other, noble], [noble, other], [other, other]);

describe('hybrid handshake round trips', () => {
  for (const [c, s] of mixes) {
    for (const protocol of [DEFAULT_PROTOCOL, NK, PROTOCOLS[0x05], PROTOCOLS[0x06]]) {
      test(`${protocol} client ${c.label} / server ${s.label}`, async () => {
        const { client, server, keys } = await connect(c, s, { protocol });
        expect(client.isComplete && server.isComplete).toBe(true);
        expect(client.protocolName).toBe(protocol);
        expect(server.protocolName).toBe(protocol);
        expect(client.peer.fingerprint).toBe(keys.fingerprint);
        const a = client.session();
        const b = server.session();
        expect(a.handshakeHash).toEqual(b.handshakeHash);
        exchange(a, b);
      });
    }
  }

  test('XXhfs messages have the documented sizes', async () => {
    const keys = makeServer(noble);
    const c = createInitiator({ crypto: noble, serverFingerprint: keys.fingerprint });
    const s = createResponder({ crypto: noble, staticKey: keys.staticKey, identity: keys.identity });
    const m1 = await c.writeMessage();
    expect(m1.length).toBe(2 + 32 + 1184 + 0);
    await s.readMessage(m1);
    const m2 = await s.writeMessage();
    expect(m2.length).toBe(32 + (1088 + 16) + (32 + 16) + (3 + 1952 + 3 + 3309 + 16));
    await c.readMessage(m2);
    const m3 = await c.writeMessage();
    expect(m3.length).toBe(32 + 16 + 16);
    await s.readMessage(m3);
    expect(s.isComplete).toBe(true);
  });

  test('application data and a resume token travel in the payloads', async () => {
    const keys = makeServer(noble);
    const c = createInitiator({ crypto: noble, serverFingerprint: keys.fingerprint, resume: text('resume-me') });
    const s = createResponder({ crypto: noble, staticKey: keys.staticKey, identity: keys.identity });
    await s.readMessage(await c.writeMessage(text('hello')));
    expect(s.peer.app).toEqual(text('hello'));
    await c.readMessage(await s.writeMessage(text('welcome')));
    expect(c.peer.app).toEqual(text('welcome'));
    await s.readMessage(await c.writeMessage());
    expect(s.peer.resume).toEqual(text('resume-me'));
  });
});

describe('identity and man in the middle', () => {
  test('a wrong server identity key is rejected (pinned fingerprint)', async () => {
    const keys = makeServer(noble, 1);
    const impostor = makeServer(noble, 9);
    const c = createInitiator({ crypto: noble, serverFingerprint: keys.fingerprint });
    const s = createResponder({ crypto: noble, staticKey: impostor.staticKey, identity: impostor.identity });
    await s.readMessage(await c.writeMessage());
    await expectCode(c.readMessage(await s.writeMessage()), 'IDENTITY_MISMATCH');
    // The failure is terminal.
    await expectCode(c.writeMessage(), 'IDENTITY_MISMATCH');
  });

  test('an identity signature made for another Noise static key is rejected', async () => {
    const keys = makeServer(noble, 1);
    const other = makeServer(noble, 1); // same ML-DSA identity, different X25519 key
    const c = createInitiator({ crypto: noble, serverFingerprint: keys.fingerprint });
    // The MITM terminates the Noise handshake with its own static key but replays the real identity key:
    // it cannot produce the signature over its own static key without the ML-DSA secret.
    const s = createResponder({
      crypto: noble,
      staticKey: other.staticKey,
      identity: { publicKey: keys.identity.publicKey, secretKey: makeServer(noble, 7).identity.secretKey },
    });
    await s.readMessage(await c.writeMessage());
    await expectCode(c.readMessage(await s.writeMessage()), 'IDENTITY_MISMATCH');
  });

  test('NK: a server with another static key cannot complete', async () => {
    const keys = makeServer(noble, 1);
    const c = createInitiator({ crypto: noble, protocol: NK, serverFingerprint: keys.fingerprint, serverStaticKey: keys.staticKey.publicKey });
    const s = createResponder({ crypto: noble, staticKey: noble.dh.generateKeyPair(), identity: keys.identity });
    await expectCode(s.readMessage(await c.writeMessage()), 'HANDSHAKE_FAILED');
  });

  test('tampered handshake messages are rejected, and the untampered one still completes', async () => {
    const keys = makeServer(noble);
    const c = createInitiator({ crypto: noble, serverFingerprint: keys.fingerprint });
    const s = createResponder({ crypto: noble, staticKey: keys.staticKey, identity: keys.identity });
    await s.readMessage(await c.writeMessage());
    const m2 = await s.writeMessage();
    for (const index of [0, 40, 1200, m2.length - 1]) {
      const bad = m2.slice();
      bad[index] ^= 0x01;
      await expectCode(c.readMessage(bad), 'HANDSHAKE_FAILED');
    }
    await c.readMessage(m2);
    const m3 = await c.writeMessage();
    const bad3 = m3.slice();
    bad3[5] ^= 0x80;
    await expectCode(s.readMessage(bad3), 'HANDSHAKE_FAILED');
    await s.readMessage(m3);
    exchange(c.session(), s.session());
  });

  test('trust on first use: pins the first identity, refuses a different one later', async () => {
    const pins = createMemoryPinStore();
    const keys = makeServer(noble, 1);
    const first = await connect(noble, noble, { serverFingerprint: undefined, pinStore: pins, serverName: 'example' }, {});
    expect(pins.entries().example).toBe(first.keys.fingerprint);
    expect(first.keys.fingerprint).toBe(keys.fingerprint);
    const impostor = makeServer(noble, 3);
    const c = createInitiator({ crypto: noble, pinStore: pins, serverName: 'example' });
    const s = createResponder({ crypto: noble, staticKey: impostor.staticKey, identity: impostor.identity });
    await s.readMessage(await c.writeMessage());
    await expectCode(c.readMessage(await s.writeMessage()), 'IDENTITY_MISMATCH');
    expect(pins.entries().example).toBe(keys.fingerprint);
  });

  test('a client with neither pin nor pin store is a configuration error', () => {
    expect(() => createInitiator({ crypto: noble })).toThrow(ChannelError);
  });
});

describe('downgrade and protocol policy', () => {
  test('classical protocols are refused unless allowed', async () => {
    expect(isProtocolAllowed(CLASSICAL_XX, { allowClassical: false })).toBe(false);
    expect(isProtocolAllowed(CLASSICAL_XX, { allowClassical: true })).toBe(true);
    expect(isProtocolAllowed(DEFAULT_PROTOCOL, { allowClassical: false })).toBe(true);
    expect(isProtocolAllowed('Noise_IK_25519_ChaChaPoly_SHA256', { allowClassical: true })).toBe(false);
    const keys = makeServer(noble);
    expect(() => createInitiator({ crypto: noble, protocol: CLASSICAL_XX, serverFingerprint: keys.fingerprint })).toThrow(/not allowed/);
    const c = createInitiator({ crypto: noble, protocol: CLASSICAL_XX, allowClassical: true, serverFingerprint: keys.fingerprint });
    const s = createResponder({ crypto: noble, staticKey: keys.staticKey, identity: keys.identity });
    await expectCode(s.readMessage(await c.writeMessage()), 'PROTOCOL_NOT_ALLOWED');
  });

  test('classical works end to end when both sides allow it (interop testing)', async () => {
    const { client, server } = await connect(noble, noble, { protocol: CLASSICAL_XX, allowClassical: true }, { allowClassical: true });
    exchange(client.session(), server.session());
  });

  test('a MITM rewriting the protocol id to classical breaks the handshake even where classical is allowed', async () => {
    const keys = makeServer(noble);
    const c = createInitiator({ crypto: noble, protocol: PROTOCOLS[0x01], serverFingerprint: keys.fingerprint });
    const s = createResponder({ crypto: noble, staticKey: keys.staticKey, identity: keys.identity, allowClassical: true });
    const m1 = await c.writeMessage();
    // Strip e1 and relabel as classical XX: the server accepts the shape, but the prologue differs.
    const forged = new Uint8Array([1, 0x81, ...m1.subarray(2, 34)]);
    await s.readMessage(forged);
    await expectCode(c.readMessage(await s.writeMessage()), 'HANDSHAKE_FAILED');
  });
});

describe('client authentication', () => {
  test('mutual: the server learns the client fingerprint; allow-list enforced', async () => {
    const client = makeClientIdentity(noble, 5);
    const ok = await connect(noble, noble, { identity: client.identity }, { clientAuth: 'mutual', allowedClients: [client.fingerprint] });
    expect(ok.server.peer.fingerprint).toBe(client.fingerprint);
    expect(ok.server.peer.auth).toBe('identity');
    const nk = await connect(noble, noble, { identity: client.identity, protocol: NK }, { clientAuth: 'mutual' });
    expect(nk.server.peer.fingerprint).toBe(client.fingerprint);
    const stranger = makeClientIdentity(noble, 6);
    await expectCode(connect(noble, noble, { identity: stranger.identity }, { clientAuth: 'mutual', allowedClients: [client.fingerprint] }), 'AUTH_FAILED');
    await expectCode(connect(noble, noble, {}, { clientAuth: 'mutual' }), 'AUTH_FAILED');
  });

  test('token: accepted tokens pass, others fail', async () => {
    const tokens = ['a-very-long-token-0001', 'a-very-long-token-0002'];
    const ok = await connect(noble, noble, { token: tokens[1] }, { clientAuth: 'token', tokens });
    expect(ok.server.peer.auth).toBe('token');
    expect(ok.server.peer.tokenIndex).toBe(1);
    await connect(noble, noble, { token: tokens[0], protocol: NK }, { clientAuth: 'token', tokens });
    await expectCode(connect(noble, noble, { token: 'wrong-token-xxxxxxxxx' }, { clientAuth: 'token', tokens }), 'AUTH_FAILED');
    await expectCode(connect(noble, noble, {}, { clientAuth: 'token', tokens }), 'AUTH_FAILED');
  });

  test('policy from the config section', () => {
    const policy = responderPolicyFromConfig(channelSchema.parse({}));
    expect(policy.allowClassical).toBe(false);
    expect(policy.clientAuth).toBe('none');
    expect(policy.session?.rekeyMessages).toBe(1_048_576);
  });
});

describe('QKD pre-shared keys', () => {
  const key = new Uint8Array(32).fill(0x42);
  const keyId = '550e8400-e29b-41d4-a716-446655440000';
  const fetchQkdKey = async (id: string) => (id === keyId ? key : null);

  for (const protocol of [DEFAULT_PROTOCOL, NK]) {
    test(`${protocol.split('_')[1]}: a known key_ID adds the PSK (psk2)`, async () => {
      const { client, server } = await connect(noble, noble, { protocol, qkd: { keyId, key } }, { fetchQkdKey });
      expect(server.protocolName).toContain('hfs+psk2');
      expect(server.peer.keyId).toBe(keyId);
      exchange(client.session(), server.session());
    });
  }

  test('an unknown key_ID fails cleanly with PSK_UNKNOWN', async () => {
    await expectCode(connect(noble, noble, { qkd: { keyId: 'nope', key } }, { fetchQkdKey }), 'PSK_UNKNOWN');
    await expectCode(connect(noble, noble, { qkd: { keyId, key } }, {}), 'PSK_UNKNOWN');
    await expectCode(
      connect(noble, noble, { qkd: { keyId, key } }, { fetchQkdKey: async () => { throw new Error('KME down'); } }),
      'PSK_UNKNOWN',
    );
  });

  test('a different key under the same key_ID fails the handshake', async () => {
    await expectCode(connect(noble, noble, { qkd: { keyId, key: new Uint8Array(32).fill(1) } }, { fetchQkdKey }), 'HANDSHAKE_FAILED');
  });
});

describe('timeouts and misuse', () => {
  test('a handshake past its deadline fails with HANDSHAKE_TIMEOUT', async () => {
    let now = 1_000;
    const keys = makeServer(noble);
    const c = createInitiator({ crypto: noble, serverFingerprint: keys.fingerprint, now: () => now });
    const s = createResponder({ crypto: noble, staticKey: keys.staticKey, identity: keys.identity, handshakeTimeoutMs: 500, now: () => now });
    expect(s.deadline).toBe(1_500);
    await s.readMessage(await c.writeMessage());
    now = 2_000;
    await expectCode(s.writeMessage(), 'HANDSHAKE_TIMEOUT');
  });

  test('out-of-turn calls and early session() are HANDSHAKE_FAILED', async () => {
    const keys = makeServer(noble);
    const c = createInitiator({ crypto: noble, serverFingerprint: keys.fingerprint });
    await expectCode(c.readMessage(new Uint8Array(10)), 'HANDSHAKE_FAILED');
    expect(() => c.session()).toThrow(ChannelError);
    const s = createResponder({ crypto: noble, staticKey: keys.staticKey, identity: keys.identity });
    await expectCode(s.writeMessage(), 'HANDSHAKE_FAILED');
    await runHandshake(c, s);
    expect(c.isComplete).toBe(true);
  });
});

describe('identity signatures use an empty FIPS 204 context (native ML-DSA)', () => {
  const spySigner = (suite: TestSuite, contexts: (Uint8Array | undefined)[]) => ({
    ...suite,
    signer: {
      ...suite.signer,
      sign: (m: Uint8Array, sk: Uint8Array, ctx?: Uint8Array) => {
        contexts.push(ctx);
        return suite.signer.sign(m, sk, ctx);
      },
      verify: (sig: Uint8Array, m: Uint8Array, pk: Uint8Array, ctx?: Uint8Array) => {
        contexts.push(ctx);
        return suite.signer.verify(sig, m, pk, ctx);
      },
    },
  });

  test('both roles sign and verify label || h || s with no context', async () => {
    const contexts: (Uint8Array | undefined)[] = [];
    const suite = spySigner(noble, contexts);
    const client = makeClientIdentity(noble);
    await connect(suite, suite, { identity: client.identity }, { clientAuth: 'mutual' });
    expect(contexts.length).toBe(4); // server sign, client verify, client sign, server verify
    for (const ctx of contexts) expect(ctx?.length ?? 0).toBe(0);
  });

  test('the message starts with the role label, so a signature of one role never verifies as the other', () => {
    const h = new Uint8Array(32).fill(5);
    const s = new Uint8Array(32).fill(6);
    const server = identityMessage('server', h, s);
    expect(server[0]).toBe(IDENTITY_LABEL.server.length);
    expect(server.subarray(1, 1 + IDENTITY_LABEL.server.length)).toEqual(IDENTITY_LABEL.server);
    expect(server.length).toBe(1 + 21 + 32 + 32);
    expect(identityMessage('client', h, null).length).toBe(1 + 21 + 32);
    const keys = makeServer(noble);
    const sig = noble.signer.sign(server, keys.identity.secretKey);
    expect(noble.signer.verify(sig, server, keys.identity.publicKey)).toBe(true);
    expect(noble.signer.verify(sig, identityMessage('client', h, s), keys.identity.publicKey)).toBe(false);
  });
});

describe('async native ML-KEM (kemAsync)', () => {
  const native = backendMixes().find((m) => m.label === 'native+wasm') as TestSuite;
  /** The native mix with its sync KEM made unusable and its async KEM counted. */
  const asyncOnly = (counts: Record<string, number>): TestSuite => ({
    ...native,
    label: 'native-async-kem-only',
    kem: {
      ...native.kem,
      generateKeyPair: () => {
        throw new Error('sync KEM used');
      },
      encapsulate: () => {
        throw new Error('sync KEM used');
      },
      decapsulate: () => {
        throw new Error('sync KEM used');
      },
    } as TestSuite['kem'],
    kemAsync: {
      ...(native.kemAsync as NonNullable<TestSuite['kemAsync']>),
      generateKeyPair: (seed?: Uint8Array) => {
        counts.keygen = (counts.keygen ?? 0) + 1;
        return (native.kemAsync as NonNullable<TestSuite['kemAsync']>).generateKeyPair(seed);
      },
      encapsulate: (pk: Uint8Array) => {
        counts.encapsulate = (counts.encapsulate ?? 0) + 1;
        return (native.kemAsync as NonNullable<TestSuite['kemAsync']>).encapsulate(pk);
      },
      decapsulate: (ct: Uint8Array, sk: Uint8Array) => {
        counts.decapsulate = (counts.decapsulate ?? 0) + 1;
        return (native.kemAsync as NonNullable<TestSuite['kemAsync']>).decapsulate(ct, sk);
      },
    },
  });

  for (const protocol of [DEFAULT_PROTOCOL, NK]) {
    test(`${protocol}: a native server encapsulates with kemAsync to a noble client, and back`, async () => {
      const server: Record<string, number> = {};
      const a = await connect(noble, asyncOnly(server), { protocol });
      expect(server).toEqual({ encapsulate: 1 });
      exchange(a.client.session(), a.server.session());
      const client: Record<string, number> = {};
      const b = await connect(asyncOnly(client), noble, { protocol });
      expect(client).toEqual({ keygen: 1, decapsulate: 1 });
      exchange(b.client.session(), b.server.session());
    });
  }

  test('the synchronous Noise API refuses to decapsulate for an e1 made by the async KEM', async () => {
    const { HandshakeState, resolveProtocol } = await import('../../src/channel/index.ts');
    const counts: Record<string, number> = {};
    const suite = asyncOnly(counts);
    const i = new HandshakeState({ protocol: resolveProtocol(DEFAULT_PROTOCOL, suite), initiator: true, s: suite.dh.generateKeyPair() });
    const r = new HandshakeState({ protocol: resolveProtocol(DEFAULT_PROTOCOL, noble), initiator: false, s: noble.dh.generateKeyPair() });
    r.readMessage(await i.writeMessageAsync());
    const m2 = r.writeMessage();
    expect(() => i.readMessage(m2)).toThrow(/readMessageAsync/);
    await i.readMessageAsync(m2); // the failed sync read left the state untouched
    r.readMessage(i.writeMessage());
    expect(i.handshakeHash()).toEqual(r.handshakeHash());
  });
});
