/**
 * Test primitives. `nobleSuite()` builds the `src/crypto` interfaces from @noble/* directly so
 * the channel tests do not depend on one backend; `backendMixes()` adds the real backends
 * from `src/crypto` when they are present.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2b, blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import type { Aead, Dh, Hash, HashName, Kem, Signer } from '../../src/crypto/types.ts';
import type { NoisePrimitives } from '../../src/channel/noise/protocol.ts';

function nobleAead(name: 'ChaChaPoly' | 'AESGCM'): Aead {
  const make = name === 'ChaChaPoly' ? chacha20poly1305 : gcm;
  return {
    name,
    backend: 'noble',
    keyLength: 32,
    nonceLength: 12,
    tagLength: 16,
    seal: (key, nonce, plaintext, aad) => make(key, nonce, aad).encrypt(plaintext),
    open: (key, nonce, ciphertext, aad) => {
      try {
        return make(key, nonce, aad).decrypt(ciphertext);
      } catch {
        return null;
      }
    },
  };
}

const HASH_FNS = { SHA256: sha256, SHA512: sha512, BLAKE2s: blake2s, BLAKE2b: blake2b } as const;

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function nobleHash(name: HashName): Hash {
  const fn = HASH_FNS[name];
  const long = name === 'SHA512' || name === 'BLAKE2b';
  return {
    name,
    backend: 'noble',
    hashLength: long ? 64 : 32,
    blockLength: long ? 128 : 64,
    digest: (...parts) => fn(concat(parts)),
    hmac: (key, ...parts) => hmac(fn, key, concat(parts)),
  };
}

export const nobleDh: Dh = {
  name: '25519',
  backend: 'noble',
  publicKeyLength: 32,
  generateKeyPair: () => {
    const secretKey = x25519.utils.randomSecretKey();
    return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
  },
  publicKey: (secretKey) => x25519.getPublicKey(secretKey),
  dh: (secretKey, publicKey) => x25519.getSharedSecret(secretKey, publicKey),
};

/** ML-KEM-768; `encapsulationRandomness` makes `encapsulate` deterministic (vector generation). */
export function nobleKem(encapsulationRandomness?: () => Uint8Array): Kem {
  return {
    name: 'MLKEM768',
    backend: 'noble',
    publicKeyLength: 1184,
    ciphertextLength: 1088,
    sharedSecretLength: 32,
    generateKeyPair: (seed) => ml_kem768.keygen(seed),
    encapsulate: (publicKey) => {
      const { cipherText, sharedSecret } = ml_kem768.encapsulate(publicKey, encapsulationRandomness?.());
      return { ciphertext: cipherText, sharedSecret };
    },
    decapsulate: (ciphertext, secretKey) => ml_kem768.decapsulate(ciphertext, secretKey),
  };
}

/** ML-DSA-65; `deterministic` signs without fresh randomness (FIPS 204 deterministic variant). */
export function nobleSigner(deterministic = false): Signer {
  return {
    name: 'MLDSA65',
    backend: 'noble',
    publicKeyLength: 1952,
    signatureLength: 3309,
    generateKeyPair: (seed) => ml_dsa65.keygen(seed),
    sign: (message, secretKey, context) =>
      ml_dsa65.sign(message, secretKey, { context, ...(deterministic ? { extraEntropy: false as const } : {}) }),
    verify: (signature, message, publicKey, context) => {
      try {
        return ml_dsa65.verify(signature, message, publicKey, { context });
      } catch {
        return false;
      }
    },
  };
}

export interface TestSuite extends NoisePrimitives {
  kem: Kem;
  signer: Signer;
  label: string;
}

export function nobleSuite(): TestSuite {
  return {
    label: 'noble',
    dh: nobleDh,
    kem: nobleKem(),
    signer: nobleSigner(),
    chachaPoly: nobleAead('ChaChaPoly'),
    aesGcm: nobleAead('AESGCM'),
    hash: nobleHash,
  };
}

export const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
export const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
