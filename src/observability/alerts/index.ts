/**
 * Alerting, metric history and the live dashboard, put together for `src/server.ts`: one sampler
 * feeds the history store; the rule engine evaluates the newest snapshot on its own interval and
 * hands events to the notifiers; the routes serve `/api/alerts`, `/api/metrics/history` and
 * `/dashboard` on the ops port. The room's one door.
 */
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { Hono } from 'hono';
import { Gauge } from 'prom-client';
import type { Logger } from 'pino';
import type { Config } from '../../config/index.ts';
import { createAdminAuth, createDashboardRoutes } from '../dashboard/index.ts';
import type { Health } from '../health.ts';
import { createHistory, createSampler, createSqliteHistoryStore, type HistoryStore, memoryLimitBytes } from '../history/index.ts';
import type { AuditEvent } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { createAlertEngine } from './engine.ts';
import { createDispatcher, createEmailNotifier, createLogNotifier, createWebhookNotifier, type Notifier } from './notifiers.ts';
import { createAlertApiRoutes } from './routes.ts';
import { createSilences } from './silences.ts';
import { effectiveRules } from './rules.ts';

export type { Alert, AlertEngine, AlertEngineOptions, AlertEvent, AlertEventKind, AlertStatus } from './engine.ts';
export { createAlertEngine, fingerprint } from './engine.ts';
export type { AlertmanagerPayload, Dispatcher, DispatcherOptions, Notifier } from './notifiers.ts';
export {
  alertmanagerPayload,
  createDispatcher,
  createEmailNotifier,
  createLogNotifier,
  createWebhookNotifier,
  emailSubject,
  emailText,
} from './notifiers.ts';
export { createAlertApiRoutes, historyQuerySchema } from './routes.ts';
export type { AlertRule, AlertSeverity } from './rules.ts';
export { compare, defaultRules, effectiveRules, raise, severities } from './rules.ts';

export interface AlertingOptions {
  config: Config;
  metrics: Metrics;
  health: Health;
  logger: Logger;
  audit?: (event: AuditEvent) => void;
  nodeId: string;
  version: string;
  /** Base URL of the ops port (known after listening), for links in notifications. */
  externalURL: () => string;
  /** Store override (tests, or the relay Store adapter); default SQLite under `server.dataDir`. */
  store?: HistoryStore;
}

/** Builds history, rule engine, notifiers and routes from the config. Call `start()` once listening. */
export async function createAlerting(options: AlertingOptions) {
  const { config, metrics, health, nodeId, version } = options;
  const logger = options.logger.child({ component: 'alerts' });
  // The denominators of the CPU and memory percentages, so that deploy/prometheus/alerts.yml can
  // compute the same `cpu_percent` and `memory_percent` as the built-in sampler.
  for (const [name, help, value] of [
    ['ssc_process_cpu_cores', 'CPU cores available to the process (the 100 % of cpu_percent).', availableParallelism()],
    ['ssc_process_memory_limit_bytes', 'Memory limit of the process: cgroup memory.max or host RAM (the 100 % of memory_percent).', memoryLimitBytes()],
  ] as const) {
    const gauge = (metrics.registry.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, registers: [metrics.registry] });
    gauge.set(value);
  }
  const store = options.store ?? createSqliteHistoryStore(join(config.server.dataDir, 'history.sqlite'));

  const sampler = createSampler({
    registry: metrics.registry,
    // The audit chain's verdict comes from the health check that verifies it, when one is registered.
    async extra(): Promise<Record<string, number>> {
      const report = await health.evaluate();
      const audit = report.checks.filter((c) => /audit/i.test(c.name));
      if (audit.length === 0) return {};
      return { audit_chain_ok: audit.every((c) => c.status === 'healthy' || c.status === 'warning') ? 1 : 0 };
    },
  });
  const history = createHistory({ store, sampler, intervalSeconds: config.observability.historyIntervalSeconds, logger });

  const externalURL = () => options.externalURL();
  const notifiers: Notifier[] = [createLogNotifier(logger)];
  if (config.alerts.webhookUrl) {
    notifiers.push(createWebhookNotifier({ url: config.alerts.webhookUrl, externalURL }));
  }
  const { email } = config.alerts;
  if (email.host && email.from && email.to.length) {
    notifiers.push(createEmailNotifier({ ...email, externalURL }));
  }
  const dispatcher = createDispatcher({
    notifiers,
    registry: metrics.registry,
    errors: metrics.errors,
    breakerState: metrics.circuitBreakerState,
    logger,
  });

  const silences = await createSilences(store);
  const engine = createAlertEngine({
    rules: effectiveRules(config.alerts.rules),
    store,
    externalLabels: { node: nodeId },
    logger,
    onEvent: (event) => {
      const silence = silences.matching(event);
      if (silence) {
        logger.info({ rule: event.alert.rule, kind: event.kind, silence: silence.id }, 'alert notification silenced');
        return;
      }
      dispatcher.dispatch(event);
    },
    onFiring(firing) {
      metrics.alertsFiring.reset();
      for (const alert of firing) metrics.alertsFiring.inc({ rule: alert.rule, severity: alert.severity });
    },
  });
  await engine.restore();

  const auth = createAdminAuth({ adminToken: config.security.adminToken, audit: options.audit });
  const routes = new Hono();
  routes.route('/', createAlertApiRoutes({ auth, engine, history }));
  routes.route('/', createDashboardRoutes({ auth, engine, history, health, version, nodeId }));

  let timer: ReturnType<typeof setInterval> | undefined;
  let evaluating: Promise<unknown> | undefined;
  let lastEvaluated = 0;

  return {
    history,
    engine,
    silences,
    dispatcher,
    store,
    routes,
    /** Starts sampling and (when `alerts.enabled`) evaluation. */
    start() {
      history.start();
      if (!config.alerts.enabled) return;
      const evaluate = () => {
        const snapshot = history.latest;
        // Evaluate each snapshot once; a stale snapshot (sampler stuck) is not evaluated again.
        if (!snapshot || snapshot.ts === lastEvaluated || evaluating) return;
        lastEvaluated = snapshot.ts;
        evaluating = engine
          .evaluate(snapshot)
          .catch((error) => logger.error({ err: error }, 'alert evaluation failed'))
          .finally(() => {
            evaluating = undefined;
          });
      };
      history.onSnapshot(() => {
        if (config.alerts.evaluateIntervalSeconds <= config.observability.historyIntervalSeconds) evaluate();
      });
      timer = setInterval(evaluate, config.alerts.evaluateIntervalSeconds * 1000);
      timer.unref?.();
      logger.info(
        { rules: engine.rules().length, notifiers: notifiers.map((n) => n.name), historyIntervalSeconds: config.observability.historyIntervalSeconds },
        'alerting started',
      );
    },
    async stop() {
      clearInterval(timer);
      await history.stop();
      await evaluating;
      await Promise.race([dispatcher.idle(), Bun.sleep(2_000)]);
      dispatcher.close();
      store.close();
    },
  };
}

export type Alerting = Awaited<ReturnType<typeof createAlerting>>;
