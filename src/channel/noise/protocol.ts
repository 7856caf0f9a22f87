/**
 * Protocol names (Noise rev 34 §8): `Noise_<pattern>_<dh>_<cipher>_<hash>`, with the HFS
 * extension's `<dh>+<kem>` form (`Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256`).
 */
import type { Aead, AsyncKem, Dh, Hash, HashName, Kem } from '../../crypto/types.ts';
import { ChannelError } from '../errors.ts';
import type { NoiseCipherName } from './cipher-state.ts';
import { type HandshakePattern, resolvePattern } from './patterns.ts';

export interface ParsedProtocolName {
  name: string;
  pattern: HandshakePattern;
  dh: '25519';
  kem: 'MLKEM768' | null;
  cipher: NoiseCipherName;
  hash: HashName;
}

const HASHES = new Set<string>(['SHA256', 'SHA512', 'BLAKE2s', 'BLAKE2b']);

/** Parses a protocol name; null when any part is unknown or inconsistent (hfs without a KEM, or the reverse). */
export function parseProtocolName(name: string): ParsedProtocolName | null {
  const parts = name.split('_');
  if (parts.length !== 5 || parts[0] !== 'Noise') return null;
  const pattern = resolvePattern(parts[1]);
  if (!pattern) return null;
  const [dh, kem, ...rest] = parts[2].split('+');
  if (dh !== '25519' || rest.length > 0) return null;
  if (kem !== undefined && kem !== 'MLKEM768') return null;
  if (pattern.hfs !== (kem !== undefined)) return null;
  if (parts[3] !== 'ChaChaPoly' && parts[3] !== 'AESGCM') return null;
  if (!HASHES.has(parts[4])) return null;
  return { name, pattern, dh: '25519', kem: kem === undefined ? null : 'MLKEM768', cipher: parts[3], hash: parts[4] as HashName };
}

/** The primitives a Noise protocol needs. `CryptoSuite` from `src/crypto` satisfies it. */
export interface NoisePrimitives {
  dh: Dh;
  kem?: Kem;
  /**
   * An asynchronous ML-KEM-768 (Bun's native WebCrypto one, `CryptoSuite.kemAsync`). When
   * present, `HandshakeState`'s async methods use it for every KEM operation of a handshake;
   * the synchronous methods always use `kem`.
   */
  kemAsync?: AsyncKem;
  chachaPoly: Aead;
  aesGcm: Aead;
  hash(name: HashName): Hash;
}

/** A protocol name bound to concrete primitives. */
export interface NoiseProtocol extends ParsedProtocolName {
  dhFn: Dh;
  kemFn: Kem | null;
  /** The async KEM for `HandshakeState.readMessageAsync`/`writeMessageAsync`; null when none. */
  kemAsyncFn: AsyncKem | null;
  aead: Aead;
  hashFn: Hash;
}

/** Resolves a protocol name against primitives; throws `CONFIG_INVALID` when unknown. */
export function resolveProtocol(name: string, primitives: NoisePrimitives): NoiseProtocol {
  const parsed = parseProtocolName(name);
  if (!parsed) throw new ChannelError('CONFIG_INVALID', `unknown or unsupported Noise protocol ${name}`);
  if (parsed.kem && !primitives.kem && !primitives.kemAsync) throw new ChannelError('CONFIG_INVALID', `${name} needs a KEM backend`);
  return {
    ...parsed,
    dhFn: primitives.dh,
    kemFn: parsed.kem ? (primitives.kem ?? null) : null,
    kemAsyncFn: parsed.kem ? (primitives.kemAsync ?? null) : null,
    aead: parsed.cipher === 'ChaChaPoly' ? primitives.chachaPoly : primitives.aesGcm,
    hashFn: primitives.hash(parsed.hash),
  };
}
