import { describe, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  createHistory,
  createMemoryHistoryStore,
  createSampler,
  createSqliteHistoryStore,
  type HistoryStore,
  histogramQuantile,
  MINUTE_LEVEL,
  RAW_LEVEL,
  type Sampler,
} from '../../src/observability/history/index.ts';
import { openFilesUnder } from '../helpers/fds.ts';

const hour = 3_600_000;
const day = 24 * hour;

/** A sampler that replays given values (the history job is tested apart from the registry). */
function replaySampler(now: () => number, value: () => Record<string, number>): Sampler {
  return { sample: async () => ({ ts: now(), values: value() }) };
}

const backends: [string, () => HistoryStore][] = [
  ['memory', () => createMemoryHistoryStore()],
  ['sqlite', () => createSqliteHistoryStore(join(mkdtempSync(join(tmpdir(), 'ssc-history-')), 'history.sqlite'))],
];

for (const [name, make] of backends) {
  describe(`history store (${name})`, () => {
    test('append, query by range, replace on the same timestamp, kv', async () => {
      const store = make();
      await store.append(
        [
          { series: 'a', ts: 1000, value: 1 },
          { series: 'a', ts: 2000, value: 2 },
          { series: 'b', ts: 2000, value: 5 },
        ],
        RAW_LEVEL,
      );
      await store.append([{ series: 'a', ts: 2000, value: 3 }], RAW_LEVEL);
      const rows = await store.query(['a', 'b', 'missing'], 1500, 5000, RAW_LEVEL);
      expect(rows.get('a')).toEqual([[2000, 3]]);
      expect(rows.get('b')).toEqual([[2000, 5]]);
      expect(rows.has('missing')).toBe(false);
      expect(await store.seriesNames(RAW_LEVEL)).toEqual(['a', 'b']);
      expect(await store.kvGet('k')).toBeUndefined();
      await store.kvSet('k', 'v1');
      await store.kvSet('k', 'v2');
      expect(await store.kvGet('k')).toBe('v2');
      store.close();
    });

    test('downsampling to 1-minute averages and retention (24 h raw, 7 days of minutes)', async () => {
      const store = make();
      const start = Date.UTC(2030, 0, 1);
      let t = start;
      let v = 0;
      const history = createHistory({ store, sampler: replaySampler(() => t, () => ({ cpu_percent: v, 'qkd_qber{link="A-B"}': v / 100 })), intervalSeconds: 10 });
      // Three minutes of samples every 10 s: values 0..17.
      for (let i = 0; i < 18; i++) {
        v = i;
        await history.tick();
        t += 10_000;
      }
      const result = await history.maintain(start + 3 * 60_000 + 5_000);
      // The ticks roll completed minutes up once a minute themselves; this call adds the third
      // minute (2 series).
      expect(result.rolledUp).toBe(2);
      const minutes = await store.query(['cpu_percent'], start, start + day, MINUTE_LEVEL);
      // Averages of 0..5, 6..11, 12..17.
      expect(minutes.get('cpu_percent')).toEqual([
        [start, 2.5],
        [start + 60_000, 8.5],
        [start + 120_000, 14.5],
      ]);
      // Maintenance again rolls nothing twice (the watermark moved on).
      expect((await history.maintain(start + 3 * 60_000 + 9_000)).rolledUp).toBe(0);

      // 25 h later the raw points are gone, the minutes remain; queries fall back to them.
      const later = start + 25 * hour;
      const pruned = await history.maintain(later);
      expect(pruned.prunedRaw).toBe(36);
      expect((await store.query(['cpu_percent'], start, later, RAW_LEVEL)).size).toBe(0);
      const viaQuery = await createHistory({ store, sampler: replaySampler(() => later, () => ({})), intervalSeconds: 10, now: () => later }).query({
        series: ['cpu_percent', 'qkd_qber'],
        from: start,
        to: start + 10 * 60_000,
        step: 120,
      });
      expect(viaQuery.level).toBe('1m');
      expect(viaQuery.step).toBe(120);
      expect(viaQuery.series.cpu_percent).toEqual([
        [start, 5.5],
        [start + 120_000, 14.5],
      ]);
      // A bare name selects every labelled series of that name.
      expect(Object.keys(viaQuery.series)).toContain('qkd_qber{link="A-B"}');

      // After 7 days (+) the minutes are pruned too.
      const week = await history.maintain(start + 7 * day + 4 * 60_000);
      expect(week.prunedMinute).toBe(6);
      expect((await store.query(['cpu_percent'], 0, start + 8 * day, MINUTE_LEVEL)).size).toBe(0);
      store.close();
    });

    test('recent queries read the raw level, with optional step averaging', async () => {
      const store = make();
      const start = Date.UTC(2030, 0, 1);
      let t = start;
      const history = createHistory({ store, sampler: replaySampler(() => t, () => ({ connections: (t - start) / 10_000 })), intervalSeconds: 10, now: () => t });
      for (let i = 0; i < 6; i++) {
        await history.tick();
        t += 10_000;
      }
      const raw = await history.query({ series: ['connections'], from: start, to: t });
      expect(raw.level).toBe('raw');
      expect(raw.series.connections).toHaveLength(6);
      const stepped = await history.query({ series: ['connections'], from: start, to: t, step: 30 });
      expect(stepped.series.connections).toEqual([
        [start, 1],
        [start + 30_000, 4],
      ]);
      store.close();
    });
  });
}

test('the sqlite history store releases its file on close (every statement finalized)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssc-history-close-'));
  const store = createSqliteHistoryStore(join(dir, 'history.sqlite'));
  await store.append([{ series: 'a', ts: 1000, value: 1 }], RAW_LEVEL);
  await store.query(['a'], 0, 2000, RAW_LEVEL);
  await store.seriesNames(RAW_LEVEL);
  expect(openFilesUnder(dir)).toBeGreaterThan(0);
  store.close();
  expect(openFilesUnder(dir)).toBe(0);
});

describe('sampler', () => {
  test('rates, ratios and percentiles over the interval from registry deltas', async () => {
    const registry = new Registry();
    const registers = [registry];
    const requests = new Counter({ name: 'http_requests_total', help: 'h', labelNames: ['method', 'status', 'ok', 'route'], registers });
    const duration = new Histogram({ name: 'http_request_duration_seconds', help: 'h', labelNames: ['method', 'status', 'ok', 'route'], buckets: [0.1, 0.5, 1], registers });
    const messages = new Counter({ name: 'ssc_messages_total', help: 'h', labelNames: ['direction', 'kind'], registers });
    const handshakes = new Counter({ name: 'ssc_handshakes_total', help: 'h', labelNames: ['result', 'protocol'], registers });
    const connections = new Gauge({ name: 'ssc_connections', help: 'h', labelNames: ['transport'], registers });
    const qber = new Gauge({ name: 'ssc_qkd_qber', help: 'h', labelNames: ['link'], registers });
    const health = new Gauge({ name: 'ssc_component_health', help: 'h', labelNames: ['component'], registers });
    let t = 1_000_000;
    let cpu = 0;
    const sampler = createSampler({ registry, now: () => t, processStats: () => ({ cpuMicros: cpu, rssBytes: 1024 }) });

    requests.inc({ method: 'GET', status: '200', ok: 'true', route: '/' }, 50);
    const first = await sampler.sample();
    expect(first.values.http_requests_per_second).toBeUndefined(); // the first sample only sets baselines

    t += 10_000;
    cpu += 5_000_000; // 5 s of CPU in 10 s
    requests.inc({ method: 'GET', status: '200', ok: 'true', route: '/' }, 95);
    requests.inc({ method: 'GET', status: '503', ok: 'false', route: '/' }, 5);
    for (let i = 0; i < 90; i++) duration.observe({ method: 'GET', status: '200', ok: 'true', route: '/' }, 0.05);
    for (let i = 0; i < 10; i++) duration.observe({ method: 'GET', status: '200', ok: 'true', route: '/' }, 0.7);
    messages.inc({ direction: 'in', kind: 'publish' }, 300);
    messages.inc({ direction: 'out', kind: 'publish' }, 200);
    handshakes.inc({ result: 'ok', protocol: 'x' }, 8);
    handshakes.inc({ result: 'failed', protocol: 'x' }, 2);
    connections.set({ transport: 'ws' }, 7);
    connections.set({ transport: 'http' }, 3);
    qber.set({ link: 'A-B' }, 0.031);
    health.set({ component: 'network' }, 2);
    const s = (await sampler.sample()).values;
    expect(s.http_requests_per_second).toBe(10);
    expect(s.http_error_rate).toBe(0.05);
    expect(s.messages_per_second).toBe(50);
    expect(s.handshake_failure_ratio).toBe(0.2);
    expect(s.connections).toBe(10);
    expect(s['qkd_qber{link="A-B"}']).toBe(0.031);
    expect(s['component_health{component="network"}']).toBe(2);
    expect(s.cpu_percent).toBeCloseTo(50 / availableParallelism(), 3);
    // 90 fast + 10 slow: p50 in the first bucket, p95 between 0.5 and 1.
    expect(s.http_p50_seconds).toBeCloseTo(0.1 * (50 / 90), 5);
    expect(s.http_p95_seconds).toBeCloseTo(0.5 + 0.5 * (5 / 10), 5);

    // Nothing happens in the next interval: rates fall to 0, no latency percentiles.
    t += 10_000;
    const idle = (await sampler.sample()).values;
    expect(idle.http_requests_per_second).toBe(0);
    expect(idle.http_error_rate).toBe(0);
    expect(idle.http_p95_seconds).toBeUndefined();
  });

  test('histogramQuantile interpolates like Prometheus', () => {
    const buckets = [
      { le: 0.1, count: 10 },
      { le: 0.5, count: 30 },
      { le: Number.POSITIVE_INFINITY, count: 40 },
    ];
    expect(histogramQuantile(0.25, buckets)).toBeCloseTo(0.1, 9);
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.1 + 0.4 * (10 / 20), 9);
    expect(histogramQuantile(0.99, buckets)).toBe(0.5);
    expect(histogramQuantile(0.5, [])).toBeUndefined();
  });
});
