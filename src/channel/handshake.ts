/**
 * Handshake drivers: the SSC channel handshake on top of the Noise core — protocol choice and
 * policy, the HFS hybrid key exchange, ML-DSA-65 identities, client authentication, optional
 * QKD PSK and resumption tokens — independent of any transport. A transport feeds bytes in and
 * sends what comes out:
 *
 * @example
 * const client = createInitiator({ crypto, serverFingerprint });
 * const server = createResponder({ crypto, staticKey, identity });
 * await server.readMessage(await client.writeMessage());
 * await client.readMessage(await server.writeMessage());
 * await server.readMessage(await client.writeMessage());
 * const a = client.session(), b = server.session();
 * b.open(a.seal(0x10, bytes));
 */
import type { Hash, HashName, Kem, Signer } from '../crypto/types.ts';
import { concatBytes, equalBytes, utf8 } from './bytes.ts';
import { ChannelError, isChannelError } from './errors.ts';
import { fingerprintOf, type IdentityKeyPair, isFingerprint, type PinStore, signIdentity, verifyIdentity } from './identity.ts';
import { HandshakeState, type KeyPair } from './noise/handshake-state.ts';
import { type NoisePrimitives, type NoiseProtocol, resolveProtocol } from './noise/protocol.ts';
import { decodePayload, encodePayload, type HandshakePayload } from './payload.ts';
import { assertProtocolAllowed, DEFAULT_PROTOCOL, PROTOCOLS, prologueFor, protocolId, WIRE_VERSION } from './protocols.ts';
import { Session, type SessionOptions } from './session.ts';

/**
 * The primitives a channel needs; `CryptoSuite` from `src/crypto` satisfies it. When it has a
 * `kemAsync` (Bun's native ML-KEM-768), the drivers use it for the handshake's KEM operations.
 */
export interface ChannelCrypto extends NoisePrimitives {
  kem: Kem;
  signer: Signer;
  hash(name: HashName): Hash;
}

/** What one side learned about the other. */
export interface PeerInfo {
  /** Fingerprint of the peer's ML-DSA-65 identity, when it proved one. */
  fingerprint?: string;
  identityKey?: Uint8Array;
  /** The peer's Noise static key (X25519), when the pattern has one. */
  staticKey?: Uint8Array;
  /** How the peer authenticated (server: always 'identity'). */
  auth: 'identity' | 'token' | 'none';
  /** Index into the configured tokens list of the token the client presented (server side). */
  tokenIndex?: number;
  /** QKD key_ID mixed into this channel. */
  keyId?: string;
  /** Resumption token the client presented (server side). */
  resume?: Uint8Array;
  /** Application data carried in handshake payloads. */
  app?: Uint8Array;
}

export interface HandshakeDriver {
  readonly role: 'initiator' | 'responder';
  /** The Noise protocol name; null on a responder before the first message. */
  readonly protocolName: string | null;
  readonly isComplete: boolean;
  /** True when the next call must be `writeMessage`. */
  readonly isMyTurn: boolean;
  /** Epoch milliseconds after which every call fails with HANDSHAKE_TIMEOUT. */
  readonly deadline: number;
  readonly peer: PeerInfo;
  /** Produces the next handshake message; `app` is optional application data for its payload. */
  writeMessage(app?: Uint8Array): Promise<Uint8Array>;
  /** Consumes a handshake message. A malformed or forged message leaves the driver unchanged. */
  readMessage(message: Uint8Array): Promise<void>;
  /** The established session; throws HANDSHAKE_FAILED before completion. */
  session(): Session;
}

interface CommonOptions {
  crypto: ChannelCrypto;
  /** Accept classical-only protocols (config `channel.allowClassical`). */
  allowClassical?: boolean;
  /** Config `channel.handshakeTimeoutMs`. */
  handshakeTimeoutMs?: number;
  /** Session limits (config `channel.maxFrameBytes`, `rekeyMessages`, `rekeySeconds`). */
  session?: SessionOptions;
  now?: () => number;
  /** Test hooks: fixed ephemeral keys (X25519 and ML-KEM) for reproducible vectors. */
  ephemeral?: KeyPair;
  kemKeyPair?: KeyPair;
}

export interface InitiatorOptions extends CommonOptions {
  /** Protocol name (default XXhfs ChaChaPoly SHA-256); a psk2 variant is chosen when `qkd` is set. */
  protocol?: string;
  /** Client Noise static key (XX patterns); generated when absent. */
  staticKey?: KeyPair;
  /** Server Noise static key, required for NK patterns. */
  serverStaticKey?: Uint8Array;
  /** Pinned fingerprint of the server's ML-DSA-65 identity. */
  serverFingerprint?: string;
  /** Trust-on-first-use pins, keyed by `serverName` (used when no fingerprint is pinned). */
  pinStore?: PinStore;
  serverName?: string;
  /** Client ML-DSA-65 identity for mutual authentication. */
  identity?: IdentityKeyPair;
  /** Bearer token for token authentication. */
  token?: string;
  /** QKD key for the psk modifier: its ETSI 014 key_ID and the 32-byte key. */
  qkd?: { keyId: string; key: Uint8Array };
  /** Resumption token from an earlier session. */
  resume?: Uint8Array;
}

export interface ResponderOptions extends CommonOptions {
  /** Server Noise static key. */
  staticKey: KeyPair;
  /** Server ML-DSA-65 identity. */
  identity: IdentityKeyPair;
  /** Config `channel.clientAuth`. */
  clientAuth?: 'none' | 'token' | 'mutual';
  /** Config `channel.tokens`. */
  tokens?: readonly string[];
  /** Config `channel.allowedClients` (fingerprints); empty allows any verified identity. */
  allowedClients?: readonly string[];
  /** Fetches a QKD key by key_ID (ETSI 014 dec_keys); null when unknown. */
  fetchQkdKey?: (keyId: string) => Promise<Uint8Array | null>;
}

/**
 * Resolved protocols per primitives object and name: a server resolves the same few names for
 * every connection, and parsing the name and building the protocol object each time showed up
 * in profiles. The entries are immutable descriptions, so sharing them is safe.
 */
const resolved = new WeakMap<NoisePrimitives, Map<string, NoiseProtocol>>();
function resolveCached(name: string, crypto: NoisePrimitives): NoiseProtocol {
  let byName = resolved.get(crypto);
  if (!byName) resolved.set(crypto, (byName = new Map()));
  let protocol = byName.get(name);
  if (!protocol) byName.set(name, (protocol = resolveProtocol(name, crypto)));
  return protocol;
}

const toPsk2 = (name: string) => name.replace(/^Noise_(XXhfs|NKhfs)_/, 'Noise_$1+psk2_');

abstract class Driver implements HandshakeDriver {
  abstract readonly role: 'initiator' | 'responder';
  protected hs: HandshakeState | null = null;
  protected failed: ChannelError | null = null;
  protected busy = false;
  readonly deadline: number;
  readonly peer: PeerInfo = { auth: 'none' };
  protected readonly now: () => number;
  private cached: Session | null = null;

  constructor(protected readonly common: CommonOptions) {
    this.now = common.now ?? Date.now;
    this.deadline = this.now() + (common.handshakeTimeoutMs ?? 10_000);
  }

  get protocolName(): string | null {
    return this.hs?.protocol.name ?? null;
  }

  get isComplete(): boolean {
    return this.hs?.isComplete ?? false;
  }

  abstract get isMyTurn(): boolean;

  protected abstract doWrite(app: Uint8Array | undefined): Promise<Uint8Array>;
  protected abstract doRead(message: Uint8Array): Promise<void>;

  async writeMessage(app?: Uint8Array): Promise<Uint8Array> {
    // Misuse by the caller is reported but does not end the handshake.
    if (!this.failed && !this.isMyTurn) throw new ChannelError('HANDSHAKE_FAILED', 'not our turn to write');
    return this.guard(() => this.doWrite(app), true);
  }

  async readMessage(message: Uint8Array): Promise<void> {
    if (!this.failed && (this.isMyTurn || this.isComplete)) throw new ChannelError('HANDSHAKE_FAILED', 'not our turn to read');
    if (!(message instanceof Uint8Array)) throw new ChannelError('HANDSHAKE_FAILED', 'handshake message must be bytes');
    return this.guard(() => this.doRead(message), false);
  }

  session(): Session {
    if (this.cached) return this.cached;
    if (!this.hs?.isComplete) throw new ChannelError('HANDSHAKE_FAILED', 'handshake not complete');
    const { send, receive } = this.hs.split();
    this.cached = new Session({
      ...this.common.session,
      now: this.common.session?.now ?? this.common.now,
      aead: this.hs.protocol.aead,
      sendKey: send.key as Uint8Array,
      receiveKey: receive.key as Uint8Array,
      handshakeHash: this.hs.handshakeHash(),
      protocolName: this.hs.protocol.name,
      initiator: this.role === 'initiator',
    });
    return this.cached;
  }

  /**
   * Runs one step: timeout and dead-state checks, no re-entrance, and every error turned into
   * a ChannelError. Parse and decrypt failures of a read are not fatal (the Noise state rolled
   * back); policy failures (identity, auth, protocol, PSK) and timeouts are.
   */
  private async guard<T>(step: () => Promise<T>, writing: boolean): Promise<T> {
    if (this.failed) throw this.failed;
    if (this.now() > this.deadline) throw this.fail(new ChannelError('HANDSHAKE_TIMEOUT', 'handshake took too long'));
    if (this.busy) throw new ChannelError('HANDSHAKE_FAILED', 'a handshake step is already running');
    this.busy = true;
    try {
      return await step();
    } catch (error) {
      const e = isChannelError(error) ? error : new ChannelError('HANDSHAKE_FAILED', 'handshake failed', { cause: error });
      const recoverable = !writing && e.code === 'HANDSHAKE_FAILED' && !this.policyFailure;
      throw recoverable ? e : this.fail(e);
    } finally {
      this.busy = false;
      this.policyFailure = false;
    }
  }

  /** Set by a step that failed for policy (not parsing) reasons with code HANDSHAKE_FAILED. */
  protected policyFailure = false;

  protected fail(error: ChannelError): ChannelError {
    this.failed = error;
    this.hs?.abort();
    return error;
  }

  protected sha256(): Hash {
    return this.common.crypto.hash('SHA256');
  }

  protected noise(name: string, initiator: boolean, extra: { s?: KeyPair; rs?: Uint8Array; psks?: Uint8Array[] }): HandshakeState {
    const id = protocolId(name) as number;
    return new HandshakeState({
      protocol: resolveCached(name, this.common.crypto),
      initiator,
      prologue: prologueFor(id),
      e: this.common.ephemeral,
      e1: this.common.kemKeyPair,
      ...extra,
    });
  }
}

class Initiator extends Driver {
  readonly role = 'initiator' as const;
  private readonly id: number;
  private pendingPin: string | null = null;

  constructor(private readonly opts: InitiatorOptions) {
    super(opts);
    let name = opts.protocol ?? DEFAULT_PROTOCOL;
    if (opts.qkd) {
      if (opts.qkd.key.length !== 32) throw new ChannelError('CONFIG_INVALID', 'a QKD key is 32 bytes');
      name = toPsk2(name);
    }
    assertProtocolAllowed(name, { allowClassical: opts.allowClassical ?? false });
    this.id = protocolId(name) as number;
    if (!opts.serverFingerprint && !opts.pinStore) throw new ChannelError('CONFIG_INVALID', 'pin the server fingerprint or give a pin store (TOFU)');
    if (opts.serverFingerprint && !isFingerprint(opts.serverFingerprint)) throw new ChannelError('CONFIG_INVALID', 'server fingerprint must be 64 lower-case hex digits');
    const pattern = resolveCached(name, opts.crypto).pattern;
    const nk = pattern.responderPre.includes('s');
    if (nk && !opts.serverStaticKey) throw new ChannelError('CONFIG_INVALID', `${name} needs the server static key`);
    this.hs = this.noise(name, true, {
      s: pattern.messages.some((m, i) => i % 2 === 0 && m.includes('s')) ? (opts.staticKey ?? opts.crypto.dh.generateKeyPair()) : undefined,
      rs: nk ? opts.serverStaticKey : undefined,
      psks: opts.qkd ? [opts.qkd.key] : undefined,
    });
  }

  get isMyTurn(): boolean {
    return this.hs?.isMyTurn ?? false;
  }

  private finalPayload(hs: HandshakeState, h: Uint8Array, app: Uint8Array | undefined): HandshakePayload {
    const p: HandshakePayload = { app };
    if (this.opts.identity) {
      p.identityKey = this.opts.identity.publicKey;
      p.identitySig = signIdentity(this.opts.crypto.signer, this.opts.identity, 'client', h, hs.localStatic);
    }
    if (this.opts.token !== undefined) p.token = this.opts.token;
    if (this.opts.resume) p.resume = this.opts.resume;
    return p;
  }

  protected async doWrite(app: Uint8Array | undefined): Promise<Uint8Array> {
    const hs = this.hs as HandshakeState;
    const first = hs.messageIndex === 0;
    // The client's last message (the last even index) carries its credentials.
    const count = hs.protocol.pattern.messages.length;
    const last = hs.messageIndex === (count % 2 === 1 ? count - 1 : count - 2);
    const message = await hs.writeMessageAsync((h) => {
      let p: HandshakePayload = { app };
      if (last) p = this.finalPayload(hs, h, app);
      if (first && this.opts.qkd) p.keyId = this.opts.qkd.keyId;
      return encodePayload(p);
    });
    if (hs.isComplete) await this.commitPin();
    return first ? concatBytes(new Uint8Array([WIRE_VERSION, this.id]), message) : message;
  }

  protected async doRead(message: Uint8Array): Promise<void> {
    const hs = this.hs as HandshakeState;
    const raw = await hs.readMessageAsync(message);
    // Authenticated from here on: anything wrong is the peer's doing and ends the handshake.
    this.policyFailure = true;
    const payload = decodePayload(raw);
    // The server proves its identity in its first message, message 1 (DESIGN §4).
    if (hs.messageIndex === 2) {
      if (!payload.identityKey || !payload.identitySig) throw new ChannelError('IDENTITY_MISMATCH', 'server did not present an identity');
      const rs = hs.remoteStatic;
      if (!verifyIdentity(this.opts.crypto.signer, payload.identityKey, payload.identitySig, 'server', hs.lastPayloadHash, rs)) {
        throw new ChannelError('IDENTITY_MISMATCH', 'server identity signature does not verify');
      }
      const fp = fingerprintOf(payload.identityKey, this.sha256());
      const pinned = this.opts.serverFingerprint ?? (await this.opts.pinStore?.get(this.opts.serverName ?? ''));
      if (pinned !== undefined && !equalBytes(utf8(pinned.toLowerCase()), utf8(fp))) {
        throw new ChannelError('IDENTITY_MISMATCH', `server identity ${fp} does not match the pinned ${pinned}`);
      }
      if (pinned === undefined) this.pendingPin = fp;
      Object.assign(this.peer, { fingerprint: fp, identityKey: payload.identityKey, staticKey: rs ?? undefined, auth: 'identity' as const, keyId: this.opts.qkd?.keyId });
    }
    if (payload.app) this.peer.app = payload.app;
    if (hs.isComplete) await this.commitPin();
  }

  private async commitPin(): Promise<void> {
    if (this.pendingPin && this.opts.pinStore) {
      const fp = this.pendingPin;
      this.pendingPin = null;
      await this.opts.pinStore.set(this.opts.serverName ?? '', fp);
    }
  }
}

class Responder extends Driver {
  readonly role = 'responder' as const;

  constructor(private readonly opts: ResponderOptions) {
    super(opts);
    if (opts.identity.publicKey.length !== 1952) throw new ChannelError('CONFIG_INVALID', 'server identity must be ML-DSA-65');
    if ((opts.clientAuth ?? 'none') === 'token' && !(opts.tokens?.length)) throw new ChannelError('CONFIG_INVALID', 'clientAuth "token" needs tokens');
  }

  get isMyTurn(): boolean {
    return this.hs?.isMyTurn ?? false;
  }

  protected async doWrite(app: Uint8Array | undefined): Promise<Uint8Array> {
    const hs = this.hs as HandshakeState;
    return hs.writeMessageAsync((h) => {
      const p: HandshakePayload = { app };
      if (hs.messageIndex === 1) {
        p.identityKey = this.opts.identity.publicKey;
        p.identitySig = signIdentity(this.opts.crypto.signer, this.opts.identity, 'server', h, this.opts.staticKey.publicKey);
      }
      return encodePayload(p);
    });
  }

  protected async doRead(message: Uint8Array): Promise<void> {
    let hs = this.hs;
    let payload: HandshakePayload;
    if (!hs) {
      if (message.length < 2) throw new ChannelError('HANDSHAKE_FAILED', 'first handshake message truncated');
      if (message[0] !== WIRE_VERSION) throw new ChannelError('HANDSHAKE_FAILED', `unknown wire version ${message[0]}`);
      const name = PROTOCOLS[message[1]];
      if (!name) throw new ChannelError('HANDSHAKE_FAILED', `unknown protocol id ${message[1]}`);
      this.policyFailure = true;
      assertProtocolAllowed(name, { allowClassical: this.opts.allowClassical ?? false });
      this.policyFailure = false;
      // A fresh Noise state per attempt: a bad first message leaves nothing behind.
      const fresh = this.noise(name, false, { s: this.opts.staticKey });
      const raw = await fresh.readMessageAsync(message.subarray(2));
      this.policyFailure = true;
      payload = decodePayload(raw);
      if (fresh.protocol.pattern.psk) {
        if (!payload.keyId) throw new ChannelError('HANDSHAKE_FAILED', `${name} needs a key_ID in the first payload`);
        let key: Uint8Array | null = null;
        try {
          key = (await this.opts.fetchQkdKey?.(payload.keyId)) ?? null;
        } catch (error) {
          throw new ChannelError('PSK_UNKNOWN', `QKD key ${payload.keyId} could not be fetched`, { cause: error });
        }
        if (key?.length !== 32) throw new ChannelError('PSK_UNKNOWN', `no QKD key with key_ID ${payload.keyId}`);
        fresh.addPsk(key);
        this.peer.keyId = payload.keyId;
      } else if (payload.keyId) {
        throw new ChannelError('HANDSHAKE_FAILED', 'key_ID given but the protocol has no psk');
      }
      this.policyFailure = false;
      this.hs = hs = fresh;
    } else {
      const raw = await hs.readMessageAsync(message);
      this.policyFailure = true;
      payload = decodePayload(raw);
    }
    this.policyFailure = true;
    if (payload.app) this.peer.app = payload.app;
    // The client's last message (the last even index) carries its credentials.
    const count = hs.protocol.pattern.messages.length;
    const lastClientMessage = count % 2 === 1 ? count - 1 : count - 2;
    if (hs.messageIndex - 1 === lastClientMessage) this.authenticate(hs, payload);
  }

  private authenticate(hs: HandshakeState, payload: HandshakePayload): void {
    const mode = this.opts.clientAuth ?? 'none';
    const rs = hs.remoteStatic;
    this.peer.staticKey = rs ?? undefined;
    if (payload.resume) this.peer.resume = payload.resume;
    if (payload.identityKey || payload.identitySig) {
      if (!payload.identityKey || !payload.identitySig) throw new ChannelError('AUTH_FAILED', 'incomplete client identity');
      if (!verifyIdentity(this.opts.crypto.signer, payload.identityKey, payload.identitySig, 'client', hs.lastPayloadHash, rs)) {
        throw new ChannelError('AUTH_FAILED', 'client identity signature does not verify');
      }
      this.peer.identityKey = payload.identityKey;
      this.peer.fingerprint = fingerprintOf(payload.identityKey, this.sha256());
      this.peer.auth = 'identity';
    }
    if (payload.token !== undefined) {
      const presented = utf8(payload.token);
      let index = -1;
      (this.opts.tokens ?? []).forEach((t, i) => {
        // Compare against every token so timing does not reveal which one matched.
        if (equalBytes(utf8(t), presented) && index < 0) index = i;
      });
      if (index >= 0) {
        this.peer.tokenIndex = index;
        if (this.peer.auth === 'none') this.peer.auth = 'token';
      } else if (mode === 'token') {
        throw new ChannelError('AUTH_FAILED', 'bearer token not accepted');
      }
    }
    if (mode === 'token' && this.peer.tokenIndex === undefined) throw new ChannelError('AUTH_FAILED', 'a bearer token is required');
    if (mode === 'mutual') {
      if (!this.peer.fingerprint) throw new ChannelError('AUTH_FAILED', 'a client identity is required');
      const allowed = this.opts.allowedClients ?? [];
      if (allowed.length > 0 && !allowed.includes(this.peer.fingerprint)) throw new ChannelError('AUTH_FAILED', `client ${this.peer.fingerprint} is not allowed`);
    }
  }
}

/** Starts the client side of a channel handshake. Throws `CONFIG_INVALID` / `PROTOCOL_NOT_ALLOWED` on bad options. */
export function createInitiator(options: InitiatorOptions): HandshakeDriver {
  return new Initiator(options);
}

/** Starts the server side of a channel handshake; the protocol comes from the client's first message. */
export function createResponder(options: ResponderOptions): HandshakeDriver {
  return new Responder(options);
}

/** Maps the `channel` config section to responder options (everything but keys and callbacks). */
export function responderPolicyFromConfig(channel: {
  allowClassical: boolean;
  handshakeTimeoutMs: number;
  maxFrameBytes: number;
  rekeyMessages: number;
  rekeySeconds: number;
  clientAuth: 'none' | 'token' | 'mutual';
  tokens: string[];
  allowedClients: string[];
}): Pick<ResponderOptions, 'allowClassical' | 'handshakeTimeoutMs' | 'clientAuth' | 'tokens' | 'allowedClients' | 'session'> {
  return {
    allowClassical: channel.allowClassical,
    handshakeTimeoutMs: channel.handshakeTimeoutMs,
    clientAuth: channel.clientAuth,
    tokens: channel.tokens,
    allowedClients: channel.allowedClients,
    session: { maxFrameBytes: channel.maxFrameBytes, rekeyMessages: channel.rekeyMessages, rekeySeconds: channel.rekeySeconds },
  };
}

