/**
 * The link manager: one QKD link per configured SAE pair, each running its block loop in a Bun
 * Worker (so the server's event loop stays free), filling a bounded key pool, with stats for
 * metrics and health (QBER vs the 11 % threshold, key rate, pool fill, eavesdropping alert).
 */
import type { Config } from '../config/schema.ts';
import { type LinkRunConfig, type BlockSummary, type LinkRunner, startLinkRunner } from './link-runner.ts';
import { keyRate, qberThreshold } from './model.ts';
import type { AbortReason, Engine } from './pipeline.ts';
import { createKeyPoolManager, type KeyPool, type KeyPoolManager } from './pool.ts';

export type QkdConfig = Config['qkd'];
export type QkdLinkConfig = QkdConfig['links'][number];

/** Live statistics of one link (all rates per second of the source's clock). */
export interface LinkStats {
  id: string;
  masterSae: string;
  slaveSae: string;
  distanceKm: number;
  pulseRateHz: number;
  pace: 'realtime' | 'fast';
  running: boolean;
  /** Paused because the pool is full. */
  paused: boolean;
  blocks: number;
  abortedBlocks: number;
  lastAbort: AbortReason | null;
  pulses: number;
  simulatedSeconds: number;
  secretBits: number;
  /** Latest sampled QBER and its upper confidence bound; the threshold they are held against. */
  qber: number;
  qberUpper: number;
  qberThreshold: number;
  /** Secret key rate, bits per simulated second (moving average over recent blocks). */
  keyRateBps: number;
  /** The analytic vacuum + weak decoy rate for this link, bits per second (f = 1.22). */
  analyticKeyRateBps: number;
  signalGain: number;
  cascadeEfficiency: number;
  poolFill: number;
  storedKeys: number;
  maxKeys: number;
  /** Latest block's QBER bound above threshold: key discarded, alert raised. */
  eavesdroppingDetected: boolean;
  eavesdroppingEvents: number;
  /** Simulated seconds per wall second of the last block (≥ 1: keeps real time). */
  speed: number;
  lastError: string | null;
}

export interface LinkManagerOptions {
  /** Pools to fill (default: created from the config). */
  pools?: KeyPoolManager;
  logger?: {
    info(obj: object, msg?: string): void;
    warn(obj: object, msg?: string): void;
    error(obj: object, msg?: string): void;
  };
  /** Called when a block's QBER bound exceeds the threshold. */
  onEavesdropping?: (stats: LinkStats) => void;
  /** Called after every block (e.g. to update metrics). */
  onBlock?: (stats: LinkStats) => void;
  /** `worker` (default) runs each link in a Bun Worker; `inline` on this thread (tests, CLI). */
  mode?: 'worker' | 'inline';
  engine?: Engine;
  /** Base seed of the links' Monte Carlo (default: random). */
  seed?: number;
  /** Signal and decoy pulse probabilities (default 0.8 and 0.1). */
  pMu?: number;
  pNu?: number;
}

export interface LinkManager {
  start(): void;
  stop(): Promise<void>;
  /** Statistics of every link. */
  links(): LinkStats[];
  link(masterSae: string, slaveSae: string): LinkStats | undefined;
  pools: KeyPoolManager;
  /** Slave side of a channel: the key booked under `keyId`, erased on return; null if unknown. */
  getKeyForChannel(keyId: string, slaveSae?: string): Uint8Array | null;
  /** Resolves once every link has completed at least `blocks` blocks (tests, CLI). */
  waitForBlocks(blocks: number, timeoutMs?: number): Promise<void>;
}

interface Running {
  cfg: QkdLinkConfig;
  stats: LinkStats;
  pool: KeyPool;
  worker?: Worker;
  runner?: LinkRunner;
  stopped?: Promise<void>;
}

/**
 * Creates the manager for `qkd.links`. Links start with `start()`; `stop()` ends them.
 * @example const qkd = createLinkManager(config.qkd, { logger }); qkd.start();
 */
export function createLinkManager(qkd: QkdConfig, opts: LinkManagerOptions = {}): LinkManager {
  const { logger, mode = 'worker', engine = 'wasm-skip' } = opts;
  const pools =
    opts.pools ??
    createKeyPoolManager({ keySize: qkd.keySize, maxKeys: Math.max(1, ...qkd.links.map((l) => l.maxKeys)) });
  const baseSeed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const links: Running[] = qkd.links.map((cfg, i) => {
    const pool = pools.addLink(cfg.masterSae, cfg.slaveSae, cfg.maxKeys);
    const analytic = keyRate(cfg.mu, cfg, 'vacuum+weak', cfg.nu) * cfg.pulseRateHz;
    return {
      cfg,
      pool,
      stats: {
        id: `${cfg.masterSae}->${cfg.slaveSae}#${i}`,
        masterSae: cfg.masterSae,
        slaveSae: cfg.slaveSae,
        distanceKm: cfg.distanceKm,
        pulseRateHz: cfg.pulseRateHz,
        pace: cfg.pace,
        running: false,
        paused: false,
        blocks: 0,
        abortedBlocks: 0,
        lastAbort: null,
        pulses: 0,
        simulatedSeconds: 0,
        secretBits: 0,
        qber: 0,
        qberUpper: 0,
        qberThreshold,
        keyRateBps: 0,
        analyticKeyRateBps: analytic,
        signalGain: 0,
        cascadeEfficiency: 0,
        poolFill: 0,
        storedKeys: 0,
        maxKeys: cfg.maxKeys,
        eavesdroppingDetected: false,
        eavesdroppingEvents: 0,
        speed: 0,
        lastError: null,
      },
    };
  });

  const refreshPool = (l: Running) => {
    l.stats.poolFill = l.pool.fill();
    l.stats.storedKeys = l.pool.storedKeyCount();
  };

  const flow = (l: Running, paused: boolean) => {
    if (l.stats.paused === paused) return;
    l.stats.paused = paused;
    if (l.worker) l.worker.postMessage({ type: paused ? 'pause' : 'resume' });
    else if (paused) l.runner?.pause();
    else l.runner?.resume();
  };

  const onBlock = (l: Running, key: Uint8Array, s: BlockSummary) => {
    const st = l.stats;
    st.blocks++;
    st.pulses += s.pulses;
    st.simulatedSeconds += s.simulatedSeconds;
    st.qber = s.qberEstimate;
    st.qberUpper = s.qberUpper;
    st.signalGain = s.signalGain;
    st.speed = s.wallMs > 0 ? s.simulatedSeconds / (s.wallMs / 1000) : 0;
    const rate = s.secretBits / s.simulatedSeconds;
    st.keyRateBps = st.blocks === 1 ? rate : 0.8 * st.keyRateBps + 0.2 * rate;
    if (s.aborted) {
      st.abortedBlocks++;
      st.lastAbort = s.aborted;
    } else {
      st.secretBits += s.secretBits;
      st.cascadeEfficiency = s.cascadeEfficiency;
      l.pool.add(key);
    }
    key.fill(0);
    const wasAlert = st.eavesdroppingDetected;
    st.eavesdroppingDetected = s.eavesdropping;
    if (s.eavesdropping) {
      st.eavesdroppingEvents++;
      if (!wasAlert)
        logger?.warn(
          { link: st.id, qber: s.qberEstimate, qberUpper: s.qberUpper, threshold: qberThreshold },
          'qkd: QBER above threshold, eavesdropping suspected; block discarded',
        );
      opts.onEavesdropping?.({ ...st });
    } else if (wasAlert) {
      logger?.info({ link: st.id, qber: s.qberEstimate }, 'qkd: QBER back below threshold');
    }
    refreshPool(l);
    if (st.poolFill >= 1) flow(l, true);
    opts.onBlock?.({ ...st });
  };

  // Keys taken through the API make room: resume paused links from a slow, unref'd timer.
  let flowTimer: ReturnType<typeof setInterval> | undefined;
  const checkFlow = () => {
    for (const l of links) {
      refreshPool(l);
      if (l.stats.paused && l.stats.poolFill < 0.9) flow(l, false);
    }
  };

  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of waiters) w();
  };

  return {
    pools,
    start() {
      if (!flowTimer) {
        flowTimer = setInterval(checkFlow, 500);
        flowTimer.unref?.();
      }
      for (const [i, l] of links.entries()) {
        if (l.stats.running) continue;
        const config: LinkRunConfig = {
          params: { ...l.cfg, pMu: opts.pMu, pNu: opts.pNu },
          blockPulses: l.cfg.blockPulses,
          pulseRateHz: l.cfg.pulseRateHz,
          pace: l.cfg.pace,
          seed: baseSeed + i * 1_000_003,
          engine,
        };
        l.stats.running = true;
        const fail = (message: string) => {
          l.stats.lastError = message;
          logger?.error({ link: l.stats.id, err: message }, 'qkd link failed');
        };
        if (mode === 'inline') {
          l.runner = startLinkRunner(
            config,
            (key, s) => {
              onBlock(l, key, s);
              notify();
            },
            (e) => fail(e.message),
          );
          continue;
        }
        const worker = new Worker(new URL('./link-worker.ts', import.meta.url).href);
        l.worker = worker;
        l.stopped = new Promise<void>((resolve) => {
          worker.onmessage = (event: MessageEvent) => {
            const msg = event.data as
              | { type: 'block'; key: Uint8Array; summary: BlockSummary }
              | { type: 'error'; message: string }
              | { type: 'stopped' };
            if (msg.type === 'block') {
              onBlock(l, msg.key, msg.summary);
              notify();
            } else if (msg.type === 'error') fail(msg.message);
            else resolve();
          };
        });
        worker.onerror = (event) => fail(event.message);
        worker.postMessage({ type: 'start', config });
        logger?.info(
          { link: l.stats.id, distanceKm: l.cfg.distanceKm, pace: l.cfg.pace },
          'qkd link started',
        );
      }
    },
    async stop() {
      clearInterval(flowTimer);
      flowTimer = undefined;
      await Promise.all(
        links.map(async (l) => {
          if (!l.stats.running) return;
          l.stats.running = false;
          if (l.runner) {
            await l.runner.stop();
            l.runner = undefined;
          }
          if (l.worker) {
            l.worker.postMessage({ type: 'stop' });
            await Promise.race([l.stopped, new Promise((r) => setTimeout(r, 5000))]);
            l.worker.terminate();
            l.worker = undefined;
          }
        }),
      );
    },
    links: () => {
      checkFlow();
      return links.map((l) => ({ ...l.stats }));
    },
    link(masterSae, slaveSae) {
      const l = links.find((x) => x.cfg.masterSae === masterSae && x.cfg.slaveSae === slaveSae);
      if (!l) return undefined;
      refreshPool(l);
      return { ...l.stats };
    },
    getKeyForChannel(keyId, slaveSae) {
      return pools.getKeyForChannel(keyId, slaveSae);
    },
    waitForBlocks(blocks, timeoutMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (links.every((l) => l.stats.blocks >= blocks)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`qkd: links did not complete ${blocks} blocks within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}
