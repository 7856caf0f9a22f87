/**
 * Hashes named as in the Noise spec (SHA256, SHA512, BLAKE2s, BLAKE2b) with HMAC, and HKDF
 * (RFC 5869) over any of them. The noble implementations here are pure TypeScript (browser
 * safe); `native.ts` provides node:crypto SHA-2 behind the same `Hash` interface, and
 * `createHkdf` works over either.
 */
import { blake2b, blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import type { Hash, HashName, Kdf } from './types.ts';
import { abytes } from './util.ts';

const nobleHashes = { SHA256: sha256, SHA512: sha512, BLAKE2s: blake2s, BLAKE2b: blake2b } as const;

/** Hash + HMAC for `name` from @noble/hashes. */
export function createNobleHash(name: HashName): Hash {
  const fn = nobleHashes[name];
  if (!fn) throw new RangeError(`unknown hash: ${name}`);
  const hashLength = fn.outputLen as 32 | 64;
  const blockLength = fn.blockLen as 64 | 128;
  return {
    name,
    backend: 'noble',
    hashLength,
    blockLength,
    digest(...parts) {
      const h = fn.create();
      for (const p of parts) h.update(p);
      return h.digest();
    },
    hmac(key, ...parts) {
      const h = hmac.create(fn, key);
      for (const p of parts) h.update(p);
      return h.digest();
    },
  };
}

/**
 * HKDF (RFC 5869) over a `Hash`: extract = HMAC(salt, ikm) (an empty salt means HashLen zero
 * bytes, §2.2), expand = T(1) ‖ T(2) ‖ … with T(i) = HMAC(PRK, T(i−1) ‖ info ‖ i), at most
 * 255·HashLen bytes (§2.3).
 */
export function createHkdf(hash: Hash): Kdf {
  return {
    backend: hash.backend,
    extract(salt, ikm) {
      abytes(salt, undefined, 'salt');
      abytes(ikm, undefined, 'ikm');
      return hash.hmac(salt.length === 0 ? new Uint8Array(hash.hashLength) : salt, ikm);
    },
    expand(prk, info, length) {
      abytes(prk, undefined, 'prk');
      abytes(info, undefined, 'info');
      if (!Number.isInteger(length) || length < 0 || length > 255 * hash.hashLength) {
        throw new RangeError(`hkdf: length must be 0..${255 * hash.hashLength}, got ${length}`);
      }
      const out = new Uint8Array(length);
      let t: Uint8Array = new Uint8Array(0);
      const counter = new Uint8Array(1);
      for (let i = 0, offset = 0; offset < length; i++) {
        counter[0] = i + 1;
        t = hash.hmac(prk, t, info, counter);
        out.set(t.subarray(0, Math.min(t.length, length - offset)), offset);
        offset += t.length;
      }
      return out;
    },
  };
}
