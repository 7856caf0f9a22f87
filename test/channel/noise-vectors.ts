/** Runs one cacophony vector through the Noise core; returns null on success or a reason. */
import { HandshakeState, type KeyPair } from '../../src/channel/noise/handshake-state.ts';
import { type NoisePrimitives, resolveProtocol } from '../../src/channel/noise/protocol.ts';
import type { CipherState } from '../../src/channel/noise/cipher-state.ts';
import { hex, toHex } from './fixtures.ts';

export interface CacophonyVector {
  protocol_name: string;
  init_prologue: string;
  init_psks?: string[];
  init_static?: string;
  init_ephemeral: string;
  init_remote_static?: string;
  resp_prologue: string;
  resp_psks?: string[];
  resp_static?: string;
  resp_ephemeral?: string;
  resp_remote_static?: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

export function runCacophonyVector(v: CacophonyVector, primitives: NoisePrimitives): string | null {
  const protocol = resolveProtocol(v.protocol_name, primitives);
  const kp = (secret?: string): KeyPair | undefined =>
    secret ? { secretKey: hex(secret), publicKey: primitives.dh.publicKey(hex(secret)) } : undefined;
  const init = new HandshakeState({
    protocol,
    initiator: true,
    prologue: hex(v.init_prologue),
    s: kp(v.init_static),
    e: kp(v.init_ephemeral),
    rs: v.init_remote_static ? hex(v.init_remote_static) : undefined,
    psks: v.init_psks?.map(hex),
  });
  const resp = new HandshakeState({
    protocol,
    initiator: false,
    prologue: hex(v.resp_prologue),
    s: kp(v.resp_static),
    e: kp(v.resp_ephemeral),
    rs: v.resp_remote_static ? hex(v.resp_remote_static) : undefined,
    psks: v.resp_psks?.map(hex),
  });
  let initCs: { send: CipherState; receive: CipherState } | null = null;
  let respCs: { send: CipherState; receive: CipherState } | null = null;
  const oneWay = protocol.pattern.oneWay;
  for (let i = 0; i < v.messages.length; i++) {
    const { payload, ciphertext } = v.messages[i];
    const fromInit = oneWay || i % 2 === 0;
    let ct: Uint8Array;
    let pt: Uint8Array;
    if (!init.isComplete) {
      const [w, r] = fromInit ? [init, resp] : [resp, init];
      ct = w.writeMessage(hex(payload));
      if (toHex(ct) !== ciphertext) return `message ${i} ciphertext`;
      pt = r.readMessage(ct);
      if (init.isComplete) {
        if (toHex(init.handshakeHash()) !== v.handshake_hash) return 'handshake hash (initiator)';
        if (toHex(resp.handshakeHash()) !== v.handshake_hash) return 'handshake hash (responder)';
        initCs = init.split();
        respCs = resp.split();
      }
    } else {
      const [w, r] = fromInit ? [initCs!, respCs!] : [respCs!, initCs!];
      ct = w.send.encryptWithAd(new Uint8Array(0), hex(payload));
      if (toHex(ct) !== ciphertext) return `message ${i} ciphertext (transport)`;
      pt = r.receive.decryptWithAd(new Uint8Array(0), ct);
    }
    if (toHex(pt) !== payload) return `message ${i} payload`;
  }
  if (!init.isComplete) return 'handshake did not complete';
  return null;
}
