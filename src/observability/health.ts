/**
 * Component health (DESIGN §2): seven components, each with a check run on an interval and on
 * demand (with a short cache), never on the hot path. Aggregates into `/health`,
 * `/health/detailed` (application/health+json draft), `/ready` and `/live`.
 */
import type { Logger } from 'pino';
import type { Metrics } from './metrics.ts';
import { severityValue } from './metrics.ts';

export type Severity = keyof typeof severityValue;

/** The seven components of the health report. */
export const components = [
  'security-foundation',
  'crypto-protocols',
  'quantum-core',
  'network',
  'consensus',
  'logging',
  'error-handler',
] as const;
export type ComponentName = (typeof components)[number];

export interface CheckResult {
  status: Severity;
  /** What was measured, e.g. a ratio or a count. */
  observedValue?: unknown;
  observedUnit?: string;
  /** A human sentence on the state. */
  output?: string;
  /** What an operator should do when not healthy. */
  action?: string;
  /** Structured extras (backend choices, peers…). */
  details?: Record<string, unknown>;
}

export interface ComponentCheck {
  /** A critical component that is `down` or `critical` makes `/ready` fail. */
  critical: boolean;
  check(): CheckResult | Promise<CheckResult>;
}

export type Lifecycle = 'starting' | 'ready' | 'draining' | 'stopped';

export interface ComponentReport extends CheckResult {
  component: ComponentName;
  name: string;
  critical: boolean;
  time: string;
}

export interface HealthReport {
  status: Severity;
  lifecycle: Lifecycle;
  checks: ComponentReport[];
}

const order: Severity[] = ['healthy', 'warning', 'degraded', 'critical', 'down'];
/** The worse of two severities. */
export const worst = (a: Severity, b: Severity): Severity => (order.indexOf(a) >= order.indexOf(b) ? a : b);

export interface HealthOptions {
  metrics?: Metrics;
  logger?: Logger;
  /** Checks results younger than this are served from cache (ms). */
  cacheMs?: number;
}

/** Creates the health registry. Components register named checks; `start()` runs them on an interval. */
export function createHealth(options: HealthOptions = {}) {
  const { metrics, logger, cacheMs = 1_000 } = options;
  const checks = new Map<string, { component: ComponentName } & ComponentCheck>();
  let last: { at: number; reports: ComponentReport[] } | undefined;
  let running: Promise<ComponentReport[]> | undefined;
  let lifecycle: Lifecycle = 'starting';
  let timer: ReturnType<typeof setInterval> | undefined;
  const previous = new Map<string, Severity>();

  async function runOne(name: string, entry: { component: ComponentName } & ComponentCheck): Promise<ComponentReport> {
    let result: CheckResult;
    try {
      result = await entry.check();
    } catch (error) {
      result = { status: 'down', output: `check failed: ${(error as Error).message}`, action: 'see the error log' };
    }
    const before = previous.get(name);
    if (before !== result.status) {
      previous.set(name, result.status);
      if (before !== undefined) {
        logger?.[result.status === 'healthy' ? 'info' : 'warn'](
          { check: name, component: entry.component, from: before, to: result.status, output: result.output },
          'health changed',
        );
      }
    }
    return { component: entry.component, name, critical: entry.critical, time: new Date().toISOString(), ...result };
  }

  async function runAll(): Promise<ComponentReport[]> {
    const reports = await Promise.all([...checks].map(([name, entry]) => runOne(name, entry)));
    // Every component of the report appears, checked or not: a component nothing checks is
    // reported as such (warning), never as healthy.
    for (const component of components) {
      if (reports.some((r) => r.component === component)) continue;
      reports.push({
        component,
        name: 'registered-checks',
        critical: false,
        time: new Date().toISOString(),
        status: 'warning',
        observedValue: 0,
        observedUnit: 'checks',
        output: 'no check registered: this component is not monitored in this build',
        action: `register a check for ${component} (health.register) when the component starts`,
      });
    }
    last = { at: Date.now(), reports };
    if (metrics) {
      for (const component of components) {
        const status = componentStatus(reports, component);
        metrics.componentHealth.set({ component }, severityValue[status]);
      }
    }
    return reports;
  }

  function componentStatus(reports: ComponentReport[], component: ComponentName): Severity {
    return reports.filter((r) => r.component === component).reduce<Severity>((s, r) => worst(s, r.status), 'healthy');
  }

  const health = {
    /** Adds a named check under one of the seven components. */
    register(component: ComponentName, name: string, check: ComponentCheck) {
      checks.set(name, { component, ...check });
      last = undefined;
    },
    unregister(name: string) {
      checks.delete(name);
      last = undefined;
    },
    /** Runs every check now (or returns a result younger than the cache). */
    async evaluate(fresh = false): Promise<HealthReport> {
      if (fresh || !last || Date.now() - last.at > cacheMs) {
        running ??= runAll().finally(() => {
          running = undefined;
        });
        await running;
      }
      const reports = last!.reports;
      const status = reports.reduce<Severity>((s, r) => worst(s, r.status), 'healthy');
      return { status, lifecycle, checks: reports };
    },
    /** Ready: lifecycle is `ready` and no critical check is critical or down. */
    async readiness(): Promise<{ ready: boolean; reasons: string[] }> {
      const reasons: string[] = [];
      if (lifecycle !== 'ready') reasons.push(`lifecycle is ${lifecycle}`);
      const report = await health.evaluate();
      for (const check of report.checks) {
        if (check.critical && (check.status === 'down' || check.status === 'critical')) {
          reasons.push(`${check.name}: ${check.output ?? check.status}`);
        }
      }
      return { ready: reasons.length === 0, reasons };
    },
    get lifecycle() {
      return lifecycle;
    },
    setLifecycle(next: Lifecycle) {
      lifecycle = next;
      logger?.info({ lifecycle: next }, 'lifecycle');
    },
    /** Runs the checks every `intervalSeconds`. */
    start(intervalSeconds: number) {
      clearInterval(timer);
      timer = setInterval(() => void health.evaluate(true), intervalSeconds * 1000);
      timer.unref?.();
      void health.evaluate(true);
    },
    stop() {
      clearInterval(timer);
    },
  };
  return health;
}

export type Health = ReturnType<typeof createHealth>;
