/**
 * The primitive interfaces every crypto backend implements. Each backend (wasm, native, noble)
 * exposes some of them; `src/crypto/index.ts` picks one backend per primitive from config and
 * from what the runtime supports. Byte arguments are validated once at this boundary
 * (lengths), never inside the kernels.
 */

/** Names of the backends a primitive can come from. */
export type BackendName = 'wasm' | 'native' | 'noble';

/** An AEAD with a 32-byte key (ChaCha20-Poly1305: 12-byte nonce; XChaCha20: 24; AES-256-GCM: 12). */
export interface Aead {
  readonly name: 'ChaChaPoly' | 'XChaChaPoly' | 'AESGCM';
  readonly backend: BackendName;
  readonly keyLength: 32;
  readonly nonceLength: number;
  readonly tagLength: 16;
  /** Returns ciphertext || tag. */
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array;
  /** Verifies the tag in constant time before any plaintext is produced; returns null on failure. */
  open(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Uint8Array | null;
}

/** One frame of a batch call: each item has its own key, nonce, AAD and payload. */
export interface AeadBatchItem {
  key: Uint8Array;
  nonce: Uint8Array;
  aad?: Uint8Array;
  data: Uint8Array;
}

/** An AEAD that can seal or open many frames in one call (one JS→WASM crossing). */
export interface BatchAead extends Aead {
  sealBatch(items: readonly AeadBatchItem[]): Uint8Array[];
  /** Entries are null where the tag did not verify. */
  openBatch(items: readonly AeadBatchItem[]): (Uint8Array | null)[];
}

/** Diffie–Hellman over Curve25519 (RFC 7748). */
export interface Dh {
  readonly name: '25519';
  readonly backend: BackendName;
  readonly publicKeyLength: 32;
  generateKeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array };
  /** Derives the public key of a 32-byte secret key. */
  publicKey(secretKey: Uint8Array): Uint8Array;
  /** Throws when the result is all zero (low-order point). */
  dh(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
}

/** ML-KEM-768 (FIPS 203). */
export interface Kem {
  readonly name: 'MLKEM768';
  readonly backend: BackendName;
  readonly publicKeyLength: 1184;
  readonly ciphertextLength: 1088;
  readonly sharedSecretLength: 32;
  /** `seed` is the 64-byte d||z of FIPS 203 keygen_internal when given. */
  generateKeyPair(seed?: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
  encapsulate(publicKey: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array };
  /** Implicit rejection: a bad ciphertext gives a pseudo-random secret, never an error. */
  decapsulate(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

/**
 * ML-KEM-768 with asynchronous encapsulation (WebCrypto `encapsulateBits`/`decapsulateBits`,
 * the only native ML-KEM path in Bun 1.4.5). Same key and ciphertext formats as `Kem`.
 */
export interface AsyncKem {
  readonly name: 'MLKEM768';
  readonly backend: BackendName;
  readonly publicKeyLength: 1184;
  readonly ciphertextLength: 1088;
  readonly sharedSecretLength: 32;
  generateKeyPair(seed?: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
  encapsulate(publicKey: Uint8Array): Promise<{ ciphertext: Uint8Array; sharedSecret: Uint8Array }>;
  decapsulate(ciphertext: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array>;
}

/** ML-DSA-65 (FIPS 204). */
export interface Signer {
  readonly name: 'MLDSA65';
  readonly backend: BackendName;
  readonly publicKeyLength: 1952;
  readonly signatureLength: 3309;
  /** `seed` is the 32-byte ξ of FIPS 204 keygen_internal when given. */
  generateKeyPair(seed?: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
  sign(message: Uint8Array, secretKey: Uint8Array, context?: Uint8Array): Uint8Array;
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array, context?: Uint8Array): boolean;
}

/** Hash functions named as in the Noise spec. */
export type HashName = 'SHA256' | 'SHA512' | 'BLAKE2s' | 'BLAKE2b';

export interface Hash {
  readonly name: HashName;
  readonly backend: BackendName;
  readonly hashLength: 32 | 64;
  readonly blockLength: 64 | 128;
  digest(...parts: Uint8Array[]): Uint8Array;
  hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array;
}

/** HKDF (RFC 5869) over a `Hash`. */
export interface Kdf {
  readonly backend: BackendName;
  extract(salt: Uint8Array, ikm: Uint8Array): Uint8Array;
  expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array;
}

/** A result of the startup known-answer self-test of one primitive on one backend. */
export interface SelfTestResult {
  primitive: string;
  backend: BackendName;
  ok: boolean;
  error?: string;
}

/**
 * The primitives the rest of the server uses, one backend chosen per primitive
 * (`createCrypto` in `src/crypto/index.ts`). `choices` says which backend serves what, for
 * logs and `/health/detailed`.
 */
export interface CryptoSuite {
  chachaPoly: BatchAead;
  xchachaPoly: Aead;
  aesGcm: Aead;
  dh: Dh;
  kem: Kem;
  signer: Signer;
  hash(name: HashName): Hash;
  /** HKDF over `hash(name)`. */
  kdf?(name: HashName): Kdf;
  /** Native asynchronous ML-KEM-768 when the runtime has it (much faster than the sync fallback). */
  kemAsync?: AsyncKem;
  choices: Record<string, BackendName | string>;
  /** Known-answer tests for every primitive and backend available; run at startup. */
  selfTest(): SelfTestResult[];
}
