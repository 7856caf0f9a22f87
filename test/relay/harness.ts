/**
 * Test harness for the relay: backend factories (embedded and Redis), a fake clock, and a test
 * client that records what the relay delivers to its connection.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, type ConfigInput, configSchema } from '../../src/config/index.ts';
import {
  createMemoryHub,
  createRelay,
  createRelayBackends,
  type MessageEvent,
  type PublicationEvent,
  type Relay,
  type RelayBackends,
  type RelayEvent,
  type RelayOptions,
  type RelayReply,
  type RelaySession,
} from '../../src/relay/index.ts';

/** A clock the test moves by hand; starts at the real time. */
export function fakeClock() {
  let t = Date.now();
  const now = () => t;
  return Object.assign(now, {
    advance(ms: number) {
      t += ms;
    },
  });
}
export type FakeClock = ReturnType<typeof fakeClock>;

/** One isolated cluster: nodes created from it share state (hub + SQLite file, or one Redis prefix). */
export interface Cluster {
  config: Config;
  node(now: () => number): Promise<RelayBackends>;
}

export interface BackendFactory {
  name: string;
  cluster(relay?: ConfigInput['relay']): Promise<Cluster>;
}

export const embeddedFactory: BackendFactory = {
  name: 'memory+sqlite',
  async cluster(relay = {}) {
    const dataDir = mkdtempSync(join(tmpdir(), 'ssc-relay-'));
    const config = configSchema.parse({ relay, server: { dataDir }, broker: { type: 'memory' } });
    const hub = createMemoryHub();
    return { config, node: (now) => createRelayBackends(config, { hub, now }) };
  },
};

export function redisFactory(url: () => string): BackendFactory {
  return {
    name: 'redis',
    async cluster(relay = {}) {
      const keyPrefix = `t${randomBytes(4).toString('hex')}:`;
      const config = configSchema.parse({
        relay,
        broker: { type: 'redis', redis: { url: url(), keyPrefix, commandTimeoutMs: 2_000 } },
      });
      return { config, node: (now) => createRelayBackends(config, { now }) };
    },
  };
}

/** A random identity fingerprint (64 hex). */
export const identity = () => randomBytes(32).toString('hex');

export interface TestClient {
  session: RelaySession;
  identity: string;
  events: RelayEvent[];
  closed?: { code: number; reason: string };
  /** While true, `deliver` answers false (backpressure). */
  blocked: boolean;
  /** Sends a command (id assigned) and resolves with its reply. */
  cmd(command: Record<string, unknown>): Promise<RelayReply>;
  /** Sends a command that must succeed; returns its result. */
  ok(command: Record<string, unknown>): Promise<Record<string, any>>;
  publications(topic?: string): PublicationEvent[];
  messages(): MessageEvent[];
  replies(): RelayReply[];
  waitFor(predicate: () => boolean, what?: string, timeoutMs?: number): Promise<void>;
}

let nextConn = 0;

/** Attaches a recording connection to a relay. */
export function attachClient(relay: Relay, who: string = identity()): TestClient {
  let nextId = 1;
  const client: TestClient = {
    identity: who,
    events: [],
    blocked: false,
    session: undefined as unknown as RelaySession,
    async cmd(command) {
      return client.session.handle({ id: nextId++, ...command });
    },
    async ok(command) {
      const reply = await client.cmd(command);
      if (!reply.ok) throw new Error(`${command.cmd} failed: ${reply.error.code} ${reply.error.message}`);
      return reply.result as Record<string, any>;
    },
    publications: (topic) =>
      client.events.filter((e): e is PublicationEvent => e.type === 'publication' && (!topic || e.topic === topic)),
    messages: () => client.events.filter((e): e is MessageEvent => e.type === 'message'),
    replies: () => client.events.filter((e): e is RelayReply => e.type === 'reply'),
    async waitFor(predicate, what = 'condition', timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await Bun.sleep(5);
      }
    },
  };
  client.session = relay.attach({
    id: `c${++nextConn}`,
    identity: who,
    deliver(events) {
      client.events.push(...events);
      return !client.blocked;
    },
    close(code, reason) {
      client.closed = { code, reason };
    },
  });
  return client;
}

/** Tracks relays and backends created in a test and closes them afterwards. */
export function createTracker() {
  const closers: Array<() => Promise<void>> = [];
  return {
    async relay(
      cluster: Cluster,
      options: Partial<Omit<RelayOptions, 'broker' | 'store' | 'config'>> & { now?: () => number } = {},
    ): Promise<{ relay: Relay; backends: RelayBackends }> {
      const now = options.now ?? Date.now;
      const backends = await cluster.node(now);
      const relay = createRelay({
        config: cluster.config,
        broker: backends.broker,
        store: backends.store,
        nodeId: options.nodeId ?? `node-${randomBytes(3).toString('hex')}`,
        ...options,
        now,
      });
      let closed = false;
      const close = async () => {
        if (closed) return;
        closed = true;
        await relay.close();
        await backends.close();
      };
      closers.push(close);
      return { relay, backends: { ...backends, close } };
    },
    async closeAll() {
      for (const close of closers.splice(0).reverse()) await close();
    },
  };
}

export const b64 = (text: string) => Buffer.from(text).toString('base64');
export const unb64 = (data: string) => Buffer.from(data, 'base64').toString();
