/**
 * The node's long-term keys: an ML-DSA-65 identity (FIPS 204) and an X25519 Noise static key.
 * Stored under `<dataDir>/keys/` as JSON with mode 0600 (directory 0700). The identity is kept
 * as its 32-byte seed ξ, from which the key pair is re-derived on load.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { x25519 } from '@noble/curves/ed25519.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { fingerprintOf as channelFingerprintOf } from '../channel/identity.ts';
import { createNobleHash } from '../crypto/hash.ts';

/** The one definition of a fingerprint lives in the channel room; this binds it to SHA-256. */
const sha256 = createNobleHash('SHA256');

export interface NodeKeys {
  identity: { seed: Uint8Array; publicKey: Uint8Array; secretKey: Uint8Array; fingerprint: string };
  staticKey: { secretKey: Uint8Array; publicKey: Uint8Array };
}

export class KeyFileError extends Error {
  readonly code = 'KEY_FILE';
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const unb64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));

/** SHA-256 of the ML-DSA-65 public key, lower-case hex: how identities are named and pinned. */
export function fingerprintOf(publicKey: Uint8Array): string {
  return channelFingerprintOf(publicKey, sha256);
}

export function keyPaths(dataDir: string) {
  const dir = join(dataDir, 'keys');
  return { dir, identity: join(dir, 'identity.json'), staticKey: join(dir, 'static.json') };
}

function deriveIdentity(seed: Uint8Array): NodeKeys['identity'] {
  const { publicKey, secretKey } = ml_dsa65.keygen(seed);
  return { seed, publicKey, secretKey, fingerprint: fingerprintOf(publicKey) };
}

/** Generates fresh keys and writes them; refuses to overwrite unless `force`. */
export function generateNodeKeys(dataDir: string, options: { force?: boolean } = {}): NodeKeys {
  const paths = keyPaths(dataDir);
  if (!options.force && (existsSync(paths.identity) || existsSync(paths.staticKey))) {
    throw new KeyFileError(`keys already exist in ${paths.dir}; use --force to replace them`);
  }
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  chmodSync(paths.dir, 0o700);
  const identity = deriveIdentity(crypto.getRandomValues(new Uint8Array(32)));
  const staticSecret = crypto.getRandomValues(new Uint8Array(32));
  const staticKey = { secretKey: staticSecret, publicKey: x25519.getPublicKey(staticSecret) };
  const write = (file: string, data: unknown) => {
    writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  };
  write(paths.identity, {
    algorithm: 'ML-DSA-65',
    seed: b64(identity.seed),
    publicKey: b64(identity.publicKey),
    fingerprint: identity.fingerprint,
  });
  write(paths.staticKey, { algorithm: 'X25519', secretKey: b64(staticKey.secretKey), publicKey: b64(staticKey.publicKey) });
  return { identity, staticKey };
}

/** Loads the keys; throws `KeyFileError` when absent or inconsistent. */
export function loadNodeKeys(dataDir: string): NodeKeys {
  const paths = keyPaths(dataDir);
  try {
    const id = JSON.parse(readFileSync(paths.identity, 'utf8'));
    const st = JSON.parse(readFileSync(paths.staticKey, 'utf8'));
    const identity = deriveIdentity(unb64(id.seed));
    if (id.publicKey && b64(identity.publicKey) !== id.publicKey) {
      throw new KeyFileError(`${paths.identity}: public key does not match its seed`);
    }
    const secretKey = unb64(st.secretKey);
    if (secretKey.length !== 32) throw new KeyFileError(`${paths.staticKey}: secret key must be 32 bytes`);
    return { identity, staticKey: { secretKey, publicKey: x25519.getPublicKey(secretKey) } };
  } catch (error) {
    if (error instanceof KeyFileError) throw error;
    throw new KeyFileError(`cannot load node keys from ${paths.dir}: ${(error as Error).message}`);
  }
}

/** Loads the keys, or generates them on first start (embedded default). */
export function loadOrCreateNodeKeys(dataDir: string): { keys: NodeKeys; created: boolean } {
  const paths = keyPaths(dataDir);
  if (!existsSync(paths.identity) && !existsSync(paths.staticKey)) {
    return { keys: generateNodeKeys(dataDir), created: true };
  }
  return { keys: loadNodeKeys(dataDir), created: false };
}
