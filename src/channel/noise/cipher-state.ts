/**
 * CipherState (Noise rev 34 §5.1) over an `Aead` from `src/crypto`. Nonces are a 64-bit
 * counter; the value 2^64-1 is reserved (§5.1: it is used by REKEY and never for messages).
 */
import type { Aead } from '../../crypto/types.ts';
import { ChannelError } from '../errors.ts';

export const MAX_NONCE = 0xffff_ffff_ffff_ffffn;

export type NoiseCipherName = 'ChaChaPoly' | 'AESGCM';

/**
 * The 96-bit AEAD nonce for counter `n` (§12.3, §12.4): 32 zero bits, then the counter,
 * little-endian for ChaChaPoly and big-endian for AESGCM.
 */
export function encodeNonce(cipher: NoiseCipherName, n: bigint, out: Uint8Array = new Uint8Array(12)): Uint8Array {
  const view = new DataView(out.buffer, out.byteOffset, 12);
  view.setUint32(0, 0);
  view.setBigUint64(4, n, cipher === 'ChaChaPoly');
  return out;
}

const ZEROS_32 = new Uint8Array(32);
const EMPTY = new Uint8Array(0);

export class CipherState {
  private k: Uint8Array | null = null;
  private n = 0n;
  readonly cipher: NoiseCipherName;

  constructor(readonly aead: Aead) {
    if (aead.name !== 'ChaChaPoly' && aead.name !== 'AESGCM') throw new ChannelError('CONFIG_INVALID', `cipher ${aead.name} is not a Noise cipher`);
    this.cipher = aead.name;
  }

  /** §5.1 InitializeKey: sets k and resets n to zero. */
  initializeKey(key: Uint8Array | null): void {
    this.k = key ? key.slice(0, 32) : null;
    this.n = 0n;
  }

  hasKey(): boolean {
    return this.k !== null;
  }

  /** §5.1 SetNonce. */
  setNonce(n: bigint): void {
    this.n = n;
  }

  get nonce(): bigint {
    return this.n;
  }

  /** The current key (for sessions that manage explicit nonces themselves). */
  get key(): Uint8Array | null {
    return this.k;
  }

  /** §5.1 EncryptWithAd: identity when there is no key. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.k === null) return plaintext.slice();
    if (this.n >= MAX_NONCE) throw new ChannelError('NONCE_EXHAUSTED', 'nonce counter exhausted');
    const out = this.aead.seal(this.k, encodeNonce(this.cipher, this.n), plaintext, ad);
    this.n++;
    return out;
  }

  /** §5.1 DecryptWithAd: the nonce only advances when the tag verifies. */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (this.k === null) return ciphertext.slice();
    if (this.n >= MAX_NONCE) throw new ChannelError('NONCE_EXHAUSTED', 'nonce counter exhausted');
    if (ciphertext.length < 16) throw new ChannelError('DECRYPT_FAILED', 'ciphertext shorter than the tag');
    const out = this.aead.open(this.k, encodeNonce(this.cipher, this.n), ciphertext, ad);
    if (out === null) throw new ChannelError('DECRYPT_FAILED', 'authentication tag did not verify');
    this.n++;
    return out;
  }

  /** §11.3 Rekey: k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes); n is kept. */
  rekey(): void {
    if (this.k === null) return;
    this.k = rekeyKey(this.aead, this.k);
  }

  /** A copy with the same key and nonce (for transactional handshake reads). */
  clone(): CipherState {
    const c = new CipherState(this.aead);
    c.k = this.k;
    c.n = this.n;
    return c;
  }
}

/** §4.2 REKEY(k) with the default definition, for any cipher. */
export function rekeyKey(aead: Aead, key: Uint8Array): Uint8Array {
  if (aead.name !== 'ChaChaPoly' && aead.name !== 'AESGCM') throw new ChannelError('CONFIG_INVALID', 'not a Noise cipher');
  return aead.seal(key, encodeNonce(aead.name, MAX_NONCE), ZEROS_32, EMPTY).slice(0, 32);
}
