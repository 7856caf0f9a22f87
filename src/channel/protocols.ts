/**
 * The protocols this server speaks and how a client names one on the wire: the first
 * handshake message starts with `[version u8 = 1][protocol id u8]`, and both bytes are bound
 * into the Noise prologue, so a rewritten id (a downgrade) breaks the handshake hash.
 */
import { concatBytes, utf8 } from './bytes.ts';
import { ChannelError } from './errors.ts';
import { parseProtocolName } from './noise/protocol.ts';

export const WIRE_VERSION = 1;

/** Protocol ids. Ids ≥ 0x80 are classical-only (no ML-KEM) and refused unless allowed. */
export const PROTOCOLS: Readonly<Record<number, string>> = Object.freeze({
  1: 'Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256',
  2: 'Noise_NKhfs_25519+MLKEM768_ChaChaPoly_SHA256',
  3: 'Noise_XXhfs+psk2_25519+MLKEM768_ChaChaPoly_SHA256',
  4: 'Noise_NKhfs+psk2_25519+MLKEM768_ChaChaPoly_SHA256',
  5: 'Noise_XXhfs_25519+MLKEM768_AESGCM_SHA256',
  6: 'Noise_NKhfs_25519+MLKEM768_AESGCM_SHA256',
  129: 'Noise_XX_25519_ChaChaPoly_SHA256', // 0x81
  130: 'Noise_NK_25519_ChaChaPoly_SHA256', // 0x82
});

export const DEFAULT_PROTOCOL = PROTOCOLS[0x01];

const IDS = new Map(Object.entries(PROTOCOLS).map(([id, name]) => [name, Number(id)]));

export function protocolId(name: string): number | undefined {
  return IDS.get(name);
}

/** True when the protocol has no post-quantum key exchange. */
export function isClassical(name: string): boolean {
  const parsed = parseProtocolName(name);
  return !parsed?.pattern.hfs;
}

/** The policy check both sides run: classical-only protocols need `allowClassical`. */
export function isProtocolAllowed(name: string, policy: { allowClassical: boolean }): boolean {
  if (protocolId(name) === undefined) return false;
  return policy.allowClassical || !isClassical(name);
}

/** Throws `PROTOCOL_NOT_ALLOWED` unless {@link isProtocolAllowed}. */
export function assertProtocolAllowed(name: string, policy: { allowClassical: boolean }): void {
  if (!isProtocolAllowed(name, policy)) throw new ChannelError('PROTOCOL_NOT_ALLOWED', `protocol ${name} is not allowed`);
}

/** The Noise prologue: ASCII "SSC/1" then the version and protocol id bytes. */
export function prologueFor(id: number): Uint8Array {
  return concatBytes(utf8('SSC/1'), new Uint8Array([WIRE_VERSION, id]));
}
