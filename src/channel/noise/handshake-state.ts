/**
 * HandshakeState (Noise rev 34 §5.3) with the HFS extension's `e1` / `ekem1` tokens. Reads
 * are transactional: a message that fails to parse or decrypt leaves the state exactly as it
 * was, so a forged message injected into a stream cannot kill a handshake in progress. Every
 * failure is a `ChannelError`.
 *
 * Token processing is written once, as generators that yield their KEM operations: the
 * synchronous `readMessage`/`writeMessage` answer them with the protocol's `Kem` (noble-only
 * suites, the cacophony vectors), `readMessageAsync`/`writeMessageAsync` with its `AsyncKem`
 * when it has one (Bun's native ML-KEM-768 exists only as async WebCrypto; it is ~70× faster
 * than noble). One handshake uses one KEM for key generation and decapsulation alike, since the
 * two backends keep the decapsulation key in different forms (64-byte seed vs 2400-byte dk).
 */
import type { AsyncKem, Kem } from '../../crypto/types.ts';
import { concatBytes, EMPTY, utf8 } from '../bytes.ts';
import { ChannelError, isChannelError } from '../errors.ts';
import type { CipherState } from './cipher-state.ts';
import type { Token } from './patterns.ts';
import type { NoiseProtocol } from './protocol.ts';
import { SymmetricState } from './symmetric-state.ts';

export interface KeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** §3: the largest Noise message. */
export const MAX_NOISE_MESSAGE = 65_535;
const TAG = 16;

export interface HandshakeStateOptions {
  protocol: NoiseProtocol;
  initiator: boolean;
  prologue?: Uint8Array;
  /** Local static key pair (`s`). */
  s?: KeyPair;
  /** Local ephemeral key pair; generated when absent (inject only for test vectors). */
  e?: KeyPair;
  /** Remote static public key known in advance (`rs`). */
  rs?: Uint8Array;
  /** Remote ephemeral known in advance (`re`, pre-message patterns only). */
  re?: Uint8Array;
  /** Pre-shared keys (32 bytes), consumed in the order the `psk` tokens appear. */
  psks?: Uint8Array[];
  /** Local ML-KEM key pair for `e1`; generated when absent (inject only for test vectors). */
  e1?: KeyPair;
}

/** What a payload writer sees: the handshake hash after the message's tokens, before the payload. */
export type PayloadWriter = Uint8Array | ((handshakeHash: Uint8Array, state: HandshakeState) => Uint8Array);

/** A KEM operation a token step needs; answered by `Kem` or `AsyncKem`. */
type KemRequest =
  | { op: 'keygen' }
  | { op: 'encapsulate'; publicKey: Uint8Array }
  | { op: 'decapsulate'; ciphertext: Uint8Array; secretKey: Uint8Array };
type Steps<T> = Generator<KemRequest, T, unknown>;

function answerSync(kem: Kem, request: KemRequest): unknown {
  if (request.op === 'keygen') return kem.generateKeyPair();
  if (request.op === 'encapsulate') return kem.encapsulate(request.publicKey);
  return kem.decapsulate(request.ciphertext, request.secretKey);
}

function answerAsync(kem: AsyncKem, request: KemRequest): unknown {
  if (request.op === 'keygen') return kem.generateKeyPair();
  if (request.op === 'encapsulate') return kem.encapsulate(request.publicKey);
  return kem.decapsulate(request.ciphertext, request.secretKey);
}

export class HandshakeState {
  readonly protocol: NoiseProtocol;
  readonly initiator: boolean;
  private ss: SymmetricState;
  private s: KeyPair | null;
  private e: KeyPair | null;
  private rs: Uint8Array | null;
  private re: Uint8Array | null;
  private e1: KeyPair | null;
  private re1: Uint8Array | null = null;
  private readonly psks: Uint8Array[];
  private pskIndex = 0;
  private generatedE = false;
  private generatedE1 = false;
  private index = 0;
  private failed = false;
  /** An async read or write is between its start and its end. */
  private pending = false;
  /** Which KEM made the local `e1` (generated or injected); decapsulation must use the same. */
  private e1Async: boolean | null = null;
  private result: { send: CipherState; receive: CipherState } | null = null;
  /** Handshake hash after the tokens of the last message, i.e. the AD of its payload. */
  private payloadH: Uint8Array = EMPTY;

  constructor(options: HandshakeStateOptions) {
    const { protocol, initiator, prologue = EMPTY } = options;
    this.protocol = protocol;
    this.initiator = initiator;
    this.s = options.s ?? null;
    this.e = options.e ?? null;
    this.rs = options.rs ?? null;
    this.re = options.re ?? null;
    this.e1 = options.e1 ?? null;
    this.psks = [...(options.psks ?? [])];
    const p = protocol.pattern;
    this.ss = new SymmetricState(protocol.hashFn, protocol.aead, utf8(protocol.name));
    this.ss.mixHash(prologue);
    // §5.3 Initialize: pre-message public keys, initiator's first.
    for (const [tokens, local] of [
      [p.initiatorPre, initiator],
      [p.responderPre, !initiator],
    ] as const) {
      for (const t of tokens) {
        const key = t === 'e' ? (local ? this.e?.publicKey : this.re) : local ? this.s?.publicKey : this.rs;
        if (!key) throw new ChannelError('CONFIG_INVALID', `${protocol.name} needs the ${local ? 'local' : 'remote'} pre-message key ${t}`);
        this.ss.mixHash(key);
        if (t === 'e' && p.psk) this.ss.mixKey(key);
      }
    }
    const needsLocalS = p.messages.some((m, i) => (i % 2 === 0) === initiator && m.includes('s'));
    if (needsLocalS && !this.s) throw new ChannelError('CONFIG_INVALID', `${protocol.name} needs a local static key`);
  }

  /** True when it is this side's turn to write. */
  get isMyTurn(): boolean {
    return !this.isComplete && (this.index % 2 === 0) === this.initiator;
  }

  get isComplete(): boolean {
    return this.index >= this.protocol.pattern.messages.length;
  }

  /** Index of the next message (0-based). */
  get messageIndex(): number {
    return this.index;
  }

  handshakeHash(): Uint8Array {
    return this.ss.handshakeHash();
  }

  /** The handshake hash right before the last message's payload (what identity signatures cover). */
  get lastPayloadHash(): Uint8Array {
    return this.payloadH;
  }

  get remoteStatic(): Uint8Array | null {
    return this.rs;
  }

  get localStatic(): Uint8Array | null {
    return this.s?.publicKey ?? null;
  }

  get remoteEphemeral(): Uint8Array | null {
    return this.re;
  }

  /** Supplies a PSK late (e.g. fetched by key ID after reading the first message). */
  addPsk(psk: Uint8Array): void {
    if (psk.length !== 32) throw new ChannelError('CONFIG_INVALID', 'a PSK is 32 bytes');
    this.psks.push(psk);
  }

  /** The transport CipherStates after the last message (§5.3 Split), as this side sees them. */
  split(): { send: CipherState; receive: CipherState } {
    if (!this.result) throw new ChannelError('HANDSHAKE_FAILED', 'handshake not complete');
    return this.result;
  }

  /** §5.3 WriteMessage, answering KEM operations with the protocol's synchronous `Kem`. */
  writeMessage(payload: PayloadWriter = EMPTY): Uint8Array {
    this.assertUsable(true);
    const kem = this.protocol.kemFn;
    try {
      const steps = this.writeSteps(payload, false);
      let r = steps.next();
      while (!r.done) r = steps.next(answerSync(this.requireKem(kem), r.value));
      return this.finishWrite(r.value);
    } catch (error) {
      throw this.writeFailed(error);
    }
  }

  /** §5.3 WriteMessage with the protocol's `AsyncKem` when it has one (else its `Kem`). */
  async writeMessageAsync(payload: PayloadWriter = EMPTY): Promise<Uint8Array> {
    this.assertUsable(true);
    const useAsync = this.protocol.kemAsyncFn !== null;
    this.pending = true;
    try {
      const steps = this.writeSteps(payload, useAsync);
      let r = steps.next();
      while (!r.done) {
        r = steps.next(useAsync ? await answerAsync(this.protocol.kemAsyncFn as AsyncKem, r.value) : answerSync(this.requireKem(this.protocol.kemFn), r.value));
      }
      return this.finishWrite(r.value);
    } catch (error) {
      throw this.writeFailed(error);
    } finally {
      this.pending = false;
    }
  }

  /** §5.3 ReadMessage, answering KEM operations with the protocol's `Kem`; returns the payload. On failure the state is unchanged. */
  readMessage(message: Uint8Array): Uint8Array {
    const saved = this.beginRead(message);
    try {
      if (this.e1Async === true && this.protocol.pattern.messages[this.index].includes('ekem1')) {
        throw new ChannelError('HANDSHAKE_FAILED', 'e1 came from the async KEM: use readMessageAsync');
      }
      const steps = this.readSteps(message);
      let r = steps.next();
      while (!r.done) r = steps.next(answerSync(this.requireKem(this.protocol.kemFn), r.value));
      this.advance();
      return r.value;
    } catch (error) {
      throw this.readFailed(saved, error);
    }
  }

  /** §5.3 ReadMessage with the KEM that made the local `e1` (async when the protocol has one). On failure the state is unchanged. */
  async readMessageAsync(message: Uint8Array): Promise<Uint8Array> {
    const saved = this.beginRead(message);
    const useAsync = this.e1Async ?? this.protocol.kemAsyncFn !== null;
    this.pending = true;
    try {
      const steps = this.readSteps(message);
      let r = steps.next();
      while (!r.done) {
        r = steps.next(useAsync ? await answerAsync(this.requireAsyncKem(), r.value) : answerSync(this.requireKem(this.protocol.kemFn), r.value));
      }
      this.advance();
      return r.value;
    } catch (error) {
      throw this.readFailed(saved, error);
    } finally {
      this.pending = false;
    }
  }

  private *writeSteps(payload: PayloadWriter, useAsync: boolean): Steps<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (const token of this.protocol.pattern.messages[this.index]) {
      switch (token) {
        case 'e1': {
          if (!this.e1) {
            this.e1 = (yield { op: 'keygen' }) as KeyPair;
            this.generatedE1 = true;
          }
          this.e1Async ??= useAsync;
          out.push(this.ss.encryptAndHash(this.e1.publicKey));
          break;
        }
        case 'ekem1': {
          if (!this.re1) throw new ChannelError('HANDSHAKE_FAILED', 'ekem1 without a remote e1');
          const { ciphertext, sharedSecret } = (yield { op: 'encapsulate', publicKey: this.re1 }) as { ciphertext: Uint8Array; sharedSecret: Uint8Array };
          out.push(this.ss.encryptAndHash(ciphertext));
          this.ss.mixKey(sharedSecret);
          sharedSecret.fill(0);
          break;
        }
        default:
          out.push(this.writeToken(token));
      }
    }
    this.payloadH = this.ss.handshakeHash();
    const body = typeof payload === 'function' ? payload(this.payloadH, this) : payload;
    out.push(this.ss.encryptAndHash(body));
    return out;
  }

  private finishWrite(out: Uint8Array[]): Uint8Array {
    const message = concatBytes(...out);
    if (message.length > MAX_NOISE_MESSAGE) {
      this.failed = true;
      throw new ChannelError('HANDSHAKE_FAILED', 'handshake message exceeds 65535 bytes');
    }
    this.advance();
    return message;
  }

  /** A failed write leaves a half-mixed state behind; the handshake cannot continue. */
  private writeFailed(error: unknown): ChannelError {
    this.failed = true;
    return asChannelError(error, 'HANDSHAKE_FAILED');
  }

  private beginRead(message: Uint8Array) {
    this.assertUsable(false);
    if (!(message instanceof Uint8Array)) throw new ChannelError('HANDSHAKE_FAILED', 'handshake message must be bytes');
    if (message.length > MAX_NOISE_MESSAGE) throw new ChannelError('FRAME_TOO_LARGE', 'handshake message exceeds 65535 bytes');
    return { ss: this.ss.checkpoint(), re: this.re, rs: this.rs, re1: this.re1, pskIndex: this.pskIndex, payloadH: this.payloadH };
  }

  private readFailed(saved: ReturnType<HandshakeState['beginRead']>, error: unknown): ChannelError {
    this.ss.restore(saved.ss);
    this.re = saved.re;
    this.rs = saved.rs;
    this.re1 = saved.re1;
    this.pskIndex = saved.pskIndex;
    this.payloadH = saved.payloadH;
    const e = asChannelError(error, 'HANDSHAKE_FAILED');
    return e.code === 'DECRYPT_FAILED' ? new ChannelError('HANDSHAKE_FAILED', `handshake message did not authenticate`, { cause: e }) : e;
  }

  private *readSteps(message: Uint8Array): Steps<Uint8Array> {
    let offset = 0;
    const take = (n: number): Uint8Array => {
      if (offset + n > message.length) throw new ChannelError('HANDSHAKE_FAILED', 'handshake message truncated');
      const part = message.subarray(offset, offset + n);
      offset += n;
      return part;
    };
    const tagged = (n: number) => n + (this.ss.cs.hasKey() ? TAG : 0);
    for (const token of this.protocol.pattern.messages[this.index]) {
      switch (token) {
        case 'e': {
          this.re = take(32).slice();
          this.ss.mixHash(this.re);
          if (this.protocol.pattern.psk) this.ss.mixKey(this.re);
          break;
        }
        case 's':
          this.rs = this.ss.decryptAndHash(take(tagged(32)));
          break;
        case 'e1':
          // ML-KEM-768 sizes (FIPS 203): encapsulation key 1184, ciphertext 1088.
          this.re1 = this.ss.decryptAndHash(take(tagged(1184)));
          break;
        case 'ekem1': {
          const ct = this.ss.decryptAndHash(take(tagged(1088)));
          if (!this.e1) throw new ChannelError('HANDSHAKE_FAILED', 'ekem1 without a local e1');
          const shared = (yield { op: 'decapsulate', ciphertext: ct, secretKey: this.e1.secretKey }) as Uint8Array;
          this.ss.mixKey(shared);
          shared.fill(0);
          break;
        }
        default:
          this.mixToken(token);
      }
    }
    this.payloadH = this.ss.handshakeHash();
    const rest = message.subarray(offset);
    if (this.ss.cs.hasKey() && rest.length < TAG) throw new ChannelError('HANDSHAKE_FAILED', 'handshake message truncated');
    return this.ss.decryptAndHash(rest);
  }

  /** Marks the handshake dead (e.g. the payload was rejected by policy). */
  abort(): void {
    this.failed = true;
  }

  private assertUsable(writing: boolean): void {
    if (this.pending) throw new ChannelError('HANDSHAKE_FAILED', 'a handshake step is already running');
    if (this.failed) throw new ChannelError('HANDSHAKE_FAILED', 'handshake already failed');
    if (this.isComplete) throw new ChannelError('HANDSHAKE_FAILED', 'handshake already complete');
    if (this.isMyTurn !== writing) throw new ChannelError('HANDSHAKE_FAILED', writing ? 'not our turn to write' : 'not our turn to read');
  }

  private advance(): void {
    this.index++;
    if (this.isComplete) {
      const [c1, c2] = this.ss.split();
      this.result = this.initiator ? { send: c1, receive: c2 } : { send: c2, receive: c1 };
      // Ephemeral secrets we generated are done with (§5.3); injected ones belong to the caller.
      if (this.generatedE) this.e?.secretKey.fill(0);
      if (this.generatedE1) this.e1?.secretKey.fill(0);
    }
  }

  private requireKem(kem: Kem | null): Kem {
    if (!kem) throw new ChannelError('CONFIG_INVALID', `${this.protocol.name}: no synchronous KEM (use the async methods)`);
    return kem;
  }

  private requireAsyncKem(): AsyncKem {
    if (!this.protocol.kemAsyncFn) throw new ChannelError('CONFIG_INVALID', `${this.protocol.name}: no async KEM`);
    return this.protocol.kemAsyncFn;
  }

  private writeToken(token: Token): Uint8Array {
    switch (token) {
      case 'e': {
        if (!this.e) {
          this.e = this.protocol.dhFn.generateKeyPair();
          this.generatedE = true;
        }
        const pub = this.e.publicKey;
        this.ss.mixHash(pub);
        if (this.protocol.pattern.psk) this.ss.mixKey(pub);
        return pub;
      }
      case 's':
        return this.ss.encryptAndHash((this.s as KeyPair).publicKey);
      default:
        this.mixToken(token);
        return EMPTY;
    }
  }

  /** DH tokens and `psk`, identical for reading and writing (§5.3). */
  private mixToken(token: Token): void {
    if (token === 'psk') {
      const psk = this.psks[this.pskIndex];
      if (!psk) throw new ChannelError('PSK_UNKNOWN', 'no PSK for this psk token');
      this.pskIndex++;
      this.ss.mixKeyAndHash(psk);
      return;
    }
    // es = DH(initiator e, responder s); se = DH(initiator s, responder e).
    const [mine, theirs] = (
      {
        ee: [this.e, this.re],
        ss: [this.s, this.rs],
        es: this.initiator ? [this.e, this.rs] : [this.s, this.re],
        se: this.initiator ? [this.s, this.re] : [this.e, this.rs],
      } as Record<string, [KeyPair | null, Uint8Array | null]>
    )[token];
    if (!mine || !theirs) throw new ChannelError('HANDSHAKE_FAILED', `missing key for ${token}`);
    let shared: Uint8Array;
    try {
      shared = this.protocol.dhFn.dh(mine.secretKey, theirs);
    } catch (error) {
      throw new ChannelError('HANDSHAKE_FAILED', `${token}: invalid public key`, { cause: error });
    }
    this.ss.mixKey(shared);
    shared.fill(0);
  }
}

function asChannelError(error: unknown, code: 'HANDSHAKE_FAILED'): ChannelError {
  if (isChannelError(error)) return error;
  return new ChannelError(code, error instanceof Error ? error.message : 'handshake failed', { cause: error });
}
