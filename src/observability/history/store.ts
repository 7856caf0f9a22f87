/**
 * The history store: time series of sampled values at two resolutions plus a small key-value
 * space (alert state, job watermarks). A small interface of our own until the relay `Store`
 * offers its KV + time-series API; SQLite (`bun:sqlite`) is the default, memory for tests.
 */
import { Database } from 'bun:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** One sampled value of one series at a time (epoch ms). */
export interface SamplePoint {
  series: string;
  ts: number;
  value: number;
}

/** A `[time ms, value]` pair as returned by queries. */
export type Point = [number, number];

export interface HistoryStore {
  /** Writes points at the given resolution (seconds); a point at the same series/ts is replaced. */
  append(points: SamplePoint[], resolutionSeconds: number): Promise<void>;
  /** Points of the named series in `[from, to]` (ms), ascending by time. */
  query(series: string[], from: number, to: number, resolutionSeconds: number): Promise<Map<string, Point[]>>;
  /** Names of the series seen at the given resolution. */
  seriesNames(resolutionSeconds: number): Promise<string[]>;
  /**
   * Averages the points of `source` resolution with `from <= ts < to` into buckets of `target`
   * seconds (bucket start = ts rounded down) and writes them at the `target` resolution.
   * Returns the number of buckets written.
   */
  downsample(sourceSeconds: number, targetSeconds: number, from: number, to: number): Promise<number>;
  /** Deletes the points of one resolution older than `before` (ms); returns how many. */
  prune(resolutionSeconds: number, before: number): Promise<number>;
  kvGet(key: string): Promise<string | undefined>;
  kvSet(key: string, value: string): Promise<void>;
  close(): void;
}

/** The bucket start (ms) of a timestamp for a bucket width in seconds. */
export const bucketStart = (ts: number, seconds: number) => Math.floor(ts / (seconds * 1000)) * seconds * 1000;

/** An in-memory store: the reference implementation and the one tests use. */
export function createMemoryHistoryStore(): HistoryStore {
  // resolution → series → ts → value
  const data = new Map<number, Map<string, Map<number, number>>>();
  const kv = new Map<string, string>();
  const level = (resolution: number) => {
    let map = data.get(resolution);
    if (!map) data.set(resolution, (map = new Map()));
    return map;
  };
  return {
    async append(points, resolution) {
      const map = level(resolution);
      for (const p of points) {
        let series = map.get(p.series);
        if (!series) map.set(p.series, (series = new Map()));
        series.set(p.ts, p.value);
      }
    },
    async query(names, from, to, resolution) {
      const map = level(resolution);
      const out = new Map<string, Point[]>();
      for (const name of names) {
        const series = map.get(name);
        if (!series) continue;
        const points: Point[] = [];
        for (const [ts, value] of series) if (ts >= from && ts <= to) points.push([ts, value]);
        points.sort((a, b) => a[0] - b[0]);
        if (points.length) out.set(name, points);
      }
      return out;
    },
    async seriesNames(resolution) {
      return [...level(resolution).keys()].sort();
    },
    async downsample(source, target, from, to) {
      const buckets: SamplePoint[] = [];
      for (const [name, series] of level(source)) {
        const sums = new Map<number, { sum: number; count: number }>();
        for (const [ts, value] of series) {
          if (ts < from || ts >= to) continue;
          const start = bucketStart(ts, target);
          const acc = sums.get(start) ?? { sum: 0, count: 0 };
          acc.sum += value;
          acc.count += 1;
          sums.set(start, acc);
        }
        for (const [ts, { sum, count }] of sums) buckets.push({ series: name, ts, value: sum / count });
      }
      await this.append(buckets, target);
      return buckets.length;
    },
    async prune(resolution, before) {
      let removed = 0;
      for (const [name, series] of level(resolution)) {
        for (const ts of series.keys()) {
          if (ts < before) {
            series.delete(ts);
            removed++;
          }
        }
        if (series.size === 0) level(resolution).delete(name);
      }
      return removed;
    },
    async kvGet(key) {
      return kv.get(key);
    },
    async kvSet(key, value) {
      kv.set(key, value);
    },
    close() {
      data.clear();
    },
  };
}

/** The embedded durable store: one SQLite file (WAL) with a samples table and a KV table. */
export function createSqliteHistoryStore(path: string): HistoryStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { create: true, strict: true });
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 2000;');
  db.exec(`CREATE TABLE IF NOT EXISTS history_samples (
    series TEXT NOT NULL, res INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (res, series, ts)) WITHOUT ROWID`);
  db.exec('CREATE TABLE IF NOT EXISTS history_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  // `query` (cached, finalized by `close`), not `prepare`, for every statement: see
  // sqlite-checkpoint.ts.
  const insert = db.query('INSERT OR REPLACE INTO history_samples (series, res, ts, value) VALUES ($series, $res, $ts, $value)');
  const insertMany = db.transaction((points: SamplePoint[], res: number) => {
    for (const p of points) insert.run({ series: p.series, res, ts: p.ts, value: p.value });
  });
  const select = db.query<{ ts: number; value: number }, { res: number; series: string; from: number; to: number }>(
    'SELECT ts, value FROM history_samples WHERE res = $res AND series = $series AND ts BETWEEN $from AND $to ORDER BY ts',
  );
  const names = db.query<{ series: string }, { res: number }>('SELECT DISTINCT series FROM history_samples WHERE res = $res ORDER BY series');
  const aggregate = db.query<unknown, { source: number; target: number; width: number; from: number; to: number }>(
    `INSERT OR REPLACE INTO history_samples (series, res, ts, value)
     SELECT series, $target, (ts / $width) * $width, avg(value) FROM history_samples
     WHERE res = $source AND ts >= $from AND ts < $to GROUP BY series, ts / $width`,
  );
  const remove = db.query<unknown, { res: number; before: number }>('DELETE FROM history_samples WHERE res = $res AND ts < $before');
  const kvGet = db.query<{ value: string }, { key: string }>('SELECT value FROM history_kv WHERE key = $key');
  const kvSet = db.query<unknown, { key: string; value: string }>('INSERT OR REPLACE INTO history_kv (key, value) VALUES ($key, $value)');
  return {
    async append(points, res) {
      insertMany(points, res);
    },
    async query(series, from, to, res) {
      const out = new Map<string, Point[]>();
      for (const name of series) {
        const rows = select.all({ res, series: name, from, to });
        if (rows.length) out.set(name, rows.map((r) => [r.ts, r.value]));
      }
      return out;
    },
    async seriesNames(res) {
      return names.all({ res }).map((r) => r.series);
    },
    async downsample(source, target, from, to) {
      return aggregate.run({ source, target, width: target * 1000, from, to }).changes;
    },
    async prune(res, before) {
      return remove.run({ res, before }).changes;
    },
    async kvGet(key) {
      return kvGet.get({ key })?.value;
    },
    async kvSet(key, value) {
      kvSet.run({ key, value });
    },
    close() {
      db.close();
    },
  };
}
