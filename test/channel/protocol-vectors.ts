/**
 * Deterministic generator of `test/vectors/ssc-protocol.json`: complete SSC handshakes and
 * transport frames from fixed keys, for implementers in other languages (docs/PROTOCOL.md).
 * Determinism: fixed X25519 secrets, ML-KEM-768 key pairs from fixed 64-byte seeds, ML-KEM
 * encapsulation with fixed 32-byte randomness (FIPS 203 `m`), ML-DSA-65 keys from fixed seeds
 * and deterministic signing (FIPS 204 with rnd = 0^32), a fixed clock.
 *
 * Run `bun test/channel/protocol-vectors.ts` to rewrite the file.
 */
import { createInitiator, createResponder, type HandshakeDriver, type InitiatorOptions, type ResponderOptions } from '../../src/channel/handshake.ts';
import { fingerprintOf } from '../../src/channel/identity.ts';
import { PROTOCOLS, prologueFor, protocolId } from '../../src/channel/protocols.ts';
import { encodeClose, FrameType, type Session } from '../../src/channel/session.ts';
import { nobleKem, nobleSigner, nobleSuite, type TestSuite, toHex } from './fixtures.ts';

const fill = (n: number, start: number) => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
const text = (s: string) => new TextEncoder().encode(s);

function deterministicSuite(encapsSeed: number): TestSuite {
  let counter = 0;
  return { ...nobleSuite(), label: 'deterministic', kem: nobleKem(() => fill(32, encapsSeed + 32 * counter++)), signer: nobleSigner(true) };
}

interface CaseSpec {
  name: string;
  protocol: string;
  client: Partial<InitiatorOptions>;
  server: Partial<ResponderOptions>;
  clientApp?: string;
}

async function runCase(spec: CaseSpec, index: number) {
  const suite = deterministicSuite(0x80 + index);
  const x = (start: number) => {
    const secretKey = fill(32, start);
    return { secretKey, publicKey: suite.dh.publicKey(secretKey) };
  };
  const serverStatic = x(0x10);
  const serverEphemeral = x(0x30);
  const clientStatic = x(0x50);
  const clientEphemeral = x(0x70);
  const kemSeed = fill(64, 0x90);
  const kemKeyPair = suite.kem.generateKeyPair(kemSeed);
  const serverIdentitySeed = fill(32, 0xa0);
  const clientIdentitySeed = fill(32, 0xc0);
  const serverIdentity = suite.signer.generateKeyPair(serverIdentitySeed);
  const clientIdentity = suite.signer.generateKeyPair(clientIdentitySeed);
  const sha256 = suite.hash('SHA256');
  const now = () => 1_700_000_000_000;
  const client = createInitiator({
    crypto: suite,
    protocol: spec.protocol,
    serverFingerprint: fingerprintOf(serverIdentity.publicKey, sha256),
    serverStaticKey: serverStatic.publicKey,
    staticKey: clientStatic,
    ephemeral: clientEphemeral,
    kemKeyPair,
    now,
    ...spec.client,
    identity: spec.client.identity ? clientIdentity : undefined,
  });
  const server = createResponder({ crypto: suite, staticKey: serverStatic, identity: serverIdentity, ephemeral: serverEphemeral, now, ...spec.server });
  const messages: string[] = [];
  let from: HandshakeDriver = client;
  let to: HandshakeDriver = server;
  let first = true;
  while (!(client.isComplete && server.isComplete)) {
    const m = await from.writeMessage(first && spec.clientApp ? text(spec.clientApp) : undefined);
    first = false;
    messages.push(toHex(m));
    await to.readMessage(m);
    [from, to] = [to, from];
  }
  const a = client.session();
  const b = server.session();
  const frames: { direction: string; type: number; plaintext: string; frame: string; wire_type: number }[] = [];
  const send = (s: Session, r: Session, direction: string, type: number, body: string | Uint8Array) => {
    const plaintext = typeof body === 'string' ? text(body) : body;
    const frame = s.seal(type, plaintext);
    const opened = r.open(frame);
    if (opened.type !== type || toHex(opened.plaintext) !== toHex(plaintext)) throw new Error('vector frame did not round-trip');
    frames.push({ direction, type, plaintext: toHex(plaintext), frame: toHex(frame), wire_type: frame[0] });
  };
  send(a, b, 'initiator->responder', 0x10, 'hello from the client');
  send(b, a, 'responder->initiator', 0x10, 'hello from the server');
  a.requestRekey();
  send(a, b, 'initiator->responder', 0x11, 'this frame carries a rekey');
  send(a, b, 'initiator->responder', 0x10, 'first frame under the new key');
  send(b, a, 'responder->initiator', FrameType.CLOSE, encodeClose(4000, 'bye'));
  const id = protocolId(client.protocolName as string) as number;
  return {
    name: spec.name,
    protocol_name: client.protocolName,
    protocol_id: id,
    prologue: toHex(prologueFor(id)),
    server_static_secret: toHex(serverStatic.secretKey),
    server_static_public: toHex(serverStatic.publicKey),
    server_ephemeral_secret: toHex(serverEphemeral.secretKey),
    client_static_secret: client.protocolName?.startsWith('Noise_XX') ? toHex(clientStatic.secretKey) : undefined,
    client_ephemeral_secret: toHex(clientEphemeral.secretKey),
    client_kem_seed: toHex(kemSeed),
    kem_encapsulation_randomness: toHex(fill(32, 0x80 + index)),
    server_identity_seed: toHex(serverIdentitySeed),
    server_fingerprint: fingerprintOf(serverIdentity.publicKey, sha256),
    client_identity_seed: spec.client.identity ? toHex(clientIdentitySeed) : undefined,
    client_fingerprint: spec.client.identity ? fingerprintOf(clientIdentity.publicKey, sha256) : undefined,
    client_token: spec.client.token,
    qkd_key_id: spec.client.qkd?.keyId,
    qkd_key: spec.client.qkd ? toHex(spec.client.qkd.key) : undefined,
    client_resume: spec.client.resume ? toHex(spec.client.resume) : undefined,
    client_app: spec.clientApp ? toHex(text(spec.clientApp)) : undefined,
    messages,
    handshake_hash: toHex(a.handshakeHash),
    frames,
  };
}

export async function generateProtocolVectors() {
  const qkdKey = fill(32, 0xe0);
  const cases: CaseSpec[] = [
    {
      name: 'XXhfs, mutual authentication, resume token, application data',
      protocol: PROTOCOLS[0x01],
      client: { identity: { publicKey: new Uint8Array(), secretKey: new Uint8Array() }, resume: text('resume:topic-a:42') },
      server: { clientAuth: 'mutual' },
      clientApp: 'hi',
    },
    {
      name: 'NKhfs, bearer token',
      protocol: PROTOCOLS[0x02],
      client: { token: 'example-token-0123456789' },
      server: { clientAuth: 'token', tokens: ['example-token-0123456789'] },
    },
    {
      name: 'XXhfs+psk2, QKD key_ID',
      protocol: PROTOCOLS[0x03],
      client: { qkd: { keyId: '2b6e3c3e-0c4a-4b8e-9a55-6f1f1b8c0d11', key: qkdKey } },
      server: { fetchQkdKey: async (id) => (id === '2b6e3c3e-0c4a-4b8e-9a55-6f1f1b8c0d11' ? qkdKey : null) },
    },
  ];
  const out = [];
  for (const [i, spec] of cases.entries()) out.push(await runCase({ ...spec, protocol: spec.client.qkd ? PROTOCOLS[0x01] : spec.protocol }, i));
  return {
    description: 'SSC channel test vectors; see docs/PROTOCOL.md. All byte strings are hex. Generated by test/channel/protocol-vectors.ts.',
    version: 1,
    vectors: JSON.parse(JSON.stringify(out)),
  };
}

if (import.meta.main) {
  const { repoRoot } = await import('../helpers/paths.ts');
  const path = `${repoRoot}/test/vectors/ssc-protocol.json`;
  await Bun.write(path, `${JSON.stringify(await generateProtocolVectors(), null, 2)}\n`);
  process.stdout.write(`wrote ${path}\n`);
}
