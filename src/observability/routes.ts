/**
 * Probe and metrics routes: `/health`, `/health/detailed`, `/ready`, `/live`, `/metrics`.
 * Kubernetes semantics: `/live` fails only when the process is wedged (event loop stalled);
 * `/ready` fails while starting, draining or when a critical dependency is down.
 */
import { Hono } from 'hono';
import type { Health } from './health.ts';
import type { Metrics } from './metrics.ts';

export interface ProbeRouteOptions {
  health: Health;
  version: string;
  startedAt: number;
  /** Current event-loop lag in ms, and the limit above which `/live` fails. */
  eventLoopLagMs: () => number;
  liveLagLimitMs: number;
}

/** Health and probe routes, mounted on both the public and the ops port. */
export function createProbeRoutes(options: ProbeRouteOptions): Hono {
  const { health, version, startedAt } = options;
  const app = new Hono();
  const uptime = () => Math.round((Date.now() - startedAt) / 1000);

  app.get('/health', async (c) => {
    const report = await health.evaluate();
    const body = { status: report.status, lifecycle: report.lifecycle, version, uptimeSeconds: uptime() };
    return c.json(body, report.status === 'down' ? 503 : 200);
  });

  app.get('/health/detailed', async (c) => {
    const report = await health.evaluate(c.req.query('fresh') === '1');
    // draft-inadarei-api-health-check: status pass|warn|fail, checks keyed "component:measurement".
    const toDraft = (s: string) => (s === 'healthy' ? 'pass' : s === 'warning' || s === 'degraded' ? 'warn' : 'fail');
    const checks: Record<string, unknown[]> = {};
    for (const check of report.checks) {
      const key = `${check.component}:${check.name}`;
      (checks[key] ??= []).push({
        componentId: check.component,
        componentType: 'component',
        status: toDraft(check.status),
        severity: check.status,
        critical: check.critical,
        observedValue: check.observedValue,
        observedUnit: check.observedUnit,
        output: check.output,
        action: check.status === 'healthy' ? undefined : check.action,
        details: check.details,
        time: check.time,
      });
    }
    const body = {
      status: toDraft(report.status),
      severity: report.status,
      lifecycle: report.lifecycle,
      version,
      serviceId: 'streamlined-secure-comms',
      uptimeSeconds: uptime(),
      checks,
    };
    return c.body(JSON.stringify(body), report.status === 'down' ? 503 : 200, {
      'content-type': 'application/health+json',
    });
  });

  app.get('/ready', async (c) => {
    const { ready, reasons } = await health.readiness();
    return c.json({ ready, lifecycle: health.lifecycle, reasons }, ready ? 200 : 503);
  });

  app.get('/live', (c) => {
    const lag = options.eventLoopLagMs();
    const live = lag < options.liveLagLimitMs;
    return c.json({ live, eventLoopLagMs: Math.round(lag * 10) / 10 }, live ? 200 : 503);
  });

  return app;
}

/** `/metrics` in the Prometheus text format, with the registry's own content type. */
export function createMetricsRoute(metrics: Metrics): Hono {
  const app = new Hono();
  app.get('/metrics', async (c) => {
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': metrics.registry.contentType });
  });
  return app;
}
