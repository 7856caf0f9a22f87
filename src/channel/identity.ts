/**
 * Node identities (DESIGN §4): ML-DSA-65 keys named by their fingerprint, the lower-case hex
 * SHA-256 of the public key (as `src/security/node-keys.ts`). In the handshake a party proves
 * its identity by signing `h || s` — the handshake hash right before its payload, then its
 * Noise static public key (empty when the pattern gives it none) — with a role-specific
 * ML-DSA context string, so a server signature can never be replayed as a client one.
 */
import type { Hash, Signer } from '../crypto/types.ts';
import { concatBytes, toHex, utf8 } from './bytes.ts';

export interface IdentityKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** FIPS 204 context strings (ctx) of the two signatures. */
export const IDENTITY_CONTEXT = {
  server: utf8('SSC/1 server identity'),
  client: utf8('SSC/1 client identity'),
} as const;

/** The fingerprint of an ML-DSA-65 public key: lower-case hex SHA-256, 64 characters. */
export function fingerprintOf(publicKey: Uint8Array, sha256: Hash): string {
  if (sha256.name !== 'SHA256') throw new TypeError('fingerprints use SHA-256');
  return toHex(sha256.digest(publicKey));
}

/** True when `fingerprint` is a syntactically valid fingerprint. */
export function isFingerprint(fingerprint: string): boolean {
  return /^[0-9a-f]{64}$/.test(fingerprint);
}

/** The message an identity signature covers. */
export function identityMessage(handshakeHash: Uint8Array, noiseStatic: Uint8Array | null): Uint8Array {
  return concatBytes(handshakeHash, noiseStatic ?? new Uint8Array(0));
}

export function signIdentity(
  signer: Signer,
  identity: IdentityKeyPair,
  role: 'server' | 'client',
  handshakeHash: Uint8Array,
  noiseStatic: Uint8Array | null,
): Uint8Array {
  return signer.sign(identityMessage(handshakeHash, noiseStatic), identity.secretKey, IDENTITY_CONTEXT[role]);
}

export function verifyIdentity(
  signer: Signer,
  publicKey: Uint8Array,
  signature: Uint8Array,
  role: 'server' | 'client',
  handshakeHash: Uint8Array,
  noiseStatic: Uint8Array | null,
): boolean {
  try {
    return signer.verify(signature, identityMessage(handshakeHash, noiseStatic), publicKey, IDENTITY_CONTEXT[role]);
  } catch {
    return false;
  }
}

/**
 * Where a client keeps trust-on-first-use pins: server name → fingerprint. The SDK supplies a
 * persistent one; a mismatch with a stored pin is a hard failure (`IDENTITY_MISMATCH`).
 */
export interface PinStore {
  get(serverName: string): string | undefined | Promise<string | undefined>;
  set(serverName: string, fingerprint: string): void | Promise<void>;
}

/** An in-memory pin store (tests, short-lived clients). */
export function createMemoryPinStore(initial: Record<string, string> = {}): PinStore & { entries(): Record<string, string> } {
  const pins = new Map(Object.entries(initial));
  return {
    get: (name) => pins.get(name),
    set: (name, fp) => {
      pins.set(name, fp);
    },
    entries: () => Object.fromEntries(pins),
  };
}
