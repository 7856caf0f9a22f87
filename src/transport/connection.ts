/**
 * One client channel, whatever carries it: the handshake driver until the channel is open,
 * then the session and the relay session. WebSocket and HTTP bindings (`websocket.ts`,
 * `http.ts`) feed it bytes and give it a way to send frames.
 *
 * Outgoing relay events are collected for the rest of the event-loop turn (a relay fan-out, the
 * replies to every frame that arrived in the turn); at its end each connection's events become
 * as few frames as fit (several events travel as one JSON array, a batch), all of them sealed for
 * every recipient in one batch AEAD call (`sealMany`), and each connection's frames go out in one
 * corked write.
 * Frames that arrive on open WebSocket channels during a turn are opened together at its end,
 * with one batch AEAD call (`openMany`: the same checks as `Session.open`), and handed to the
 * relay in arrival order without a promise per frame; byte counters are added up per turn, not
 * per frame.
 */
import type { Logger } from 'pino';
import {
  BatchScratch,
  ChannelError,
  channelErrorStatus,
  decodeClose,
  encodeClose,
  FrameType,
  type HandshakeDriver,
  type OpenedFrame,
  openMany,
  type Session,
  sealMany,
} from '../channel/index.ts';
import type { BatchAead } from '../crypto/types.ts';
import type { AuditEvent } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { encodeEvents, PayloadArena, type Relay, type RelayEvent, type RelaySession } from '../relay/index.ts';
import type { SecurityLimits } from '../security/limits.ts';

/** Frame type of relay traffic: UTF-8 JSON commands (client → server) and events (server → client). */
export const RELAY_FRAME = 0x10;

export type TransportKind = 'ws' | 'http';

/** What a binding gives a connection. */
export interface Wire {
  kind: TransportKind;
  /** Sends bytes (a handshake message or a frame). Returns false when the wire is backpressured. */
  send(bytes: Uint8Array): boolean;
  /** Sends frames in order as one write where the binding can (WebSocket: `ws.cork`). */
  sendMany?(frames: Uint8Array[]): boolean;
  /**
   * The wire holds on to the bytes after `send` returns (HTTP queues frames for the next poll).
   * Wires that copy them before returning (WebSocket) are lent the sealer's reused buffer.
   */
  keepsFrames?: boolean;
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
  /**
   * Counts a frame (or `count` commands of a batch) against the sender's identity; false when the
   * identity is over its limit.
   */
  identityFrame(identity: string, count?: number): boolean;
  windowMs: number;
  /** Identity for clients that prove none: derived from their Noise static key when they have one. */
  anonymousIdentity(staticKey: Uint8Array | undefined, connectionId: string): string;
  sealer: FanoutSealer;
  inbox: FrameInbox;
}

/** A sealing job: one event batch for one connection. */
interface SealJob {
  connection: ChannelConnection;
  events: RelayEvent[];
}

/**
 * Collects the relay's deliveries until the end of the event-loop turn (`setImmediate`), then
 * seals them all in one batch call and writes each connection's frames together. `begin()` /
 * `end()` bracket a relay fan-out; the turn already contains it, so they only count depth.
 * Also adds up frame bytes in and out, so the byte counters change once per turn.
 */
export class FanoutSealer {
  private depth = 0;
  private jobs: SealJob[] = [];
  private scheduled = false;
  private flushing = false;
  private bytesIn = 0;
  private readonly bytesInCounter;
  private readonly bytesOutCounter;
  private readonly sealCounter;
  private readonly run = () => this.flush();
  /** The turn's sealed frames: views of it until the end of `sealAndSend` (see `BatchScratch`). */
  private readonly scratch = new BatchScratch();
  /** The turn's batch payloads (sealed, so copied, before `sealAndSend` returns). */
  private readonly payloads = new PayloadArena();

  constructor(
    private readonly aead: BatchAead,
    metrics: Metrics,
  ) {
    this.bytesInCounter = metrics.messageBytes.labels('in');
    this.bytesOutCounter = metrics.messageBytes.labels('out');
    this.sealCounter = metrics.cryptoOps.labels('seal', aead.backend);
  }

  begin(): void {
    this.depth++;
  }

  end(): void {
    this.depth = Math.max(0, this.depth - 1);
  }

  /** Queues events for a connection; returns false when its wire is backpressured. */
  deliver(connection: ChannelConnection, events: RelayEvent[]): boolean {
    this.jobs.push({ connection, events });
    this.schedule();
    return !connection.backpressured;
  }

  /** Counts frame bytes received (added to the metric at the end of the turn). */
  received(bytes: number): void {
    this.bytesIn += bytes;
    this.schedule();
  }

  /** Counts frame bytes sent outside a flush (close frames). */
  sent(bytes: number): void {
    this.bytesOutCounter.inc(bytes);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  /** Seals and sends everything queued now (also before a connection closes, to keep order). */
  flush(): void {
    this.scheduled = false;
    if (this.bytesIn > 0) {
      this.bytesInCounter.inc(this.bytesIn);
      this.bytesIn = 0;
    }
    if (this.jobs.length === 0 || this.flushing) return;
    this.flushing = true;
    try {
      this.sealAndSend();
    } finally {
      this.flushing = false;
    }
  }

  private sealAndSend(): void {
    const jobs = this.jobs;
    this.jobs = [];
    // The last flush's payloads were sealed (copied) before it returned.
    this.payloads.reset();
    // Each connection's events of this turn, in delivery order; connections in first-delivery
    // order. A connection's events go out as few frames as fit (one batch payload each).
    const order: ChannelConnection[] = [];
    for (const { connection, events } of jobs) {
      if (!connection.openSession) continue;
      let pending = connection.pendingEvents;
      if (!pending) {
        pending = connection.pendingEvents = [];
        order.push(connection);
      }
      for (const event of events) pending.push(event);
    }
    const batched: { session: Session; type: number; plaintext: Uint8Array }[] = [];
    const targets: ChannelConnection[] = [];
    /** Connections with frames, in first-delivery order; their frames in delivery order. */
    const outgoing: ChannelConnection[] = [];
    let bytesOut = 0;
    // Subscribers of one topic are handed the same event objects in the same order, one after
    // another: the previous connection's payloads are reused when its events were the same.
    let lastEvents: RelayEvent[] | null = null;
    let lastPayloads: Uint8Array[] = [];
    let lastMax = 0;
    for (const connection of order) {
      const events = connection.pendingEvents!;
      connection.pendingEvents = null;
      const session = connection.openSession!;
      const max = session.maxPlaintextBytes;
      const payloads = lastEvents !== null && max === lastMax && sameEvents(events, lastEvents) ? lastPayloads : encodeEvents(events, max, this.payloads);
      lastEvents = events;
      lastPayloads = payloads;
      lastMax = max;
      for (const plaintext of payloads) {
        if (session.aead.name === this.aead.name) {
          batched.push({ session, type: RELAY_FRAME, plaintext });
          targets.push(connection);
        } else {
          // Another cipher: sealed alone. One connection has one session, hence one cipher, so
          // all of its frames take the same path and keep their order.
          const frame = session.seal(RELAY_FRAME, plaintext);
          if (connection.outbox.length === 0) outgoing.push(connection);
          connection.outbox.push(frame);
          bytesOut += frame.length;
        }
      }
    }
    if (batched.length > 0) {
      // Views of the scratch: written out below, before the next flush reuses it; a wire that
      // keeps its frames (HTTP) gets copies.
      const frames = sealMany(this.aead, batched, this.scratch);
      this.sealCounter.inc(frames.length);
      for (let i = 0; i < frames.length; i++) {
        const connection = targets[i]!;
        if (connection.outbox.length === 0) outgoing.push(connection);
        connection.outbox.push(connection.wire.keepsFrames ? frames[i]!.slice() : frames[i]!);
        bytesOut += frames[i]!.length;
      }
    }
    this.bytesOutCounter.inc(bytesOut);
    let failed: unknown;
    for (const connection of outgoing) {
      try {
        connection.flushOutbox();
      } catch (error) {
        // Every outbox is emptied now either way: no view of the scratch outlives this flush.
        connection.outbox = [];
        failed ??= error;
      }
    }
    if (failed !== undefined) throw failed;
  }
}

/**
 * Frames that arrive on open channels during one event-loop turn (a burst of commands from many
 * connections), opened together at its end with one batch AEAD call and handed to the relay in
 * arrival order. Each frame is first checked against the frame limits (before any crypto, as
 * one at a time); `openMany` applies the header, replay-window and tag checks of `Session.open`
 * frame by frame and keeps each session's frames in order. The sealer's flush follows at once,
 * so the replies and fan-out the frames cause leave in the same turn.
 */
export class FrameInbox {
  private frames: { connection: ChannelConnection; frame: Uint8Array }[] = [];
  private scheduled = false;
  private flushing = false;
  private readonly run = () => this.flush();
  /**
   * The turn's plaintexts: views of it while `flush` hands them over. The relay decodes a
   * payload before `handlePayload` returns and keeps no reference to its bytes.
   */
  private readonly scratch = new BatchScratch();

  constructor(
    private readonly aead: BatchAead,
    private readonly sealer: FanoutSealer,
  ) {}

  push(connection: ChannelConnection, frame: Uint8Array): void {
    this.frames.push({ connection, frame });
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  /** Opens and hands over everything queued now. */
  flush(): void {
    // A channel that closes while this turn's frames are handed over flushes the inbox first
    // (`ChannelConnection.close`). Nothing can have arrived since (sockets are read between
    // turns), and a nested batch would overwrite the scratch whose plaintexts are being handed
    // over: frames pushed meanwhile wait for the turn this push scheduled.
    if (this.flushing) return;
    this.scheduled = false;
    const frames = this.frames;
    if (frames.length === 0) return;
    this.frames = [];
    const requests: { session: Session; frame: Uint8Array }[] = [];
    const owners: ChannelConnection[] = [];
    for (const { connection, frame } of frames) {
      const session = connection.admitFrame(frame);
      if (!session) continue;
      requests.push({ session, frame });
      owners.push(connection);
    }
    this.flushing = true;
    try {
      const opened = requests.length > 0 ? this.openAll(requests) : [];
      for (let i = 0; i < opened.length; i++) owners[i]!.acceptOpened(opened[i]!);
    } finally {
      this.flushing = false;
    }
    this.sealer.flush();
  }

  /** One batch call; if the call itself fails (it changes no session state), each frame alone. */
  private openAll(requests: { session: Session; frame: Uint8Array }[]): (OpenedFrame | Error)[] {
    try {
      return openMany(this.aead, requests, this.scratch);
    } catch {
      return requests.map(({ session, frame }) => {
        try {
          return session.open(frame);
        } catch (error) {
          return error as Error;
        }
      });
    }
  }
}

/** Whether two event lists hold the same event objects in the same order. */
function sameEvents(a: readonly RelayEvent[], b: readonly RelayEvent[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

let nextId = 0;
const DONE: Promise<void> = Promise.resolve();

/** One channel from handshake to close. */
export class ChannelConnection {
  readonly id: string;
  readonly startedAt = performance.now();
  private driver: HandshakeDriver | null;
  private session: Session | null = null;
  private relaySession: RelaySession | null = null;
  private chain: Promise<void> = Promise.resolve();
  /** Messages queued on `chain` (the handshake, HTTP frames); 0 lets frames take the direct path. */
  private queued = 0;
  /** Sealed frames waiting for this turn's write. */
  outbox: Uint8Array[] = [];
  /** Events handed over this turn, while the sealer gathers them (null otherwise). */
  pendingEvents: RelayEvent[] | null = null;
  private closed = false;
  /** A frame ended the channel: frames after it are not handed over (its end is pending). */
  private refused = false;
  /** The end a frame called for, run after the turn (see `endAfterTurn`). */
  private pendingEnd: (() => void) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private windowStart = Date.now();
  private framesInWindow = 0;
  backpressured = false;
  identity: string | undefined;
  protocol: string | null = null;
  private logger: Logger | undefined;

  constructor(
    readonly wire: Wire,
    driver: HandshakeDriver,
    readonly source: string,
    private readonly deps: ConnectionDeps,
    id?: string,
  ) {
    this.id = id ?? `${Date.now().toString(36)}-${(nextId++).toString(36)}`;
    this.driver = driver;
    // Slowloris: a handshake that does not finish in time closes the channel.
    this.timer = setTimeout(() => {
      if (!this.session) this.fail(new ChannelError('HANDSHAKE_TIMEOUT', 'handshake did not complete in time'));
    }, Math.max(0, driver.deadline - Date.now()));
    this.timer.unref?.();
  }

  /** This channel's child logger, made on first use (most channels never log: less memory per idle channel). */
  get log(): Logger {
    this.logger ??= this.deps.logger.child({ connection: this.id, transport: this.wire.kind });
    return this.logger;
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
    if (this.queued === 0 && this.session !== null) {
      // Open channel, nothing queued before this frame: into this turn's inbox (opened in one
      // batch with the turn's other frames), no promise per frame. The relay orders a
      // connection's publishes and sends itself; replies carry request ids.
      if (!this.closed) this.deps.inbox.push(this, bytes);
      return DONE;
    }
    this.queued++;
    const run = this.chain.then(() => this.handle(bytes));
    this.chain = run.then(this.dequeue, this.dequeue);
    return run;
  }

  // Made on first use: an idle channel keeps no closures it never needs.
  private dequeueFn: (() => void) | undefined;
  private failFn: ((error: unknown) => void) | undefined;
  private get dequeue(): () => void {
    this.dequeueFn ??= () => {
      this.queued--;
    };
    return this.dequeueFn;
  }
  private get onRelayFailure(): (error: unknown) => void {
    this.failFn ??= (error) => this.fail(error);
    return this.failFn;
  }

  /**
   * Feeds one frame that arrived over HTTP. Frames there may arrive out of order and be retried,
   * so a replayed or undecryptable frame is refused on its own (counted, audited) and the channel
   * lives on; other failures close it as on WebSocket.
   */
  receiveHttpFrame(bytes: Uint8Array): Promise<{ ok: true } | { ok: false; code: string }> {
    this.queued++;
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
    this.chain = run.then(this.dequeue, this.dequeue);
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
      else this.frame(bytes)?.then(undefined, this.onRelayFailure);
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
    this.timer = undefined;
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

  /**
   * Opens one frame and hands it to the relay. Returns the relay's promise (HTTP awaits it, so
   * its answer follows the command; WebSocket does not) or undefined when no command ran.
   */
  private frame(bytes: Uint8Array): Promise<unknown> | undefined {
    if (this.refused) return undefined;
    const limited = this.countFrames(1);
    if (limited) return limited;
    this.deps.sealer.received(bytes.length);
    const { type, plaintext } = this.session!.open(bytes);
    const payload = this.relayPayload(type, plaintext);
    if (!(payload instanceof Uint8Array)) {
      this.close(payload.code, payload.reason, false);
      return undefined;
    }
    // A batch counts as many frames as it carries commands (the frame itself was counted above).
    return this.relaySession!.handlePayload(payload, this.admitBatch);
  }

  /** An opened frame's relay payload, or the close it asks for; throws FRAME_INVALID for other types. */
  private relayPayload(type: number, plaintext: Uint8Array): Uint8Array | { code: number; reason: string } {
    if (type === FrameType.CLOSE) {
      const { code, reason } = decodeClose(plaintext);
      return { code: code >= 1000 && code < 5000 ? code : 1000, reason };
    }
    if (type !== RELAY_FRAME) throw new ChannelError('FRAME_INVALID', `unknown frame type ${type}`);
    return plaintext;
  }

  /**
   * The inbox's first step for a frame: the frame limits, before any crypto. Returns the session
   * to open it with, or null when it is dropped (the channel is closed, or the limit closed it).
   */
  admitFrame(bytes: Uint8Array): Session | null {
    // A pending end (a limit passed, a frame refused) admits nothing more.
    if (this.closed || this.pendingEnd || this.session === null) return null;
    const scope = this.overLimit(1);
    if (scope) {
      // Frames admitted before this one are still handed over (in this flush); none after it.
      this.endAfterTurn(() => void this.rateLimited(scope).then(undefined, this.onRelayFailure));
      return null;
    }
    this.deps.sealer.received(bytes.length);
    return this.session;
  }

  /** The inbox's second step: the opened frame, or the error `Session.open` threw for it. */
  acceptOpened(opened: OpenedFrame | Error): void {
    if (this.closed || this.refused) return;
    try {
      if (opened instanceof Error) throw opened;
      const payload = this.relayPayload(opened.type, opened.plaintext);
      if (!(payload instanceof Uint8Array)) {
        this.refuse(() => this.close(payload.code, payload.reason, false));
        return;
      }
      const handled = this.relaySession!.handlePayload(payload, this.admitBatch);
      if (handled) handled.then(undefined, this.onRelayFailure);
    } catch (error) {
      this.refuse(() => this.fail(error));
    }
  }

  /** A frame ends the channel: nothing after it is handed over; the end follows the turn. */
  private refuse(end: () => void): void {
    this.refused = true;
    this.endAfterTurn(end, true);
  }

  private admitFn: ((commands: number) => boolean) | undefined;
  private get admitBatch(): (commands: number) => boolean {
    this.admitFn ??= (commands) => {
      if (commands <= 1) return true;
      const scope = this.overLimit(commands - 1);
      if (!scope) return true;
      // None of the batch's commands run; the channel ends after the turn (see `endAfterTurn`).
      this.refuse(() => void this.rateLimited(scope).then(undefined, () => undefined));
      return false;
    };
    return this.admitFn;
  }

  /**
   * Counts `n` frames against the connection's and the identity's windows. Past a limit the
   * channel is closed (4029) and the promise of the suspicion report is returned.
   */
  private countFrames(n: number): Promise<unknown> | undefined {
    const scope = this.overLimit(n);
    return scope ? this.rateLimited(scope) : undefined;
  }

  /** Counts `n` frames against the connection's and the identity's windows; the limit passed, if one is. */
  private overLimit(n: number): 'frame' | 'identity' | undefined {
    const now = Date.now();
    if (now - this.windowStart >= this.deps.windowMs) {
      this.windowStart = now;
      this.framesInWindow = 0;
    }
    this.framesInWindow += n;
    const overConnection = this.framesInWindow > this.deps.framesPerWindow;
    if (!overConnection && this.deps.identityFrame(this.identity!, n)) return undefined;
    return overConnection ? 'frame' : 'identity';
  }

  /** A frame limit passed: counted, audited, the channel closed (4029); returns the suspicion report. */
  private rateLimited(scope: 'frame' | 'identity'): Promise<unknown> {
    this.deps.metrics.rateLimited.inc({ scope });
    this.deps.audit({ event: 'rate_limit.hit', scope, connection: this.id, identity: this.identity, source: this.source });
    this.close(4029, 'RATE_LIMITED');
    return this.deps.limits.suspicious(this.source, `rate_limit.${scope}`);
  }

  /**
   * A frame from the inbox ends the channel (a limit passed, a frame refused, a CLOSE): `end`
   * runs after this turn's microtasks, so the replies to the frames before it are queued by then
   * and go out before the CLOSE frame — as when each frame was handled on arrival, with
   * microtasks run in between. `first`: this frame came before the one that scheduled the
   * pending end (a refusal found while handing over frames that passed the limit check), so its
   * end replaces that one.
   */
  private endAfterTurn(end: () => void, first = false): void {
    const scheduled = this.pendingEnd !== undefined;
    if (!scheduled || first) this.pendingEnd = end;
    if (scheduled) return;
    setImmediate(() => {
      const run = this.pendingEnd;
      this.pendingEnd = undefined;
      if (!this.closed) run?.();
    });
  }

  /** Writes this turn's sealed frames (one corked write on WebSocket). */
  flushOutbox(): void {
    const frames = this.outbox;
    this.outbox = [];
    if (this.closed || frames.length === 0) return;
    let ok = true;
    if (frames.length > 1 && this.wire.sendMany) ok = this.wire.sendMany(frames);
    else for (const frame of frames) ok = this.wire.send(frame) && ok;
    if (!ok) this.backpressured = true;
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
    // Frames that arrived before the close are handled (as they were when each was handled on
    // arrival), and events already given to the transport go out before the CLOSE frame.
    if (this.session) {
      this.deps.inbox.flush();
      if (this.closed) return;
      this.deps.sealer.flush();
    }
    if (notifyPeer && this.session) {
      try {
        const frame = this.session.seal(FrameType.CLOSE, encodeClose(code, reason));
        this.deps.sealer.sent(frame.length);
        this.wire.send(frame);
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
