/**
 * The Streamlined Secure Comms client SDK (package subpath `streamlined-secure-comms/client`).
 * Runs in Bun, Node ≥ 20 and browsers: it imports nothing from the server and nothing from
 * `node:*`; its crypto defaults to the noble backend (`createBrowserCrypto`), and a caller may
 * pass a faster suite (e.g. the server's `createCrypto()` in Bun).
 *
 * @example
 * const client = await connect('wss://chat.example:8443', { serverFingerprint: '3f1a…' });
 * client.on('publication', (p) => console.log(p.topic, p.text()));
 * await client.subscribe('public:lobby');
 * await client.publish('public:lobby', 'hello');
 */
import { createBrowserCrypto } from '../crypto/browser.ts';
// Types only (erased at build time): the SDK bundles nothing from the server.
import type { MessageEvent, PublicationEvent } from '../relay/protocol.ts';
import {
  type ChannelCrypto,
  ChannelError,
  createInitiator,
  createMemoryPinStore,
  decodeClose,
  encodeClose,
  FrameType,
  fingerprintOf,
  type HandshakeDriver,
  type PinStore,
  type Session,
} from '../channel/index.ts';

export { createMemoryPinStore, type PinStore } from '../channel/index.ts';

/** Frame type of relay traffic (JSON commands and events). */
const RELAY_FRAME = 0x10;
/** Most commands in one batch frame (the relay's limit). */
const MAX_BATCH = 1_024;

export interface Identity {
  publicKey: Uint8Array;
  /** The 32-byte ML-DSA-65 seed. */
  secretKey: Uint8Array;
}

export interface ConnectOptions {
  /** Pinned fingerprint of the server's ML-DSA-65 identity (64 hex). */
  serverFingerprint?: string;
  /** The server's X25519 static key: selects the NK pattern (one round trip less). */
  serverStaticKey?: Uint8Array;
  /** Trust-on-first-use pins (used when no fingerprint is pinned); a mismatch is a hard failure. */
  pinStore?: PinStore;
  /** This client's ML-DSA-65 identity (mutual authentication). */
  identity?: Identity;
  /** Bearer token (token authentication). */
  token?: string;
  /** Noise protocol name; the default is the hybrid XXhfs (or NKhfs with `serverStaticKey`). */
  protocol?: string;
  /** Primitives; default: noble (+ WASM AEAD when a module is given to createBrowserCrypto). */
  crypto?: ChannelCrypto;
  /** A QKD key from the client's KME (ETSI 014 enc_keys), mixed in as a Noise psk. */
  qkd?: { keyId: string; key: Uint8Array } | (() => Promise<{ keyId: string; key: Uint8Array }>);
  /**
   * This client's X25519 Noise static key. Without an ML-DSA identity, the server names the
   * client by the SHA-256 of this key, so keep it to keep receiving direct messages across
   * reconnects and restarts; generated once per client object when absent.
   */
  staticKey?: { publicKey: Uint8Array; secretKey: Uint8Array };
  /** Reconnect with backoff across the URL list (default on). */
  reconnect?: boolean | { minDelayMs?: number; maxDelayMs?: number; maxAttempts?: number };
  /** Acknowledge direct messages automatically after the `message` listeners ran (default true). */
  autoAck?: boolean;
  /** Time allowed for one request's reply (ms, default 15 s). */
  requestTimeoutMs?: number;
  /**
   * Send the commands issued in one synchronous stretch of code (before the next microtask) as
   * one frame, a batch (default true): a loop of `publish` calls costs one seal and one write.
   * Off: one frame per command.
   */
  batch?: boolean;
  /** WebSocket constructor (default: the global one). */
  WebSocket?: typeof WebSocket;
}

/** A publication on a topic (the relay's event, with decoding helpers). */
export interface Publication extends Omit<PublicationEvent, 'type'> {
  bytes(): Uint8Array;
  text(): string;
}

/** A direct message; `ack()` removes it from the server's queue (done for you with autoAck). */
export interface DirectMessage extends Omit<MessageEvent, 'type'> {
  bytes(): Uint8Array;
  text(): string;
  ack(): Promise<void>;
}

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

type Events = {
  publication: (p: Publication) => void;
  message: (m: DirectMessage) => void;
  state: (state: ClientState) => void;
  error: (error: Error) => void;
  close: (info: { code: number; reason: string }) => void;
};

/** A relay command failed; `code` is the relay's error code. */
export class RelayRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RelayRequestError';
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
const asBytes = (data: Uint8Array | string) => (typeof data === 'string' ? encoder.encode(data) : data);

function wsUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/ws';
  return u.toString();
}

interface Pending {
  resolve(result: Record<string, unknown>): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** A connected client. Create with {@link connect}. */
export class SecureClient {
  private ws: WebSocket | null = null;
  private session: Session | null = null;
  private nextRequest = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners: { [K in keyof Events]: Set<Events[K]> } = {
    publication: new Set(),
    message: new Set(),
    state: new Set(),
    error: new Set(),
    close: new Set(),
  };
  /** Topics and the newest position seen, for resuming after a reconnect. */
  private readonly topics = new Map<string, { epoch?: string; offset: number }>();
  /** Signed grants for private topics, re-presented on resubscribe after a reconnect. */
  private readonly grants = new Map<string, object>();
  /** Direct-message ids already handed to listeners (at-least-once delivery may repeat). */
  private readonly seenMessages = new Set<number>();
  private state: ClientState = 'connecting';
  private urlIndex = 0;
  private attempts = 0;
  private closedByUser = false;
  private readonly crypto: ChannelCrypto;
  private readonly pins: PinStore;
  /** The server's identity fingerprint once a channel is open. */
  serverFingerprint: string | undefined;
  private readonly staticKey: { publicKey: Uint8Array; secretKey: Uint8Array };
  /**
   * How the relay names this client: the fingerprint of its ML-DSA identity, or the SHA-256 of
   * its Noise static key when it has none. Other clients send direct messages to this.
   */
  readonly identity: string;

  constructor(
    private readonly urls: string[],
    private readonly options: ConnectOptions,
  ) {
    this.crypto = options.crypto ?? createBrowserCrypto();
    this.pins = options.pinStore ?? createMemoryPinStore();
    this.staticKey = options.staticKey ?? this.crypto.dh.generateKeyPair();
    this.identity = fingerprintOf(options.identity ? options.identity.publicKey : this.staticKey.publicKey, this.crypto.hash('SHA256'));
  }

  on<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    this.listeners[event].add(listener);
    return () => this.listeners[event].delete(listener);
  }

  private emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    for (const listener of this.listeners[event]) {
      try {
        (listener as (...a: Parameters<Events[K]>) => void)(...args);
      } catch (error) {
        if (event !== 'error') this.emit('error', error as Error);
      }
    }
  }

  private setState(state: ClientState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', state);
  }

  get currentState(): ClientState {
    return this.state;
  }

  /** Opens a channel to the current URL; resolves when the handshake is complete. */
  async open(): Promise<void> {
    const url = wsUrl(this.urls[this.urlIndex % this.urls.length]!);
    const WS = this.options.WebSocket ?? WebSocket;
    const qkd = typeof this.options.qkd === 'function' ? await this.options.qkd() : this.options.qkd;
    const driver: HandshakeDriver = createInitiator({
      crypto: this.crypto,
      protocol: this.options.protocol,
      serverStaticKey: this.options.serverStaticKey,
      staticKey: this.options.serverStaticKey ? undefined : this.staticKey,
      serverFingerprint: this.options.serverFingerprint,
      pinStore: this.pins,
      serverName: new URL(url).host,
      identity: this.options.identity,
      token: this.options.token,
      qkd,
    });
    const ws = new WS(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        if (error) reject(error);
        else resolve();
      };
      let chain = Promise.resolve();
      ws.onopen = () => {
        chain = chain.then(async () => ws.send((await driver.writeMessage()) as Uint8Array<ArrayBuffer>));
      };
      ws.onmessage = (event) => {
        const bytes = new Uint8Array(event.data as ArrayBuffer);
        chain = chain.then(async () => {
          if (this.ws !== ws) return;
          if (!this.session) {
            try {
              await driver.readMessage(bytes);
              if (!driver.isComplete && driver.isMyTurn) ws.send((await driver.writeMessage()) as Uint8Array<ArrayBuffer>);
              if (driver.isComplete) {
                this.session = driver.session();
                this.serverFingerprint = driver.peer.fingerprint;
                finish();
              }
            } catch (error) {
              ws.close(4010, 'handshake failed');
              finish(error as Error);
            }
            return;
          }
          this.onFrame(bytes);
        });
      };
      ws.onerror = () => finish(new Error(`WebSocket error connecting to ${url}`));
      ws.onclose = (event) => {
        finish(new Error(`connection closed during handshake: ${event.code} ${event.reason}`));
        if (this.ws === ws) this.onClosed(event.code, event.reason);
      };
    });
    this.attempts = 0;
    this.setState('open');
    await this.resume();
  }

  /** After (re)connecting: re-subscribe every topic from the newest position seen. */
  private async resume(): Promise<void> {
    for (const [topic, position] of this.topics) {
      const since = position.epoch ? { epoch: position.epoch, offset: position.offset } : undefined;
      const grant = this.grants.get(topic);
      await this.request({ cmd: 'subscribe', topic, ...(since ? { since } : {}), ...(grant ? { grant } : {}) });
    }
  }

  private onFrame(bytes: Uint8Array): void {
    let opened: { type: number; plaintext: Uint8Array };
    try {
      opened = this.session!.open(bytes);
    } catch (error) {
      this.emit('error', error as Error);
      this.ws?.close(4004, error instanceof ChannelError ? error.code : 'frame rejected');
      return;
    }
    if (opened.type === FrameType.CLOSE) {
      const { code, reason } = decodeClose(opened.plaintext);
      this.lastClose = { code, reason };
      return;
    }
    if (opened.type !== RELAY_FRAME) return;
    let payload: unknown;
    try {
      payload = JSON.parse(decoder.decode(opened.plaintext));
    } catch {
      this.emit('error', new Error('undecodable relay event'));
      return;
    }
    // One event, or a batch of them (a JSON array) in order.
    if (Array.isArray(payload)) {
      for (const event of payload) if (typeof event === 'object' && event !== null) this.onEvent(event as Record<string, unknown>);
    } else if (typeof payload === 'object' && payload !== null) {
      this.onEvent(payload as Record<string, unknown>);
    }
  }

  private onEvent(event: Record<string, unknown>): void {
    if (event.type === 'reply') {
      const pending = this.pending.get(event.id as number);
      if (!pending) return;
      this.pending.delete(event.id as number);
      clearTimeout(pending.timer);
      if (event.ok) pending.resolve((event.result as Record<string, unknown>) ?? {});
      else {
        const error = event.error as { code: string; message: string };
        pending.reject(new RelayRequestError(error.code, error.message));
      }
    } else if (event.type === 'publication') {
      const p = event as unknown as Omit<Publication, 'bytes' | 'text'>;
      const known = this.topics.get(p.topic);
      if (known) {
        if (known.epoch === p.epoch && p.offset <= known.offset) return; // already seen
        known.epoch = p.epoch;
        known.offset = p.offset;
      }
      this.emit('publication', { ...p, bytes: () => fromBase64(p.data), text: () => decoder.decode(fromBase64(p.data)) });
    } else if (event.type === 'message') {
      const m = event as unknown as MessageEvent;
      const duplicate = this.seenMessages.has(m.id);
      const message: DirectMessage = {
        ...m,
        bytes: () => fromBase64(m.data),
        text: () => decoder.decode(fromBase64(m.data)),
        ack: () => this.ack([m.id]),
      };
      if (!duplicate) {
        this.seenMessages.add(m.id);
        this.emit('message', message);
      }
      if (this.options.autoAck !== false) message.ack().catch((error) => this.emit('error', error as Error));
    }
  }

  private lastClose: { code: number; reason: string } | undefined;

  private onClosed(code: number, reason: string): void {
    const info = this.lastClose ?? { code, reason };
    this.lastClose = undefined;
    this.session?.close();
    this.session = null;
    this.ws = null;
    // Commands not yet written belong to requests failed just below.
    this.outgoing = [];
    this.outgoingBytes = 0;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new Error(`connection closed (${info.code} ${info.reason})`));
      this.pending.delete(id);
    }
    this.emit('close', info);
    if (this.closedByUser || this.options.reconnect === false) {
      this.setState('closed');
      return;
    }
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    const settings = typeof this.options.reconnect === 'object' ? this.options.reconnect : {};
    const { minDelayMs = 100, maxDelayMs = 5_000, maxAttempts = Number.POSITIVE_INFINITY } = settings;
    this.setState('reconnecting');
    while (!this.closedByUser) {
      if (this.attempts >= maxAttempts) {
        this.setState('closed');
        return;
      }
      const delay = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(this.attempts, 10)) * (0.5 + Math.random() / 2);
      this.attempts++;
      await new Promise((r) => setTimeout(r, delay));
      // Move through the URL list: a node that went away is likely still away.
      this.urlIndex++;
      try {
        await this.open();
        return;
      } catch (error) {
        this.emit('error', error as Error);
      }
    }
  }

  /** Sends one relay command and resolves with its result. */
  request(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    const ws = this.ws;
    const session = this.session;
    if (!ws || !session) return Promise.reject(new Error(`not connected (${this.state})`));
    const id = this.nextRequest++;
    const json = JSON.stringify({ id, ...command });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`request ${command.cmd} timed out`));
      }, this.options.requestTimeoutMs ?? 15_000);
      this.pending.set(id, { resolve, reject, timer });
      if (this.options.batch === false) {
        ws.send(session.seal(RELAY_FRAME, encoder.encode(json)) as Uint8Array<ArrayBuffer>);
        return;
      }
      this.outgoing.push(json);
      this.outgoingBytes += json.length + 1;
      // A batch that would pass what one frame carries goes now; the rest follows in order.
      if (this.outgoingBytes > session.maxPlaintextBytes / 2 || this.outgoing.length >= MAX_BATCH) this.flushOutgoing();
      else if (!this.flushQueued) {
        this.flushQueued = true;
        queueMicrotask(this.flushFn);
      }
    });
  }

  private outgoing: string[] = [];
  private outgoingBytes = 0;
  private flushQueued = false;
  private readonly flushFn = () => this.flushOutgoing();

  /** Sends the queued commands as one frame (a batch when there are several). */
  private flushOutgoing(): void {
    this.flushQueued = false;
    const commands = this.outgoing;
    if (commands.length === 0) return;
    this.outgoing = [];
    this.outgoingBytes = 0;
    const ws = this.ws;
    const session = this.session;
    // Disconnected meanwhile: the pending requests are failed by `onClosed`.
    if (!ws || !session) return;
    const json = commands.length === 1 ? commands[0]! : `[${commands.join(',')}]`;
    ws.send(session.seal(RELAY_FRAME, encoder.encode(json)) as Uint8Array<ArrayBuffer>);
  }

  /** Subscribes to a topic; with `since`, replays what was published after that position. */
  async subscribe(topic: string, options: { since?: { epoch: string; offset: number }; grant?: object } = {}) {
    if (options.grant) this.grants.set(topic, options.grant);
    const grant = this.grants.get(topic);
    const result = await this.request({
      cmd: 'subscribe',
      topic,
      ...(options.since ? { since: options.since } : {}),
      ...(grant ? { grant } : {}),
    });
    if (!this.topics.has(topic)) {
      // Replayed publications (after `since`) arrive after this reply and advance the position.
      this.topics.set(topic, options.since ? { ...options.since } : { epoch: result.epoch as string, offset: Number(result.offset ?? 0) });
    }
    return result;
  }

  async unsubscribe(topic: string) {
    this.topics.delete(topic);
    return this.request({ cmd: 'unsubscribe', topic });
  }

  /** Publishes to a topic (at-most-once live, kept in history); private topics may need a signed grant. */
  publish(topic: string, data: Uint8Array | string, options: { grant?: object } = {}) {
    if (options.grant) this.grants.set(topic, options.grant);
    const grant = this.grants.get(topic);
    return this.request({ cmd: 'publish', topic, data: toBase64(asBytes(data)), ...(grant ? { grant } : {}) });
  }

  /** Sends a direct message to an identity; resolves once the server has stored it. */
  send(to: string, data: Uint8Array | string) {
    return this.request({ cmd: 'send', to, data: toBase64(asBytes(data)) });
  }

  async ack(ids: number[]): Promise<void> {
    await this.request({ cmd: 'ack', ids });
  }

  history(topic: string, options: { since?: number; limit?: number } = {}) {
    return this.request({ cmd: 'history', topic, ...options });
  }

  presence(topic: string) {
    return this.request({ cmd: 'presence', topic });
  }

  ping() {
    return this.request({ cmd: 'ping' });
  }

  /** Closes the channel (orderly CLOSE frame, then the socket) and stops reconnecting. */
  close(code = 1000, reason = 'client closed'): void {
    // Commands issued just before go out first, as they would without batching.
    this.flushOutgoing();
    this.closedByUser = true;
    const ws = this.ws;
    if (ws && this.session) {
      try {
        ws.send(this.session.seal(FrameType.CLOSE, encodeClose(code, reason)) as Uint8Array<ArrayBuffer>);
      } catch {
        // session already unusable
      }
    }
    ws?.close(code, reason);
    this.setState('closed');
  }
}

/**
 * Connects to one node or a list of nodes (tried in turn on reconnect) and completes the
 * hybrid post-quantum handshake. Rejects on an identity mismatch, a refused protocol or a
 * failed authentication — those are never retried silently.
 */
export async function connect(urls: string | string[], options: ConnectOptions = {}): Promise<SecureClient> {
  const client = new SecureClient(Array.isArray(urls) ? urls : [urls], options);
  await client.open();
  return client;
}

/**
 * Gets one key from a KME through ETSI GS QKD 014 `enc_keys` (this client as the master SAE),
 * ready for `connect(url, { qkd })`: the server, as the slave's side, fetches the same key by
 * its key_ID and mixes it into the handshake as a Noise psk. Authenticates with a bearer token
 * (development KMEs); with mTLS, pass a `fetch` that carries the client certificate.
 */
export async function fetchQkdKey(
  kmeUrl: string,
  slaveSaeId: string,
  options: { token?: string; size?: number; fetch?: typeof fetch } = {},
): Promise<{ keyId: string; key: Uint8Array }> {
  const doFetch = options.fetch ?? fetch;
  const response = await doFetch(`${kmeUrl.replace(/\/$/, '')}/api/v1/keys/${encodeURIComponent(slaveSaeId)}/enc_keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
    body: JSON.stringify({ number: 1, size: options.size ?? 256 }),
  });
  if (!response.ok) {
    const detail = response.status === 401 ? 'not authorised' : ((await response.json().catch(() => ({}))) as { message?: string }).message;
    throw new Error(`KME enc_keys failed: ${response.status} ${detail ?? ''}`.trim());
  }
  const { keys } = (await response.json()) as { keys: { key_ID: string; key: string }[] };
  const first = keys[0];
  if (!first) throw new Error('KME returned no key');
  return { keyId: first.key_ID, key: fromBase64(first.key) };
}

/** Encodes bytes as base64 (the relay's `data` encoding). */
export { fromBase64, toBase64 };
