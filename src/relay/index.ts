/**
 * The relay: topics, direct messages, presence, history and store-and-forward (DESIGN §5),
 * independent of transport and crypto. The transport attaches a connection per open channel,
 * hands every decrypted frame payload to `session.handle()`, and seals what the relay gives to
 * `deliver()` — replies, publications and direct messages, in order, one call per batch.
 *
 * Semantics (docs/RELAY.md):
 * - live pub/sub is at-most-once; every publication is also appended to the topic's history
 *   (bounded by count and age) with an offset, so a client resumes with `since` and gets what it
 *   missed, in order, before live ones;
 * - direct messages are at-least-once: stored before the sender's `ok`, delivered, redelivered
 *   on every new attach of the recipient until acked, in id order;
 * - a connection whose `deliver` reports backpressure is buffered up to a bound, then closed with
 *   4008 "slow consumer"; its unacked direct messages stay stored.
 *
 * Fan-out: the broker handler calls `deliver` for every local subscriber of one publication
 * synchronously, with the same event object, between `batch.begin()` and `batch.end()`, so the
 * transport can seal the whole fan-out in one WASM batch call.
 */
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import type { Metrics } from '../observability/metrics.ts';
import {
  commandNames,
  commandSchema,
  MAX_BATCH_COMMANDS,
  type Grant,
  parseHotCommand,
  publishReply,
  type MessageEvent,
  type PublicationEvent,
  type RelayCommand,
  type RelayEvent,
  type RelayReply,
  type RequestId,
} from './protocol.ts';
import {
  type Broker,
  type BrokerEnvelope,
  type DirectMessage,
  type EnqueueResult,
  identityChannel,
  type NodeInfo,
  type PresenceEntry,
  type Publication,
  RelayError,
  type RelayErrorCode,
  type Store,
  topicChannel,
} from './types.ts';

export * from './backends.ts';
export * from './protocol.ts';
export * from './types.ts';

/** What the transport gives the relay for one open channel. */
export interface RelayConnection {
  /** Unique on this node. */
  id: string;
  /** The peer's identity fingerprint (or an anonymous id when client auth is off). */
  identity: string;
  /**
   * Hands events to the transport, in order. Returns false when the transport is now
   * backpressured (the events were still accepted); the relay then buffers until `drain()`.
   */
  deliver(events: RelayEvent[]): boolean;
  /** Closes the channel (e.g. 4008 slow consumer). */
  close(code: number, reason: string): void;
}

/** One attached connection. */
export interface RelaySession {
  readonly id: string;
  readonly identity: string;
  /**
   * Handles one command (a parsed object, or the UTF-8 JSON text/bytes of one). The reply is
   * delivered through `deliver` in order with other events; the returned promise resolves with
   * it too (for logging and tests — the transport must not send it a second time).
   */
  handle(input: unknown): Promise<RelayReply>;
  /**
   * Handles one frame payload (UTF-8 JSON bytes): one command, or a batch — a JSON array of up to
   * {@link MAX_BATCH_COMMANDS} commands, each run and answered as if it had come in its own frame,
   * in array order. `admit(n)` is asked first with the number of commands (rate limits); when it
   * says no, nothing runs and the promise resolves with no replies.
   */
  handlePayload(payload: Uint8Array, admit?: (commands: number) => boolean): Promise<unknown>;
  /** The transport's socket drained: flush buffered events. */
  drain(): void;
  /** Events buffered for this connection (backpressure). */
  readonly queued: number;
  detach(): Promise<void>;
}

/** Checks a grant's signature (ML-DSA-65 over `grantMessage(grant)`, by the lead). */
export type VerifyGrant = (grant: Grant) => boolean | Promise<boolean>;

export interface RelayOptions {
  config: Pick<Config, 'relay'> & { channel?: Pick<Config['channel'], 'maxFrameBytes' | 'sendQueueBytes'> };
  broker: Broker;
  store: Store;
  logger?: Logger;
  metrics?: Metrics;
  nodeId: string;
  verifyGrant?: VerifyGrant;
  now?: () => number;
  /** Brackets each fan-out so the transport can seal it in one batch. */
  batch?: { begin(): void; end(): void };
  /** Events buffered per connection before it is closed as a slow consumer (default 10,000). */
  maxQueuedEvents?: number;
  /** Bytes (approximate) buffered per connection before closing (default channel.sendQueueBytes or 4 MiB). */
  maxQueuedBytes?: number;
  /** Node heartbeat and presence refresh interval (ms, default 5 s); entries live 3 intervals. */
  heartbeatMs?: number;
  /** Direct messages read per page when replaying a backlog (default 256). */
  backlogPage?: number;
  /** Completes this node's heartbeat record before it is announced (the cluster room signs it). */
  describeNode?: (info: NodeInfo) => NodeInfo;
  /**
   * Whether to trust what another node sent: live envelopes tagged with its id and its presence
   * entries are dropped when this returns false (the cluster room's verdict on its heartbeat).
   */
  trustNode?: (nodeId: string, what: 'envelope' | 'presence') => boolean;
}

export interface Relay {
  readonly nodeId: string;
  attach(connection: RelayConnection): RelaySession;
  /** Detaches by connection id (same as `session.detach()`). */
  detach(id: string): Promise<void>;
  session(id: string): RelaySession | undefined;
  /** Live nodes of the cluster (heartbeats). */
  peers(): Promise<NodeInfo[]>;
  stats(): { connections: number; topics: number; identities: number; resyncs: number };
  /** Sends this node's heartbeat and refreshes its presence entries now. */
  heartbeat(): Promise<void>;
  /** Detaches every session and stops the heartbeat; broker and store stay open (the caller owns them). */
  close(): Promise<void>;
}

const DONE: Promise<unknown> = Promise.resolve(undefined);

/** Strict UTF-8 (a command is JSON text); stateless, so one instance serves every call. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Close code sent to a connection that cannot keep up. */
export const SLOW_CONSUMER_CLOSE = { code: 4008, reason: 'slow consumer' } as const;

interface Subscription {
  live: boolean;
  buffer: PublicationEvent[];
  epoch: string;
  /** Live publications at or below this offset (same epoch) were already delivered or precede the subscription. */
  skipUpTo: number;
  since: number;
}

interface SessionState extends RelaySession {
  conn: RelayConnection;
  subs: Map<string, Subscription>;
  grants: Map<string, Grant>;
  out: RelayEvent[];
  outBytes: number;
  blocked: boolean;
  closed: boolean;
  joinedAt: number;
  /** Ordering chain: publish/send are issued to the store in command order. */
  tail: Promise<unknown>;
  /** Settles when the latest command that runs alone (not publish/send), and all before it, are done. */
  barrier?: Promise<void>;
  /** Publish/send commands running now, and who waits for them all to finish. */
  running: number;
  /** Ordered commands (`ordered`) whose store write has not been issued yet. */
  unissued: number;
  idle?: () => void;
  dm: { live: boolean; skipUpTo: number; lastDelivered: number; arrivedDuringLoad: boolean; drained?: () => void };
}

const eventBytes = (event: RelayEvent) =>
  event.type === 'reply' ? 256 : event.data.length + (event.type === 'publication' ? event.topic.length : 0) + 160;

/**
 * Creates the relay core of one node.
 *
 * @example
 * const { broker, store } = await createRelayBackends(config, { logger, metrics });
 * const relay = createRelay({ config, broker, store, logger, metrics, nodeId });
 * const session = relay.attach({ id, identity, deliver: (events) => sealAndSend(events), close });
 * await session.handle(JSON.parse(plaintext));
 */
export function createRelay(options: RelayOptions): Relay {
  const { broker, store, metrics, nodeId, verifyGrant, batch, trustNode } = options;
  const relayConfig = options.config.relay;
  const now = options.now ?? Date.now;
  const logger = options.logger?.child({ component: 'relay' });
  const maxFrameBytes = options.config.channel?.maxFrameBytes ?? 65_536;
  const maxDataChars = Math.ceil(maxFrameBytes / 3) * 4;
  const maxQueuedEvents = options.maxQueuedEvents ?? 10_000;
  const maxQueuedBytes = options.maxQueuedBytes ?? options.config.channel?.sendQueueBytes ?? 4 * 1024 * 1024;
  const heartbeatMs = options.heartbeatMs ?? 5_000;
  const presenceTtlMs = heartbeatMs * 3;
  const backlogPage = options.backlogPage ?? 256;
  const historyLimits = { maxCount: relayConfig.historyMaxCount, maxAgeMs: relayConfig.historyMaxAgeSeconds * 1000 };
  const startedAt = now();

  const slowConsumers = metrics
    ? ((metrics.registry.getSingleMetric('ssc_relay_slow_consumers_total') as Counter | undefined) ??
      new Counter({
        name: 'ssc_relay_slow_consumers_total',
        help: 'Connections closed by the relay because their send queue passed its bound (4008).',
        registers: [metrics.registry],
      }))
    : undefined;
  // Message counters are added up per event-loop turn and written once (every prom-client `inc`
  // hashes its labels; per command that showed in the profile).
  const tallies: { child: { inc(value: number): void }; n: number }[] = [];
  let tallyScheduled = false;
  const flushTallies = () => {
    tallyScheduled = false;
    for (const t of tallies) {
      if (t.n === 0) continue;
      t.child.inc(t.n);
      t.n = 0;
    }
  };
  const tally = (child: { inc(value: number): void } | undefined) => {
    if (!child) return undefined;
    const t = {
      child,
      n: 0,
      inc(value = 1) {
        t.n += value;
        if (!tallyScheduled) {
          tallyScheduled = true;
          setImmediate(flushTallies);
        }
      },
    };
    tallies.push(t);
    return t;
  };
  const count = {
    inPublish: tally(metrics?.messages.labels('in', 'publish')),
    inDirect: tally(metrics?.messages.labels('in', 'direct')),
    inAck: tally(metrics?.messages.labels('in', 'ack')),
    inControl: tally(metrics?.messages.labels('in', 'control')),
    outPublish: tally(metrics?.messages.labels('out', 'publish')),
    outDirect: tally(metrics?.messages.labels('out', 'direct')),
  };

  const sessions = new Map<string, SessionState>();
  /** topic → local subscribers. */
  const topics = new Map<string, Set<SessionState>>();
  /** identity → local connections. */
  const identities = new Map<string, Set<SessionState>>();
  /** Pending broker (un)subscriptions per channel, so they apply in order. */
  const channelOps = new Map<string, Promise<void>>();
  /** topic → newest publication handed to this node's live subscribers (resync starts after it). */
  const topicHigh = new Map<string, { epoch: string; offset: number }>();
  /** Topics being resynced → live publications held meanwhile. */
  const resyncing = new Map<string, Publication[]>();
  /**
   * Topic → the offsets its last resync delivered from the store, (after, upTo] in one epoch.
   * Their live envelopes may still be on the way (the read can overtake them): when they arrive
   * after the resync they are not delivered twice.
   */
  const resynced = new Map<string, { epoch: string; after: number; upTo: number }>();
  let resyncs = 0;
  let closed = false;

  // ---- delivery ----------------------------------------------------------------------------

  function send(session: SessionState, events: RelayEvent[]) {
    if (session.closed || events.length === 0) return;
    if (session.blocked || session.out.length > 0) {
      for (const event of events) {
        session.out.push(event);
        session.outBytes += eventBytes(event);
      }
      if (session.out.length > maxQueuedEvents || session.outBytes > maxQueuedBytes) slowConsumer(session);
      return;
    }
    deliverNow(session, events);
  }

  /** Calls the transport; a transport that throws loses its connection, not the fan-out. */
  function deliverNow(session: SessionState, events: RelayEvent[]) {
    try {
      if (!session.conn.deliver(events)) session.blocked = true;
    } catch (error) {
      logger?.warn({ err: (error as Error).message, conn: session.id }, 'deliver threw; detaching connection');
      const { conn } = session;
      void detach(session);
      try {
        conn.close(1011, 'delivery failed');
      } catch {
        // already gone
      }
    }
  }

  function flush(session: SessionState) {
    while (!session.closed && !session.blocked && session.out.length > 0) {
      const chunk = session.out.splice(0, 256);
      for (const event of chunk) session.outBytes -= eventBytes(event);
      deliverNow(session, chunk);
    }
    if (!session.blocked && session.dm.drained) {
      const resume = session.dm.drained;
      session.dm.drained = undefined;
      resume();
    }
  }

  function slowConsumer(session: SessionState) {
    slowConsumers?.inc();
    logger?.warn(
      { conn: session.id, identity: session.identity, queued: session.out.length, bytes: session.outBytes },
      'slow consumer disconnected',
    );
    const { conn } = session;
    void detach(session);
    try {
      conn.close(SLOW_CONSUMER_CLOSE.code, SLOW_CONSUMER_CLOSE.reason);
    } catch (error) {
      logger?.debug({ err: (error as Error).message }, 'close of a slow consumer failed');
    }
  }

  function onPublication(topic: string, publication: Publication) {
    const subscribers = topics.get(topic);
    if (!subscribers || subscribers.size === 0) return;
    const high = topicHigh.get(topic);
    if (!high || high.epoch !== publication.epoch || publication.offset > high.offset) {
      topicHigh.set(topic, { epoch: publication.epoch, offset: publication.offset });
    }
    const event: PublicationEvent = {
      type: 'publication',
      topic,
      offset: publication.offset,
      epoch: publication.epoch,
      from: publication.from,
      data: publication.data,
      time: publication.time,
    };
    const single = [event];
    let delivered = 0;
    batch?.begin();
    try {
      for (const session of subscribers) {
        const sub = session.subs.get(topic);
        if (!sub) continue;
        if (!sub.live) {
          sub.buffer.push(event);
          continue;
        }
        if (event.epoch === sub.epoch && event.offset <= sub.skipUpTo) continue;
        send(session, single);
        delivered++;
      }
    } finally {
      batch?.end();
    }
    if (delivered) {
      count.outPublish?.inc(delivered);
      metrics?.deliveryLatency.observe(Math.max(0, now() - publication.time) / 1000);
    }
  }

  function messageEvent(message: DirectMessage): MessageEvent {
    return { type: 'message', id: message.id, from: message.from, data: message.data, time: message.time };
  }

  function onDirect(identity: string, message: DirectMessage) {
    const targets = identities.get(identity);
    if (!targets || targets.size === 0) return;
    const event = [messageEvent(message)];
    let delivered = 0;
    batch?.begin();
    try {
      for (const session of targets) {
        if (!session.dm.live) {
          session.dm.arrivedDuringLoad = true;
          continue;
        }
        // Already delivered from the backlog. (Later live messages are unique: no further check.)
        if (message.id <= session.dm.skipUpTo) continue;
        if (message.id > session.dm.lastDelivered) session.dm.lastDelivered = message.id;
        send(session, event);
        delivered++;
      }
    } finally {
      batch?.end();
    }
    if (delivered) {
      count.outDirect?.inc(delivered);
      metrics?.deliveryLatency.observe(Math.max(0, now() - message.time) / 1000);
    }
  }

  function livePublication(publication: Publication) {
    const held = resyncing.get(publication.topic);
    if (held) {
      held.push(publication);
      return;
    }
    const done = resynced.get(publication.topic);
    if (done && done.epoch === publication.epoch && publication.offset > done.after && publication.offset <= done.upTo) return;
    onPublication(publication.topic, publication);
  }

  function brokerHandler(envelope: BrokerEnvelope) {
    // A node the cluster view does not trust: its live traffic is not delivered here.
    if (trustNode && envelope.node && envelope.node !== nodeId && !trustNode(envelope.node, 'envelope')) return;
    try {
      if (envelope.kind === 'publication') livePublication(envelope.publication);
      else if (envelope.kind === 'publications') for (const publication of envelope.publications) livePublication(publication);
      else if (envelope.kind === 'direct') onDirect(envelope.message.to, envelope.message);
    } catch (error) {
      logger?.error({ err: (error as Error).message }, 'broker message handling failed');
    }
  }

  /** Subscribes/unsubscribes the node's broker channel, serialised per channel. */
  function channelOp(channel: string, op: () => Promise<void>): Promise<void> {
    const previous = channelOps.get(channel) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(op);
    channelOps.set(channel, next);
    void next.finally(() => {
      if (channelOps.get(channel) === next) channelOps.delete(channel);
    }).catch(() => undefined);
    return next;
  }

  async function joinLocal<K>(map: Map<K, Set<SessionState>>, key: K, channel: string, session: SessionState) {
    let set = map.get(key);
    const first = !set;
    if (!set) map.set(key, (set = new Set()));
    set.add(session);
    if (first) {
      await channelOp(channel, () => broker.subscribe(channel, brokerHandler));
    } else {
      await channelOps.get(channel);
    }
  }

  function leaveLocal<K>(map: Map<K, Set<SessionState>>, key: K, channel: string, session: SessionState) {
    const set = map.get(key);
    if (!set) return;
    set.delete(session);
    if (set.size === 0) {
      map.delete(key);
      void channelOp(channel, async () => {
        if (!map.has(key)) await broker.unsubscribe(channel);
      }).catch(() => undefined);
    }
  }

  function leaveTopic(topic: string, session: SessionState) {
    leaveLocal(topics, topic, topicChannel(topic), session);
    if (!topics.has(topic)) {
      topicHigh.delete(topic);
      resynced.delete(topic);
    }
  }

  // ---- direct-message backlog ----------------------------------------------------------------

  /**
   * Delivers the identity's pending direct messages after `from`, page by page (waiting for drain
   * when backpressured), until a read saw no live arrival; then live delivery takes over.
   */
  async function replayBacklog(session: SessionState, from = 0, join = true) {
    let cursor = from;
    session.dm.live = false;
    let attempt = 0;
    try {
      if (join) await joinLocal(identities, session.identity, identityChannel(session.identity), session);
      for (;;) {
        if (!join) {
          // A resync: the store may still be recovering (breaker half-open). Live messages are
          // held in the store meanwhile, so retry with backoff rather than drop the connection.
          try {
            await store.pendingCount(session.identity);
            attempt = 0;
          } catch (error) {
            if (session.closed || closed) return;
            attempt++;
            logger?.debug({ err: (error as Error).message, attempt }, 'direct-message resync waits for the store');
            await Bun.sleep(Math.min(250 * 2 ** attempt, 5_000));
            continue;
          }
        }
        session.dm.arrivedDuringLoad = false;
        const page = await store.pending(session.identity, cursor, backlogPage);
        if (session.closed) return;
        if (page.length > 0) {
          cursor = page[page.length - 1].id;
          if (cursor > session.dm.lastDelivered) session.dm.lastDelivered = cursor;
          send(session, page.map(messageEvent));
          count.outDirect?.inc(page.length);
        }
        if (page.length === backlogPage || session.dm.arrivedDuringLoad) {
          if (session.blocked) await new Promise<void>((resolve) => (session.dm.drained = resolve));
          if (session.closed) return;
          continue;
        }
        break;
      }
      session.dm.skipUpTo = cursor;
      session.dm.live = true;
    } catch (error) {
      // Without its backlog the at-least-once promise cannot be kept on this connection: close it,
      // the client reconnects and the backlog is replayed then.
      logger?.warn({ err: (error as Error).message, conn: session.id }, 'direct-message backlog failed; closing');
      const { conn } = session;
      await detach(session);
      conn.close(1011, 'relay store unavailable');
    }
  }

  // ---- resync after a broker reconnect -----------------------------------------------------

  /**
   * The broker lost and restored its subscriptions: live envelopes of the gap are gone, but
   * everything is in the store. Topics: read history after the node's high-water mark and hand
   * it to live subscribers (live arrivals meanwhile are held, then deduplicated). Direct
   * messages: replay each connection's queue after the last id it was given.
   */
  async function resync() {
    if (closed) return;
    resyncs++;
    for (const session of sessions.values()) {
      if (session.dm.live) void replayBacklog(session, session.dm.lastDelivered, false);
    }
    await Promise.allSettled([...topics.keys()].map((topic) => resyncTopic(topic)));
  }

  async function resyncTopic(topic: string) {
    const high = topicHigh.get(topic);
    if (!high || resyncing.has(topic)) return;
    resyncing.set(topic, []);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          const page = await store.readSince(topic, high.offset, {
            limit: historyLimits.maxCount,
            maxCount: historyLimits.maxCount,
            maxAgeMs: historyLimits.maxAgeMs,
            now: now(),
          });
          if (page.position.epoch === high.epoch) {
            for (const publication of page.publications) onPublication(topic, publication);
            const last = page.publications.at(-1);
            if (last) resynced.set(topic, { epoch: high.epoch, after: high.offset, upTo: last.offset });
          }
          break;
        } catch (error) {
          // Live publications are held meanwhile; give up after ~10 s and let live delivery go on.
          if (attempt >= 6 || closed) {
            logger?.warn({ err: (error as Error).message, topic }, 'topic resync failed; live delivery continues');
            break;
          }
          await Bun.sleep(Math.min(250 * 2 ** attempt, 4_000));
        }
      }
    } finally {
      const held = resyncing.get(topic) ?? [];
      resyncing.delete(topic);
      for (const publication of held) {
        const seen = topicHigh.get(topic);
        if (seen && seen.epoch === publication.epoch && publication.offset <= seen.offset) continue;
        onPublication(topic, publication);
      }
    }
  }
  broker.onReconnect?.(() => void resync());

  // ---- authorisation -----------------------------------------------------------------------

  function privateAllowed(topic: string, identity: string): boolean {
    for (const [pattern, members] of Object.entries(relayConfig.privateTopics)) {
      const matches = pattern.endsWith('*') ? topic.startsWith(pattern.slice(0, -1)) : topic === pattern;
      if (matches && (members.includes(identity) || members.includes('*'))) return true;
    }
    return false;
  }

  async function authorize(session: SessionState, topic: string, right: 'subscribe' | 'publish', grant?: Grant) {
    if (authorizedNow(session, topic, right)) return;
    if (topic.startsWith('user:')) throw new RelayError('forbidden', `${topic} belongs to another identity`);
    // private: without an allow-list entry or a grant held
    if (grant) {
      if (grant.topic !== topic) throw new RelayError('forbidden', 'grant is for another topic');
      if (grant.identity !== session.identity) throw new RelayError('forbidden', 'grant is for another identity');
      if (grant.exp * 1000 <= now()) throw new RelayError('forbidden', 'grant expired');
      if (!grant.rights.includes(right)) throw new RelayError('forbidden', `grant does not allow ${right}`);
      if (!verifyGrant) throw new RelayError('forbidden', 'grants are not accepted on this node');
      let valid = false;
      try {
        valid = await verifyGrant(grant);
      } catch (error) {
        logger?.warn({ err: (error as Error).message }, 'grant verification failed');
      }
      if (!valid) throw new RelayError('forbidden', 'grant signature does not verify');
      session.grants.set(topic, grant);
      return;
    }
    throw new RelayError('forbidden', `${topic} needs an allow-list entry or a signed grant`);
  }

  /** The namespace rules that need no grant verification: `authorize` passes at once when this holds. */
  function authorizedNow(session: SessionState, topic: string, right: 'subscribe' | 'publish'): boolean {
    if (topic.startsWith('public:')) return true;
    if (topic.startsWith('user:')) return topic.slice(5) === session.identity;
    if (privateAllowed(topic, session.identity)) return true;
    const held = session.grants.get(topic);
    return held !== undefined && held.exp * 1000 > now() && held.rights.includes(right);
  }

  /** Issues `issue` after every earlier ordered command was issued (not finished): per-session order. */
  function ordered<T>(session: SessionState, prepare: () => unknown, issue: () => Promise<T>): Promise<T> {
    session.unissued++;
    const step = session.tail.then(prepare).then(
      () => {
        session.unissued--;
        return { op: issue() };
      },
      (error) => {
        session.unissued--;
        throw error;
      },
    );
    session.tail = step.then(
      () => undefined,
      () => undefined,
    );
    return step.then((s) => s.op);
  }

  // ---- commands ----------------------------------------------------------------------------

  async function subscribe(
    session: SessionState,
    cmd: Extract<RelayCommand, { cmd: 'subscribe' }>,
  ): Promise<{ result: Record<string, unknown>; after?: () => void }> {
    const { topic } = cmd;
    if (session.subs.has(topic)) return { result: { topic, alreadySubscribed: true } };
    if (session.subs.size >= relayConfig.maxTopicsPerConnection) {
      throw new RelayError('too_many_topics', `at most ${relayConfig.maxTopicsPerConnection} topics per connection`);
    }
    await authorize(session, topic, 'subscribe', cmd.grant);
    if (session.subs.has(topic)) return { result: { topic, alreadySubscribed: true } };
    const sub: Subscription = { live: false, buffer: [], epoch: '', skipUpTo: 0, since: 0 };
    session.subs.set(topic, sub);
    try {
      // Subscribe to live traffic first (buffered), then read history: nothing falls between.
      await joinLocal(topics, topic, topicChannel(topic), session);
      let since = cmd.since;
      if (!since && cmd.recover) since = await store.getCursor(session.identity, topic);
      let replay: PublicationEvent[] = [];
      let recovered: boolean | undefined;
      let position: { epoch: string; offset: number };
      if (since) {
        const page = await store.readSince(topic, since.offset, {
          limit: relayConfig.historyMaxCount,
          maxCount: historyLimits.maxCount,
          maxAgeMs: historyLimits.maxAgeMs,
          now: now(),
        });
        position = page.position;
        if (page.position.epoch === since.epoch) {
          replay = page.publications.map((p) => ({ type: 'publication' as const, ...p }));
          const first = page.publications[0];
          // Recovered when nothing between `since` and the first kept publication was trimmed.
          recovered = first ? first.offset === since.offset + 1 : page.position.offset <= since.offset;
          sub.skipUpTo = Math.max(since.offset, replay.length ? replay[replay.length - 1].offset : 0);
        } else {
          recovered = false;
          sub.skipUpTo = page.position.offset;
        }
      } else {
        position = await store.position(topic);
        sub.skipUpTo = position.offset;
      }
      sub.epoch = position.epoch;
      if (session.closed || session.subs.get(topic) !== sub) throw new RelayError('closed', 'connection closed');
      await broker.presenceJoin(
        topic,
        [{ clientId: session.id, identity: session.identity, nodeId, since: session.joinedAt }],
        presenceTtlMs,
      );
      const result: Record<string, unknown> = { topic, epoch: position.epoch, offset: position.offset };
      if (since) {
        result.recovered = recovered;
        result.replayed = replay.length;
      }
      return {
        result,
        after: () => {
          // Reply first, then the replay, then live publications that arrived meanwhile.
          if (replay.length) send(session, replay);
          const live = sub.buffer.filter((e) => e.epoch !== sub.epoch || e.offset > sub.skipUpTo);
          if (live.length) {
            sub.skipUpTo = Math.max(sub.skipUpTo, live[live.length - 1].offset);
            send(session, live);
          }
          sub.buffer = [];
          sub.live = true;
          if (!topicHigh.has(topic)) topicHigh.set(topic, { epoch: sub.epoch, offset: sub.skipUpTo });
        },
      };
    } catch (error) {
      if (session.subs.get(topic) === sub) {
        session.subs.delete(topic);
        leaveTopic(topic, session);
      }
      throw error;
    }
  }

  async function unsubscribe(session: SessionState, topic: string) {
    if (!session.subs.delete(topic)) throw new RelayError('not_subscribed', `not subscribed to ${topic}`);
    leaveTopic(topic, session);
    await broker.presenceLeave(topic, nodeId, [session.id]);
    return { topic };
  }

  async function publish(session: SessionState, cmd: Extract<RelayCommand, { cmd: 'publish' }>) {
    const { topic, data } = cmd;
    const publication = await ordered(
      session,
      () => authorize(session, topic, 'publish', cmd.grant),
      () => storePublication(topic, { from: session.identity, data, time: now() }, (p) => p, rethrow),
    );
    return { topic, offset: publication.offset, epoch: publication.epoch };
  }

  /**
   * Stores a publication and fans it out; `done` or `failed` runs once it is stored (chained
   * onto the store's promise: one promise per publication on the hot path). A store that assigns
   * the offset now (`appendLive`) is fanned out at once, in offset order (the call is made in
   * command order, synchronously), and answered once the row is committed: a subscriber sees the
   * publication a group commit earlier than the publisher sees its reply. Throws synchronously
   * when `appendLive` does (a closed store).
   */
  function storePublication<T>(topic: string, entry: { from: string; data: string; time: number }, done: (publication: Publication) => T, failed: (error: unknown) => T): Promise<T> {
    if (store.appendLive) {
      const { publication, committed } = store.appendLive(topic, entry, historyLimits);
      broker.publish(topicChannel(topic), { kind: 'publication', publication, node: nodeId }).catch(onFanoutFailure);
      return committed.then(() => done(publication), failed);
    }
    return store.append(topic, entry, historyLimits).then(async (appended) => {
      if (!appended.published) {
        const { published: _, ...plain } = appended;
        await broker.publish(topicChannel(topic), { kind: 'publication', publication: plain, node: nodeId });
      }
      return done(appended);
    }, failed);
  }

  async function sendDirect(session: SessionState, cmd: Extract<RelayCommand, { cmd: 'send' }>) {
    const message = await ordered(
      session,
      () => undefined,
      () => store.enqueue(cmd.to, { from: session.identity, data: cmd.data, time: now() }, relayConfig.queueMaxCount),
    );
    return await directStored(cmd.to, message);
  }

  /** A direct message is stored: fan it out live (unless the store did) and answer the sender. */
  async function directStored(to: string, message: EnqueueResult): Promise<Record<string, unknown>> {
    // Stored: the sender's ok is honest from here on, even if the live fan-out is lost.
    if (!message.published) {
      const { published: _, ...plain } = message;
      try {
        await broker.publish(identityChannel(to), { kind: 'direct', message: plain, node: nodeId });
      } catch (error) {
        logger?.warn({ err: (error as Error).message }, 'live fan-out of a stored direct message failed');
      }
    }
    return { id: message.id, to };
  }

  const rethrow = (error: unknown): never => {
    throw error;
  };

  function onFanoutFailure(error: unknown) {
    logger?.warn({ err: (error as Error).message }, 'live fan-out of a publication failed');
  }

  async function ack(session: SessionState, cmd: Extract<RelayCommand, { cmd: 'ack' }>) {
    const result: Record<string, unknown> = {};
    if (cmd.ids) result.acked = await store.ack(session.identity, cmd.ids);
    if (cmd.topic && cmd.position) {
      await authorize(session, cmd.topic, 'subscribe');
      await store.setCursor(session.identity, cmd.topic, cmd.position);
      result.topic = cmd.topic;
    }
    return result;
  }

  async function history(session: SessionState, cmd: Extract<RelayCommand, { cmd: 'history' }>) {
    await authorize(session, cmd.topic, 'subscribe');
    const limit = Math.min(cmd.limit ?? relayConfig.historyMaxCount, relayConfig.historyMaxCount);
    const page = await store.readSince(cmd.topic, cmd.since ?? 0, {
      limit,
      maxCount: historyLimits.maxCount,
      maxAgeMs: historyLimits.maxAgeMs,
      now: now(),
    });
    return {
      topic: cmd.topic,
      epoch: page.position.epoch,
      offset: page.position.offset,
      publications: page.publications.map(({ offset, from, data, time }) => ({ offset, from, data, time })),
    };
  }

  async function presence(session: SessionState, topic: string) {
    await authorize(session, topic, 'subscribe');
    const entries = (await broker.presenceList(topic)).filter(
      (e) => !trustNode || e.nodeId === nodeId || trustNode(e.nodeId, 'presence'),
    );
    entries.sort((a, b) => a.since - b.since || a.clientId.localeCompare(b.clientId));
    return {
      topic,
      clients: entries.map((e) => ({ clientId: e.clientId, identity: e.identity, nodeId: e.nodeId, since: e.since })),
      identities: [...new Set(entries.map((e) => e.identity))].sort(),
    };
  }

  function parse(input: unknown): { cmd?: RelayCommand; id: RequestId | null; error?: RelayError } {
    let value = input;
    if (typeof input === 'string' || input instanceof Uint8Array) {
      try {
        value = JSON.parse(typeof input === 'string' ? input : utf8.decode(input));
      } catch {
        return { id: null, error: new RelayError('bad_request', 'command is not UTF-8 JSON') };
      }
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { id: null, error: new RelayError('bad_request', 'command must be a JSON object') };
    }
    const raw = value as Record<string, unknown>;
    const id = typeof raw.id === 'number' || (typeof raw.id === 'string' && raw.id.length <= 64) ? raw.id : null;
    if (typeof raw.cmd !== 'string' || !(commandNames as readonly string[]).includes(raw.cmd)) {
      return { id, error: new RelayError('unknown_command', `unknown command ${JSON.stringify(raw.cmd)?.slice(0, 40)}`) };
    }
    if (typeof raw.data === 'string' && raw.data.length > maxDataChars) {
      return { id, error: new RelayError('payload_too_large', `data is longer than ${maxDataChars} base64 characters`) };
    }
    const hot = parseHotCommand(raw);
    if (hot) return { cmd: hot, id: hot.id };
    const parsed = commandSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
      const code = issue.path.length === 1 && issue.path[0] === 'topic' && typeof raw.topic === 'string' ? 'bad_topic' : 'bad_request';
      return { id, error: new RelayError(code, `${where}${issue.message}`) };
    }
    return { cmd: parsed.data, id: parsed.data.id };
  }

  async function execute(
    session: SessionState,
    cmd: RelayCommand,
  ): Promise<{ result: Record<string, unknown>; after?: () => void }> {
    switch (cmd.cmd) {
      case 'subscribe': {
        count.inControl?.inc();
        return await subscribe(session, cmd);
      }
      case 'unsubscribe':
        count.inControl?.inc();
        return { result: await unsubscribe(session, cmd.topic) };
      case 'publish':
        count.inPublish?.inc();
        return { result: await publish(session, cmd) };
      case 'send':
        count.inDirect?.inc();
        return { result: await sendDirect(session, cmd) };
      case 'ack':
        count.inAck?.inc();
        return { result: await ack(session, cmd) };
      case 'history':
        count.inControl?.inc();
        return { result: await history(session, cmd) };
      case 'presence':
        count.inControl?.inc();
        return { result: await presence(session, cmd.topic) };
      case 'ping':
        count.inControl?.inc();
        return { result: { time: now(), nodeId } };
    }
  }

  /**
   * Commands of one connection take effect as if each ran after the one sent before it — the
   * transport hands them over without waiting for the previous one. Publish and send may overlap
   * one another (`ordered` issues their store writes in command order, so a stream of them is
   * pipelined); any other command waits for everything sent before it, and everything sent after
   * it waits for it.
   */
  function handle(session: SessionState, input: unknown): Promise<RelayReply> {
    // Not async: the hot path (`issueNow`) returns the store's promise itself, without an async
    // function's promise and frame around it per command.
    try {
      const parsed = parse(input);
      const kind = parsed.cmd?.cmd;
      if (kind === 'publish' || kind === 'send') {
        const fast = issueNow(session, parsed.cmd as Extract<RelayCommand, { cmd: 'publish' | 'send' }>);
        if (fast) return fast;
      }
      return handleQueued(session, parsed, kind);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async function handleQueued(session: SessionState, parsed: ReturnType<typeof parse>, kind: RelayCommand['cmd'] | undefined): Promise<RelayReply> {
    if (kind === 'publish' || kind === 'send') {
      if (session.barrier) await session.barrier;
      session.running++;
      try {
        return await run(session, parsed);
      } finally {
        doneRunning(session);
      }
    }
    const before = session.barrier;
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    session.barrier = mine;
    try {
      if (before) await before;
      if (session.running > 0) {
        await new Promise<void>((resolve) => {
          session.idle = resolve;
        });
      }
      return await run(session, parsed);
    } finally {
      if (session.barrier === mine) session.barrier = undefined;
      release();
    }
  }

  /** One frame payload: a command or a batch of them (see `RelaySession.handlePayload`). */
  function handlePayload(session: SessionState, payload: Uint8Array, admit?: (commands: number) => boolean): Promise<unknown> {
    let value: unknown;
    try {
      value = JSON.parse(utf8.decode(payload));
    } catch {
      if (admit && !admit(1)) return DONE;
      return handle(session, payload);
    }
    if (!Array.isArray(value)) {
      if (admit && !admit(1)) return DONE;
      return handle(session, value);
    }
    if (value.length === 0 || value.length > MAX_BATCH_COMMANDS) {
      if (admit && !admit(1)) return DONE;
      metrics?.errors.inc({ kind: 'bad_input' });
      const reply: RelayReply = {
        type: 'reply',
        id: null,
        ok: false,
        error: { code: 'bad_request', message: `a batch holds 1 to ${MAX_BATCH_COMMANDS} commands` },
      };
      send(session, [reply]);
      return Promise.resolve(reply);
    }
    if (admit && !admit(value.length)) return DONE;
    const replies: Promise<RelayReply>[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) replies[i] = handle(session, value[i]);
    return Promise.all(replies);
  }

  /**
   * The hot path of `publish` and `send`: when nothing sent before it is still waiting to be
   * issued (no barrier, no ordered write pending) and no grant needs verifying, the store write
   * is issued synchronously, here — the same order `ordered` would give, without its promise
   * chain — and the reply follows the write. Returns undefined when the command must take the
   * general path.
   */
  function issueNow(session: SessionState, cmd: Extract<RelayCommand, { cmd: 'publish' | 'send' }>): Promise<RelayReply> | undefined {
    if (session.barrier || session.closed || session.unissued > 0) return undefined;
    const id = cmd.id;
    const failed = (error: unknown) => finishIssued(session, errorReply(id, cmd.cmd, error));
    let reply: Promise<RelayReply>;
    if (cmd.cmd === 'publish') {
      if (cmd.grant || !authorizedNow(session, cmd.topic, 'publish')) return undefined;
      const { topic } = cmd;
      try {
        reply = storePublication(
          topic,
          { from: session.identity, data: cmd.data, time: now() },
          (publication) => finishIssued(session, publishReply(id, topic, publication.offset, publication.epoch)),
          failed,
        );
      } catch {
        return undefined; // the general path words the error
      }
      count.inPublish?.inc();
    } else {
      count.inDirect?.inc();
      reply = store
        .enqueue(cmd.to, { from: session.identity, data: cmd.data, time: now() }, relayConfig.queueMaxCount)
        .then((message) => directStored(cmd.to, message))
        .then((result) => finishIssued(session, { type: 'reply', id, ok: true, result }), failed);
    }
    session.running++;
    return reply;
  }

  function finishIssued(session: SessionState, reply: RelayReply): RelayReply {
    doneRunning(session);
    send(session, [reply]);
    return reply;
  }

  /** A publish or send finished: wake the command waiting for all of them, if it is the last. */
  function doneRunning(session: SessionState) {
    if (--session.running === 0 && session.idle) {
      const wake = session.idle;
      session.idle = undefined;
      wake();
    }
  }

  /** The reply to a command that failed with `err` (logged and counted as `run` does). */
  function errorReply(id: RequestId | null, cmd: string, err: unknown): RelayReply {
    const relayError = err instanceof RelayError ? err : new RelayError('internal', 'internal error', { cause: err as Error });
    if (!(err instanceof RelayError)) logger?.error({ err: (err as Error).message, cmd }, 'command failed');
    if (relayError.code === 'unavailable' || relayError.code === 'timeout' || relayError.code === 'internal') {
      metrics?.errors.inc({ kind: relayError.code === 'internal' ? 'internal' : 'dependency' });
    }
    return { type: 'reply', id, ok: false, error: { code: relayError.code as RelayErrorCode, message: relayError.message } };
  }

  async function run(session: SessionState, { cmd, id, error }: ReturnType<typeof parse>): Promise<RelayReply> {
    let reply: RelayReply;
    let after: (() => void) | undefined;
    if (!cmd) {
      metrics?.errors.inc({ kind: 'bad_input' });
      reply = { type: 'reply', id, ok: false, error: { code: error!.code, message: error!.message } };
    } else if (session.closed) {
      reply = { type: 'reply', id, ok: false, error: { code: 'closed', message: 'connection is detached' } };
    } else {
      try {
        const out = await execute(session, cmd);
        reply = { type: 'reply', id, ok: true, result: out.result };
        after = out.after;
      } catch (err) {
        reply = errorReply(id, cmd.cmd, err);
      }
    }
    send(session, [reply]);
    after?.();
    return reply;
  }

  // ---- sessions ----------------------------------------------------------------------------

  async function detach(session: SessionState) {
    if (session.closed) return;
    session.closed = true;
    sessions.delete(session.id);
    session.out = [];
    session.outBytes = 0;
    session.dm.drained?.();
    const subscribed = [...session.subs.keys()];
    session.subs.clear();
    for (const topic of subscribed) leaveTopic(topic, session);
    leaveLocal(identities, session.identity, identityChannel(session.identity), session);
    await Promise.allSettled(subscribed.map((topic) => broker.presenceLeave(topic, nodeId, [session.id])));
  }

  function attach(conn: RelayConnection): RelaySession {
    if (closed) throw new RelayError('closed', 'relay is closed');
    if (sessions.has(conn.id)) throw new RelayError('bad_request', `connection ${conn.id} is already attached`);
    const session: SessionState = {
      id: conn.id,
      identity: conn.identity,
      conn,
      subs: new Map(),
      grants: new Map(),
      out: [],
      outBytes: 0,
      blocked: false,
      closed: false,
      joinedAt: now(),
      tail: Promise.resolve(),
      running: 0,
      unissued: 0,
      dm: { live: false, skipUpTo: 0, lastDelivered: 0, arrivedDuringLoad: false },
      handle: (input) => handle(session, input),
      handlePayload: (payload, admit) => handlePayload(session, payload, admit),
      drain() {
        session.blocked = false;
        flush(session);
      },
      get queued() {
        return session.out.length;
      },
      detach: () => detach(session),
    };
    sessions.set(conn.id, session);
    void replayBacklog(session);
    return session;
  }

  // ---- heartbeat -----------------------------------------------------------------------------

  function describe(info: NodeInfo): NodeInfo {
    if (!options.describeNode) return info;
    try {
      return options.describeNode(info);
    } catch (error) {
      logger?.warn({ err: (error as Error).message }, 'heartbeat description failed; announcing the bare record');
      return info;
    }
  }

  async function heartbeat() {
    if (closed) return;
    const at = now();
    const byTopic = new Map<string, PresenceEntry[]>();
    for (const session of sessions.values()) {
      for (const [topic, sub] of session.subs) {
        if (!sub.live) continue;
        let list = byTopic.get(topic);
        if (!list) byTopic.set(topic, (list = []));
        list.push({ clientId: session.id, identity: session.identity, nodeId, since: session.joinedAt });
      }
    }
    const results = await Promise.allSettled([
      broker.announce(describe({ nodeId, startedAt, at, connections: sessions.size }), heartbeatMs * 3),
      ...[...byTopic].map(([topic, entries]) => broker.presenceJoin(topic, entries, presenceTtlMs)),
    ]);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) logger?.warn({ err: String(failed.reason?.message ?? failed.reason) }, 'heartbeat failed');
  }
  const timer = setInterval(() => void heartbeat(), heartbeatMs);
  timer.unref?.();
  void heartbeat();

  return {
    nodeId,
    attach,
    async detach(id) {
      const session = sessions.get(id);
      if (session) await detach(session);
    },
    session: (id) => sessions.get(id),
    peers: () => broker.peers(),
    stats: () => ({ connections: sessions.size, topics: topics.size, identities: identities.size, resyncs }),
    heartbeat,
    async close() {
      clearInterval(timer);
      await Promise.allSettled([...sessions.values()].map((s) => detach(s)));
      closed = true;
      await Promise.allSettled([...channelOps.values()]);
    },
  };
}
