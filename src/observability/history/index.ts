/**
 * Metric history: a snapshot of the key series every `observability.historyIntervalSeconds`,
 * kept at full resolution for 24 h and as 1-minute averages for 7 days (a downsampling job
 * rolls completed minutes up and prunes both levels). The room's one door.
 */
import type { Logger } from 'pino';
import type { Sampler, Snapshot } from './sampler.ts';
import { baseName } from './sampler.ts';
import { bucketStart, type HistoryStore, type Point } from './store.ts';

export type { HistoryStore, Point, SamplePoint } from './store.ts';
export { bucketStart, createMemoryHistoryStore, createSqliteHistoryStore } from './store.ts';
export type { Sampler, SamplerOptions, Snapshot } from './sampler.ts';
export { baseName, createSampler, histogramQuantile, memoryLimitBytes, seriesCatalogue, seriesLabels, seriesName } from './sampler.ts';

/** Level of full-resolution points (the sampling interval, 10 s by default). */
export const RAW_LEVEL = 10;
/** Level of the 1-minute averages. */
export const MINUTE_LEVEL = 60;
const hour = 3_600_000;

export interface Retention {
  /** How long full-resolution points are kept (ms). Default 24 h. */
  rawMs: number;
  /** How long 1-minute averages are kept (ms). Default 7 days. */
  minuteMs: number;
}

export const defaultRetention: Retention = { rawMs: 24 * hour, minuteMs: 7 * 24 * hour };

export interface HistoryOptions {
  store: HistoryStore;
  sampler: Sampler;
  intervalSeconds: number;
  now?: () => number;
  logger?: Logger;
  retention?: Partial<Retention>;
}

export interface HistoryQuery {
  /** Series names; a name without labels selects every labelled series of that name. */
  series: string[];
  from: number;
  to: number;
  /** Bucket width in seconds; points inside a bucket are averaged. 0 = the level's own resolution. */
  step?: number;
}

export interface HistoryResult {
  from: number;
  to: number;
  /** Effective step, seconds. */
  step: number;
  /** Which level answered: `raw` (sampling interval) or `1m`. */
  level: 'raw' | '1m';
  series: Record<string, Point[]>;
}

const watermarkKey = 'history:downsampled-until';

/** Averages points into buckets of `step` seconds (bucket start as the time). */
export function bucketize(points: Point[], step: number): Point[] {
  const sums = new Map<number, { sum: number; count: number }>();
  for (const [ts, value] of points) {
    const start = bucketStart(ts, step);
    const acc = sums.get(start) ?? { sum: 0, count: 0 };
    acc.sum += value;
    acc.count += 1;
    sums.set(start, acc);
  }
  return [...sums]
    .sort((a, b) => a[0] - b[0])
    .map(([ts, { sum, count }]) => [ts, Math.round((sum / count) * 1e6) / 1e6] as Point);
}

/** Creates the history recorder. `start()` samples on an interval; `tick()` and `maintain()` are callable directly. */
export function createHistory(options: HistoryOptions) {
  const { store, sampler, intervalSeconds, now = Date.now, logger } = options;
  const retention: Retention = { ...defaultRetention, ...options.retention };
  const listeners = new Set<(snapshot: Snapshot) => void>();
  let latest: Snapshot | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let lastMaintenance = 0;
  let ticking: Promise<Snapshot | undefined> | undefined;

  async function tick(): Promise<Snapshot | undefined> {
    const snapshot = await sampler.sample();
    latest = snapshot;
    const points = Object.entries(snapshot.values).map(([series, value]) => ({ series, ts: snapshot.ts, value }));
    await store.append(points, RAW_LEVEL);
    for (const listener of listeners) {
      try {
        listener(snapshot);
      } catch (error) {
        logger?.error({ err: error }, 'history listener failed');
      }
    }
    if (snapshot.ts - lastMaintenance >= 60_000) {
      lastMaintenance = snapshot.ts;
      await maintain(snapshot.ts);
    }
    return snapshot;
  }

  /** Rolls completed minutes up into the 1-minute level, then prunes both levels. */
  async function maintain(at = now()) {
    const to = bucketStart(at, MINUTE_LEVEL);
    const stored = Number((await store.kvGet(watermarkKey)) ?? Number.NaN);
    const from = Number.isFinite(stored) ? stored : to - retention.rawMs;
    let rolledUp = 0;
    if (to > from) {
      rolledUp = await store.downsample(RAW_LEVEL, MINUTE_LEVEL, from, to);
      await store.kvSet(watermarkKey, String(to));
    }
    const prunedRaw = await store.prune(RAW_LEVEL, at - retention.rawMs);
    const prunedMinute = await store.prune(MINUTE_LEVEL, at - retention.minuteMs);
    logger?.debug({ rolledUp, prunedRaw, prunedMinute }, 'history maintenance');
    return { rolledUp, prunedRaw, prunedMinute };
  }

  async function resolveNames(requested: string[]): Promise<string[]> {
    const known = new Set([...(await store.seriesNames(RAW_LEVEL)), ...(await store.seriesNames(MINUTE_LEVEL))]);
    const out = new Set<string>();
    for (const name of requested) {
      if (name.includes('{')) out.add(name);
      else for (const k of known) if (k === name || baseName(k) === name) out.add(k);
      if (!name.includes('{') && !known.has(name)) out.add(name);
    }
    return [...out];
  }

  /** Reads history, picking the level from the range and the step. */
  async function query(q: HistoryQuery): Promise<HistoryResult> {
    const at = now();
    const requestedStep = q.step ?? 0;
    const useMinutes = q.from < at - retention.rawMs || requestedStep >= MINUTE_LEVEL;
    const names = await resolveNames(q.series);
    const series: Record<string, Point[]> = {};
    if (!useMinutes) {
      const rows = await store.query(names, q.from, q.to, RAW_LEVEL);
      for (const [name, points] of rows) series[name] = requestedStep > 0 ? bucketize(points, requestedStep) : points;
      return { from: q.from, to: q.to, step: requestedStep || intervalSeconds, level: 'raw', series };
    }
    const step = Math.max(MINUTE_LEVEL, requestedStep);
    // Before the first roll-up every point is still at the raw level.
    const watermark = Number((await store.kvGet(watermarkKey)) ?? 0);
    const minutes = await store.query(names, q.from, Math.min(q.to, watermark - 1), MINUTE_LEVEL);
    // Minutes not rolled up yet come from the raw level so the newest data is not missing.
    const tail = watermark <= q.to ? await store.query(names, Math.max(q.from, watermark), q.to, RAW_LEVEL) : new Map<string, Point[]>();
    for (const name of names) {
      const points = [...(minutes.get(name) ?? []), ...(tail.get(name) ?? [])];
      if (points.length) series[name] = bucketize(points, step);
    }
    return { from: q.from, to: q.to, step, level: '1m', series };
  }

  return {
    tick,
    maintain,
    query,
    /** The newest snapshot (undefined before the first tick). */
    get latest() {
      return latest;
    },
    /** Called after every snapshot (the alert engine, the dashboard feed). */
    onSnapshot(listener: (snapshot: Snapshot) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Samples every interval; the first sample only primes the counters' baselines. */
    start() {
      clearInterval(timer);
      const run = () => {
        ticking ??= tick()
          .catch((error) => {
            logger?.error({ err: error }, 'history sample failed');
            return undefined;
          })
          .finally(() => {
            ticking = undefined;
          });
      };
      run();
      timer = setInterval(run, intervalSeconds * 1000);
      timer.unref?.();
    },
    async stop() {
      clearInterval(timer);
      await ticking;
    },
    store,
  };
}

export type History = ReturnType<typeof createHistory>;
