/** SymmetricState (Noise rev 34 §5.2): chaining key, handshake hash, and a CipherState. */
import type { Aead, Hash } from '../../crypto/types.ts';
import { CipherState } from './cipher-state.ts';

const EMPTY = new Uint8Array(0);
const ONE = new Uint8Array([1]);

/** §4.3 HKDF with HMAC-HASH: returns `count` (2 or 3) outputs of HASHLEN bytes each. */
export function noiseHkdf(hash: Hash, chainingKey: Uint8Array, ikm: Uint8Array, count: 2 | 3): Uint8Array[] {
  const temp = hash.hmac(chainingKey, ikm);
  const o1 = hash.hmac(temp, ONE);
  const o2 = hash.hmac(temp, o1, new Uint8Array([2]));
  if (count === 2) return [o1, o2];
  return [o1, o2, hash.hmac(temp, o2, new Uint8Array([3]))];
}

export class SymmetricState {
  ck: Uint8Array;
  h: Uint8Array;
  cs: CipherState;

  /** §5.2 InitializeSymmetric(protocol_name). */
  constructor(
    readonly hash: Hash,
    readonly aead: Aead,
    protocolName: Uint8Array,
  ) {
    if (protocolName.length <= hash.hashLength) {
      this.h = new Uint8Array(hash.hashLength);
      this.h.set(protocolName);
    } else {
      this.h = hash.digest(protocolName);
    }
    this.ck = this.h.slice();
    this.cs = new CipherState(aead);
  }

  /** §5.2 MixKey. */
  mixKey(ikm: Uint8Array): void {
    const [ck, tempK] = noiseHkdf(this.hash, this.ck, ikm, 2);
    this.ck = ck;
    this.cs.initializeKey(tempK.subarray(0, 32));
  }

  /** §5.2 MixHash. */
  mixHash(data: Uint8Array): void {
    this.h = this.hash.digest(this.h, data);
  }

  /** §5.2 MixKeyAndHash (used by `psk` tokens). */
  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, tempH, tempK] = noiseHkdf(this.hash, this.ck, ikm, 3);
    this.ck = ck;
    this.mixHash(tempH);
    this.cs.initializeKey(tempK.subarray(0, 32));
  }

  handshakeHash(): Uint8Array {
    return this.h;
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ct = this.cs.encryptWithAd(this.h, plaintext);
    this.mixHash(ct);
    return ct;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const pt = this.cs.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return pt;
  }

  /** §5.2 Split: the initiator's sending and the responder's sending CipherState. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = noiseHkdf(this.hash, this.ck, EMPTY, 2);
    const c1 = new CipherState(this.aead);
    const c2 = new CipherState(this.aead);
    c1.initializeKey(k1.subarray(0, 32));
    c2.initializeKey(k2.subarray(0, 32));
    return [c1, c2];
  }

  /** Snapshot for transactional reads (restore after a failed message). */
  checkpoint(): { ck: Uint8Array; h: Uint8Array; cs: CipherState } {
    return { ck: this.ck, h: this.h, cs: this.cs.clone() };
  }

  restore(cp: { ck: Uint8Array; h: Uint8Array; cs: CipherState }): void {
    this.ck = cp.ck;
    this.h = cp.h;
    this.cs = cp.cs;
  }
}
