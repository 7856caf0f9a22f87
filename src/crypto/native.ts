/**
 * The native backend: Bun's node:crypto (OpenSSL/BoringSSL) and WebCrypto.
 *
 * What Bun 1.4.5 offers (checked by experiment, see docs/CRYPTO.md):
 * - AES-256-GCM via createCipheriv; X25519 via diffieHellman with raw key import/export;
 *   ML-DSA-65 sign/verify with `raw-seed` private and `raw-public` public keys — but node:crypto
 *   signs hedged only and rejects a `context`, so calls with a non-empty context go to noble.
 * - ML-KEM-768: key generation from a 64-byte seed (`raw-seed`) is synchronous, but
 *   encapsulation/decapsulation exist only as async WebCrypto (`encapsulateBits`); there is no
 *   `crypto.encapsulate`. So this backend offers `AsyncKem`, not the synchronous `Kem`.
 * - SHA-256/512 and HMAC via createHash/createHmac (no BLAKE2 in Bun's node:crypto).
 * - No synchronous ChaCha20-Poly1305 (WebCrypto has it, async only).
 */
import * as nc from 'node:crypto';
import { createHkdf } from './hash.ts';
import { createNobleSigner } from './noble.ts';
import type { AeadBatchItem, AsyncKem, BatchAead, Dh, Hash, HashName, Kdf, Signer } from './types.ts';
import { abytes, equalBytes, isAllZero } from './util.ts';

const u8 = (b: Buffer | ArrayBuffer) => (b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));

/** AES-256-GCM via node:crypto createCipheriv (12-byte nonce, 16-byte tag). */
export function createNativeAesGcm(): BatchAead {
  const seal = (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array) => {
    abytes(key, 32, 'key');
    abytes(nonce, 12, 'nonce');
    abytes(plaintext, undefined, 'plaintext');
    const c = nc.createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    if (aad && aad.length > 0) c.setAAD(aad);
    const head = c.update(plaintext);
    const tail = c.final();
    const tag = c.getAuthTag();
    const out = new Uint8Array(plaintext.length + 16);
    out.set(head, 0);
    out.set(tail, head.length);
    out.set(tag, plaintext.length);
    return out;
  };
  const open = (key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array) => {
    abytes(key, 32, 'key');
    abytes(nonce, 12, 'nonce');
    abytes(ciphertext, undefined, 'ciphertext');
    if (ciphertext.length < 16) return null;
    const len = ciphertext.length - 16;
    const d = nc.createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    d.setAuthTag(ciphertext.subarray(len));
    if (aad && aad.length > 0) d.setAAD(aad);
    // GCM decrypts as it goes; the plaintext is released only after final() verified the tag
    // and is wiped otherwise.
    const head = d.update(ciphertext.subarray(0, len));
    try {
      const tail = d.final();
      const out = new Uint8Array(len);
      out.set(head, 0);
      out.set(tail, head.length);
      return out;
    } catch {
      head.fill(0);
      return null;
    }
  };
  return {
    name: 'AESGCM',
    backend: 'native',
    keyLength: 32,
    nonceLength: 12,
    tagLength: 16,
    seal,
    open,
    sealBatch: (items: readonly AeadBatchItem[]) => items.map((i) => seal(i.key, i.nonce, i.data, i.aad)),
    openBatch: (items: readonly AeadBatchItem[]) => items.map((i) => open(i.key, i.nonce, i.data, i.aad)),
  };
}

const rawKey = (key: Uint8Array, format: string, type: string) => ({ key: Buffer.from(key.buffer, key.byteOffset, key.length), format, asymmetricKeyType: type }) as unknown as nc.PrivateKeyInput;

/**
 * X25519 via node:crypto (RFC 7748).
 *
 * Importing a raw private key costs about a third of a DH here (~13 µs vs ~31 µs: it derives the
 * public key), and a handshake uses each secret key two or three times, so the KeyObject of a
 * secret key is cached per Uint8Array (a WeakMap, so it goes when the array does) together with
 * a copy of its bytes, checked on every use: an array that was changed (e.g. wiped) is
 * re-imported, never served from the cache.
 */
export function createNativeDh(): Dh {
  const keys = new WeakMap<Uint8Array, { bytes: Uint8Array; key: nc.KeyObject }>();
  const privateKey = (secretKey: Uint8Array) => {
    const cached = keys.get(secretKey);
    if (cached && equalBytes(cached.bytes, secretKey)) return cached.key;
    const key = nc.createPrivateKey(rawKey(secretKey, 'raw-private', 'x25519'));
    keys.set(secretKey, { bytes: secretKey.slice(), key });
    return key;
  };
  const publicKey = (secretKey: Uint8Array) => {
    abytes(secretKey, 32, 'secretKey');
    return u8(nc.createPublicKey(privateKey(secretKey)).export({ format: 'raw-public' } as never) as unknown as Buffer);
  };
  return {
    name: '25519',
    backend: 'native',
    publicKeyLength: 32,
    generateKeyPair() {
      const secretKey = new Uint8Array(nc.randomBytes(32));
      return { secretKey, publicKey: publicKey(secretKey) };
    },
    publicKey,
    dh(secretKey, peer) {
      abytes(secretKey, 32, 'secretKey');
      abytes(peer, 32, 'publicKey');
      let shared: Uint8Array;
      try {
        shared = u8(
          nc.diffieHellman({
            privateKey: privateKey(secretKey),
            publicKey: nc.createPublicKey(rawKey(peer, 'raw-public', 'x25519') as nc.PublicKeyInput),
          }),
        );
      } catch {
        // OpenSSL refuses an all-zero result (low-order point).
        throw new Error('x25519: low-order public key (all-zero shared secret)');
      }
      if (isAllZero(shared)) throw new Error('x25519: low-order public key (all-zero shared secret)');
      return shared;
    },
  };
}

/** ML-DSA-65 via node:crypto. Secret key = 32-byte seed ξ. Hedged signing. */
export function createNativeSigner(): Signer {
  const noble = createNobleSigner();
  let lastSeed: Uint8Array | undefined;
  let lastKey: nc.KeyObject | undefined;
  const privateKey = (seed: Uint8Array) => {
    if (lastSeed && lastKey && equalBytes(lastSeed, seed)) return lastKey;
    lastKey = nc.createPrivateKey(rawKey(seed, 'raw-seed', 'ml-dsa-65'));
    lastSeed = seed.slice();
    return lastKey;
  };
  return {
    name: 'MLDSA65',
    backend: 'native',
    publicKeyLength: 1952,
    signatureLength: 3309,
    generateKeyPair(seed) {
      const secretKey = seed ? abytes(seed, 32, 'seed').slice() : new Uint8Array(nc.randomBytes(32));
      const publicKey = u8(nc.createPublicKey(privateKey(secretKey)).export({ format: 'raw-public' } as never) as unknown as Buffer);
      return { secretKey, publicKey };
    },
    sign(message, secretKey, context) {
      abytes(message, undefined, 'message');
      abytes(secretKey, 32, 'secretKey');
      // node:crypto has no ML-DSA context parameter: FIPS 204 contexts go to noble.
      if (context && context.length > 0) return noble.sign(message, secretKey, context);
      return u8(nc.sign(null, message, privateKey(secretKey)));
    },
    verify(signature, message, publicKey, context) {
      if (signature.length !== 3309 || publicKey.length !== 1952) return false;
      if (context && context.length > 0) return noble.verify(signature, message, publicKey, context);
      try {
        const key = nc.createPublicKey(rawKey(publicKey, 'raw-public', 'ml-dsa-65') as nc.PublicKeyInput);
        return nc.verify(null, message, key, signature);
      } catch {
        return false;
      }
    },
  };
}

/** ML-KEM-768: sync keygen via node:crypto, async encaps/decaps via WebCrypto. Secret key = 64-byte seed. */
export function createNativeKemAsync(): AsyncKem {
  const subtle = crypto.subtle as unknown as {
    importKey(format: string, data: BufferSource, alg: object, extractable: boolean, usages: string[]): Promise<CryptoKey>;
    encapsulateBits(alg: object, key: CryptoKey): Promise<{ sharedKey: ArrayBuffer; ciphertext: ArrayBuffer }>;
    decapsulateBits(alg: object, key: CryptoKey, ciphertext: BufferSource): Promise<ArrayBuffer>;
  };
  const alg = { name: 'ML-KEM-768' };
  return {
    name: 'MLKEM768',
    backend: 'native',
    publicKeyLength: 1184,
    ciphertextLength: 1088,
    sharedSecretLength: 32,
    generateKeyPair(seed) {
      const secretKey = seed ? abytes(seed, 64, 'seed').slice() : new Uint8Array(nc.randomBytes(64));
      const priv = nc.createPrivateKey(rawKey(secretKey, 'raw-seed', 'ml-kem-768'));
      return { secretKey, publicKey: u8(nc.createPublicKey(priv).export({ format: 'raw-public' } as never) as unknown as Buffer) };
    },
    async encapsulate(publicKey) {
      abytes(publicKey, 1184, 'publicKey');
      // importKey performs the FIPS 203 §7.2 modulus check and rejects a bad key.
      const key = await subtle.importKey('raw-public', publicKey as BufferSource, alg, true, ['encapsulateBits']);
      const { sharedKey, ciphertext } = await subtle.encapsulateBits(alg, key);
      return { ciphertext: new Uint8Array(ciphertext), sharedSecret: new Uint8Array(sharedKey) };
    },
    async decapsulate(ciphertext, secretKey) {
      abytes(ciphertext, 1088, 'ciphertext');
      abytes(secretKey, 64, 'secretKey');
      const key = await subtle.importKey('raw-seed', secretKey as BufferSource, alg, false, ['decapsulateBits']);
      return new Uint8Array(await subtle.decapsulateBits(alg, key, ciphertext as BufferSource));
    },
  };
}

const nativeHashNames: Partial<Record<HashName, { alg: string; hashLength: 32 | 64; blockLength: 64 | 128 }>> = {
  SHA256: { alg: 'sha256', hashLength: 32, blockLength: 64 },
  SHA512: { alg: 'sha512', hashLength: 64, blockLength: 128 },
};

/** SHA-256 / SHA-512 and their HMAC via node:crypto; undefined for BLAKE2 (not in Bun's node:crypto). */
export function createNativeHash(name: HashName): Hash | undefined {
  const info = nativeHashNames[name];
  if (!info) return undefined;
  return {
    name,
    backend: 'native',
    hashLength: info.hashLength,
    blockLength: info.blockLength,
    digest(...parts) {
      const h = nc.createHash(info.alg);
      for (const p of parts) h.update(p);
      return new Uint8Array(h.digest());
    },
    hmac(key, ...parts) {
      const h = nc.createHmac(info.alg, key);
      for (const p of parts) h.update(p);
      return new Uint8Array(h.digest());
    },
  };
}

export interface NativeBackend {
  aesGcm: BatchAead;
  dh: Dh;
  signer: Signer;
  kemAsync: AsyncKem;
  /** SHA256/SHA512 only; undefined for BLAKE2s/BLAKE2b. */
  hash(name: HashName): Hash | undefined;
  kdf(name: HashName): Kdf | undefined;
}

/** The primitives Bun's native crypto provides (see the module comment for what it lacks). */
export function createNativeBackend(): NativeBackend {
  const hashes = new Map<HashName, Hash | undefined>();
  const hash = (name: HashName) => {
    if (!hashes.has(name)) hashes.set(name, createNativeHash(name));
    return hashes.get(name);
  };
  return {
    aesGcm: createNativeAesGcm(),
    dh: createNativeDh(),
    signer: createNativeSigner(),
    kemAsync: createNativeKemAsync(),
    hash,
    kdf: (name) => {
      const h = hash(name);
      return h ? createHkdf(h) : undefined;
    },
  };
}
