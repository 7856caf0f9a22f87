/**
 * The Prometheus registry and the project's own metrics (`ssc_` prefix). Created once in
 * `src/server.ts` and handed down; the HTTP metrics come from `@hono/prometheus` on the same
 * registry. Label values are bounded: route patterns, enum-like results, configured link names.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Component health as a number: 0 healthy, 1 warning, 2 degraded, 3 critical, 4 down. */
export const severityValue = { healthy: 0, warning: 1, degraded: 2, critical: 3, down: 4 } as const;

/**
 * Default metrics prom-client registers that are dropped here: three gauges whose `_total`
 * suffix `promtool check metrics` rejects (the same values are exported without the suffix as
 * `nodejs_active_handles`, `nodejs_active_requests`, `nodejs_active_resources`), and
 * `nodejs_eventloop_lag_seconds`, which reads 0 on Bun (replaced by `ssc_event_loop_lag_seconds`).
 */
export const droppedDefaultMetrics = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
  'nodejs_eventloop_lag_seconds',
] as const;

/**
 * Event-loop lag measured by the drift of a timer: every `intervalMs` a timer notes how late it
 * fired; the lag is the mean (and max) lateness over the last `windowMs`. Reading does not reset
 * it, so several readers (Prometheus, the status line, the history sampler) see the same value.
 * `currentMs()` also counts the time since the last tick, so a loop that is stuck right now
 * reads as lagging before the next tick lands.
 */
export function createEventLoopMonitor(options: { intervalMs?: number; windowMs?: number } = {}) {
  const { intervalMs = 100, windowMs = 5_000 } = options;
  const size = Math.max(1, Math.round(windowMs / intervalMs));
  const samples = new Float64Array(size);
  let count = 0;
  let index = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const at = performance.now();
    samples[index] = Math.max(0, at - last - intervalMs);
    index = (index + 1) % size;
    count = Math.min(count + 1, size);
    last = at;
  }, intervalMs);
  timer.unref?.();
  return {
    /** Mean lag over the window, in milliseconds. */
    meanMs(): number {
      let sum = 0;
      for (let i = 0; i < count; i++) sum += samples[i]!;
      return count ? sum / count : 0;
    },
    /** Largest lag in the window, in milliseconds. */
    maxMs(): number {
      let max = 0;
      for (let i = 0; i < count; i++) max = Math.max(max, samples[i]!);
      return max;
    },
    /** The lag right now: the worse of the window's max and the time overdue since the last tick. */
    currentMs(): number {
      return Math.max(this.maxMs(), performance.now() - last - intervalMs);
    },
    close() {
      clearInterval(timer);
    },
  };
}

export type EventLoopMonitor = ReturnType<typeof createEventLoopMonitor>;

/** Creates the registry with default process metrics and every `ssc_` metric. */
export function createMetrics(options: { defaultMetrics?: boolean; nodeId?: string } = {}) {
  const registry = new Registry();
  if (options.nodeId) registry.setDefaultLabels({ node: options.nodeId });
  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    for (const name of droppedDefaultMetrics) registry.removeSingleMetric(name);
  }
  const registers = [registry];
  const eventLoop = createEventLoopMonitor();

  const metrics = {
    registry,
    connections: new Gauge({
      name: 'ssc_connections',
      help: 'Open client connections by transport.',
      labelNames: ['transport'] as const,
      registers,
    }),
    handshakes: new Counter({
      name: 'ssc_handshakes_total',
      help: 'Channel handshakes by result and protocol.',
      labelNames: ['result', 'protocol'] as const,
      registers,
    }),
    handshakeDuration: new Histogram({
      name: 'ssc_handshake_duration_seconds',
      help: 'Time from the first handshake message to an open channel.',
      labelNames: ['protocol'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    messages: new Counter({
      name: 'ssc_messages_total',
      help: 'Relay messages by direction (in, out) and kind (publish, direct, ack, control).',
      labelNames: ['direction', 'kind'] as const,
      registers,
    }),
    messageBytes: new Counter({
      name: 'ssc_message_bytes_total',
      help: 'Frame bytes by direction.',
      labelNames: ['direction'] as const,
      registers,
    }),
    deliveryLatency: new Histogram({
      name: 'ssc_delivery_latency_seconds',
      help: 'Time from a message entering the relay to its frame being handed to the transport.',
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers,
    }),
    cryptoOps: new Counter({
      name: 'ssc_crypto_ops_total',
      help: 'Cryptographic operations by operation and backend.',
      labelNames: ['op', 'backend'] as const,
      registers,
    }),
    qkdQber: new Gauge({
      name: 'ssc_qkd_qber',
      help: 'Estimated quantum bit error rate of the last block, per link (ratio).',
      labelNames: ['link'] as const,
      registers,
    }),
    qkdKeyRate: new Gauge({
      name: 'ssc_qkd_key_rate_bits',
      help: 'Secret key rate of the link, bits per second.',
      labelNames: ['link'] as const,
      registers,
    }),
    qkdPoolKeys: new Gauge({
      name: 'ssc_qkd_pool_keys',
      help: 'Keys available in the link key pool.',
      labelNames: ['link'] as const,
      registers,
    }),
    qkdPulses: new Counter({
      name: 'ssc_qkd_pulses_total',
      help: 'Pulses simulated per link.',
      labelNames: ['link'] as const,
      registers,
    }),
    brokerCommandDuration: new Histogram({
      name: 'ssc_broker_command_duration_seconds',
      help: 'Broker and store command latency by backend and command.',
      labelNames: ['backend', 'command'] as const,
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2],
      registers,
    }),
    brokerUp: new Gauge({
      name: 'ssc_broker_up',
      help: '1 when the broker backend answers, 0 when it does not.',
      labelNames: ['backend'] as const,
      registers,
    }),
    authAttempts: new Counter({
      name: 'ssc_auth_attempts_total',
      help: 'Client authentication attempts by result and method.',
      labelNames: ['result', 'method'] as const,
      registers,
    }),
    rateLimited: new Counter({
      name: 'ssc_rate_limited_total',
      help: 'Requests, handshakes or frames refused by a rate limit, by scope.',
      labelNames: ['scope'] as const,
      registers,
    }),
    bansActive: new Gauge({ name: 'ssc_bans_active', help: 'Sources currently banned.', registers }),
    alertsFiring: new Gauge({
      name: 'ssc_alerts_firing',
      help: 'Alerts currently firing by rule and severity.',
      labelNames: ['rule', 'severity'] as const,
      registers,
    }),
    componentHealth: new Gauge({
      name: 'ssc_component_health',
      help: 'Component health: 0 healthy, 1 warning, 2 degraded, 3 critical, 4 down.',
      labelNames: ['component'] as const,
      registers,
    }),
    circuitBreakerState: new Gauge({
      name: 'ssc_circuit_breaker_state',
      help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open.',
      labelNames: ['name'] as const,
      registers,
    }),
    errors: new Counter({
      name: 'ssc_errors_total',
      help: 'Errors by kind (bad input, internal, dependency).',
      labelNames: ['kind'] as const,
      registers,
    }),
    eventLoopLag: new Gauge({
      name: 'ssc_event_loop_lag_seconds',
      help: 'Mean event-loop lag over the last 5 seconds, measured by timer drift.',
      registers,
      collect() {
        this.set(eventLoop.meanMs() / 1000);
      },
    }),
    operationDuration: new Histogram({
      name: 'ssc_operation_duration_seconds',
      help: 'Duration of timed operations (the logger time() helper), by operation name.',
      labelNames: ['op'] as const,
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    /** The event-loop monitor behind `ssc_event_loop_lag_seconds` and `/live`. */
    eventLoop,
    info: new Gauge({
      name: 'ssc_build_info',
      help: 'Build information; the value is always 1.',
      labelNames: ['version', 'runtime'] as const,
      registers,
    }),
    /** Stops background sampling (tests, shutdown). */
    close() {
      eventLoop.close();
    },
  };
  // Known label values start at 0, so rates and alerts work before the first event and a
  // scrape shows the series that exist.
  for (const transport of ['ws', 'http']) metrics.connections.set({ transport }, 0);
  for (const kind of ['bad_input', 'internal', 'dependency']) metrics.errors.inc({ kind }, 0);
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
