/**
 * Node identities (DESIGN §4): ML-DSA-65 keys named by their fingerprint, the lower-case hex
 * SHA-256 of the public key (as `src/security/node-keys.ts`). In the handshake a party proves
 * its identity by signing `u8 len || label || h || s` — a role-specific label, the handshake
 * hash right before its payload, then its Noise static public key (empty when the pattern gives
 * it none) — so a server signature can never be replayed as a client one.
 *
 * Why the label is in the message and the FIPS 204 context is empty: Bun 1.4.5's node:crypto
 * signs ML-DSA-65 natively (~4–5k signatures/s here) but refuses a context ("Context parameter
 * is unsupported"), and the fallback that takes one (noble) manages ~90/s — the server could not
 * sign one identity per handshake at the rate DESIGN §4 needs. WebCrypto accepts a context but
 * is async and ran slower per signature here. The label is encoded exactly as FIPS 204 §5.2
 * encodes a context (length byte, then the bytes) and both labels have the same length, so the
 * signed messages of the two roles can never collide.
 */
import type { Hash, Signer } from '../crypto/types.ts';
import { concatBytes, toHex, utf8 } from './bytes.ts';

export interface IdentityKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** Domain-separation labels of the two signatures (ASCII, 21 bytes each); see the module comment. */
export const IDENTITY_LABEL = {
  server: utf8('SSC/1 server identity'),
  client: utf8('SSC/1 client identity'),
} as const;

/** The FIPS 204 context the identity signatures use: empty, so native signers serve them. */
const EMPTY_CONTEXT = new Uint8Array(0);

/** The fingerprint of an ML-DSA-65 public key: lower-case hex SHA-256, 64 characters. */
export function fingerprintOf(publicKey: Uint8Array, sha256: Hash): string {
  if (sha256.name !== 'SHA256') throw new TypeError('fingerprints use SHA-256');
  return toHex(sha256.digest(publicKey));
}

/** True when `fingerprint` is a syntactically valid fingerprint. */
export function isFingerprint(fingerprint: string): boolean {
  return /^[0-9a-f]{64}$/.test(fingerprint);
}

/** The message an identity signature covers: `u8 len(label) || label || h || s`. */
export function identityMessage(role: 'server' | 'client', handshakeHash: Uint8Array, noiseStatic: Uint8Array | null): Uint8Array {
  const label = IDENTITY_LABEL[role];
  return concatBytes(new Uint8Array([label.length]), label, handshakeHash, noiseStatic ?? new Uint8Array(0));
}

/** Signs the identity message of `role` (ML-DSA-65, empty context). */
export function signIdentity(
  signer: Signer,
  identity: IdentityKeyPair,
  role: 'server' | 'client',
  handshakeHash: Uint8Array,
  noiseStatic: Uint8Array | null,
): Uint8Array {
  return signer.sign(identityMessage(role, handshakeHash, noiseStatic), identity.secretKey, EMPTY_CONTEXT);
}

/** Verifies an identity signature of `role`; false (never an exception) when it does not verify. */
export function verifyIdentity(
  signer: Signer,
  publicKey: Uint8Array,
  signature: Uint8Array,
  role: 'server' | 'client',
  handshakeHash: Uint8Array,
  noiseStatic: Uint8Array | null,
): boolean {
  try {
    return signer.verify(signature, identityMessage(role, handshakeHash, noiseStatic), publicKey, EMPTY_CONTEXT);
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
