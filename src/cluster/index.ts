/**
 * The cluster view (DESIGN §2, consensus / verification): every node announces a heartbeat in
 * the broker, signed with its ML-DSA-65 identity (FIPS 204, empty context); every node reads
 * its peers' heartbeats and verifies them against the configured node keys (`cluster.trust =
 * "configured"`) or against the key it pinned for that node id on first sight (`"tofu"`).
 *
 * A peer is `verified` (signature good, key trusted), `unverified` (no signature, or a key that
 * is not in the configured set) or `invalid` (signature fails, fingerprint does not name the
 * key, the key differs from the pinned one, or the record is replayed from the past or future).
 * What "not trusted" means for the relay (docs/RELIABILITY.md): live broker envelopes tagged
 * with an unverified or invalid node's id are dropped, its presence entries are hidden, and its
 * claims (connections, load, address) are shown as such, never counted as cluster capacity.
 *
 * The relay owns the heartbeat timer (it refreshes presence in the same beat); this room
 * completes the record (`describe`) and judges the records it reads (`refresh`).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { Config } from '../config/index.ts';
import type { Signer } from '../crypto/types.ts';
import type { AuditEvent } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { CheckResult } from '../observability/health.ts';
import type { NodeInfo } from '../relay/index.ts';
import { fingerprintOf } from '../security/node-keys.ts';

/** Domain separation: a heartbeat signature can never be mistaken for a handshake or audit one. */
export const HEARTBEAT_DOMAIN = 'ssc/cluster-heartbeat/v1';

export type PeerStatus = 'verified' | 'unverified' | 'invalid';

/** One peer as this node judges it. */
export interface PeerView {
  nodeId: string;
  status: PeerStatus;
  /** Why it is not verified (absent when verified). */
  reason?: string;
  self: boolean;
  fingerprint?: string;
  version?: string;
  address?: string;
  connections: number;
  load?: number;
  startedAt: number;
  /** Time of its newest heartbeat, ms. */
  at: number;
}

export interface ClusterView {
  at: number;
  peers: PeerView[];
  /** Set when the broker could not be read; `peers` is then the previous view. */
  error?: string;
}

/** The signed fields of a heartbeat, in `meta`. */
interface SignedMeta {
  v: 1;
  version: string;
  address: string;
  load: number;
  fingerprint: string;
  publicKey: string;
  signature: string;
}

export interface ClusterOptions {
  config: Config['cluster'];
  nodeId: string;
  version: string;
  identity: { seed: Uint8Array; publicKey: Uint8Array; fingerprint: string };
  /** ML-DSA-65 signer; the secret key given to it is the 32-byte seed. */
  signer: Signer;
  /** Reads the live heartbeats (`broker.peers`). */
  peers(): Promise<NodeInfo[]>;
  /** This node's address for peers and the dashboard. */
  address(): string;
  /** This node's load figure (default: event-loop lag in ms is not known here, so 0). */
  load?(): number;
  /** Where TOFU pins are kept (`cluster-pins.json`); in memory only when absent or unwritable. */
  dataDir?: string;
  logger?: Logger;
  audit?(event: AuditEvent): void;
  metrics?: Metrics;
  now?(): number;
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const unb64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));
const encoder = new TextEncoder();

/**
 * The bytes a heartbeat signature covers: the domain, a NUL, then a JSON array of the fields in
 * a fixed order (an array, so key order cannot vary between implementations).
 */
export function heartbeatMessage(
  info: NodeInfo,
  meta: Omit<SignedMeta, 'signature' | 'publicKey'>,
): Uint8Array {
  const fields = [
    info.nodeId,
    meta.fingerprint,
    meta.version,
    meta.address,
    info.startedAt,
    info.at,
    info.connections,
    meta.load,
  ];
  return encoder.encode(`${HEARTBEAT_DOMAIN}\u0000${JSON.stringify(fields)}`);
}

/**
 * Creates the cluster view of one node.
 *
 * @example
 * const cluster = createCluster({ config: config.cluster, nodeId, version, identity: keys.identity,
 *   signer: createNativeSigner(), peers: () => broker.peers(), address: () => urls.public });
 * const relay = createRelay({ ..., describeNode: cluster.describe, trustNode: cluster.trusts });
 */
export function createCluster(options: ClusterOptions) {
  const { config, nodeId, version, identity, signer, logger, audit, metrics, now = Date.now } = options;
  const log = logger?.child({ component: 'consensus' });
  const ttlMs = config.heartbeatSeconds * 3_000;
  const trusted = new Map<string, Uint8Array>();
  for (const [fingerprint, key] of Object.entries(config.trustedKeys)) {
    const publicKey = unb64(key);
    if (publicKey.length !== signer.publicKeyLength || fingerprintOf(publicKey) !== fingerprint) {
      // Checked at the boundary, once: a mistyped key must not silently weaken the check.
      throw new Error(
        `cluster.trustedKeys: the key under ${fingerprint.slice(0, 16)}… is not the ML-DSA-65 key of that fingerprint`,
      );
    }
    trusted.set(fingerprint, publicKey);
  }
  trusted.set(identity.fingerprint, identity.publicKey);

  // TOFU: node id → fingerprint, persisted when the data dir is writable.
  const pinFile = options.dataDir ? join(options.dataDir, 'cluster-pins.json') : undefined;
  const pins = new Map<string, string>();
  if (pinFile) {
    try {
      for (const [id, fp] of Object.entries(
        JSON.parse(readFileSync(pinFile, 'utf8')) as Record<string, string>,
      ))
        pins.set(id, fp);
    } catch {
      // no pins yet
    }
  }
  function savePins() {
    if (!pinFile) return;
    try {
      mkdirSync(dirname(pinFile), { recursive: true });
      writeFileSync(`${pinFile}.tmp`, `${JSON.stringify(Object.fromEntries(pins), null, 2)}\n`, {
        mode: 0o600,
      });
      renameSync(`${pinFile}.tmp`, pinFile);
    } catch (error) {
      log?.warn({ err: (error as Error).message, file: pinFile }, 'cluster pins not saved; kept in memory');
    }
  }

  const registry = metrics?.registry;
  const peerGauge = registry
    ? ((registry.getSingleMetric('ssc_cluster_peers') as Gauge | undefined) ??
      new Gauge({
        name: 'ssc_cluster_peers',
        help: 'Nodes with a live heartbeat, by verification status.',
        labelNames: ['status'],
        registers: [registry],
      }))
    : undefined;
  const rejected = registry
    ? ((registry.getSingleMetric('ssc_cluster_untrusted_total') as Counter | undefined) ??
      new Counter({
        name: 'ssc_cluster_untrusted_total',
        help: 'Live envelopes and presence entries from untrusted nodes that were dropped.',
        labelNames: ['what'],
        registers: [registry],
      }))
    : undefined;

  /** Verdicts by node id, with the record they were reached on (verification is cached per record). */
  const verdicts = new Map<string, { key: string; status: PeerStatus; reason?: string }>();
  let view: ClusterView = { at: 0, peers: [] };

  function describe(info: NodeInfo): NodeInfo {
    const base = {
      v: 1 as const,
      version,
      address: options.address(),
      load: options.load?.() ?? 0,
      fingerprint: identity.fingerprint,
    };
    const signature = signer.sign(heartbeatMessage(info, base), identity.seed);
    const meta: SignedMeta = { ...base, publicKey: b64(identity.publicKey), signature: b64(signature) };
    return { ...info, meta: { ...info.meta, ...meta } };
  }

  function judge(info: NodeInfo, at: number): { status: PeerStatus; reason?: string } {
    const meta = info.meta as Partial<SignedMeta> | undefined;
    if (
      !meta ||
      typeof meta.signature !== 'string' ||
      typeof meta.publicKey !== 'string' ||
      typeof meta.fingerprint !== 'string'
    ) {
      return { status: 'unverified', reason: 'heartbeat is not signed' };
    }
    const publicKey = unb64(meta.publicKey);
    if (publicKey.length !== signer.publicKeyLength || fingerprintOf(publicKey) !== meta.fingerprint) {
      return { status: 'invalid', reason: 'fingerprint does not name the public key' };
    }
    let expectedKey = trusted.get(meta.fingerprint);
    if (info.nodeId === nodeId && meta.fingerprint !== identity.fingerprint) {
      return { status: 'invalid', reason: 'a heartbeat under this node id is signed by another key' };
    }
    if (!expectedKey && config.trust === 'tofu') {
      const pinned = pins.get(info.nodeId);
      if (pinned && pinned !== meta.fingerprint) {
        return {
          status: 'invalid',
          reason: `key changed: pinned ${pinned.slice(0, 16)}…, presented ${meta.fingerprint.slice(0, 16)}…`,
        };
      }
      expectedKey = publicKey;
    }
    if (!expectedKey) return { status: 'unverified', reason: 'key is not in cluster.trustedKeys' };
    const { signature, publicKey: _, ...signed } = meta as SignedMeta;
    let ok = false;
    try {
      ok = signer.verify(unb64(signature), heartbeatMessage(info, signed), expectedKey);
    } catch {
      ok = false;
    }
    if (!ok) return { status: 'invalid', reason: 'signature does not verify' };
    // A signed record replayed later (or from a skewed clock) is not a heartbeat.
    if (info.at < at - ttlMs - 30_000 || info.at > at + 30_000)
      return { status: 'invalid', reason: 'heartbeat time is outside the live window' };
    if (config.trust === 'tofu' && !trusted.has(meta.fingerprint) && !pins.has(info.nodeId)) {
      pins.set(info.nodeId, meta.fingerprint);
      savePins();
      log?.info({ peer: info.nodeId, fingerprint: meta.fingerprint }, 'peer key pinned (trust on first use)');
      audit?.({ event: 'cluster.peer_pinned', peer: info.nodeId, fingerprint: meta.fingerprint });
    }
    return { status: 'verified' };
  }

  /** Reads the heartbeats and verifies each (a record already judged is not verified again). */
  async function refresh(): Promise<ClusterView> {
    const at = now();
    let records: NodeInfo[];
    try {
      records = await options.peers();
    } catch (error) {
      view = { ...view, at, error: (error as Error).message };
      return view;
    }
    const peers: PeerView[] = [];
    const seen = new Set<string>();
    for (const info of records) {
      const meta = (info.meta ?? {}) as Partial<SignedMeta>;
      const key = `${info.at}/${meta.signature?.slice(0, 64) ?? ''}/${meta.fingerprint ?? ''}`;
      let verdict = verdicts.get(info.nodeId);
      if (!verdict || verdict.key !== key) {
        const before = verdict?.status;
        verdict = { key, ...judge(info, at) };
        verdicts.set(info.nodeId, verdict);
        if (verdict.status !== before && verdict.status !== 'verified') {
          log?.error(
            { peer: info.nodeId, status: verdict.status, reason: verdict.reason },
            'peer heartbeat not trusted',
          );
          audit?.({
            event: 'cluster.peer_untrusted',
            peer: info.nodeId,
            status: verdict.status,
            reason: verdict.reason,
          });
        } else if (verdict.status !== before) {
          log?.info({ peer: info.nodeId, fingerprint: meta.fingerprint }, 'peer verified');
        }
      }
      seen.add(info.nodeId);
      peers.push({
        nodeId: info.nodeId,
        status: verdict.status,
        reason: verdict.reason,
        self: info.nodeId === nodeId,
        fingerprint: meta.fingerprint,
        version: meta.version,
        address: meta.address,
        connections: info.connections,
        load: meta.load,
        startedAt: info.startedAt,
        at: info.at,
      });
    }
    // A node whose heartbeat expired keeps its verdict only while it is untrusted: an invalid node
    // cannot clear its name by going quiet and sending traffic between heartbeats.
    for (const [id, verdict] of verdicts)
      if (!seen.has(id) && verdict.status === 'verified') verdicts.delete(id);
    view = { at, peers };
    if (peerGauge) {
      for (const status of ['verified', 'unverified', 'invalid'] as const)
        peerGauge.set({ status }, peers.filter((p) => p.status === status).length);
    }
    return view;
  }

  /**
   * Whether to accept what `peer` sent. Only a node this view has judged unverified or invalid is
   * refused: a node that started a moment ago (no heartbeat read yet) is not penalised.
   */
  function trusts(peer: string, what: 'envelope' | 'presence' = 'envelope'): boolean {
    if (peer === nodeId) return true;
    const verdict = verdicts.get(peer);
    if (!verdict || verdict.status === 'verified') return true;
    rejected?.inc({ what });
    return false;
  }

  /** The consensus health check: peers verified / unverified / invalid. */
  async function check(): Promise<CheckResult> {
    const current = await refresh();
    const counts = { verified: 0, unverified: 0, invalid: 0 };
    for (const p of current.peers) counts[p.status]++;
    const self = current.peers.some((p) => p.self && p.status === 'verified');
    const details = { trust: config.trust, peers: current.peers };
    if (current.error) {
      return {
        status: 'degraded',
        observedValue: counts.verified,
        observedUnit: 'peers verified (last known)',
        output: `peers unknown: ${current.error}`,
        action: 'check the broker (Redis); the cluster view resumes when it answers',
        details,
      };
    }
    const bad = current.peers.filter((p) => p.status !== 'verified');
    const parts = [`${current.peers.length} node(s): ${counts.verified} verified`];
    if (counts.unverified) parts.push(`${counts.unverified} unverified`);
    if (counts.invalid) parts.push(`${counts.invalid} invalid`);
    if (!self) parts.push('this node has no heartbeat in the broker yet');
    for (const p of bad) parts.push(`${p.nodeId}: ${p.reason}`);
    return {
      status: counts.invalid ? 'critical' : counts.unverified || !self ? 'warning' : 'healthy',
      observedValue: counts.verified,
      observedUnit: `of ${current.peers.length} peers verified`,
      output: parts.join('; '),
      action: bad.length
        ? 'a node whose heartbeat does not verify is not trusted (its live traffic is dropped): add its key to cluster.trustedKeys, or remove the node and rotate the broker credentials'
        : !self
          ? "check this node's broker connection"
          : undefined,
      details,
    };
  }

  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    describe,
    refresh,
    /** Re-reads and judges the peers every heartbeat interval (so `trusts` stays current). */
    start() {
      clearInterval(timer);
      timer = setInterval(() => void refresh(), config.heartbeatSeconds * 1000);
      timer.unref?.();
      void refresh();
    },
    stop() {
      clearInterval(timer);
    },
    trusts,
    check,
    /** The newest view (refreshed by the health check and `refresh()`). */
    get view() {
      return view;
    },
  };
}

export type Cluster = ReturnType<typeof createCluster>;

/**
 * Ops route `GET /api/cluster/peers` (behind the admin guard): the cluster view as JSON, for the
 * dashboard and operators.
 */
export function createClusterRoutes(options: {
  cluster: Cluster;
  guard: import('hono').MiddlewareHandler;
}): Hono {
  const app = new Hono();
  app.use('/api/cluster/*', options.guard);
  app.get('/api/cluster/peers', async (c) => {
    const view = await options.cluster.refresh();
    return c.json({ at: new Date(view.at).toISOString(), error: view.error, peers: view.peers });
  });
  return app;
}
