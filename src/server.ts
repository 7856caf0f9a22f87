/**
 * Entry of a node: config → logger → metrics → core → apps → Bun.serve; signals and the
 * graceful drain. `startServer` is used by `ssc serve` and by tests (in-process).
 */
import { existsSync } from 'node:fs';
import { hostname, loadavg } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'bun';
import { createApps } from './app.ts';
import { createCluster, createClusterRoutes } from './cluster/index.ts';
import { type Config, ConfigError } from './config/index.ts';
import { createCrypto } from './crypto/index.ts';
import { createNativeSigner } from './crypto/native.ts';
import { createAlerting } from './observability/alerts/index.ts';
import { createAdminAuth } from './observability/dashboard/auth.ts';
import { registerDefaultChecks } from './observability/default-checks.ts';
import { createHealth, type Health } from './observability/health.ts';
import { createLogging, type Logging } from './observability/logger.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { parseSize } from './observability/rotating-file.ts';
import { createStatusLine } from './observability/status-line.ts';
import { createAuditLog, createAuditVerifier } from './security/audit-log.ts';
import { createGrantVerifier } from './security/grants.ts';
import { runEntropyTests } from './security/entropy.ts';
import { banAndRateLimit, createAdminRoutes } from './security/http.ts';
import { type BanList, createMemoryBanList, createRedisBanList, createSecurityLimits } from './security/limits.ts';
import { loadOrCreateNodeKeys, type NodeKeys } from './security/node-keys.ts';
import { bearerSaeResolver, createLinkManager, createQkdRoutes, type LinkManager } from './quantum/index.ts';
import { createRelay, createRelayBackends, registerRelayHealth } from './relay/index.ts';
import { type MtlsFront, startMtlsFront } from './security/mtls.ts';
import { createTransport } from './transport/index.ts';
import { version } from './version.ts';

export interface RunningServer {
  config: Config;
  logging: Logging;
  /** The metrics registry and the project's metrics. */
  metrics: Metrics;
  /** Component health; rooms (and tests) register checks here. */
  health: Health;
  keys: NodeKeys;
  /** The public server (channels, API). */
  publicServer: Server<unknown>;
  /** The ops server (metrics, probes, dashboard). */
  opsServer: Server<unknown>;
  /** Base URLs actually bound (port 0 resolved). */
  urls: { public: string; ops: string; qkd?: string };
  /** Graceful drain; resolves when everything is closed and logs are flushed. */
  stop(reason?: string): Promise<void>;
}

/** A function run during the drain, before listeners close (close sockets with 1001, flush queues). */
export type DrainHook = (deadline: number) => Promise<void> | void;

/** Starts a node from a validated config. */
export interface StartOptions {
  /**
   * The byte source the entropy health tests examine (default: the system CSPRNG through
   * `crypto.getRandomValues`). For embedding with another RNG, and for tests of the gate.
   */
  entropySource?: (bytes: Uint8Array) => Uint8Array;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const startedAt = Date.now();
  // Files the config names must exist before anything starts (exit 2, not a crash loop).
  for (const key of ['cert', 'key', 'ca'] as const) {
    const path = config.server.tls[key];
    if (path && !existsSync(path)) throw new ConfigError(`config: server.tls.${key} = ${JSON.stringify(path)}: file not found`);
  }
  const nodeId = config.nodeId || hostname();
  // audit.log is owned by the hash-chained audit writer (src/security/audit-log.ts).
  const logging = createLogging({ log: config.log, env: config.env, base: { node: nodeId }, externalAudit: Boolean(config.log.dir) });
  const root = logging.logger;
  const logger = root.child({ component: 'system' });
  const metrics = createMetrics({ nodeId });
  metrics.info.set({ version, runtime: `bun ${Bun.version}` }, 1);
  const health = createHealth({ metrics, logger });
  const drainHooks: DrainHook[] = [];

  let loaded: ReturnType<typeof loadOrCreateNodeKeys>;
  try {
    loaded = loadOrCreateNodeKeys(config.server.dataDir);
  } catch (error) {
    // A read-only or full data dir: one clear line and exit 2 (ssc serve), not a stack trace.
    const { code, message } = error as { code?: string; message: string };
    if (code && /^E(ROFS|ACCES|PERM|NOSPC|DQUOT)$/.test(code)) {
      throw new ConfigError(`server.dataDir = ${JSON.stringify(config.server.dataDir)} is not writable (${code}): ${message}`);
    }
    throw error;
  }
  const { keys, created } = loaded;
  if (created) logging.audit({ event: 'keys.generated', fingerprint: keys.identity.fingerprint, dataDir: config.server.dataDir });
  logger.info({ fingerprint: keys.identity.fingerprint }, 'node identity loaded');

  // Tamper-evident audit log: hash chain + ML-DSA-65 signed checkpoints (native signer, no context).
  const auditSigner = createNativeSigner();
  const auditFile = config.log.dir ? join(config.log.dir, 'audit.log') : undefined;
  const auditLog = auditFile
    ? createAuditLog({
        file: auditFile,
        sign: (message) => auditSigner.sign(message, keys.identity.seed),
        signer: keys.identity.fingerprint,
        checkpointEvery: config.security.auditCheckpointEvery,
        maxBytes: parseSize(config.log.rotation.size),
        daily: config.log.rotation.frequency === 'daily',
        keep: config.log.rotation.keep,
        compress: config.log.rotation.compress,
        node: nodeId,
        onError: (error) => logger.error({ err: error }, 'audit log write failed'),
      })
    : undefined;
  if (auditLog) {
    logging.useAuditWriter(auditLog);
    const verifier = createAuditVerifier(auditFile!, (signature, message, signer) =>
      signer === keys.identity.fingerprint && auditSigner.verify(signature, message, keys.identity.publicKey),
    );
    health.register('security-foundation', 'audit-chain', {
      critical: false,
      check: async () => {
        await auditLog.flush();
        const result = verifier.check();
        return {
          status: result.ok ? 'healthy' : 'critical',
          observedValue: result.records,
          observedUnit: 'records verified',
          output: result.ok ? `audit chain intact (head seq ${auditLog.head.seq})` : `audit chain broken: ${result.broken}`,
          action: 'run `ssc audit verify` on the audit files, preserve them, and investigate who wrote to the log directory',
        };
      },
    });
  }

  // Default checks: log streams + disk (logging), 5xx rate + breakers (error handler),
  // connections vs limit (network), single-node cluster view (consensus).
  registerDefaultChecks({ config, health, metrics, logging });
  const statusLine = createStatusLine({
    metrics,
    health,
    intervalSeconds: config.observability.statusLine.intervalSeconds,
    write: (line, fields) => logger.info({ statusLine: fields }, line),
  });

  // Security foundation: entropy health (SP 800-90B) at startup and periodically; bans and limits.
  const securityLog = root.child({ component: 'security' });
  const entropySource = options.entropySource;
  let entropy = runEntropyTests({ source: entropySource });
  const entropyTimer = setInterval(() => {
    const before = entropy.ok;
    entropy = runEntropyTests({ source: entropySource });
    if (!entropy.ok || !before) securityLog[entropy.ok ? 'info' : 'error']({ entropy }, 'entropy health test');
  }, config.security.entropyIntervalSeconds * 1000);
  entropyTimer.unref?.();
  if (!entropy.ok) securityLog.error({ entropy }, 'entropy health test failed: handshakes refused');
  health.register('security-foundation', 'entropy', {
    critical: true,
    check: () => ({
      status: entropy.ok ? 'healthy' : 'down',
      observedValue: entropy.repetitionCount.longestRun,
      observedUnit: `longest run (cutoff ${entropy.repetitionCount.cutoff}); APT max ${entropy.adaptiveProportion.highestCount}/${entropy.adaptiveProportion.cutoff}`,
      output: entropy.ok ? `CSPRNG passed RCT and APT at ${entropy.at}` : 'CSPRNG output failed the SP 800-90B health tests',
      action: 'stop the node; check the host entropy source (virtio-rng, kernel RNG) before restarting',
    }),
  });
  let redis: import('ioredis').default | undefined;
  if (config.broker.type === 'redis') {
    const { default: Redis } = await import('ioredis');
    redis = new Redis(config.broker.redis.url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: config.broker.redis.commandTimeoutMs,
    });
    redis.on('error', (error) => securityLog.warn({ err: error.message }, 'redis (security) error'));
    // Give Redis a moment at startup; a node that cannot reach it starts degraded, not crashed.
    const ready = await Promise.race([
      new Promise<boolean>((resolve) => redis!.once('ready', () => resolve(true))),
      Bun.sleep(3_000).then(() => false),
    ]);
    if (!ready) securityLog.warn({ url: config.broker.redis.url }, 'redis not ready at startup');
  }
  const banList: BanList = redis
    ? createRedisBanList(redis, config.broker.redis.keyPrefix, 1_000, (e) => securityLog.warn({ err: String(e) }, 'ban list refresh failed'))
    : createMemoryBanList();
  const limits = createSecurityLimits({
    config: config.security,
    metrics,
    audit: logging.audit,
    banList,
    redis,
    keyPrefix: config.broker.redis.keyPrefix,
  });
  health.register('security-foundation', 'bans', {
    critical: false,
    async check() {
      let bans: Awaited<ReturnType<BanList['list']>>;
      try {
        bans = await banList.list();
      } catch (error) {
        return {
          status: 'degraded',
          output: `ban list unavailable: ${(error as Error).message}`,
          action: 'check Redis; bans are enforced from the last known list meanwhile',
        };
      }
      return {
        status: 'healthy',
        observedValue: bans.length,
        observedUnit: 'active bans',
        output: bans.length ? `${bans.length} sources banned` : 'no active bans',
      };
    },
  });

  // Crypto protocols: one backend per primitive, known-answer self-test of every backend loaded.
  const cryptoLog = root.child({ component: 'crypto' });
  const crypto = await createCrypto(config.crypto, cryptoLog);
  const selfTest = crypto.selfTest();
  const selfTestFailures = selfTest.filter((r) => !r.ok);
  if (selfTestFailures.length > 0) cryptoLog.error({ failed: selfTestFailures }, 'crypto self-test failed: channels refused');
  health.register('crypto-protocols', 'self-test', {
    critical: true,
    check: () => ({
      status: selfTestFailures.length === 0 ? 'healthy' : 'down',
      observedValue: `${selfTest.length - selfTestFailures.length}/${selfTest.length}`,
      observedUnit: 'known-answer tests passed',
      output: selfTestFailures.length === 0 ? 'every primitive and backend passed its known-answer test' : `failed: ${selfTestFailures.map((f) => `${f.primitive}/${f.backend}`).join(', ')}`,
      action: 'do not serve channels; reinstall the build (bun run build:wasm) and check the runtime version',
      details: { backends: crypto.choices },
    }),
  });
  health.register('quantum-core', 'wasm-aead', {
    critical: config.crypto.aead === 'wasm',
    check: () =>
      crypto.chachaPoly.backend === 'wasm'
        ? { status: 'healthy', output: `WASM AEAD loaded (${crypto.choices.wasmBuild ?? 'scalar'} build)`, details: { build: crypto.choices.wasmBuild } }
        : {
            status: 'degraded',
            output: 'WASM AEAD not loaded: ChaCha20-Poly1305 runs on the pure-JS fallback',
            action: 'run `bun run build:wasm` and restart',
          },
  });

  // Quantum core: QKD links filling key pools in workers; stats to metrics and health.
  const quantumLog = root.child({ component: 'quantum' });
  let qkd: LinkManager | undefined;
  let qkdTimer: ReturnType<typeof setInterval> | undefined;
  if (config.qkd.enabled) {
    qkd = createLinkManager(config.qkd, {
      logger: quantumLog,
      onBlock: () => publish(),
      onEavesdropping: (stats) =>
        logging.audit({
          event: 'qkd.eavesdropping',
          link: stats.id,
          qber: stats.qber,
          qberUpper: stats.qberUpper,
          threshold: stats.qberThreshold,
        }),
    });
    const pulsesSeen = new Map<string, number>();
    function publish() {
      if (!qkd) return;
      for (const link of qkd!.links()) {
        metrics.qkdQber.set({ link: link.id }, link.qber);
        metrics.qkdKeyRate.set({ link: link.id }, link.keyRateBps);
        metrics.qkdPoolKeys.set({ link: link.id }, link.storedKeys);
        const delta = link.pulses - (pulsesSeen.get(link.id) ?? 0);
        if (delta > 0) metrics.qkdPulses.inc({ link: link.id }, delta);
        pulsesSeen.set(link.id, link.pulses);
      }
    }
    qkdTimer = setInterval(publish, 1_000);
    qkdTimer.unref?.();
    health.register('quantum-core', 'qkd-links', {
      critical: false,
      check: () => {
        const links = qkd!.links();
        const bad = links.filter((l) => l.eavesdroppingDetected || l.qber > l.qberThreshold);
        const failing = links.filter((l) => l.lastError);
        const worst = Math.max(0, ...links.map((l) => l.qber));
        return {
          status: failing.length ? 'degraded' : bad.length ? 'critical' : 'healthy',
          observedValue: Math.round(worst * 10_000) / 100,
          observedUnit: 'percent QBER (worst link)',
          output: bad.length
            ? `QBER above ${links[0]!.qberThreshold * 100} % on ${bad.map((l) => l.id).join(', ')}: keys discarded`
            : failing.length
              ? `link error: ${failing.map((l) => `${l.id}: ${l.lastError}`).join('; ')}`
              : `${links.length} links, ${links.reduce((n, l) => n + l.storedKeys, 0)} keys pooled`,
          action: 'suspect an eavesdropper or a fibre fault on the named link; its keys are not served',
          details: { links: links.map((l) => ({ id: l.id, qber: l.qber, keyRateBps: l.keyRateBps, storedKeys: l.storedKeys })) },
        };
      },
    });
  }

  // Relay: embedded (in-process broker + SQLite) or Redis, chosen in one place.
  const relayLog = root.child({ component: 'relay' });
  const backends = await createRelayBackends(config, {
    logger: relayLog,
    metrics,
    nodeId,
    sqliteSynchronous: config.broker.sqliteSynchronous,
  });
  registerRelayHealth(health, backends, { nodeId });

  // Consensus: signed heartbeats (ML-DSA-65, native signer, empty context) and peer verification.
  // Its `cluster` check replaces the single-node placeholder and the relay's unverified peer count.
  let advertised = config.cluster.advertiseAddress;
  const cluster = createCluster({
    config: config.cluster,
    nodeId,
    version,
    identity: keys.identity,
    signer: createNativeSigner(),
    peers: () => backends.broker.peers(),
    address: () => advertised,
    load: () => Math.round(loadavg()[0]! * 100) / 100,
    dataDir: config.server.dataDir,
    logger: root,
    audit: logging.audit,
    metrics,
  });
  health.unregister('cluster-peers');
  health.register('consensus', 'cluster', { critical: false, check: cluster.check });
  let transportRef: ReturnType<typeof createTransport> | undefined;
  const relay = createRelay({
    config,
    broker: backends.broker,
    store: backends.store,
    logger: relayLog,
    metrics,
    nodeId,
    batch: { begin: () => transportRef?.sealer.begin(), end: () => transportRef?.sealer.end() },
    // Private topics open with a grant signed by this node or a configured issuer.
    verifyGrant: createGrantVerifier(
      new Map([
        [keys.identity.fingerprint, keys.identity.publicKey],
        ...Object.entries(config.relay.grantIssuers).map(([fp, key]) => [fp, new Uint8Array(Buffer.from(key, 'base64'))] as [string, Uint8Array]),
      ]),
      auditSigner,
    ),
    heartbeatMs: config.cluster.heartbeatSeconds * 1000,
    describeNode: cluster.describe,
    trustNode: cluster.trusts,
  });
  const transport = createTransport({
    config,
    crypto,
    batchAead: crypto.chachaPoly,
    keys: {
      staticKey: keys.staticKey,
      // The signer backends take the 32-byte ML-DSA seed as the secret key.
      identity: { publicKey: keys.identity.publicKey, secretKey: keys.identity.seed },
    },
    relay,
    metrics,
    logger: root,
    audit: logging.audit,
    limits,
    acceptingHandshakes: () => {
      if (!entropy.ok) return { ok: false, reason: 'entropy health test failed' };
      if (selfTestFailures.length > 0) return { ok: false, reason: 'crypto self-test failed' };
      return { ok: true };
    },
    // QKD psk: the key the client's KME issued under key_ID (ETSI 014), erased once used.
    fetchQkdKey: qkd ? async (keyId) => qkd!.getKeyForChannel(keyId) : undefined,
  });
  transportRef = transport;
  drainHooks.push((deadline) => transport.drain(deadline));

  // Alerting, metric history and the dashboard (ops port); the ops URL is known once listening.
  let opsUrl = '';
  const alerting = await createAlerting({
    config,
    metrics,
    health,
    logger: root,
    audit: logging.audit,
    nodeId,
    version,
    externalURL: () => opsUrl,
  });

  const { publicApp, opsApp } = createApps({
    config,
    logger: root,
    metrics,
    health,
    version,
    startedAt,
    eventLoopLagMs: () => metrics.eventLoop.currentMs(),
    publicGuards: [banAndRateLimit(limits)],
    publicRoutes: [
      { prefix: '/', app: transport.routes },
      // ETSI GS QKD 014 with bearer tokens per SAE (development, or behind a TLS terminator).
      ...(qkd && !config.qkd.mtls.enabled
        ? [{ prefix: '/', app: createQkdRoutes({ pools: qkd.pools, config: config.qkd, resolveSae: bearerSaeResolver(config.qkd.saeTokens), logger: quantumLog }) }]
        : []),
    ],
    opsRoutes: [
      { prefix: '/api/admin', app: createAdminRoutes({ config, limits, audit: logging.audit, silences: alerting.silences }) },
      { prefix: '/', app: alerting.routes },
      {
        prefix: '/',
        app: createClusterRoutes({ cluster, guard: createAdminAuth({ adminToken: config.security.adminToken, audit: logging.audit }).guard() }),
      },
    ],
  });

  const tls =
    config.server.tls.cert && config.server.tls.key
      ? {
          cert: Bun.file(config.server.tls.cert),
          key: Bun.file(config.server.tls.key),
          ca: config.server.tls.ca ? Bun.file(config.server.tls.ca) : undefined,
          requestCert: config.server.tls.requestClientCert,
        }
      : undefined;

  const publicServer = Bun.serve({
    hostname: config.server.host,
    port: config.server.port,
    tls,
    fetch: (request, server) => publicApp.fetch(request, { server }),
    websocket: transport.websocket,
  });
  const opsServer = Bun.serve({
    hostname: config.server.metricsHost,
    port: config.server.metricsPort,
    fetch: (request, server) => opsApp.fetch(request, { server }),
  });
  // ETSI GS QKD 014 over mutual TLS: the SAE ID is the client certificate's subject CN.
  let mtlsFront: MtlsFront | undefined;
  let qkdInternal: Server<unknown> | undefined;
  if (qkd && config.qkd.mtls.enabled) {
    const { cert, key, ca } = config.server.tls;
    if (!cert || !key || !ca) throw new ConfigError('config: qkd.mtls.enabled needs server.tls.cert, server.tls.key and server.tls.ca');
    let front: MtlsFront | undefined;
    const etsi = createQkdRoutes({
      pools: qkd.pools,
      config: config.qkd,
      resolveSae: (c) => front?.identityOf(Number(getConnInfoPort(c))) ?? null,
      logger: quantumLog,
    });
    qkdInternal = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: (request, server) => etsi.fetch(request, { server }) });
    front = await startMtlsFront({
      host: config.qkd.mtls.host,
      port: config.qkd.mtls.port,
      cert,
      key,
      ca,
      target: { host: '127.0.0.1', port: qkdInternal.port! },
      onError: (error) => quantumLog.debug({ err: String(error) }, 'mtls connection error'),
    });
    mtlsFront = front;
  }
  qkd?.start();

  const scheme = tls ? 'https' : 'http';
  const urls = {
    public: `${scheme}://${displayHost(config.server.host)}:${publicServer.port}`,
    ops: `http://${displayHost(config.server.metricsHost)}:${opsServer.port}`,
    ...(mtlsFront ? { qkd: `https://${displayHost(config.qkd.mtls.host)}:${mtlsFront.port}` } : {}),
  };

  opsUrl = urls.ops;
  advertised ||= urls.public;
  cluster.start();
  void relay.heartbeat();
  health.start(config.observability.healthIntervalSeconds);
  alerting.start();
  statusLine.start();
  health.setLifecycle('ready');
  logger.info(
    { publicPort: publicServer.port, opsPort: opsServer.port, urls, version, env: config.env },
    'listening',
  );

  let stopping: Promise<void> | undefined;
  async function stop(reason = 'stop'): Promise<void> {
    stopping ??= (async () => {
      const deadline = Date.now() + config.server.shutdownDeadlineMs;
      health.setLifecycle('draining');
      logger.info({ reason, deadlineMs: config.server.shutdownDeadlineMs }, 'draining');
      const work = (async () => {
        if (config.server.drainDelayMs > 0) await Bun.sleep(config.server.drainDelayMs);
        for (const hook of drainHooks) await hook(deadline);
        // Stop accepting; let in-flight HTTP requests finish.
        await publicServer.stop(false);
      })();
      const timedOut = await Promise.race([
        work.then(() => false),
        Bun.sleep(Math.max(0, deadline - Date.now())).then(() => true),
      ]);
      if (timedOut) logger.warn('drain deadline passed; closing remaining connections');
      // Anything still open (WebSockets included) is closed with 1001 Going Away.
      await publicServer.stop(true);
      health.setLifecycle('stopped');
      health.stop();
      cluster.stop();
      statusLine.stop();
      clearInterval(entropyTimer);
      banList.close();
      redis?.disconnect();
      clearInterval(qkdTimer);
      await mtlsFront?.close();
      qkdInternal?.stop(true);
      await qkd?.stop();
      await relay.close();
      await backends.close();
      await alerting.stop();
      await opsServer.stop(true);
      metrics.close();
      logger.info({ reason }, 'stopped');
      await auditLog?.close();
      await logging.flush();
    })();
    return stopping;
  }

  return { config, logging, metrics, health, keys, publicServer, opsServer, urls, stop };
}

/** The remote port of a request on a Bun server (the mTLS front's outgoing port). */
function getConnInfoPort(c: import('hono').Context): number | undefined {
  const server = (c.env as { server?: Server<unknown> } | undefined)?.server;
  return server?.requestIP(c.req.raw)?.port;
}

function displayHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
}
