/**
 * The health checks the server can make by itself, from what it already has: the log streams
 * and their disk (logging), the error rate and circuit breakers (error handler), connections
 * against their limit (network) and, on a single node, the (empty) cluster view (consensus). Every value is read from the
 * logging state or the metrics registry — nothing here measures on the hot path.
 *
 * Other rooms add theirs with `health.register(component, name, { critical, check })`, e.g. the
 * crypto self-test (`crypto-protocols`, critical), the WASM module (`quantum-core`, critical),
 * the store and Redis (`network`/`error-handler`, critical when configured).
 */
import { accessSync, constants, statfsSync } from 'node:fs';
import type { Registry } from 'prom-client';
import type { Config } from '../config/index.ts';
import type { CheckResult, Health } from './health.ts';
import type { Logging } from './logger.ts';
import type { Metrics } from './metrics.ts';

interface Sample {
  value: number;
  labels: Record<string, string | number>;
}

/** Current values of one metric in the registry (an empty list when it is not registered). */
export async function readMetric(registry: Registry, name: string): Promise<Sample[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return [];
  const data = await metric.get();
  return data.values as Sample[];
}

const sum = (samples: Sample[], keep: (s: Sample) => boolean = () => true) =>
  samples.filter(keep).reduce((total, s) => total + s.value, 0);

export interface DefaultCheckOptions {
  config: Config;
  health: Health;
  metrics: Metrics;
  logging: Logging;
}

/** Logging: every file stream writable, the directory writable, and free disk space. */
export function loggingCheck(config: Config, logging: Logging): () => CheckResult {
  return () => {
    if (!config.log.dir) return { status: 'healthy', observedValue: 0, observedUnit: 'file streams', output: 'file streams disabled (log.dir is empty)' };
    const problems: string[] = [];
    for (const stream of logging.streams()) if (!stream.writable) problems.push(`${stream.stream}.log: ${stream.lastError}`);
    try {
      accessSync(config.log.dir, constants.W_OK);
    } catch (error) {
      problems.push(`log directory not writable: ${(error as Error).message}`);
    }
    let freePercent: number | undefined;
    try {
      const stats = statfsSync(config.log.dir);
      freePercent = Math.round((stats.bavail / stats.blocks) * 1000) / 10;
    } catch {
      // Reported through the problems above (the directory is gone or unreadable).
    }
    const broken = problems.some((p) => !p.endsWith('reopened'));
    if (problems.length > 0) {
      return {
        status: broken ? 'critical' : 'warning',
        observedValue: freePercent,
        observedUnit: 'percent disk free',
        output: problems.join('; '),
        action: broken
          ? `restore ${config.log.dir} (exists, writable by the service user, disk not full); lines are lost meanwhile`
          : 'a live log file was removed under the server; it has been reopened — use the built-in rotation',
      };
    }
    const status = freePercent === undefined ? 'warning' : freePercent < 2 ? 'critical' : freePercent < 10 ? 'warning' : 'healthy';
    return {
      status,
      observedValue: freePercent,
      observedUnit: 'percent disk free',
      output: `combined, error and audit streams writable; log disk ${freePercent ?? '?'} % free`,
      action: 'free disk space or lower log.rotation.keep / log.rotation.size',
    };
  };
}

/**
 * Error handler: the share of HTTP responses that were server errors since the last check
 * (from `http_requests_total`), plus any circuit breaker that is open or half-open.
 */
export function errorHandlerCheck(metrics: Metrics): () => Promise<CheckResult> {
  let last: { total: number; failed: number } | undefined;
  return async () => {
    const requests = await readMetric(metrics.registry, 'http_requests_total');
    const total = sum(requests);
    const failed = sum(requests, (s) => String(s.labels.status).startsWith('5'));
    const delta = last ? { total: total - last.total, failed: failed - last.failed } : { total, failed };
    last = { total, failed };
    const ratio = delta.total > 0 ? delta.failed / delta.total : 0;
    const breakers = await readMetric(metrics.registry, 'ssc_circuit_breaker_state');
    const open = breakers.filter((b) => b.value === 2).map((b) => String(b.labels.name));
    const halfOpen = breakers.filter((b) => b.value === 1).map((b) => String(b.labels.name));
    let status: CheckResult['status'] = ratio > 0.2 ? 'critical' : ratio > 0.05 ? 'degraded' : ratio > 0.02 ? 'warning' : 'healthy';
    if (open.length > 0 && status === 'healthy') status = 'degraded';
    else if (halfOpen.length > 0 && status === 'healthy') status = 'warning';
    const percent = Math.round(ratio * 10_000) / 100;
    const parts = [`${percent} % of ${delta.total} responses since the last check were server errors`];
    if (open.length) parts.push(`open circuit breakers: ${open.join(', ')}`);
    if (halfOpen.length) parts.push(`half-open: ${halfOpen.join(', ')}`);
    return {
      status,
      observedValue: percent,
      observedUnit: 'percent 5xx',
      output: parts.join('; '),
      action: open.length
        ? `the dependency behind ${open.join(', ')} is failing: check it (Redis, webhook, SMTP); calls resume when it answers`
        : 'read error.log for the failing requests (requestId) and their causes',
      details: { breakers: Object.fromEntries(breakers.map((b) => [String(b.labels.name), b.value])) },
    };
  };
}

/** Network: open connections against `channel.maxConnections`. */
export function networkCheck(config: Config, metrics: Metrics): () => Promise<CheckResult> {
  return async () => {
    const connections = await readMetric(metrics.registry, 'ssc_connections');
    const open = sum(connections);
    const limit = config.channel.maxConnections;
    const ratio = open / limit;
    return {
      status: ratio >= 1 ? 'critical' : ratio >= 0.95 ? 'degraded' : ratio >= 0.8 ? 'warning' : 'healthy',
      observedValue: open,
      observedUnit: `connections (limit ${limit})`,
      output: `${open} of ${limit} connections open (${Math.round(ratio * 1000) / 10} %)`,
      action: 'add nodes behind the load balancer or raise channel.maxConnections if memory allows',
      details: Object.fromEntries(connections.map((c) => [String(c.labels.transport), c.value])),
    };
  };
}

/** Registers the default checks above with their components. */
export function registerDefaultChecks(options: DefaultCheckOptions): void {
  const { config, health, metrics, logging } = options;
  health.register('logging', 'log-streams', { critical: false, check: loggingCheck(config, logging) });
  health.register('error-handler', 'error-rate', { critical: false, check: errorHandlerCheck(metrics) });
  health.register('network', 'connections', { critical: false, check: networkCheck(config, metrics) });
}
