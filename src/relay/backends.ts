/**
 * The one place the relay's backends are chosen from config (`broker.type`):
 * - `memory` (embedded default): in-process broker + `bun:sqlite` store under `server.dataDir`;
 * - `redis` (several nodes): Redis broker + Redis store on one ioredis connection pair.
 * Also the health checks of the chosen backends, registered by the caller.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import type { ComponentCheck, ComponentName } from '../observability/health.ts';
import type { Metrics } from '../observability/metrics.ts';
import { createMemoryBroker, type MemoryHub } from './memory.ts';
import { createRedisBackends } from './redis.ts';
import { createSqliteStore } from './sqlite.ts';
import type { Broker, NodeInfo, Store } from './types.ts';

export { createMemoryBroker, createMemoryHub, type MemoryHub } from './memory.ts';
export { createRedisBackends, type RedisBackendOptions, type RedisBackends } from './redis.ts';
export { createSqliteStore, type SqliteStoreOptions } from './sqlite.ts';

export interface RelayBackends {
  kind: 'embedded' | 'redis';
  broker: Broker;
  store: Store;
  /** Closes the store and broker (after the relay is closed). */
  close(): Promise<void>;
}

export interface RelayBackendDeps {
  logger?: Logger;
  metrics?: Metrics;
  now?: () => number;
  /** Embedded only: share an in-process hub between several relays (tests). */
  hub?: MemoryHub;
  /** Embedded only: the SQLite file (default `<dataDir>/relay.sqlite`), or `:memory:`. */
  sqlitePath?: string;
  /** Embedded only: `full` (default, fsync per group commit) or `normal`. */
  sqliteSynchronous?: 'full' | 'normal';
  /** This node's id (Redis: tagged on the envelopes its scripts fan out). */
  nodeId?: string;
}

/**
 * Creates the broker and store that `config.broker.type` names.
 *
 * @example
 * const backends = await createRelayBackends(config, { logger, metrics });
 * const relay = createRelay({ config, ...backends, logger, metrics, nodeId });
 */
export async function createRelayBackends(
  config: Pick<Config, 'broker' | 'server'>,
  deps: RelayBackendDeps = {},
): Promise<RelayBackends> {
  const logger = deps.logger?.child({ component: 'relay-backend' });
  if (config.broker.type === 'redis') {
    const redis = await createRedisBackends({
      url: config.broker.redis.url,
      keyPrefix: config.broker.redis.keyPrefix,
      commandTimeoutMs: config.broker.redis.commandTimeoutMs,
      logger,
      metrics: deps.metrics,
      now: deps.now,
      nodeId: deps.nodeId,
    });
    return { kind: 'redis', broker: redis.broker, store: redis.store, close: redis.close };
  }
  const broker = createMemoryBroker({ hub: deps.hub, now: deps.now });
  const store = createSqliteStore({
    path: deps.sqlitePath ?? join(config.server.dataDir, 'relay.sqlite'),
    synchronous: deps.sqliteSynchronous,
    now: deps.now,
  });
  deps.metrics?.brokerUp.set({ backend: 'memory' }, 1);
  return {
    kind: 'embedded',
    broker,
    store,
    async close() {
      await broker.close();
      await store.close();
      deps.metrics?.brokerUp.set({ backend: 'memory' }, 0);
    },
  };
}

/** The part of the health registry this needs (`health.register`). */
export interface HealthRegistrar {
  register(component: ComponentName, name: string, check: ComponentCheck): void;
}

/**
 * Registers the relay's checks: `relay-broker` and `relay-store` under `network` (critical: the
 * relay cannot route without them) and `cluster-peers` under `consensus` (live heartbeats).
 */
export function registerRelayHealth(
  health: HealthRegistrar,
  backends: { broker: Broker; store: Store },
  options: { nodeId?: string; expectedPeers?: number } = {},
): void {
  health.register('network', 'relay-broker', {
    critical: true,
    async check() {
      const result = await backends.broker.health();
      return { ...result, action: result.status === 'healthy' ? undefined : 'check the broker (Redis) and the network to it' };
    },
  });
  health.register('network', 'relay-store', {
    critical: true,
    async check() {
      const result = await backends.store.health();
      return { ...result, action: result.status === 'healthy' ? undefined : 'check the store (SQLite file / Redis)' };
    },
  });
  health.register('consensus', 'cluster-peers', {
    critical: false,
    async check() {
      let peers: NodeInfo[];
      try {
        peers = await backends.broker.peers();
      } catch (error) {
        return { status: 'degraded', output: `peers unknown: ${(error as Error).message}`, action: 'check the broker' };
      }
      const self = options.nodeId ? peers.some((p) => p.nodeId === options.nodeId) : true;
      const short = options.expectedPeers !== undefined && peers.length < options.expectedPeers;
      return {
        status: !self || short ? 'warning' : 'healthy',
        observedValue: peers.length,
        observedUnit: 'live nodes',
        output: `${peers.length} node(s) with a live heartbeat${self ? '' : ' (this node missing)'}`,
        details: { peers: peers.map((p) => ({ nodeId: p.nodeId, at: p.at, connections: p.connections })) },
        action: short || !self ? 'check the other nodes and their broker connection' : undefined,
      };
    },
  });
}
