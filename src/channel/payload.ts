/**
 * Handshake payload encoding: a sequence of TLV fields `[tag u8][length u16 BE][value]` in
 * strictly ascending tag order, each tag at most once. Unknown tags below 0x80 are critical
 * (rejected); unknown tags from 0x80 up are skipped, so later versions can add optional fields.
 */
import { ChannelError } from './errors.ts';

export const PayloadTag = {
  /** ML-DSA-65 public key, 1952 bytes. */
  IDENTITY_KEY: 0x01,
  /** ML-DSA-65 signature over (role label || handshake hash || Noise static key), 3309 bytes; see identity.ts. */
  IDENTITY_SIG: 0x02,
  /** Bearer token, UTF-8, 1–1024 bytes. */
  TOKEN: 0x03,
  /** QKD key_ID (ETSI GS QKD 014), UTF-8, 1–256 bytes. */
  KEY_ID: 0x04,
  /** Session-resumption token, opaque (relay-defined), 1–1024 bytes. */
  RESUME: 0x05,
  /** Application data, opaque, 0–16384 bytes. */
  APP: 0x06,
} as const;

export interface HandshakePayload {
  identityKey?: Uint8Array;
  identitySig?: Uint8Array;
  token?: string;
  keyId?: string;
  resume?: Uint8Array;
  app?: Uint8Array;
}

const LIMITS: Record<number, [number, number]> = {
  [PayloadTag.IDENTITY_KEY]: [1952, 1952],
  [PayloadTag.IDENTITY_SIG]: [3309, 3309],
  [PayloadTag.TOKEN]: [1, 1024],
  [PayloadTag.KEY_ID]: [1, 256],
  [PayloadTag.RESUME]: [1, 1024],
  [PayloadTag.APP]: [0, 16384],
};

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Encodes a payload; throws `CONFIG_INVALID` when a field is out of bounds (a local bug, not input). */
export function encodePayload(payload: HandshakePayload): Uint8Array {
  const fields: [number, Uint8Array | undefined][] = [
    [PayloadTag.IDENTITY_KEY, payload.identityKey],
    [PayloadTag.IDENTITY_SIG, payload.identitySig],
    [PayloadTag.TOKEN, payload.token === undefined ? undefined : encoder.encode(payload.token)],
    [PayloadTag.KEY_ID, payload.keyId === undefined ? undefined : encoder.encode(payload.keyId)],
    [PayloadTag.RESUME, payload.resume],
    [PayloadTag.APP, payload.app],
  ];
  let length = 0;
  for (const [tag, value] of fields) {
    if (value === undefined) continue;
    const [min, max] = LIMITS[tag];
    if (value.length < min || value.length > max) throw new ChannelError('CONFIG_INVALID', `payload field 0x${tag.toString(16)} has length ${value.length}`);
    length += 3 + value.length;
  }
  const out = new Uint8Array(length);
  let o = 0;
  for (const [tag, value] of fields) {
    if (value === undefined) continue;
    out[o] = tag;
    out[o + 1] = value.length >>> 8;
    out[o + 2] = value.length & 0xff;
    out.set(value, o + 3);
    o += 3 + value.length;
  }
  return out;
}

/** Decodes a payload; any malformation is `HANDSHAKE_FAILED`. */
export function decodePayload(bytes: Uint8Array): HandshakePayload {
  const out: HandshakePayload = {};
  let o = 0;
  let last = -1;
  while (o < bytes.length) {
    if (o + 3 > bytes.length) throw new ChannelError('HANDSHAKE_FAILED', 'payload field header truncated');
    const tag = bytes[o];
    const len = (bytes[o + 1] << 8) | bytes[o + 2];
    if (o + 3 + len > bytes.length) throw new ChannelError('HANDSHAKE_FAILED', 'payload field truncated');
    if (tag <= last) throw new ChannelError('HANDSHAKE_FAILED', 'payload fields out of order or repeated');
    last = tag;
    const value = bytes.slice(o + 3, o + 3 + len);
    o += 3 + len;
    const limits = LIMITS[tag];
    if (!limits) {
      if (tag < 0x80) throw new ChannelError('HANDSHAKE_FAILED', `unknown critical payload field 0x${tag.toString(16)}`);
      continue;
    }
    if (len < limits[0] || len > limits[1]) throw new ChannelError('HANDSHAKE_FAILED', `payload field 0x${tag.toString(16)} has a bad length`);
    try {
      switch (tag) {
        case PayloadTag.IDENTITY_KEY:
          out.identityKey = value;
          break;
        case PayloadTag.IDENTITY_SIG:
          out.identitySig = value;
          break;
        case PayloadTag.TOKEN:
          out.token = decoder.decode(value);
          break;
        case PayloadTag.KEY_ID:
          out.keyId = decoder.decode(value);
          break;
        case PayloadTag.RESUME:
          out.resume = value;
          break;
        case PayloadTag.APP:
          out.app = value;
          break;
      }
    } catch (error) {
      throw new ChannelError('HANDSHAKE_FAILED', 'payload text field is not UTF-8', { cause: error });
    }
  }
  return out;
}
