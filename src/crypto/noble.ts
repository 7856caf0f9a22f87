/**
 * The pure-TypeScript backend (@noble/*): every primitive, in any runtime (browsers, Node 20,
 * Bun). Importable on its own — no node:* imports here or in what it imports — so the browser
 * SDK can use it without pulling in node:fs or node:crypto.
 *
 * Secret keys of ML-KEM-768 and ML-DSA-65 are their FIPS seeds (64-byte d‖z, 32-byte ξ), the
 * same as the native backend, so keys move freely between backends; the expanded key is kept in
 * a one-entry cache so repeated use of one key does not re-run key generation.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { createHkdf, createNobleHash } from './hash.ts';
import type { Aead, AeadBatchItem, BatchAead, Dh, Hash, HashName, Kdf, Kem, Signer } from './types.ts';
import { abytes, EMPTY, equalBytes, isAllZero } from './util.ts';

type CipherFactory = (key: Uint8Array, nonce: Uint8Array, aad?: Uint8Array) => {
  encrypt(data: Uint8Array): Uint8Array;
  decrypt(data: Uint8Array): Uint8Array;
};

/** Wraps a noble AEAD as `BatchAead` (batch = a loop; noble has no batch kernel). */
function nobleAead(name: Aead['name'], nonceLength: number, cipher: CipherFactory): BatchAead {
  const seal = (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array) => {
    abytes(key, 32, 'key');
    abytes(nonce, nonceLength, 'nonce');
    abytes(plaintext, undefined, 'plaintext');
    return cipher(key, nonce, aad ?? EMPTY).encrypt(plaintext);
  };
  const open = (key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array) => {
    abytes(key, 32, 'key');
    abytes(nonce, nonceLength, 'nonce');
    abytes(ciphertext, undefined, 'ciphertext');
    if (ciphertext.length < 16) return null;
    try {
      // noble verifies the tag (constant time) before it decrypts.
      return cipher(key, nonce, aad ?? EMPTY).decrypt(ciphertext);
    } catch {
      return null;
    }
  };
  return {
    name,
    backend: 'noble',
    keyLength: 32,
    nonceLength,
    tagLength: 16,
    seal,
    open,
    sealBatch: (items: readonly AeadBatchItem[]) => items.map((i) => seal(i.key, i.nonce, i.data, i.aad)),
    openBatch: (items: readonly AeadBatchItem[]) => items.map((i) => open(i.key, i.nonce, i.data, i.aad)),
  };
}

function randomBytes(length: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(length));
}

/** A one-entry cache from a seed to its expanded key. */
function seedCache<T>(expand: (seed: Uint8Array) => T): (seed: Uint8Array) => T {
  let lastSeed: Uint8Array | undefined;
  let last: T | undefined;
  return (seed) => {
    if (lastSeed && last !== undefined && equalBytes(lastSeed, seed)) return last;
    const value = expand(seed);
    lastSeed = seed.slice();
    last = value;
    return value;
  };
}

/** X25519 from @noble/curves (RFC 7748). */
export function createNobleDh(): Dh {
  return {
    name: '25519',
    backend: 'noble',
    publicKeyLength: 32,
    generateKeyPair() {
      const secretKey = randomBytes(32);
      return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
    },
    publicKey(secretKey) {
      return x25519.getPublicKey(abytes(secretKey, 32, 'secretKey'));
    },
    dh(secretKey, publicKey) {
      abytes(secretKey, 32, 'secretKey');
      abytes(publicKey, 32, 'publicKey');
      let shared: Uint8Array;
      try {
        shared = x25519.getSharedSecret(secretKey, publicKey);
      } catch {
        throw new Error('x25519: low-order public key (all-zero shared secret)');
      }
      if (isAllZero(shared)) throw new Error('x25519: low-order public key (all-zero shared secret)');
      return shared;
    },
  };
}

/** ML-KEM-768 from @noble/post-quantum (FIPS 203). Secret key = 64-byte seed d‖z. */
export function createNobleKem(): Kem {
  const expand = seedCache((seed: Uint8Array) => ml_kem768.keygen(seed).secretKey);
  return {
    name: 'MLKEM768',
    backend: 'noble',
    publicKeyLength: 1184,
    ciphertextLength: 1088,
    sharedSecretLength: 32,
    generateKeyPair(seed) {
      const secretKey = seed ? abytes(seed, 64, 'seed').slice() : randomBytes(64);
      return { secretKey, publicKey: ml_kem768.keygen(secretKey).publicKey };
    },
    encapsulate(publicKey) {
      abytes(publicKey, 1184, 'publicKey');
      // Throws on an encapsulation key that fails the FIPS 203 §7.2 modulus check.
      const { cipherText, sharedSecret } = ml_kem768.encapsulate(publicKey);
      return { ciphertext: cipherText, sharedSecret };
    },
    decapsulate(ciphertext, secretKey) {
      abytes(ciphertext, 1088, 'ciphertext');
      abytes(secretKey, 64, 'secretKey');
      return ml_kem768.decapsulate(ciphertext, expand(secretKey));
    },
  };
}

/**
 * ML-KEM.Encaps_internal (FIPS 203 §6.2) with a caller-chosen 32-byte `m`: for known-answer
 * tests only — real encapsulation must draw `m` from a CSPRNG (`Kem.encapsulate`).
 */
export function nobleEncapsulateDerandomized(publicKey: Uint8Array, m: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array } {
  abytes(publicKey, 1184, 'publicKey');
  abytes(m, 32, 'm');
  const { cipherText, sharedSecret } = ml_kem768.encapsulate(publicKey, m);
  return { ciphertext: cipherText, sharedSecret };
}

export interface NobleSignerOptions {
  /** Sign with rnd = 0 (FIPS 204 deterministic variant) instead of hedged. Default false. */
  deterministic?: boolean;
}

/** ML-DSA-65 from @noble/post-quantum (FIPS 204). Secret key = 32-byte seed ξ. */
export function createNobleSigner(options: NobleSignerOptions = {}): Signer {
  const { deterministic = false } = options;
  const expand = seedCache((seed: Uint8Array) => ml_dsa65.keygen(seed).secretKey);
  return {
    name: 'MLDSA65',
    backend: 'noble',
    publicKeyLength: 1952,
    signatureLength: 3309,
    generateKeyPair(seed) {
      const secretKey = seed ? abytes(seed, 32, 'seed').slice() : randomBytes(32);
      return { secretKey, publicKey: ml_dsa65.keygen(secretKey).publicKey };
    },
    sign(message, secretKey, context) {
      abytes(message, undefined, 'message');
      abytes(secretKey, 32, 'secretKey');
      if (context && context.length > 255) throw new RangeError('ml-dsa: context longer than 255 bytes');
      return ml_dsa65.sign(message, expand(secretKey), {
        context: context ?? EMPTY,
        ...(deterministic ? { extraEntropy: false } : {}),
      });
    },
    verify(signature, message, publicKey, context) {
      if (signature.length !== 3309 || publicKey.length !== 1952) return false;
      if (context && context.length > 255) return false;
      try {
        return ml_dsa65.verify(signature, message, publicKey, { context: context ?? EMPTY });
      } catch {
        return false;
      }
    },
  };
}

export interface NobleBackend {
  chachaPoly: BatchAead;
  xchachaPoly: BatchAead;
  aesGcm: BatchAead;
  dh: Dh;
  kem: Kem;
  signer: Signer;
  hash(name: HashName): Hash;
  kdf(name: HashName): Kdf;
}

/** Every primitive from @noble/*. */
export function createNobleBackend(options: NobleSignerOptions = {}): NobleBackend {
  const hashes = new Map<HashName, Hash>();
  const hash = (name: HashName) => {
    let h = hashes.get(name);
    if (!h) hashes.set(name, (h = createNobleHash(name)));
    return h;
  };
  return {
    chachaPoly: nobleAead('ChaChaPoly', 12, chacha20poly1305),
    xchachaPoly: nobleAead('XChaChaPoly', 24, xchacha20poly1305),
    aesGcm: nobleAead('AESGCM', 12, gcm),
    dh: createNobleDh(),
    kem: createNobleKem(),
    signer: createNobleSigner(options),
    hash,
    kdf: (name) => createHkdf(hash(name)),
  };
}
