/**
 * Notifiers: webhook (Alertmanager webhook payload v4), email over SMTP (nodemailer) and the log.
 * The dispatcher hands each event to every notifier on its own serial queue, with retries and
 * exponential backoff behind a circuit breaker (cockatiel); failures are counted and logged and
 * never reach the rule engine, which does not wait for delivery.
 */
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleAll,
  handleWhen,
  retry,
  wrap,
} from 'cockatiel';
import nodemailer from 'nodemailer';
import type { Logger } from 'pino';
import { Counter, type Gauge, type Registry } from 'prom-client';
import type { AlertEvent } from './engine.ts';

/** A destination for alert events. */
export interface Notifier {
  name: string;
  send(event: AlertEvent): Promise<void>;
}

/** A base URL given as a string or a getter (the ops URL is known only once listening), without a trailing slash. */
const resolveUrl = (url: string | (() => string)) => (typeof url === 'function' ? url() : url).replace(/\/$/, '') || 'http://localhost';

/** The Alertmanager "zero" time used for `endsAt` of firing alerts. */
const zeroTime = '0001-01-01T00:00:00Z';

/** The Alertmanager webhook payload, version 4. */
export interface AlertmanagerPayload {
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: {
    status: 'firing' | 'resolved';
    labels: Record<string, string>;
    annotations: Record<string, string>;
    startsAt: string;
    endsAt: string;
    generatorURL: string;
    fingerprint: string;
  }[];
}

/**
 * Builds the webhook body for one event, grouped by `alertname` as Alertmanager's default route
 * would. Escalations go out as `firing` with the raised `severity` label; the `event` annotation
 * tells firing, repeat, escalated and resolved apart.
 */
export function alertmanagerPayload(event: AlertEvent, options: { receiver: string; externalURL: string | (() => string) }): AlertmanagerPayload {
  const { alert } = event;
  const status = alert.status === 'resolved' ? 'resolved' : 'firing';
  const annotations: Record<string, string> = {
    summary: alert.annotations.summary,
    description: alert.annotations.description,
    action: alert.annotations.action,
    event: event.kind,
  };
  const base = resolveUrl(options.externalURL);
  return {
    version: '4',
    groupKey: `{}:{alertname="${alert.rule}"}`,
    truncatedAlerts: 0,
    status,
    receiver: options.receiver,
    groupLabels: { alertname: alert.rule },
    commonLabels: alert.labels,
    commonAnnotations: annotations,
    externalURL: `${base}/dashboard`,
    alerts: [
      {
        status,
        labels: alert.labels,
        annotations,
        startsAt: new Date(alert.startsAt ?? alert.activeAt).toISOString(),
        endsAt: alert.endsAt ? new Date(alert.endsAt).toISOString() : zeroTime,
        generatorURL: `${base}/api/metrics/history?series=${encodeURIComponent(alert.series)}`,
        fingerprint: alert.fingerprint,
      },
    ],
  };
}

export interface WebhookOptions {
  url: string;
  receiver?: string;
  externalURL: string | (() => string);
  timeoutMs?: number;
}

/** POSTs the Alertmanager v4 payload; any non-2xx answer is a failure. */
export function createWebhookNotifier(options: WebhookOptions): Notifier {
  const { url, receiver = 'ssc-webhook', externalURL, timeoutMs = 5_000 } = options;
  return {
    name: 'webhook',
    async send(event) {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'streamlined-secure-comms-alerts' },
        body: JSON.stringify(alertmanagerPayload(event, { receiver, externalURL })),
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`webhook answered ${response.status}`);
    },
  };
}

export interface EmailOptions {
  host: string;
  port: number;
  secure: boolean;
  from: string;
  to: string[];
  externalURL: string | (() => string);
  /** Refuse to send without STARTTLS when the server offers it (default: use it when offered). */
  requireTLS?: boolean;
  /** Skip STARTTLS even when offered (test servers without certificates). */
  ignoreTLS?: boolean;
}

/** Subject line of an alert email, e.g. `[FIRING:critical] QkdQberHigh link=A-B`. */
export function emailSubject(event: AlertEvent): string {
  const { alert } = event;
  const { alertname: _n, severity: _s, ...rest } = alert.labels;
  const labels = Object.entries(rest)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const status = event.kind === 'resolved' ? 'RESOLVED' : event.kind === 'escalated' ? 'ESCALATED' : 'FIRING';
  return `[${status}:${alert.severity}] ${alert.rule}${labels ? ` ${labels}` : ''}`;
}

/** Plain-text body of an alert email. */
export function emailText(event: AlertEvent, externalURL: string | (() => string)): string {
  const { alert } = event;
  return [
    `${alert.annotations.summary}`,
    '',
    `Event:     ${event.kind}`,
    `Status:    ${alert.status}`,
    `Severity:  ${alert.severity}`,
    `Value:     ${alert.annotations.description}`,
    `Started:   ${new Date(alert.startsAt ?? alert.activeAt).toISOString()}`,
    ...(alert.endsAt ? [`Ended:     ${new Date(alert.endsAt).toISOString()}`] : []),
    `Labels:    ${Object.entries(alert.labels)
      .map(([k, v]) => `${k}="${v}"`)
      .join(', ')}`,
    `Action:    ${alert.annotations.action || '-'}`,
    `Dashboard: ${resolveUrl(externalURL)}/dashboard`,
    `Fingerprint: ${alert.fingerprint}`,
    '',
  ].join('\n');
}

/** Sends one plain-text email per event through an SMTP server. */
export function createEmailNotifier(options: EmailOptions): Notifier & { close(): void } {
  const transport = nodemailer.createTransport({
    host: options.host,
    port: options.port,
    secure: options.secure,
    requireTLS: options.requireTLS,
    ignoreTLS: options.ignoreTLS,
    connectionTimeout: 10_000,
    socketTimeout: 10_000,
  });
  return {
    name: 'email',
    async send(event) {
      await transport.sendMail({
        from: options.from,
        to: options.to,
        subject: emailSubject(event),
        text: emailText(event, options.externalURL),
        headers: { 'X-SSC-Alert-Fingerprint': event.alert.fingerprint },
      });
    },
    close() {
      transport.close();
    },
  };
}

/** Writes every event to the log (always on). */
export function createLogNotifier(logger: Logger): Notifier {
  return {
    name: 'log',
    async send(event) {
      const { alert } = event;
      logger[event.kind === 'resolved' ? 'info' : 'warn'](
        { notification: event.kind, alert: alert.rule, severity: alert.severity, labels: alert.labels, value: alert.value, action: alert.annotations.action },
        `alert notification: ${alert.rule} ${event.kind}`,
      );
    },
  };
}

export interface DispatcherOptions {
  notifiers: Notifier[];
  registry?: Registry;
  /** `ssc_errors_total` (incremented with kind="notifier"). */
  errors?: Counter<'kind'>;
  /** `ssc_circuit_breaker_state` (name="notifier:<name>"). */
  breakerState?: Gauge<'name'>;
  logger?: Logger;
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /** First backoff delay, ms (doubles, with jitter). Default 500. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Consecutive failures that open the breaker. Default 5. */
  breakAfter?: number;
  /** Time the breaker stays open before a trial call, ms. Default 30 s. */
  halfOpenAfterMs?: number;
  /** Events queued per notifier before new ones are dropped (and counted). Default 1000. */
  queueLimit?: number;
}

const breakerValue: Record<CircuitState, number> = {
  [CircuitState.Closed]: 0,
  [CircuitState.HalfOpen]: 1,
  [CircuitState.Open]: 2,
  [CircuitState.Isolated]: 2,
};

/** Fans events out to the notifiers without ever blocking the caller. */
export function createDispatcher(options: DispatcherOptions) {
  const { notifiers, registry, errors, breakerState, logger, queueLimit = 1_000 } = options;
  const notifications = registry
    ? ((registry.getSingleMetric('ssc_alert_notifications_total') as Counter<'notifier' | 'result'> | undefined) ??
      new Counter({
        name: 'ssc_alert_notifications_total',
        help: 'Alert notifications by notifier and result (sent, failed, dropped).',
        labelNames: ['notifier', 'result'] as const,
        registers: [registry],
      }))
    : undefined;

  const lanes = notifiers.map((notifier) => {
    const breaker = circuitBreaker(handleAll, {
      halfOpenAfter: options.halfOpenAfterMs ?? 30_000,
      breaker: new ConsecutiveBreaker(options.breakAfter ?? 5),
    });
    const retryPolicy = retry(
      handleWhen((error) => !(error instanceof BrokenCircuitError)),
      {
        maxAttempts: options.retries ?? 3,
        backoff: new ExponentialBackoff({ initialDelay: options.initialDelayMs ?? 500, maxDelay: options.maxDelayMs ?? 10_000 }),
      },
    );
    const breakerName = `notifier:${notifier.name}`;
    if (notifier.name !== 'log') breakerState?.set({ name: breakerName }, 0);
    breaker.onStateChange((state) => {
      breakerState?.set({ name: breakerName }, breakerValue[state]);
      logger?.[state === CircuitState.Closed ? 'info' : 'warn']({ notifier: notifier.name, state: CircuitState[state] }, 'notifier circuit breaker');
    });
    // Retry outside the breaker: every attempt counts towards opening it, and an open breaker ends the retries.
    const policy = notifier.name === 'log' ? undefined : wrap(retryPolicy, breaker);
    return { notifier, policy, breaker, tail: Promise.resolve(), pending: 0 };
  });

  async function deliver(lane: (typeof lanes)[number], event: AlertEvent) {
    try {
      if (lane.policy) await lane.policy.execute(() => lane.notifier.send(event));
      else await lane.notifier.send(event);
      notifications?.inc({ notifier: lane.notifier.name, result: 'sent' });
    } catch (error) {
      notifications?.inc({ notifier: lane.notifier.name, result: 'failed' });
      errors?.inc({ kind: 'notifier' });
      logger?.warn(
        { notifier: lane.notifier.name, alert: event.alert.rule, kind: event.kind, err: (error as Error).message, breakerOpen: error instanceof BrokenCircuitError },
        'alert notification failed',
      );
    }
  }

  return {
    /** Queues the event on every notifier and returns at once. */
    dispatch(event: AlertEvent) {
      for (const lane of lanes) {
        if (lane.pending >= queueLimit) {
          notifications?.inc({ notifier: lane.notifier.name, result: 'dropped' });
          errors?.inc({ kind: 'notifier' });
          continue;
        }
        lane.pending += 1;
        lane.tail = lane.tail.then(() => deliver(lane, event)).finally(() => {
          lane.pending -= 1;
        });
      }
    },
    /** Resolves when every queued notification has been attempted. */
    async idle() {
      await Promise.all(lanes.map((l) => l.tail));
    },
    /** Breaker state per notifier (`closed`, `open`, `half-open`). */
    breakers(): Record<string, string> {
      return Object.fromEntries(lanes.filter((l) => l.policy).map((l) => [l.notifier.name, CircuitState[l.breaker.state].toLowerCase()]));
    },
    close() {
      for (const lane of lanes) (lane.notifier as Partial<{ close(): void }>).close?.();
    },
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
