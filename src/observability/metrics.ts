/**
 * The Prometheus registry and the project's own metrics (`ssc_` prefix). Created once in
 * `src/server.ts` and handed down; the HTTP metrics come from `@hono/prometheus` on the same
 * registry. Label values are bounded: route patterns, enum-like results, configured link names.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Component health as a number: 0 healthy, 1 warning, 2 degraded, 3 critical, 4 down. */
export const severityValue = { healthy: 0, warning: 1, degraded: 2, critical: 3, down: 4 } as const;

/** Creates the registry with default process metrics and every `ssc_` metric. */
export function createMetrics(options: { defaultMetrics?: boolean; nodeId?: string } = {}) {
  const registry = new Registry();
  if (options.nodeId) registry.setDefaultLabels({ node: options.nodeId });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

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
      help: 'Mean event-loop delay over the last scrape interval.',
      registers,
      collect() {
        this.set(Number.isFinite(loopDelay.mean) ? loopDelay.mean / 1e9 : 0);
        loopDelay.reset();
      },
    }),
    info: new Gauge({
      name: 'ssc_build_info',
      help: 'Build information; the value is always 1.',
      labelNames: ['version', 'runtime'] as const,
      registers,
    }),
    /** Stops background sampling (tests, shutdown). */
    close() {
      loopDelay.disable();
    },
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
