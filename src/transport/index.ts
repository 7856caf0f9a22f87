/**
 * Transports: the WebSocket and HTTP bindings of a channel (DESIGN §3). Both carry the same
 * bytes — handshake messages, then frames `[type u8][counter u64 BE][ciphertext]` — and feed
 * one {@link ChannelConnection} per client.
 *
 * WebSocket (`GET /v1/ws`, binary messages): one handshake message per WebSocket message, then
 * one frame per message. Bun's own `websocket` handlers carry the hot path; `ws.send()`'s
 * result is honoured (−1 backpressure → the relay buffers until `drain`).
 *
 * HTTP: `POST /v1/channels` (body: handshake message 1; answer: message 2 and `x-channel-id`),
 * `POST /v1/channels/:id/handshake` (message 3 for XX), `POST /v1/channels/:id/frames` (a batch
 * of length-prefixed frames, each opened on its own: a replayed or forged frame is refused and
 * the channel lives on), `GET /v1/channels/:id/events` (server-sent events, one frame per event,
 * base64).
 */
import type { ServerWebSocket, WebSocketHandler } from 'bun';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Logger } from 'pino';
import {
  CHANNEL_ERROR_STATUS,
  type ChannelCrypto,
  type ChannelErrorCode,
  createResponder,
  fingerprintOf,
  responderPolicyFromConfig,
} from '../channel/index.ts';
import type { Config } from '../config/index.ts';
import type { BatchAead } from '../crypto/types.ts';
import { AppError } from '../errors.ts';
import type { AuditEvent } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { type Relay, SLOW_CONSUMER_CLOSE } from '../relay/index.ts';
import { clientAddress } from '../security/http.ts';
import type { SecurityLimits } from '../security/limits.ts';
import { ChannelConnection, type ConnectionDeps, FanoutSealer, FrameInbox, type Wire } from './connection.ts';

export { ChannelConnection, FanoutSealer, RELAY_FRAME, type Wire } from './connection.ts';

export interface TransportOptions {
  config: Config;
  crypto: ChannelCrypto;
  batchAead: BatchAead;
  keys: {
    staticKey: { publicKey: Uint8Array; secretKey: Uint8Array };
    identity: { publicKey: Uint8Array; secretKey: Uint8Array };
  };
  relay: Relay;
  metrics: Metrics;
  logger: Logger;
  audit(event: AuditEvent): void;
  limits: SecurityLimits;
  /** False while the entropy health test fails or the crypto self-test failed: refuse handshakes. */
  acceptingHandshakes(): { ok: boolean; reason?: string };
  /** Fetches a QKD key by key_ID for the psk modifier (ETSI 014 dec_keys on the server side). */
  fetchQkdKey?: (keyId: string) => Promise<Uint8Array | null>;
}

interface WsData {
  source: string;
  connection?: ChannelConnection;
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/**
 * The WebSocket side of a channel. A class rather than an object of closures: its methods are
 * shared, so an idle channel holds one small object here.
 */
class WebSocketWire implements Wire {
  readonly kind = 'ws' as const;
  constructor(private readonly ws: ServerWebSocket<WsData>) {}

  send(bytes: Uint8Array): boolean {
    const status = this.ws.send(bytes);
    if (status === 0) this.dropped();
    return status > 0;
  }

  /** One write for a turn's frames; any frame reported backpressured (−1) or dropped (0) reports the wire backpressured. */
  sendMany(frames: Uint8Array[]): boolean {
    const ws = this.ws;
    let ok = true;
    let dropped = false;
    ws.cork(() => {
      for (const frame of frames) {
        const status = ws.send(frame);
        if (status <= 0) ok = false;
        if (status === 0) dropped = true;
      }
    });
    if (dropped) this.dropped();
    return ok;
  }

  /**
   * Bun dropped a frame (its send buffer passed `backpressureLimit`). A frame is never lost
   * silently: the channel is closed as a slow consumer, so the client reconnects and the relay
   * redelivers what it has not acknowledged.
   */
  private dropped(): void {
    this.close(SLOW_CONSUMER_CLOSE.code, SLOW_CONSUMER_CLOSE.reason);
  }

  close(code: number, reason: string): void {
    try {
      this.ws.close(code, reason);
    } catch {
      // already closed
    }
  }
}

/** Creates the transport layer: Hono routes for the public app and Bun's WebSocket handlers. */
export function createTransport(options: TransportOptions) {
  const { config, metrics, logger, audit, limits, relay } = options;
  const log = logger.child({ component: 'network' });
  const connections = new Map<string, ChannelConnection>();
  const sealer = new FanoutSealer(options.batchAead, metrics);
  const inbox = new FrameInbox(options.batchAead, sealer);
  const policy = responderPolicyFromConfig(config.channel);
  // Per-identity frame windows (this node); expired windows are swept with the HTTP channels.
  const identityWindows = new Map<string, { start: number; count: number }>();
  const windowMs = config.security.rateLimit.windowSeconds * 1000;
  let draining = false;

  const deps: ConnectionDeps = {
    relay,
    metrics,
    logger: log,
    audit,
    limits,
    batchAead: options.batchAead,
    framesPerWindow: config.security.rateLimit.framesPerConnection,
    identityFrame(identity, count = 1) {
      const now = Date.now();
      let window = identityWindows.get(identity);
      if (!window || now - window.start >= windowMs) {
        window = { start: now, count: 0 };
        identityWindows.set(identity, window);
      }
      window.count += count;
      return window.count <= config.security.rateLimit.framesPerIdentity;
    },
    windowMs,
    sealer,
    inbox,
    // A client without an ML-DSA identity is named by its Noise static key (stable while it keeps
    // the key), or per connection when the pattern has none (NK).
    anonymousIdentity: (staticKey, connectionId) =>
      fingerprintOf(staticKey ?? new TextEncoder().encode(`anon:${relay.nodeId}:${connectionId}`), options.crypto.hash('SHA256')),
  };

  const newDriver = () =>
    createResponder({
      crypto: options.crypto,
      staticKey: options.keys.staticKey,
      identity: options.keys.identity,
      fetchQkdKey: options.fetchQkdKey,
      ...policy,
    });

  const countConnections = () => {
    let ws = 0;
    let http = 0;
    for (const c of connections.values()) c.wire.kind === 'ws' ? ws++ : http++;
    metrics.connections.set({ transport: 'ws' }, ws);
    metrics.connections.set({ transport: 'http' }, http);
  };

  /** Admission of a new channel: draining, entropy/self-test, connection limit, handshake rate. */
  async function admit(source: string): Promise<void> {
    if (draining) throw new AppError(503, 'DRAINING', 'the node is shutting down; reconnect to another node', undefined, 1);
    const gate = options.acceptingHandshakes();
    if (!gate.ok) throw new AppError(503, 'HANDSHAKES_REFUSED', gate.reason ?? 'handshakes are refused', undefined, 30);
    if (connections.size >= config.channel.maxConnections) {
      metrics.rateLimited.inc({ scope: 'connections' });
      throw new AppError(503, 'TOO_MANY_CONNECTIONS', 'connection limit reached', undefined, 5);
    }
    const retryAfter = await limits.consume('handshake', source);
    if (retryAfter !== null) throw new AppError(429, 'RATE_LIMITED', 'too many handshakes', undefined, retryAfter);
  }

  function register(connection: ChannelConnection) {
    connections.set(connection.id, connection);
    countConnections();
  }
  function unregister(connection: ChannelConnection) {
    if (connections.delete(connection.id)) countConnections();
  }

  // ---------------------------------------------------------------------------------------------
  // WebSocket

  const websocket: WebSocketHandler<WsData> = {
    idleTimeout: config.channel.idleTimeoutSeconds,
    maxPayloadLength: Math.max(config.channel.maxFrameBytes, 16_384),
    backpressureLimit: config.channel.sendQueueBytes,
    closeOnBackpressureLimit: false,
    sendPings: true,
    open(ws) {
      const wire = new WebSocketWire(ws);
      const connection = new ChannelConnection(wire, newDriver(), ws.data.source, deps);
      ws.data.connection = connection;
      register(connection);
    },
    message(ws, message) {
      const connection = ws.data.connection!;
      if (typeof message === 'string') {
        connection.close(4002, 'FRAME_INVALID');
        return;
      }
      void connection.receive(message);
    },
    drain(ws) {
      ws.data.connection?.drained();
    },
    close(ws: ServerWebSocket<WsData>) {
      const connection = ws.data.connection;
      if (!connection) return;
      connection.close(1000, 'closed', false);
      unregister(connection);
    },
  };

  // ---------------------------------------------------------------------------------------------
  // Routes (WebSocket upgrade and HTTP channels)

  const routes = new Hono<{ Bindings: { server?: import('bun').Server<WsData> } }>();

  routes.get('/v1/ws', async (c) => {
    const server = c.env?.server;
    if (!server) throw new AppError(500, 'INTERNAL', 'no server binding for WebSocket upgrade');
    if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') {
      throw new AppError(400, 'UPGRADE_REQUIRED', 'this endpoint speaks WebSocket (binary frames)');
    }
    const source = clientAddress(c);
    await admit(source);
    if (server.upgrade(c.req.raw, { data: { source } })) return new Response(null);
    throw new AppError(400, 'UPGRADE_FAILED', 'WebSocket upgrade failed');
  });

  /** HTTP channels: the connection plus its outbox for the event stream. */
  interface HttpChannel {
    connection: ChannelConnection;
    outbox: Uint8Array[];
    outboxBytes: number;
    notify?: () => void;
    stream?: boolean;
    closedWith?: { code: number; reason: string };
    lastSeen: number;
  }
  const httpChannels = new Map<string, HttpChannel>();

  const readBody = async (c: { req: { arrayBuffer(): Promise<ArrayBuffer> } }) => new Uint8Array(await c.req.arrayBuffer());

  routes.post('/v1/channels', async (c) => {
    const source = clientAddress(c);
    await admit(source);
    const body = await readBody(c);
    const id = hex(crypto.getRandomValues(new Uint8Array(16)));
    const replies: Uint8Array[] = [];
    const channel: HttpChannel = { connection: undefined as unknown as ChannelConnection, outbox: [], outboxBytes: 0, lastSeen: Date.now() };
    let handshakeDone = false;
    const wire: Wire = {
      kind: 'http',
      // Frames wait in the outbox for the next poll: the sealer hands this wire its own copies.
      keepsFrames: true,
      send(bytes) {
        if (!handshakeDone) {
          replies.push(bytes);
          return true;
        }
        channel.outbox.push(bytes);
        channel.outboxBytes += bytes.length;
        channel.notify?.();
        return channel.outboxBytes < config.channel.sendQueueBytes;
      },
      close(code, reason) {
        channel.closedWith = { code, reason };
        channel.notify?.();
        httpChannels.delete(id);
        unregister(channel.connection);
      },
    };
    channel.connection = new ChannelConnection(wire, newDriver(), source, deps, id);
    register(channel.connection);
    httpChannels.set(id, channel);
    await channel.connection.receive(body);
    if (channel.closedWith) throw handshakeError(channel.closedWith);
    handshakeDone = channel.connection.isOpen;
    const reply = replies[0];
    if (!reply) throw new AppError(400, 'HANDSHAKE_FAILED', 'handshake produced no reply');
    // After the reply is out, later sends (frames) go to the outbox.
    handshakeDone = true;
    return c.body(reply as Uint8Array<ArrayBuffer>, 200, {
      'content-type': 'application/octet-stream',
      'x-channel-id': id,
      'x-channel-state': channel.connection.isOpen ? 'open' : 'handshake',
    });
  });

  const channelOf = (id: string): HttpChannel => {
    const channel = httpChannels.get(id);
    if (!channel) throw new AppError(404, 'SESSION_CLOSED', 'no such channel (closed, expired or never opened)');
    channel.lastSeen = Date.now();
    return channel;
  };

  routes.post('/v1/channels/:id/handshake', async (c) => {
    const channel = channelOf(c.req.param('id'));
    if (channel.connection.isOpen) throw new AppError(409, 'HANDSHAKE_DONE', 'the handshake is already complete');
    await channel.connection.receive(await readBody(c));
    if (channel.closedWith) throw handshakeError(channel.closedWith);
    if (!channel.connection.isOpen) throw new AppError(400, 'HANDSHAKE_FAILED', 'handshake incomplete');
    return c.body(null, 204);
  });

  routes.post('/v1/channels/:id/frames', async (c) => {
    const channel = channelOf(c.req.param('id'));
    if (!channel.connection.isOpen) throw new AppError(409, 'HANDSHAKE_PENDING', 'finish the handshake first');
    const body = await readBody(c);
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (offset < body.length) {
      if (offset + 4 > body.length) throw new AppError(400, 'FRAME_TRUNCATED', 'truncated length prefix');
      const length = new DataView(body.buffer, body.byteOffset + offset, 4).getUint32(0);
      offset += 4;
      if (length > config.channel.maxFrameBytes) throw new AppError(413, 'FRAME_TOO_LARGE', `frame of ${length} bytes`);
      if (offset + length > body.length) throw new AppError(400, 'FRAME_TRUNCATED', 'truncated frame');
      frames.push(body.subarray(offset, offset + length));
      offset += length;
    }
    const results: { index: number; ok: boolean; code?: string }[] = [];
    for (let index = 0; index < frames.length; index++) {
      const outcome = await channel.connection.receiveHttpFrame(frames[index]!);
      results.push(outcome.ok ? { index, ok: true } : { index, ok: false, code: outcome.code });
      if (channel.closedWith) break;
    }
    return c.json({ accepted: results.filter((r) => r.ok).length, results, closed: channel.closedWith ?? null });
  });

  routes.get('/v1/channels/:id/events', (c) => {
    const id = c.req.param('id');
    const channel = channelOf(id);
    if (channel.stream) throw new AppError(409, 'STREAM_TAKEN', 'an event stream is already open for this channel');
    channel.stream = true;
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => {
        channel.stream = false;
        channel.notify?.();
      });
      let counter = 0;
      while (!stream.aborted) {
        while (channel.outbox.length > 0) {
          const frame = channel.outbox.shift()!;
          channel.outboxBytes -= frame.length;
          await stream.writeSSE({ event: 'frame', id: String(counter++), data: Buffer.from(frame).toString('base64') });
        }
        if (channel.outboxBytes < config.channel.sendQueueBytes / 2) channel.connection.drained();
        if (channel.closedWith) {
          await stream.writeSSE({ event: 'close', data: JSON.stringify(channel.closedWith) });
          break;
        }
        await new Promise<void>((resolve) => {
          const wake = setTimeout(resolve, 15_000);
          channel.notify = () => {
            clearTimeout(wake);
            channel.notify = undefined;
            resolve();
          };
        });
        if (channel.outbox.length === 0 && !channel.closedWith && !stream.aborted) await stream.write(': keep-alive\n\n');
      }
      channel.stream = false;
    });
  });

  // Idle HTTP channels expire.
  const sweeper = setInterval(() => {
    for (const [identity, window] of identityWindows) if (Date.now() - window.start >= windowMs) identityWindows.delete(identity);
    const limit = Date.now() - config.channel.idleTimeoutSeconds * 1000;
    for (const channel of httpChannels.values()) {
      if (!channel.stream && channel.lastSeen < limit) channel.connection.close(4021, 'idle');
    }
  }, 5_000);
  sweeper.unref?.();

  return {
    routes,
    websocket,
    connections,
    sealer,
    /** Stops admitting channels, tells every client to reconnect elsewhere (1001), waits for flushes. */
    async drain(deadline: number) {
      draining = true;
      for (const connection of [...connections.values()]) connection.close(1001, 'node shutting down');
      while (connections.size > 0 && Date.now() < deadline) await Bun.sleep(20);
      clearInterval(sweeper);
    },
    get draining() {
      return draining;
    },
  };
}

/** The HTTP answer to a handshake that closed the channel: the channel error's status and code. */
function handshakeError(closed: { code: number; reason: string }): AppError {
  const entry = CHANNEL_ERROR_STATUS[closed.reason as ChannelErrorCode];
  const status = (entry?.httpStatus ?? 400) as 400 | 401 | 403 | 408 | 413 | 422 | 500;
  return new AppError(status, closed.reason, `handshake failed: ${closed.reason}`);
}

export type Transport = ReturnType<typeof createTransport>;
