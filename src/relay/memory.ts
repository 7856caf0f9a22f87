/**
 * The embedded broker: fan-out, presence and heartbeats in process memory. One node by default;
 * several relays in one process may share a `MemoryHub` (tests, or a single process hosting
 * several listeners), each with its own `Broker` view, as if they were nodes on one Redis.
 *
 * Dispatch is synchronous: `publish` calls the subscribed handlers of every node before it
 * resolves, so a fan-out reaches the transport within one tick (it can seal it in one batch).
 */
import type { BackendHealth, Broker, BrokerEnvelope, BrokerHandler, NodeInfo, PresenceEntry } from './types.ts';

/** Shared state of the in-process "cluster". */
export interface MemoryHub {
  nodes: Set<{ dispatch(channel: string, envelope: BrokerEnvelope): void }>;
  /** topic → clientKey → entry and expiry. */
  presence: Map<string, Map<string, { entry: PresenceEntry; expires: number }>>;
  heartbeats: Map<string, { node: NodeInfo; expires: number }>;
}

/** Creates an empty hub that several memory brokers can share. */
export function createMemoryHub(): MemoryHub {
  return { nodes: new Set(), presence: new Map(), heartbeats: new Map() };
}

export interface MemoryBrokerOptions {
  /** Share state with other brokers in this process; a private hub by default. */
  hub?: MemoryHub;
  now?: () => number;
}

const presenceKey = (entry: { nodeId: string; clientId: string }) => `${entry.nodeId}/${entry.clientId}`;

/**
 * Creates the in-process broker.
 *
 * @example
 * const broker = createMemoryBroker();
 * await broker.subscribe('t:public:news', (envelope) => handle(envelope));
 */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): Broker {
  const hub = options.hub ?? createMemoryHub();
  const now = options.now ?? Date.now;
  const handlers = new Map<string, BrokerHandler>();
  let closed = false;
  const node = {
    dispatch(channel: string, envelope: BrokerEnvelope) {
      const handler = handlers.get(channel);
      if (handler) handler(envelope);
    },
  };
  hub.nodes.add(node);

  function livePresence(topic: string): Map<string, { entry: PresenceEntry; expires: number }> | undefined {
    const entries = hub.presence.get(topic);
    if (!entries) return undefined;
    const t = now();
    for (const [key, value] of entries) if (value.expires <= t) entries.delete(key);
    if (entries.size === 0) {
      hub.presence.delete(topic);
      return undefined;
    }
    return entries;
  }

  return {
    backend: 'memory',
    sharded: false,
    async publish(channel, envelope) {
      if (closed) return;
      for (const target of hub.nodes) target.dispatch(channel, envelope);
    },
    async subscribe(channel, handler) {
      handlers.set(channel, handler);
    },
    async unsubscribe(channel) {
      handlers.delete(channel);
    },
    async presenceJoin(topic, entries, ttlMs) {
      let map = hub.presence.get(topic);
      if (!map) hub.presence.set(topic, (map = new Map()));
      const expires = now() + ttlMs;
      for (const entry of entries) map.set(presenceKey(entry), { entry, expires });
    },
    async presenceLeave(topic, nodeId, clientIds) {
      const map = hub.presence.get(topic);
      if (!map) return;
      for (const clientId of clientIds) map.delete(presenceKey({ nodeId, clientId }));
      if (map.size === 0) hub.presence.delete(topic);
    },
    async presenceList(topic) {
      return [...(livePresence(topic)?.values() ?? [])].map((value) => value.entry);
    },
    async announce(info, ttlMs) {
      hub.heartbeats.set(info.nodeId, { node: info, expires: now() + ttlMs });
    },
    async peers() {
      const t = now();
      const out: NodeInfo[] = [];
      for (const [id, value] of hub.heartbeats) {
        if (value.expires <= t) hub.heartbeats.delete(id);
        else out.push(value.node);
      }
      return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    },
    async health(): Promise<BackendHealth> {
      return closed
        ? { status: 'down', output: 'memory broker closed' }
        : { status: 'healthy', output: `memory broker, ${handlers.size} channels`, details: { channels: handlers.size } };
    },
    async close() {
      closed = true;
      handlers.clear();
      hub.nodes.delete(node);
    },
  };
}
