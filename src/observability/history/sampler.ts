/**
 * The sampler: turns the prom-client registry and process statistics into one flat snapshot
 * of named series (`cpu_percent`, `qkd_qber{link="a-b"}`…). Counters and histograms are read
 * as deltas since the previous sample, so rates and percentiles describe the last interval.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import type { Registry } from 'prom-client';

/** A snapshot: series name → value, taken at `ts` (epoch ms). */
export interface Snapshot {
  ts: number;
  values: Record<string, number>;
}

/** The series every snapshot may carry, with their units (docs/ALERTS.md lists them too). */
export const seriesCatalogue: Record<string, string> = {
  cpu_percent: 'process CPU time over the interval, percent of all cores',
  memory_percent: 'resident set size, percent of the memory limit (cgroup or host)',
  rss_bytes: 'resident set size, bytes',
  connections: 'open client connections (all transports)',
  messages_per_second: 'relay messages in and out per second',
  http_requests_per_second: 'HTTP requests per second (public port)',
  http_error_rate: 'share of HTTP responses that were 5xx over the interval (0..1)',
  http_p50_seconds: 'HTTP latency median over the interval',
  http_p95_seconds: 'HTTP latency 95th percentile over the interval',
  http_p99_seconds: 'HTTP latency 99th percentile over the interval',
  handshake_failure_ratio: 'failed handshakes / all handshakes over the interval (0..1)',
  rate_limited_per_second: 'requests, handshakes or frames refused by rate limits per second',
  crypto_ops_per_second: 'cryptographic operations per second',
  bans_active: 'sources currently banned',
  broker_up: '1 when the broker answers, else 0',
  audit_chain_ok: '1 while the audit chain verifies, else 0',
  alerts_firing: 'alerts currently firing',
  'qkd_qber{link}': 'QBER of the last block per QKD link (ratio)',
  'qkd_key_rate{link}': 'secret key rate per QKD link, bits/s',
  'component_health{component}': 'component health 0 healthy … 4 down',
};

type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

/** The registry metrics a snapshot reads. */
const sampledMetrics = [
  'ssc_connections',
  'ssc_bans_active',
  'ssc_messages_total',
  'http_requests_total',
  'http_request_duration_seconds',
  'ssc_handshakes_total',
  'ssc_rate_limited_total',
  'ssc_crypto_ops_total',
  'ssc_qkd_qber',
  'ssc_qkd_key_rate_bits',
  'ssc_component_health',
  'ssc_broker_up',
  'ssc_alerts_firing',
];
type Labels = Record<string, string | number>;
interface Value {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** Formats a labelled series name the Prometheus way: `name{label="value"}`. */
export function seriesName(name: string, labels: Labels = {}): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return name;
  return `${name}{${keys.map((k) => `${k}="${String(labels[k]).replace(/["\\]/g, '')}"`).join(',')}}`;
}

/** The base name of a series (`qkd_qber{link="x"}` → `qkd_qber`). */
export const baseName = (series: string) => series.split('{', 1)[0]!;

/** Labels of a series name (`qkd_qber{link="x"}` → `{ link: 'x' }`). */
export function seriesLabels(series: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const inner = /\{(.*)\}$/.exec(series)?.[1];
  if (!inner) return labels;
  for (const match of inner.matchAll(/(\w+)="([^"]*)"/g)) labels[match[1]!] = match[2]!;
  return labels;
}

/**
 * The φ-quantile of a cumulative histogram (buckets `le` → count), interpolated linearly inside
 * the bucket as Prometheus' `histogram_quantile` does. Undefined when the histogram is empty.
 */
export function histogramQuantile(phi: number, buckets: { le: number; count: number }[]): number | undefined {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted.at(-1)?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = phi * total;
  let previousLe = 0;
  let previousCount = 0;
  for (const bucket of sorted) {
    if (bucket.count >= rank) {
      // The +Inf bucket has no upper bound: answer the highest finite bound, as Prometheus does.
      if (!Number.isFinite(bucket.le)) return previousLe;
      const inBucket = bucket.count - previousCount;
      return inBucket <= 0 ? bucket.le : previousLe + (bucket.le - previousLe) * ((rank - previousCount) / inBucket);
    }
    previousLe = bucket.le;
    previousCount = bucket.count;
  }
  return previousLe;
}

/** The memory limit this process lives under: the cgroup v2 `memory.max` when set, else the host's RAM. */
export function memoryLimitBytes(): number {
  const host = totalmem();
  try {
    const text = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    const limit = Number(text);
    if (Number.isFinite(limit) && limit > 0 && limit < host) return limit;
  } catch {
    // No cgroup v2 limit visible: the host's memory is the limit.
  }
  return host;
}

export interface SamplerOptions {
  registry: Registry;
  /** Epoch ms; injectable for tests. */
  now?: () => number;
  /** Extra series computed elsewhere (e.g. `audit_chain_ok`), merged into each snapshot. */
  extra?: () => Record<string, number> | Promise<Record<string, number>>;
  /** Process statistics; injectable for tests. */
  processStats?: () => { cpuMicros: number; rssBytes: number };
}

/** Creates a sampler; each `sample()` returns the snapshot of the interval since the previous call. */
export function createSampler(options: SamplerOptions) {
  const { registry, now = Date.now, extra } = options;
  const processStats =
    options.processStats ??
    (() => {
      const cpu = process.cpuUsage();
      return { cpuMicros: cpu.user + cpu.system, rssBytes: process.memoryUsage.rss() };
    });
  const cores = availableParallelism();
  const memoryLimit = memoryLimitBytes();
  let previous: { ts: number; cpuMicros: number; counters: Map<string, number> } | undefined;

  const key = (metricName: string, labels: Labels) => `${metricName}${JSON.stringify(labels, Object.keys(labels).sort())}`;

  return {
    async sample(): Promise<Snapshot> {
      const ts = now();
      // Only the metrics we need, one by one: `getMetricsAsJSON()` would also run collectors that
      // reset per-scrape state (the event-loop lag window) and cost the whole default set.
      const byName = new Map<string, MetricJson>();
      for (const name of sampledMetrics) {
        const metric = registry.getSingleMetric(name);
        if (metric) byName.set(name, (await metric.get()) as MetricJson);
      }
      const values = (name: string): Value[] => (byName.get(name)?.values as Value[] | undefined) ?? [];
      const counters = new Map<string, number>();
      const stats = processStats();
      const seconds = previous ? Math.max(0.001, (ts - previous.ts) / 1000) : 0;

      /** Sum over the interval of a counter's (or histogram part's) increase, for matching label sets. */
      const delta = (name: string, filter: (v: Value) => boolean = () => true, metricName = name): number => {
        let sum = 0;
        for (const v of values(name)) {
          if ((v.metricName ?? name) !== metricName || !filter(v)) continue;
          const k = key(metricName, v.labels);
          counters.set(k, v.value);
          const before = previous?.counters.get(k);
          // A counter that went down was reset: its whole value is the increase.
          sum += before === undefined ? (previous ? v.value : 0) : v.value >= before ? v.value - before : v.value;
        }
        return sum;
      };
      const gaugeSum = (name: string) => values(name).reduce((s, v) => s + v.value, 0);
      const out: Record<string, number> = {};
      const put = (name: string, value: number | undefined) => {
        if (value !== undefined && Number.isFinite(value)) out[name] = Math.round(value * 1e6) / 1e6;
      };

      put('rss_bytes', stats.rssBytes);
      put('memory_percent', (stats.rssBytes / memoryLimit) * 100);
      if (previous) put('cpu_percent', ((stats.cpuMicros - previous.cpuMicros) / 1e6 / seconds / cores) * 100);
      put('connections', gaugeSum('ssc_connections'));
      put('bans_active', gaugeSum('ssc_bans_active'));

      const messages = delta('ssc_messages_total');
      const requests = delta('http_requests_total');
      const errors5xx = delta('http_requests_total', (v) => String(v.labels.status).startsWith('5'));
      const handshakes = delta('ssc_handshakes_total');
      const failed = delta('ssc_handshakes_total', (v) => !['ok', 'success'].includes(String(v.labels.result)));
      const rateLimited = delta('ssc_rate_limited_total');
      const cryptoOps = delta('ssc_crypto_ops_total');

      // HTTP latency percentiles over the interval, from the bucket increases of all routes.
      const bucketDeltas = new Map<number, number>();
      for (const v of values('http_request_duration_seconds')) {
        if (v.metricName !== 'http_request_duration_seconds_bucket') continue;
        const le = v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le);
        const k = key(v.metricName, v.labels);
        counters.set(k, v.value);
        const before = previous?.counters.get(k);
        const increase = before === undefined ? (previous ? v.value : 0) : v.value >= before ? v.value - before : v.value;
        bucketDeltas.set(le, (bucketDeltas.get(le) ?? 0) + increase);
      }
      const buckets = [...bucketDeltas].map(([le, count]) => ({ le, count }));

      if (previous) {
        put('messages_per_second', messages / seconds);
        put('http_requests_per_second', requests / seconds);
        put('http_error_rate', requests > 0 ? errors5xx / requests : 0);
        put('handshake_failure_ratio', handshakes > 0 ? failed / handshakes : 0);
        put('rate_limited_per_second', rateLimited / seconds);
        put('crypto_ops_per_second', cryptoOps / seconds);
        put('http_p50_seconds', histogramQuantile(0.5, buckets));
        put('http_p95_seconds', histogramQuantile(0.95, buckets));
        put('http_p99_seconds', histogramQuantile(0.99, buckets));
      }

      for (const v of values('ssc_qkd_qber')) put(seriesName('qkd_qber', { link: v.labels.link! }), v.value);
      for (const v of values('ssc_qkd_key_rate_bits')) put(seriesName('qkd_key_rate', { link: v.labels.link! }), v.value);
      for (const v of values('ssc_component_health')) put(seriesName('component_health', { component: v.labels.component! }), v.value);
      const brokers = values('ssc_broker_up');
      if (brokers.length) put('broker_up', Math.min(...brokers.map((v) => v.value)));
      put('alerts_firing', gaugeSum('ssc_alerts_firing'));
      if (extra) for (const [name, value] of Object.entries(await extra())) put(name, value);

      previous = { ts, cpuMicros: stats.cpuMicros, counters };
      return { ts, values: out };
    },
  };
}

export type Sampler = ReturnType<typeof createSampler>;
