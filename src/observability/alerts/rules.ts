/**
 * Alert rules: the defaults of DESIGN §7 and their merge with the configured rules (a configured
 * rule with a default's name replaces it; `enabled = false` switches one off).
 */
import type { Config } from '../../config/index.ts';

export type AlertRule = Config['alerts']['rules'][number];
export type AlertSeverity = AlertRule['severity'];
export type Comparator = AlertRule['op'];

/** Severities in escalation order. */
export const severities: AlertSeverity[] = ['warning', 'degraded', 'critical', 'down'];

/** The next severity up (escalation); `down` stays `down`. */
export const raise = (s: AlertSeverity): AlertSeverity => severities[Math.min(severities.indexOf(s) + 1, severities.length - 1)]!;

const rule = (r: Partial<AlertRule> & Pick<AlertRule, 'name' | 'metric' | 'threshold' | 'action'>): AlertRule => ({
  op: '>',
  forSeconds: 60,
  severity: 'warning',
  cooldownSeconds: 300,
  escalateAfter: 0,
  enabled: true,
  ...r,
});

/**
 * The default rules. Thresholds are in the units of the sampled series (docs/ALERTS.md):
 * percentages for CPU and memory, ratios (0..1) for error and failure rates, seconds for latency.
 * `deploy/prometheus/alerts.yml` carries the same rules in PromQL.
 */
export const defaultRules: AlertRule[] = [
  rule({
    name: 'HighCpu',
    metric: 'cpu_percent',
    threshold: 80,
    forSeconds: 120,
    escalateAfter: 30,
    action: 'Check load (connections, messages/s) and event-loop lag; add nodes or lower limits.',
  }),
  rule({
    name: 'HighMemory',
    metric: 'memory_percent',
    threshold: 85,
    forSeconds: 120,
    escalateAfter: 30,
    action: 'Look for slow consumers (send queues) and large histories; raise the memory limit or shed connections.',
  }),
  rule({
    name: 'HighHttpErrorRate',
    metric: 'http_error_rate',
    threshold: 0.02,
    forSeconds: 60,
    severity: 'degraded',
    escalateAfter: 18,
    action: 'Read the error log (error.log) for the failing routes; check broker and store health.',
  }),
  rule({
    name: 'SlowHttpResponses',
    metric: 'http_p95_seconds',
    threshold: 0.5,
    forSeconds: 120,
    escalateAfter: 30,
    action: 'p95 above 500 ms: check CPU, event-loop lag and broker latency.',
  }),
  rule({
    name: 'TooManyConnections',
    metric: 'connections',
    op: '>=',
    threshold: 5000,
    forSeconds: 60,
    severity: 'degraded',
    action: 'The node is at channel.maxConnections: add nodes behind the load balancer.',
  }),
  rule({
    name: 'QkdQberHigh',
    metric: 'qkd_qber',
    threshold: 0.11,
    forSeconds: 30,
    severity: 'critical',
    action: 'QBER above 11 %: no secret key can be distilled; suspect an eavesdropper or a fibre fault. Keys of this link are not mixed in.',
  }),
  rule({
    name: 'BrokerDown',
    metric: 'broker_up',
    op: '<',
    threshold: 1,
    forSeconds: 30,
    severity: 'critical',
    escalateAfter: 6,
    action: 'The broker (Redis) does not answer: check the Redis service and network; cross-node delivery is stopped.',
  }),
  rule({
    name: 'HandshakeFailures',
    metric: 'handshake_failure_ratio',
    threshold: 0.2,
    forSeconds: 120,
    action: 'Many handshakes fail: check for clients with stale pins or protocol mismatch, or an attack (see bans).',
  }),
  rule({
    name: 'RateLimitAbuse',
    metric: 'rate_limited_per_second',
    threshold: 10,
    forSeconds: 60,
    action: 'Sustained rate-limit hits: inspect the audit log for the sources and ban them if hostile.',
  }),
  rule({
    name: 'AuditChainBroken',
    metric: 'audit_chain_ok',
    op: '<',
    threshold: 1,
    forSeconds: 0,
    severity: 'critical',
    cooldownSeconds: 3600,
    action: 'The audit log hash chain does not verify: preserve the files, run `ssc audit verify`, investigate tampering.',
  }),
];

/** Defaults merged with the configured rules: by name, configured wins; disabled rules dropped. */
export function effectiveRules(configured: AlertRule[], defaults: AlertRule[] = defaultRules): AlertRule[] {
  const byName = new Map(defaults.map((r) => [r.name, r]));
  for (const r of configured) byName.set(r.name, r);
  return [...byName.values()].filter((r) => r.enabled !== false);
}

/** Applies a comparator. */
export function compare(value: number, op: Comparator, threshold: number): boolean {
  switch (op) {
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
    case '==':
      return value === threshold;
    case '!=':
      return value !== threshold;
  }
}
