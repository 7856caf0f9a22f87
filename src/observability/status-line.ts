/**
 * The console status line: one line every `intervalSeconds` summarising the node — health,
 * CPU, memory, connections, messages/s, mean response time, error rate, crypto ops/s, QKD
 * pulses/s and components healthy/total. Rates are deltas of registry counters (CPU: of
 * `process.cpuUsage()`) between two ticks, so the line costs one registry read per interval and nothing on the hot path.
 *
 * The line is handed to `write` (the server passes its system logger), never to `console`.
 */
import type { Health } from './health.ts';
import { components } from './health.ts';
import type { Metrics } from './metrics.ts';

/** The numbers of one status line. */
export interface StatusFields {
  health: string;
  cpuPercent: number;
  memoryBytes: number;
  connections: number;
  messagesPerSecond: number;
  meanResponseMs: number;
  errorRatePercent: number;
  cryptoOpsPerSecond: number;
  qkdPulsesPerSecond: number;
  componentsHealthy: number;
  componentsTotal: number;
}

export interface StatusLineOptions {
  metrics: Metrics;
  health: Health;
  /** Receives each line and its numbers. */
  write(line: string, fields: StatusFields): void;
  intervalSeconds: number;
}

interface Counters {
  at: number;
  cpuSeconds: number;
  messages: number;
  requests: number;
  failed: number;
  durationSum: number;
  durationCount: number;
  cryptoOps: number;
  qkdPulses: number;
}

type Values = { value: number; labels: Record<string, string | number>; metricName?: string }[];

/** Formats the numbers as the one line. */
export function formatStatus(f: StatusFields): string {
  const mib = (f.memoryBytes / 1024 / 1024).toFixed(0);
  return [
    `status ${f.health}`,
    `cpu ${f.cpuPercent.toFixed(1)}%`,
    `mem ${mib} MiB`,
    `conn ${f.connections}`,
    `msg/s ${f.messagesPerSecond.toFixed(1)}`,
    `resp ${f.meanResponseMs.toFixed(1)} ms`,
    `err ${f.errorRatePercent.toFixed(2)}%`,
    `crypto/s ${f.cryptoOpsPerSecond.toFixed(0)}`,
    `qkd pulses/s ${f.qkdPulsesPerSecond.toFixed(0)}`,
    `components ${f.componentsHealthy}/${f.componentsTotal}`,
  ].join(' | ');
}

/**
 * Creates the status line. `tick()` computes and writes one line (the first tick's rates are
 * averages since the process started); `start()` ticks on the interval.
 *
 * @example
 * const status = createStatusLine({ metrics, health, intervalSeconds: 10, write: (line, fields) => log.info({ status: fields }, line) });
 * status.start();
 */
export function createStatusLine(options: StatusLineOptions) {
  const { metrics, health, write, intervalSeconds } = options;
  const registry = metrics.registry;
  let previous: Counters | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;

  async function values(name: string): Promise<Values> {
    const metric = registry.getSingleMetric(name);
    return metric ? ((await metric.get()).values as Values) : [];
  }
  const total = (list: Values, keep: (v: Values[number]) => boolean = () => true) =>
    list.filter(keep).reduce((s, v) => s + v.value, 0);

  async function read(): Promise<Counters & { memoryBytes: number; connections: number }> {
    const [rss, connections, messages, requests, duration, crypto, pulses] = await Promise.all([
      values('process_resident_memory_bytes'),
      values('ssc_connections'),
      values('ssc_messages_total'),
      values('http_requests_total'),
      values('http_request_duration_seconds'),
      values('ssc_crypto_ops_total'),
      values('ssc_qkd_pulses_total'),
    ]);
    // CPU from the process itself (the source of process_cpu_seconds_total): prom-client only
    // refreshes that counter when its user-time sibling is collected, so reading it alone is stale.
    const usage = process.cpuUsage();
    return {
      at: performance.now(),
      cpuSeconds: (usage.user + usage.system) / 1e6,
      // Default metrics can be switched off; the process's own figure is the fallback.
      memoryBytes: rss.length ? total(rss) : process.memoryUsage().rss,
      connections: total(connections),
      messages: total(messages),
      requests: total(requests),
      failed: total(requests, (v) => String(v.labels.status).startsWith('5')),
      durationSum: total(duration, (v) => v.metricName?.endsWith('_sum') ?? false),
      durationCount: total(duration, (v) => v.metricName?.endsWith('_count') ?? false),
      cryptoOps: total(crypto),
      qkdPulses: total(pulses),
    };
  }

  const status = {
    /** Computes the numbers since the previous tick, writes the line and returns it. */
    async tick(): Promise<{ line: string; fields: StatusFields }> {
      const now = await read();
      const before: Counters = previous ?? {
        // First tick: rates since the process started (performance.now() counts from then).
        at: 0,
        cpuSeconds: 0,
        messages: 0,
        requests: 0,
        failed: 0,
        durationSum: 0,
        durationCount: 0,
        cryptoOps: 0,
        qkdPulses: 0,
      };
      previous = now;
      const seconds = Math.max(0.001, (now.at - before.at) / 1000);
      const requests = now.requests - before.requests;
      const durationCount = now.durationCount - before.durationCount;
      const report = await health.evaluate();
      const healthy = components.filter((component) =>
        report.checks.filter((c) => c.component === component).every((c) => c.status === 'healthy'),
      ).length;
      const fields: StatusFields = {
        health: report.status,
        cpuPercent: ((now.cpuSeconds - before.cpuSeconds) / seconds) * 100,
        memoryBytes: now.memoryBytes,
        connections: now.connections,
        messagesPerSecond: (now.messages - before.messages) / seconds,
        meanResponseMs: durationCount > 0 ? ((now.durationSum - before.durationSum) / durationCount) * 1000 : 0,
        errorRatePercent: requests > 0 ? ((now.failed - before.failed) / requests) * 100 : 0,
        cryptoOpsPerSecond: (now.cryptoOps - before.cryptoOps) / seconds,
        qkdPulsesPerSecond: (now.qkdPulses - before.qkdPulses) / seconds,
        componentsHealthy: healthy,
        componentsTotal: components.length,
      };
      const line = formatStatus(fields);
      write(line, fields);
      return { line, fields };
    },
    /** Writes a line every `intervalSeconds` (0 = never). */
    start() {
      if (intervalSeconds <= 0) return;
      clearInterval(timer);
      timer = setInterval(() => void status.tick().catch(() => undefined), intervalSeconds * 1000);
      timer.unref?.();
    },
    stop() {
      clearInterval(timer);
    },
  };
  return status;
}

export type StatusLine = ReturnType<typeof createStatusLine>;
