/**
 * The relay's seams: `Broker` (fan-out between nodes, presence, node heartbeats) and `Store`
 * (topic history with offsets, direct-message queues, consumer positions, a small KV and
 * time-series space). Both are chosen in one place (`createRelayBackends`) and every backend
 * passes the same shared test suite (`test/relay/suite.ts`).
 *
 * Values crossing these interfaces are plain objects; the payload `data` is an opaque string
 * (base64 on the wire, see docs/RELAY.md) that the relay never decodes.
 */

/** Stable error codes of the relay; answered to clients and thrown by backends. */
export const relayErrorCodes = [
  'bad_request',
  'unknown_command',
  'bad_topic',
  'forbidden',
  'not_subscribed',
  'too_many_topics',
  'payload_too_large',
  'queue_full',
  'unavailable',
  'timeout',
  'closed',
  'internal',
] as const;
export type RelayErrorCode = (typeof relayErrorCodes)[number];

/** The one error type of the relay layer, with a stable `code`. */
export class RelayError extends Error {
  constructor(
    readonly code: RelayErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RelayError';
  }
}

/** Health of a backend, mapped by the caller onto the health registry. */
export interface BackendHealth {
  status: 'healthy' | 'warning' | 'degraded' | 'critical' | 'down';
  output: string;
  details?: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Store

/** A publication as kept in history and fanned out. `offset` increases by 1 per topic. */
export interface Publication {
  topic: string;
  /** Position in the topic's history, 1-based, strictly increasing within an epoch. */
  offset: number;
  /** Identifies one lifetime of the topic's history; a new epoch means offsets restarted. */
  epoch: string;
  /** Publisher identity (fingerprint). */
  from: string;
  /** Opaque payload (base64 text on the wire). */
  data: string;
  /** Time the relay accepted it, ms since the epoch. */
  time: number;
}

/** A direct message in a recipient's queue. `id` increases per recipient. */
export interface DirectMessage {
  id: number;
  to: string;
  from: string;
  data: string;
  time: number;
}

/** Where a topic's history stands: its epoch and the offset of the newest publication (0 = none). */
export interface StreamPosition {
  epoch: string;
  offset: number;
}

export interface HistoryLimits {
  /** Publications kept per topic. */
  maxCount: number;
  /** Publications older than this (ms) are trimmed and never returned. */
  maxAgeMs: number;
}

export interface AppendResult extends Publication {
  /**
   * True when the store already fanned the publication out through its paired broker,
   * atomically with the append (Redis: XADD and SPUBLISH in one script, so live order equals
   * offset order across nodes). The relay then does not publish it again.
   */
  published?: boolean;
}

export interface EnqueueResult extends DirectMessage {
  /** As `AppendResult.published`, for the recipient's identity channel. */
  published?: boolean;
}

export interface HistoryPage {
  /** Current position of the topic (epoch and newest offset). */
  position: StreamPosition;
  /** Publications with offset > since, oldest first, within the age limit, at most `limit`. */
  publications: Publication[];
}

/** Namespaced key-value entries with optional TTL (bans, alert state, watermarks). */
export interface KeyValue {
  get(namespace: string, key: string): Promise<string | undefined>;
  /** Sets a value; `ttlMs` > 0 makes it expire. */
  set(namespace: string, key: string, value: string, ttlMs?: number): Promise<void>;
  delete(namespace: string, key: string): Promise<boolean>;
  /** Live entries of a namespace. */
  list(namespace: string): Promise<Array<{ key: string; value: string }>>;
}

/** Append-only numeric time series (metric history). */
export interface TimeSeries {
  /** Appends points; `retainMs` > 0 trims points older than now − retainMs. */
  append(series: string, points: Array<[time: number, value: number]>, retainMs?: number): Promise<void>;
  /** Points with from ≤ time ≤ to, ascending. */
  range(series: string, from: number, to: number): Promise<Array<[number, number]>>;
}

export interface Store {
  readonly backend: 'sqlite' | 'redis' | 'memory';
  /** Appends to a topic's history (assigning the next offset), trimming by count and age. */
  append(topic: string, entry: { from: string; data: string; time: number }, limits: HistoryLimits): Promise<AppendResult>;
  /**
   * Optional: appends with the offset assigned now, synchronously (the store owns the topic's
   * counter in memory), so the caller can fan the publication out at once, in offset order;
   * `committed` settles when the row is durable (rejects when the write failed — the topic then
   * moves to a new epoch, so the offsets handed out are never reused). The SQLite store has it;
   * a store whose counter lives elsewhere (Redis) does not.
   */
  appendLive?(
    topic: string,
    entry: { from: string; data: string; time: number },
    limits: HistoryLimits,
  ): { publication: Publication; committed: Promise<void> };
  /**
   * Publications after `since` (exclusive), oldest first, at most `limit`, none older than
   * `maxAgeMs` and none outside the newest `maxCount` (backends may trim lazily).
   */
  readSince(
    topic: string,
    since: number,
    options: { limit: number; maxCount: number; maxAgeMs: number; now: number },
  ): Promise<HistoryPage>;
  /** Current epoch and newest offset of a topic (creating the epoch when the topic is new). */
  position(topic: string): Promise<StreamPosition>;

  /**
   * Adds a direct message to the recipient's queue. Resolves only once the message is durable
   * in this backend (SQLite: committed in WAL; Redis: as durable as the server's AOF setting),
   * which is what makes the relay's ack to the sender honest. Refuses with `queue_full` past
   * `maxCount` pending messages — it never drops one already accepted.
   */
  enqueue(to: string, entry: { from: string; data: string; time: number }, maxCount: number): Promise<EnqueueResult>;
  /** Pending (unacked) messages of an identity with id > afterId, ascending, at most `limit`. */
  pending(identity: string, afterId: number, limit: number): Promise<DirectMessage[]>;
  /** Removes acknowledged messages; returns how many were pending. */
  ack(identity: string, ids: number[]): Promise<number>;
  /** Count of pending messages of an identity. */
  pendingCount(identity: string): Promise<number>;

  /** A consumer position (resume token) an identity committed for a topic. */
  getCursor(identity: string, topic: string): Promise<StreamPosition | undefined>;
  setCursor(identity: string, topic: string, position: StreamPosition): Promise<void>;

  readonly kv: KeyValue;
  readonly series: TimeSeries;

  health(): Promise<BackendHealth>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Broker

/**
 * What travels between nodes. Memory passes the object; Redis sends it as JSON. `node` names the
 * node that accepted the command (absent from older senders); a receiving relay drops live
 * envelopes from a node its cluster view does not trust (docs/RELIABILITY.md).
 */
export type BrokerEnvelope =
  | { kind: 'publication'; publication: Publication; node?: string }
  /** Several publications of one topic, in offset order (one store append of a batch). */
  | { kind: 'publications'; publications: Publication[]; node?: string }
  | { kind: 'direct'; message: DirectMessage; node?: string };

/** One connection's presence on a topic. */
export interface PresenceEntry {
  /** Connection id (unique per node; combined with nodeId it is unique in the cluster). */
  clientId: string;
  identity: string;
  nodeId: string;
  /** When it joined, ms since the epoch. */
  since: number;
}

/** A node's heartbeat record. */
export interface NodeInfo {
  nodeId: string;
  startedAt: number;
  /** Time of this heartbeat, ms. */
  at: number;
  connections: number;
  /** Free-form extras (version, public key, signature over the record). */
  meta?: Record<string, unknown>;
}

export type BrokerHandler = (envelope: BrokerEnvelope) => void;

export interface Broker {
  readonly backend: 'memory' | 'redis';
  /** Whether the channels are sharded pub/sub (Redis ≥ 7) — informational. */
  readonly sharded: boolean;
  /** Fans an envelope out to every node subscribed to `channel` (at-most-once). */
  publish(channel: string, envelope: BrokerEnvelope): Promise<void>;
  /** Subscribes this node to a channel; one handler per channel (the relay multiplexes locally). */
  subscribe(channel: string, handler: BrokerHandler): Promise<void>;
  unsubscribe(channel: string): Promise<void>;

  /** Adds or refreshes presence entries; each expires `ttlMs` after its last refresh. */
  presenceJoin(topic: string, entries: PresenceEntry[], ttlMs: number): Promise<void>;
  presenceLeave(topic: string, nodeId: string, clientIds: string[]): Promise<void>;
  /** Live entries of a topic, across nodes. */
  presenceList(topic: string): Promise<PresenceEntry[]>;

  /** Records this node's heartbeat; it counts as a peer for `ttlMs`. */
  announce(node: NodeInfo, ttlMs: number): Promise<void>;
  /** Nodes with a live heartbeat (this one included). */
  peers(): Promise<NodeInfo[]>;

  /**
   * Registers a listener called after the broker lost its subscription connection and restored
   * it: live envelopes may have been missed meanwhile, so the relay fills the gap from the store.
   * Brokers that cannot lose messages this way (memory) may omit it.
   */
  onReconnect?(listener: () => void): void;

  health(): Promise<BackendHealth>;
  close(): Promise<void>;
}

/** Broker channel of a topic. */
export const topicChannel = (topic: string) => `t:${topic}`;
/** Broker channel of an identity (direct messages). */
export const identityChannel = (identity: string) => `u:${identity}`;
