/**
 * Transport sessions (DESIGN §4): frames `[type u8][counter u64 BE][AEAD ciphertext]` with the
 * 9-byte header as AAD and the explicit counter as the AEAD nonce (encoded as the Noise cipher
 * does, §12.3/§12.4), an anti-replay window so frames may arrive out of order, and in-band
 * rekeying (Noise §11.3 REKEY) signalled by a REKEY frame.
 *
 * Counters never restart within a session — a rekey changes the key, not the counter — so a
 * (key, nonce) pair can never repeat, and one replay window covers the whole session.
 */
import type { Aead, AeadBatchItem, BatchAead } from '../crypto/types.ts';
import { concatBytes, wipe } from './bytes.ts';
import { ChannelError } from './errors.ts';
import { type NoiseCipherName, rekeyKey } from './noise/cipher-state.ts';
import { ReplayWindow } from './replay-window.ts';

/** Frame types. 0x00–0x0F belong to the channel; 0x10–0xFF are the relay's to define. */
export const FrameType = {
  /** Carries one inner frame (`[inner type u8][inner plaintext]`); later frames use REKEY(k). */
  REKEY: 0x01,
  /** Orderly close: `[close code u16 BE][UTF-8 reason]`. */
  CLOSE: 0x02,
  /** First application type. */
  APP_MIN: 0x10,
} as const;

export const FRAME_HEADER_BYTES = 9;
export const FRAME_TAG_BYTES = 16;
/** Counters beyond 2^53 are never produced (a session would need 2^53 frames): reject them. */
const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

export interface SessionOptions {
  /** Largest frame on the wire, header and tag included (config `channel.maxFrameBytes`). */
  maxFrameBytes?: number;
  /** Rekey the sending key after this many frames (config `channel.rekeyMessages`, 2^20). */
  rekeyMessages?: number;
  /** Rekey the sending key after this many seconds (config `channel.rekeySeconds`, 600). */
  rekeySeconds?: number;
  /** Clock in milliseconds, injectable for tests. */
  now?: () => number;
}

export interface SessionInit extends SessionOptions {
  aead: Aead;
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  handshakeHash: Uint8Array;
  protocolName: string;
  initiator: boolean;
}

/** A frame reserved by {@link Session.prepareSeal}: seal `item` (alone or in a batch), then `finishSeal`. */
export interface PreparedFrame {
  header: Uint8Array;
  item: AeadBatchItem;
}

/** A frame checked by {@link Session.prepareOpen}, to be opened in a batch. */
export interface PreparedOpen {
  type: number;
  counter: number;
  item: AeadBatchItem;
}

export interface OpenedFrame {
  type: number;
  plaintext: Uint8Array;
  counter: number;
}

/** Parses the header of a frame (no decryption); throws a `ChannelError` on malformed input. */
export function parseFrameHeader(frame: Uint8Array, maxFrameBytes = 65_536): { type: number; counter: number } {
  if (!(frame instanceof Uint8Array)) throw new ChannelError('FRAME_INVALID', 'frame must be bytes');
  if (frame.length > maxFrameBytes) throw new ChannelError('FRAME_TOO_LARGE', `frame of ${frame.length} bytes exceeds ${maxFrameBytes}`);
  if (frame.length < FRAME_HEADER_BYTES + FRAME_TAG_BYTES) throw new ChannelError('FRAME_TRUNCATED', 'frame shorter than header and tag');
  const type = frame[0];
  if (type !== FrameType.REKEY && type !== FrameType.CLOSE && type < FrameType.APP_MIN) {
    throw new ChannelError('FRAME_INVALID', `reserved frame type 0x${type.toString(16)}`);
  }
  // Read byte by byte: a DataView here (or `.buffer`) costs more than the rest of the header.
  const hi = ((frame[1]! << 24) | (frame[2]! << 16) | (frame[3]! << 8) | frame[4]!) >>> 0;
  const lo = ((frame[5]! << 24) | (frame[6]! << 16) | (frame[7]! << 8) | frame[8]!) >>> 0;
  if (hi > 0x1f_ffff) throw new ChannelError('FRAME_INVALID', 'frame counter out of range');
  return { type, counter: hi * 0x1_0000_0000 + lo };
}

function writeHeader(type: number, counter: number): Uint8Array {
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  header[0] = type;
  const hi = Math.floor(counter / 0x1_0000_0000);
  const lo = counter >>> 0;
  header[1] = hi >>> 24;
  header[2] = (hi >>> 16) & 0xff;
  header[3] = (hi >>> 8) & 0xff;
  header[4] = hi & 0xff;
  header[5] = lo >>> 24;
  header[6] = (lo >>> 16) & 0xff;
  header[7] = (lo >>> 8) & 0xff;
  header[8] = lo & 0xff;
  return header;
}

/**
 * `encodeNonce(cipher, BigInt(counter))` for a safe-integer counter, without a BigInt or a
 * DataView (both show in the per-frame profile): 32 zero bits, then the 64-bit counter,
 * little-endian for ChaChaPoly, big-endian for AESGCM (Noise §12.3, §12.4).
 */
function counterNonce(cipher: NoiseCipherName, counter: number): Uint8Array {
  const nonce = new Uint8Array(12);
  let lo = counter >>> 0;
  let hi = Math.floor(counter / 0x1_0000_0000);
  if (cipher === 'ChaChaPoly') {
    for (let i = 4; i < 8; i++, lo >>>= 8) nonce[i] = lo & 0xff;
    for (let i = 8; i < 12; i++, hi >>>= 8) nonce[i] = hi & 0xff;
  } else {
    for (let i = 11; i >= 8; i--, lo >>>= 8) nonce[i] = lo & 0xff;
    for (let i = 7; i >= 4; i--, hi >>>= 8) nonce[i] = hi & 0xff;
  }
  return nonce;
}

interface ReceiveEpoch {
  key: Uint8Array;
  /** First counter sealed under this key (exact once the REKEY frame was seen). */
  from: number;
}

/**
 * One side of an established channel. Not thread-safe by design: a session belongs to one
 * connection. Sealing reserves counters in call order; opening accepts any order within the
 * replay window.
 */
export class Session {
  readonly protocolName: string;
  readonly initiator: boolean;
  /** Noise handshake hash: a channel binding both sides share. */
  readonly handshakeHash: Uint8Array;
  readonly aead: Aead;
  private readonly cipher: NoiseCipherName;
  private readonly maxFrameBytes: number;
  private readonly rekeyMessages: number;
  private readonly rekeyMs: number;
  private readonly now: () => number;

  private sendKey: Uint8Array;
  private sendCounter = 0;
  private sentSinceRekey = 0;
  private sendEpochStart: number;
  private rekeyRequested = false;
  private sendEpoch = 0;

  private current: ReceiveEpoch;
  private previous: ReceiveEpoch | null = null;
  private next: Uint8Array | null = null;
  private readonly window = new ReplayWindow();
  private closed = false;

  constructor(init: SessionInit) {
    const { maxFrameBytes = 65_536, rekeyMessages = 1_048_576, rekeySeconds = 600, now = Date.now } = init;
    if (init.aead.name !== 'ChaChaPoly' && init.aead.name !== 'AESGCM') throw new ChannelError('CONFIG_INVALID', 'session cipher must be ChaChaPoly or AESGCM');
    if (maxFrameBytes < FRAME_HEADER_BYTES + FRAME_TAG_BYTES + 1) throw new ChannelError('CONFIG_INVALID', 'maxFrameBytes too small');
    this.aead = init.aead;
    this.cipher = init.aead.name;
    this.protocolName = init.protocolName;
    this.initiator = init.initiator;
    this.handshakeHash = init.handshakeHash.slice();
    this.maxFrameBytes = maxFrameBytes;
    this.rekeyMessages = rekeyMessages;
    this.rekeyMs = rekeySeconds * 1000;
    this.now = now;
    this.sendKey = init.sendKey.slice();
    this.sendEpochStart = now();
    this.current = { key: init.receiveKey.slice(), from: 0 };
  }

  /** Largest plaintext one application frame can carry. */
  get maxPlaintextBytes(): number {
    // One byte is kept free for the inner type of a REKEY frame.
    return this.maxFrameBytes - FRAME_HEADER_BYTES - FRAME_TAG_BYTES - 1;
  }

  /** How many times the sending key has been replaced. */
  get sendRekeys(): number {
    return this.sendEpoch;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Asks for a rekey at the next sealed frame (besides the automatic message/time limits). */
  requestRekey(): void {
    this.rekeyRequested = true;
  }

  /**
   * Reserves the next counter and returns what to seal. Use with a `BatchAead.sealBatch` over
   * many sessions' items, then {@link finishSeal} each result. Frames must be sent after they
   * are finished, but may be sent in any order.
   */
  prepareSeal(type: number, plaintext: Uint8Array): PreparedFrame {
    if (this.closed) throw new ChannelError('SESSION_CLOSED', 'session is closed');
    if (!Number.isInteger(type) || (type !== FrameType.CLOSE && (type < FrameType.APP_MIN || type > 0xff))) {
      throw new ChannelError('FRAME_INVALID', `cannot send frame type ${type}`);
    }
    if (plaintext.length > this.maxPlaintextBytes) throw new ChannelError('FRAME_TOO_LARGE', `plaintext of ${plaintext.length} bytes exceeds ${this.maxPlaintextBytes}`);
    if (this.sendCounter >= MAX_COUNTER) throw new ChannelError('NONCE_EXHAUSTED', 'frame counter exhausted');
    const counter = this.sendCounter++;
    const key = this.sendKey;
    const rekey = this.rekeyRequested || this.sentSinceRekey + 1 >= this.rekeyMessages || this.now() - this.sendEpochStart >= this.rekeyMs;
    let header: Uint8Array;
    let data: Uint8Array;
    if (rekey) {
      header = writeHeader(FrameType.REKEY, counter);
      data = concatBytes(new Uint8Array([type]), plaintext);
      // Noise §11.3: the next frames use REKEY(k); the old key stays referenced by this item only.
      this.sendKey = rekeyKey(this.aead, key);
      this.sentSinceRekey = 0;
      this.sendEpochStart = this.now();
      this.rekeyRequested = false;
      this.sendEpoch++;
    } else {
      header = writeHeader(type, counter);
      data = plaintext;
      this.sentSinceRekey++;
    }
    return { header, item: { key, nonce: counterNonce(this.cipher, counter), aad: header, data } };
  }

  /** Joins a prepared header and its sealed ciphertext into the frame. */
  finishSeal(prepared: PreparedFrame, sealed: Uint8Array): Uint8Array {
    return concatBytes(prepared.header, sealed);
  }

  /** Seals one frame. */
  seal(type: number, plaintext: Uint8Array): Uint8Array {
    const p = this.prepareSeal(type, plaintext);
    return this.finishSeal(p, this.aead.seal(p.item.key, p.item.nonce, p.item.data, p.item.aad));
  }

  /**
   * Opens one frame. Throws `ChannelError`: FRAME_TRUNCATED / FRAME_TOO_LARGE / FRAME_INVALID
   * (malformed), REPLAY (seen or older than the window), DECRYPT_FAILED (forged or from an
   * expired key). A failed frame never changes the session's state.
   */
  open(frame: Uint8Array): OpenedFrame {
    if (this.closed) throw new ChannelError('SESSION_CLOSED', 'session is closed');
    const { type, counter } = parseFrameHeader(frame, this.maxFrameBytes);
    const seen = this.window.check(counter);
    if (seen !== 'ok') throw new ChannelError('REPLAY', seen === 'duplicate' ? `frame ${counter} already received` : `frame ${counter} is older than the replay window`);
    const header = frame.subarray(0, FRAME_HEADER_BYTES);
    const body = frame.subarray(FRAME_HEADER_BYTES);
    const nonce = counterNonce(this.cipher, counter);
    const tryKey = (key: Uint8Array | null) => (key ? this.aead.open(key, nonce, body, header) : null);

    let plaintext: Uint8Array | null = null;
    let used: 'previous' | 'current' | 'next' = 'current';
    if (counter >= this.current.from) {
      plaintext = tryKey(this.current.key);
      if (plaintext === null) {
        // The sender may have rekeyed in a frame we have not seen yet (reordering).
        this.next ??= rekeyKey(this.aead, this.current.key);
        plaintext = tryKey(this.next);
        used = 'next';
      }
    } else {
      plaintext = tryKey(this.previous?.key ?? null);
      used = 'previous';
      if (plaintext === null) {
        plaintext = tryKey(this.current.key);
        used = 'current';
      }
    }
    if (plaintext === null) throw new ChannelError('DECRYPT_FAILED', `frame ${counter} did not authenticate`);

    if (type === FrameType.REKEY && plaintext.length < 1) throw new ChannelError('FRAME_INVALID', 'empty rekey frame');
    // Accepted: only now does state change.
    this.window.update(counter);
    if (used === 'next') {
      this.advanceReceive(counter);
    }
    if (type === FrameType.REKEY) {
      if (used === 'previous') {
        // A late REKEY frame: now we know exactly where the current key begins.
        this.current.from = Math.min(this.current.from, counter + 1);
      } else {
        this.advanceReceive(counter + 1);
      }
      const innerType = plaintext[0];
      return { type: innerType, plaintext: plaintext.subarray(1), counter };
    }
    return { type, plaintext, counter };
  }

  /**
   * First half of a batched open ({@link openMany}): parses the header and checks the replay
   * window, and returns what to open with the current key — or null when the frame must be
   * opened alone by {@link open} (a REKEY frame, or a counter from before the current key).
   * Throws like `open` for malformed or replayed frames; changes no state.
   */
  prepareOpen(frame: Uint8Array): PreparedOpen | null {
    if (this.closed) throw new ChannelError('SESSION_CLOSED', 'session is closed');
    const { type, counter } = parseFrameHeader(frame, this.maxFrameBytes);
    const seen = this.window.check(counter);
    if (seen !== 'ok') throw new ChannelError('REPLAY', seen === 'duplicate' ? `frame ${counter} already received` : `frame ${counter} is older than the replay window`);
    if (type === FrameType.REKEY || counter < this.current.from) return null;
    const header = frame.subarray(0, FRAME_HEADER_BYTES);
    return { type, counter, item: { key: this.current.key, nonce: counterNonce(this.cipher, counter), aad: header, data: frame.subarray(FRAME_HEADER_BYTES) } };
  }

  /**
   * Second half: `plaintext` is what the batch call returned for `prepared.item` (null when
   * the tag did not verify). Accepts the frame only if it verified under the key that is still
   * current and its counter is still new (a duplicate inside one batch is caught here);
   * otherwise the frame takes the single-frame path, which tries the other keys and throws.
   */
  finishOpen(frame: Uint8Array, prepared: PreparedOpen, plaintext: Uint8Array | null): OpenedFrame {
    if (plaintext === null || this.closed || prepared.item.key !== this.current.key) return this.open(frame);
    const seen = this.window.check(prepared.counter);
    if (seen !== 'ok') throw new ChannelError('REPLAY', `frame ${prepared.counter} already received`);
    this.window.update(prepared.counter);
    return { type: prepared.type, plaintext, counter: prepared.counter };
  }

  private advanceReceive(from: number): void {
    const nextKey = this.next ?? rekeyKey(this.aead, this.current.key);
    if (this.previous) wipe(this.previous.key);
    this.previous = this.current;
    this.current = { key: nextKey, from };
    this.next = null;
  }

  /** Forgets all keys; every later call throws `SESSION_CLOSED`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    wipe(this.sendKey);
    wipe(this.current.key);
    wipe(this.previous?.key);
    wipe(this.next);
  }
}

/** Encodes a CLOSE frame body. */
export function encodeClose(code: number, reason = ''): Uint8Array {
  const text = new TextEncoder().encode(reason).subarray(0, 123);
  const out = new Uint8Array(2 + text.length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}

/** Decodes a CLOSE frame body; malformed bodies give code 4002 (FRAME_INVALID). */
export function decodeClose(body: Uint8Array): { code: number; reason: string } {
  if (body.length < 2) return { code: 4002, reason: 'malformed close' };
  let reason = '';
  try {
    reason = new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(2));
  } catch {
    reason = '';
  }
  return { code: (body[0] << 8) | body[1], reason };
}

/**
 * A reusable output buffer for the batch calls ({@link sealMany}, {@link openMany}): the frames or
 * plaintexts of one call are views of it, valid until the next call given the same scratch, so
 * the caller must be done with them (or copy them) by then. A fresh output buffer per call cost
 * more than the AEAD itself here: a typed array of 16 KiB took ~55 µs to allocate (fresh pages),
 * ~0.5 µs to copy into one kept. It grows to the largest call seen, up to `maxBytes`; a larger
 * call gets a buffer of its own.
 */
export class BatchScratch {
  private buffer: Uint8Array;

  constructor(
    initialBytes = 64 * 1024,
    private readonly maxBytes = 8 * 1024 * 1024,
  ) {
    this.buffer = new Uint8Array(initialBytes);
  }

  /** The region to write the next call's output into. */
  get out(): Uint8Array {
    return this.buffer;
  }

  /** After a call: `used` is its output; when it did not fit, the next call gets a larger region. */
  fitted(used: Uint8Array): void {
    if (used.buffer === this.buffer.buffer || used.length > this.maxBytes) return;
    let size = this.buffer.length;
    while (size < used.length) size *= 2;
    this.buffer = new Uint8Array(Math.min(size, this.maxBytes));
  }
}

/**
 * Seals frames for many sessions with one batch call (relay fan-out). Every session must use
 * the batch AEAD's cipher; the result is in request order. With `scratch` (and the WASM AEAD's
 * packed form), the frames are views of it (see {@link BatchScratch}).
 */
export function sealMany(
  aead: BatchAead,
  requests: readonly { session: Session; type: number; plaintext: Uint8Array }[],
  scratch?: BatchScratch,
): Uint8Array[] {
  const prepared = requests.map(({ session, type, plaintext }) => {
    if (session.aead.name !== aead.name) throw new ChannelError('CONFIG_INVALID', `session cipher ${session.aead.name} does not match batch cipher ${aead.name}`);
    return session.prepareSeal(type, plaintext);
  });
  const items = prepared.map((p) => p.item);
  // The WASM AEAD's packed form writes `header ‖ ciphertext ‖ tag` for every frame into one
  // buffer: the frames are views of it, with no copy per frame (a relay fan-out's hot path).
  const packed = (aead as PackedBatch).sealBatchPacked;
  if (packed) {
    const out = packed.call(aead, items, { prefixes: prepared.map((p) => p.header), out: scratch?.out });
    scratch?.fitted(out.bytes);
    return prepared.map((_, i) => out.bytes.subarray(out.offsets[i]!, out.offsets[i]! + out.lengths[i]!));
  }
  const sealed = aead.sealBatch(items);
  return prepared.map((p, i) => concatBytes(p.header, sealed[i]));
}

/**
 * Opens frames of many sessions with one batch AEAD call (a client receiving a fan-out, or a
 * server a burst of commands). Each frame is checked exactly as {@link Session.open} would —
 * header, replay window, tag — and frames of one session are accepted in the given order; a
 * frame that cannot take the batch (a rekey, an older key, another cipher) is opened alone in
 * its place. Returns, in request order, the opened frame or the `ChannelError` it failed with.
 */
export function openMany(
  aead: BatchAead,
  requests: readonly { session: Session; frame: Uint8Array }[],
  scratch?: BatchScratch,
): (OpenedFrame | Error)[] {
  const prepared: (PreparedOpen | null | Error)[] = new Array(requests.length);
  const items: AeadBatchItem[] = [];
  for (let i = 0; i < requests.length; i++) {
    const { session, frame } = requests[i]!;
    try {
      const p = session.aead.name === aead.name ? session.prepareOpen(frame) : null;
      prepared[i] = p;
      if (p) items.push(p.item);
    } catch (error) {
      prepared[i] = error as Error;
    }
  }
  const opened = items.length > 0 ? openItems(aead, items, scratch) : [];
  const out: (OpenedFrame | Error)[] = new Array(requests.length);
  let k = 0;
  for (let i = 0; i < requests.length; i++) {
    const { session, frame } = requests[i]!;
    const p = prepared[i];
    if (p instanceof Error) {
      out[i] = p;
      continue;
    }
    try {
      out[i] = p ? session.finishOpen(frame, p, opened[k++] ?? null) : session.open(frame);
    } catch (error) {
      out[i] = error as Error;
    }
  }
  return out;
}

/** The packed calls of `WasmBatchAead` (src/crypto/wasm-glue.ts), when the batch AEAD has them. */
interface PackedBatch {
  sealBatchPacked?(
    items: readonly AeadBatchItem[],
    options: { prefixes: readonly Uint8Array[]; out?: Uint8Array },
  ): { bytes: Uint8Array; offsets: Uint32Array; lengths: Uint32Array };
  openBatchPacked?(
    items: readonly AeadBatchItem[],
    options: { out?: Uint8Array },
  ): { bytes: Uint8Array; offsets: Uint32Array; lengths: Uint32Array; ok: Uint8Array };
}

/** One batch open; with a scratch and the packed form, the plaintexts are views of the scratch. */
function openItems(aead: BatchAead, items: readonly AeadBatchItem[], scratch: BatchScratch | undefined): (Uint8Array | null)[] {
  const packed = scratch ? (aead as PackedBatch).openBatchPacked : undefined;
  if (!packed || !scratch) return aead.openBatch(items);
  const { bytes, offsets, lengths, ok } = packed.call(aead, items, { out: scratch.out });
  scratch.fitted(bytes);
  const out: (Uint8Array | null)[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) out[i] = ok[i] === 1 ? bytes.subarray(offsets[i]!, offsets[i]! + lengths[i]!) : null;
  return out;
}
