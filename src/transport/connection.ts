/**
 * One client channel, whatever carries it: the handshake driver until the channel is open,
 * then the session and the relay session. WebSocket and HTTP bindings (`websocket.ts`,
 * `http.ts`) feed it bytes and give it a way to send frames.
 *
 * Outgoing events of a relay fan-out are collected between the relay's `batch.begin()` and
 * `batch.end()` and sealed for every recipient in one batch AEAD call (`sealMany`).
 */
import type { Logger } from 'pino';
import {
  ChannelError,
  channelErrorStatus,
  decodeClose,
  encodeClose,
  FrameType,
  type HandshakeDriver,
  type Session,
  sealMany,
} from '../channel/index.ts';
import type { BatchAead } from '../crypto/types.ts';
import type { AuditEvent } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { encodeEvent, type Relay, type RelayEvent, type RelaySession } from '../relay/index.ts';
import type { SecurityLimits } from '../security/limits.ts';

/** Frame type of relay traffic: UTF-8 JSON commands (client → server) and events (server → client). */
export const RELAY_FRAME = 0x10;

export type TransportKind = 'ws' | 'http';

/** What a binding gives a connection. */
export interface Wire {
  kind: TransportKind;
  /** Sends bytes (a handshake message or a frame). Returns false when the wire is backpressured. */
  send(bytes: Uint8Array): boolean;
  /** Closes the wire with a close code and reason (WebSocket semantics; HTTP ends the stream). */
  close(code: number, reason: string): void;
}

export interface ConnectionDeps {
  relay: Relay;
  metrics: Metrics;
  logger: Logger;
  audit(event: AuditEvent): void;
  limits: SecurityLimits;
  /** The batch AEAD used for fan-out (ChaCha20-Poly1305, WASM when available). */
  batchAead: BatchAead;
  /** Frames per connection per window (config security.rateLimit). */
  framesPerWindow: number;
  /** Counts a frame against the sender's identity; false when the identity is over its limit. */
  identityFrame(identity: string): boolean;
  windowMs: number;
  /** Identity for clients that prove none: derived from their Noise static key when they have one. */
  anonymousIdentity(staticKey: Uint8Array | undefined, connectionId: string): string;
  sealer: FanoutSealer;
}

/** A sealing job: one event batch for one connection. */
interface SealJob {
  connection: ChannelConnection;
  events: RelayEvent[];
}

/**
 * Collects deliveries during a relay fan-out and seals them together. Outside a fan-out each
 * delivery is sealed at once (still one batch call for all of its events).
 */
export class FanoutSealer {
  private depth = 0;
  private jobs: SealJob[] = [];

  constructor(
    private readonly aead: BatchAead,
    private readonly metrics: Metrics,
  ) {}

  begin(): void {
    this.depth++;
  }

  end(): void {
    this.depth = Math.max(0, this.depth - 1);
    if (this.depth === 0) this.flush();
  }

  /** Queues events for a connection; returns false when its wire is backpressured. */
  deliver(connection: ChannelConnection, events: RelayEvent[]): boolean {
    this.jobs.push({ connection, events });
    if (this.depth === 0) this.flush();
    return !connection.backpressured;
  }

  private flush(): void {
    if (this.jobs.length === 0) return;
    const jobs = this.jobs;
    this.jobs = [];
    const batched: { session: Session; type: number; plaintext: Uint8Array }[] = [];
    const targets: ChannelConnection[] = [];
    for (const { connection, events } of jobs) {
      const session = connection.openSession;
      if (!session) continue;
      for (const event of events) {
        const plaintext = encodeEvent(event);
        if (session.aead.name === this.aead.name) {
          batched.push({ session, type: RELAY_FRAME, plaintext });
          targets.push(connection);
        } else {
          connection.sendFrame(session.seal(RELAY_FRAME, plaintext));
        }
      }
    }
    if (batched.length === 0) return;
    const frames = sealMany(this.aead, batched);
    this.metrics.cryptoOps.inc({ op: 'seal', backend: this.aead.backend }, frames.length);
    for (let i = 0; i < frames.length; i++) targets[i]!.sendFrame(frames[i]!);
  }
}

let nextId = 0;

/** One channel from handshake to close. */
export class ChannelConnection {
  readonly id: string;
  readonly startedAt = performance.now();
  private driver: HandshakeDriver | null;
  private session: Session | null = null;
  private relaySession: RelaySession | null = null;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private windowStart = Date.now();
  private framesInWindow = 0;
  backpressured = false;
  identity: string | undefined;
  protocol: string | null = null;
  readonly log: Logger;

  constructor(
    readonly wire: Wire,
    driver: HandshakeDriver,
    readonly source: string,
    private readonly deps: ConnectionDeps,
    id?: string,
  ) {
    this.id = id ?? `${Date.now().toString(36)}-${(nextId++).toString(36)}`;
    this.driver = driver;
    this.log = deps.logger.child({ connection: this.id, transport: wire.kind });
    // Slowloris: a handshake that does not finish in time closes the channel.
    this.timer = setTimeout(() => {
      if (!this.session) this.fail(new ChannelError('HANDSHAKE_TIMEOUT', 'handshake did not complete in time'));
    }, Math.max(0, driver.deadline - Date.now()));
    this.timer.unref?.();
  }

  get isOpen(): boolean {
    return this.session !== null && !this.closed;
  }

  get openSession(): Session | null {
    return this.closed ? null : this.session;
  }

  /**
   * Feeds one message from the wire (handshake message or frame). Messages are processed in
   * order; the returned promise settles when this one has been handled.
   */
  receive(bytes: Uint8Array): Promise<void> {
    const run = this.chain.then(() => this.handle(bytes));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Feeds one frame that arrived over HTTP. Frames there may arrive out of order and be retried,
   * so a replayed or undecryptable frame is refused on its own (counted, audited) and the channel
   * lives on; other failures close it as on WebSocket.
   */
  receiveHttpFrame(bytes: Uint8Array): Promise<{ ok: true } | { ok: false; code: string }> {
    const run = this.chain.then(async (): Promise<{ ok: true } | { ok: false; code: string }> => {
      if (this.closed || !this.session) return { ok: false, code: 'SESSION_CLOSED' };
      try {
        await this.frame(bytes);
        return { ok: true };
      } catch (error) {
        const status = channelErrorStatus(error);
        if (status.fatal) {
          this.fail(error);
        } else {
          this.reject(status.code);
        }
        return { ok: false, code: status.code };
      }
    });
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** A single refused frame that does not end the channel. */
  private reject(code: string): void {
    this.deps.metrics.errors.inc({ kind: 'bad_input' });
    this.deps.audit({ event: 'frame.rejected', code, connection: this.id, transport: this.wire.kind, source: this.source, identity: this.identity });
    void this.deps.limits.suspicious(this.source, code.toLowerCase());
  }

  private async handle(bytes: Uint8Array): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.session) await this.handshakeStep(bytes);
      else await this.frame(bytes);
    } catch (error) {
      this.fail(error);
    }
  }

  private async handshakeStep(bytes: Uint8Array): Promise<void> {
    const driver = this.driver!;
    this.deps.metrics.messageBytes.inc({ direction: 'in' }, bytes.length);
    await driver.readMessage(bytes);
    this.protocol = driver.protocolName;
    if (!driver.isComplete && driver.isMyTurn) {
      const reply = await driver.writeMessage();
      this.deps.metrics.messageBytes.inc({ direction: 'out' }, reply.length);
      this.wire.send(reply);
    }
    if (driver.isComplete) this.opened(driver);
  }

  private opened(driver: HandshakeDriver): void {
    clearTimeout(this.timer);
    this.session = driver.session();
    this.driver = null;
    const peer = driver.peer;
    this.identity = peer.fingerprint ?? this.deps.anonymousIdentity(peer.staticKey, this.id);
    const protocol = driver.protocolName ?? 'unknown';
    this.deps.metrics.handshakes.inc({ result: 'success', protocol });
    this.deps.metrics.handshakeDuration.observe({ protocol }, (performance.now() - this.startedAt) / 1000);
    this.deps.metrics.authAttempts.inc({ result: 'success', method: peer.auth });
    this.deps.audit({
      event: 'handshake.success',
      connection: this.id,
      transport: this.wire.kind,
      protocol,
      auth: peer.auth,
      identity: this.identity,
      qkdKeyId: peer.keyId,
      source: this.source,
    });
    this.relaySession = this.deps.relay.attach({
      id: this.id,
      identity: this.identity,
      deliver: (events) => this.deps.sealer.deliver(this, events),
      close: (code, reason) => this.close(code, reason),
    });
  }

  private async frame(bytes: Uint8Array): Promise<void> {
    const now = Date.now();
    if (now - this.windowStart >= this.deps.windowMs) {
      this.windowStart = now;
      this.framesInWindow = 0;
    }
    const overConnection = ++this.framesInWindow > this.deps.framesPerWindow;
    if (overConnection || !this.deps.identityFrame(this.identity!)) {
      const scope = overConnection ? 'frame' : 'identity';
      this.deps.metrics.rateLimited.inc({ scope });
      this.deps.audit({ event: 'rate_limit.hit', scope, connection: this.id, identity: this.identity, source: this.source });
      await this.deps.limits.suspicious(this.source, `rate_limit.${scope}`);
      this.close(4029, 'RATE_LIMITED');
      return;
    }
    this.deps.metrics.messageBytes.inc({ direction: 'in' }, bytes.length);
    const { type, plaintext } = this.session!.open(bytes);
    if (type === FrameType.CLOSE) {
      const { code, reason } = decodeClose(plaintext);
      this.close(code >= 1000 && code < 5000 ? code : 1000, reason, false);
      return;
    }
    if (type !== RELAY_FRAME) throw new ChannelError('FRAME_INVALID', `unknown frame type ${type}`);
    await this.relaySession!.handle(plaintext);
  }

  /** Sends an already sealed frame on the wire. */
  sendFrame(frame: Uint8Array): void {
    if (this.closed) return;
    this.deps.metrics.messageBytes.inc({ direction: 'out' }, frame.length);
    if (!this.wire.send(frame)) this.backpressured = true;
  }

  /** The wire drained: let the relay flush what it buffered. */
  drained(): void {
    this.backpressured = false;
    this.relaySession?.drain();
  }

  /** A failure: a specific close code, an audit event, a counter; never a crash. */
  private fail(error: unknown): void {
    const status = channelErrorStatus(error);
    const handshake = this.session === null;
    if (handshake) {
      const protocol = this.driver?.protocolName ?? 'unknown';
      this.deps.metrics.handshakes.inc({ result: 'failure', protocol });
      if (status.code === 'AUTH_FAILED' || status.code === 'IDENTITY_MISMATCH') {
        this.deps.metrics.authAttempts.inc({ result: 'failure', method: 'handshake' });
      }
    }
    const kind = status.code === 'INTERNAL' ? 'internal' : 'bad_input';
    this.deps.metrics.errors.inc({ kind });
    if (kind === 'internal') this.log.error({ err: error }, 'channel failed');
    else this.log.warn({ code: status.code, message: (error as Error).message }, handshake ? 'handshake failed' : 'frame rejected');
    this.deps.audit({
      event: handshake ? 'handshake.failure' : 'frame.rejected',
      code: status.code,
      connection: this.id,
      transport: this.wire.kind,
      source: this.source,
      identity: this.identity,
    });
    if (kind === 'bad_input') void this.deps.limits.suspicious(this.source, status.code.toLowerCase());
    this.close(status.closeCode, status.code);
  }

  /**
   * Closes the channel: tells the peer with a CLOSE frame when the session is open, then closes
   * the wire and detaches from the relay (unacked direct messages stay stored).
   */
  close(code: number, reason: string, notifyPeer = true): void {
    if (this.closed) return;
    if (notifyPeer && this.session) {
      try {
        this.wire.send(this.session.seal(FrameType.CLOSE, encodeClose(code, reason)));
      } catch {
        // The session may already be unusable; the wire close still carries the code.
      }
    }
    this.closed = true;
    clearTimeout(this.timer);
    this.wire.close(code, reason);
    this.session?.close();
    const relaySession = this.relaySession;
    this.relaySession = null;
    if (relaySession) void relaySession.detach();
  }
}
