import { afterEach, describe, expect, test } from 'bun:test';
import { Counter, Gauge, Registry } from 'prom-client';
import { SMTPServer } from 'smtp-server';
import {
  type AlertEvent,
  type AlertmanagerPayload,
  createAlertEngine,
  createDispatcher,
  createEmailNotifier,
  createWebhookNotifier,
} from '../../src/observability/alerts/index.ts';
import { alertRuleSchema } from '../../src/config/schema.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** Produces real events from the engine: firing, escalated, resolved of a QBER alert on link A-B. */
async function qberEvents(): Promise<AlertEvent[]> {
  let t = Date.UTC(2030, 0, 1, 12);
  const events: AlertEvent[] = [];
  const engine = createAlertEngine({
    rules: [
      alertRuleSchema.parse({
        name: 'QkdQberHigh',
        metric: 'qkd_qber',
        threshold: 0.11,
        forSeconds: 10,
        severity: 'critical',
        escalateAfter: 1,
        action: 'suspect an eavesdropper',
      }),
    ],
    now: () => t,
    externalLabels: { node: 'node-1' },
    onEvent: (e) => events.push(e),
  });
  for (const value of [0.2, 0.21, 0.22, 0.01]) {
    await engine.evaluate({ ts: t, values: { 'qkd_qber{link="A-B"}': value } });
    t += 10_000;
  }
  expect(events.map((e) => e.kind)).toEqual(['firing', 'escalated', 'resolved']);
  return events;
}

function metricsFor() {
  const registry = new Registry();
  const errors = new Counter({ name: 'ssc_errors_total', help: 'h', labelNames: ['kind'] as const, registers: [registry] });
  const breakerState = new Gauge({ name: 'ssc_circuit_breaker_state', help: 'h', labelNames: ['name'] as const, registers: [registry] });
  const value = async (name: string, labels: Record<string, string>) =>
    (await registry.getSingleMetric(name)!.get()).values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
  return { registry, errors, breakerState, value };
}

describe('webhook notifier', () => {
  test('posts the Alertmanager v4 payload to a real receiver', async () => {
    const received: { body: AlertmanagerPayload; contentType: string | null }[] = [];
    const receiver = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      async fetch(request) {
        received.push({ body: (await request.json()) as AlertmanagerPayload, contentType: request.headers.get('content-type') });
        return new Response('ok');
      },
    });
    cleanups.push(() => receiver.stop(true));
    const m = metricsFor();
    const dispatcher = createDispatcher({
      notifiers: [createWebhookNotifier({ url: `http://127.0.0.1:${receiver.port}/hook`, externalURL: 'http://ops.example:9090' })],
      registry: m.registry,
      errors: m.errors,
      breakerState: m.breakerState,
    });
    const events = await qberEvents();
    for (const event of events) dispatcher.dispatch(event);
    await dispatcher.idle();

    expect(received).toHaveLength(3);
    expect(received[0]!.contentType).toBe('application/json');
    const [fired, escalated, resolved] = received.map((r) => r.body);
    expect(fired).toMatchObject({
      version: '4',
      groupKey: '{}:{alertname="QkdQberHigh"}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'ssc-webhook',
      groupLabels: { alertname: 'QkdQberHigh' },
      commonLabels: { alertname: 'QkdQberHigh', severity: 'critical', link: 'A-B', node: 'node-1' },
      externalURL: 'http://ops.example:9090/dashboard',
    });
    expect(fired!.commonAnnotations).toMatchObject({ action: 'suspect an eavesdropper', event: 'firing' });
    expect(fired!.commonAnnotations.summary).toContain('qkd_qber{link="A-B"}');
    expect(fired!.alerts).toHaveLength(1);
    const alert = fired!.alerts[0]!;
    expect(Object.keys(alert).sort()).toEqual(['annotations', 'endsAt', 'fingerprint', 'generatorURL', 'labels', 'startsAt', 'status']);
    expect(alert.status).toBe('firing');
    expect(alert.startsAt).toBe('2030-01-01T12:00:10.000Z');
    expect(alert.endsAt).toBe('0001-01-01T00:00:00Z');
    expect(alert.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(alert.generatorURL).toStartWith('http://ops.example:9090/api/metrics/history?series=');

    expect(escalated!.status).toBe('firing');
    expect(escalated!.commonLabels.severity).toBe('down');
    expect(escalated!.alerts[0]!.annotations.event).toBe('escalated');

    expect(resolved!.status).toBe('resolved');
    expect(resolved!.alerts[0]!.endsAt).toBe('2030-01-01T12:00:30.000Z');
    expect(resolved!.alerts[0]!.startsAt).toBe(alert.startsAt);
    expect(resolved!.alerts[0]!.fingerprint).toBe(alert.fingerprint);
    expect(await m.value('ssc_alert_notifications_total', { notifier: 'webhook', result: 'sent' })).toBe(3);
  });

  test('a failing receiver is retried, trips the breaker, and the breaker closes again once it recovers', async () => {
    let healthy = false;
    let requests = 0;
    const receiver = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      async fetch(request) {
        requests++;
        await request.arrayBuffer();
        return new Response(healthy ? 'ok' : 'down', { status: healthy ? 200 : 503 });
      },
    });
    cleanups.push(() => receiver.stop(true));
    const m = metricsFor();
    const dispatcher = createDispatcher({
      notifiers: [createWebhookNotifier({ url: `http://127.0.0.1:${receiver.port}/`, externalURL: 'http://ops' })],
      registry: m.registry,
      errors: m.errors,
      breakerState: m.breakerState,
      retries: 2,
      initialDelayMs: 10,
      maxDelayMs: 20,
      breakAfter: 3,
      halfOpenAfterMs: 300,
    });
    const [event] = await qberEvents();
    const started = performance.now();
    dispatcher.dispatch(event!);
    // dispatch() returns at once: delivery (with its retries) happens in the background.
    expect(performance.now() - started).toBeLessThan(50);
    await dispatcher.idle();
    expect(requests).toBe(3); // first attempt + 2 retries
    expect(dispatcher.breakers().webhook).toBe('open');
    expect(await m.value('ssc_circuit_breaker_state', { name: 'notifier:webhook' })).toBe(2);
    expect(await m.value('ssc_errors_total', { kind: 'notifier' })).toBe(1);

    // While open, nothing reaches the receiver and the failure is counted.
    dispatcher.dispatch(event!);
    await dispatcher.idle();
    expect(requests).toBe(3);
    expect(await m.value('ssc_alert_notifications_total', { notifier: 'webhook', result: 'failed' })).toBe(2);

    // After halfOpenAfter a trial call goes through; the receiver is back, the breaker closes.
    healthy = true;
    await Bun.sleep(350);
    dispatcher.dispatch(event!);
    await dispatcher.idle();
    expect(requests).toBe(4);
    expect(dispatcher.breakers().webhook).toBe('closed');
    expect(await m.value('ssc_circuit_breaker_state', { name: 'notifier:webhook' })).toBe(0);
    expect(await m.value('ssc_alert_notifications_total', { notifier: 'webhook', result: 'sent' })).toBe(1);
  });
});

describe('email notifier', () => {
  test('sends the alert to a real SMTP server', async () => {
    const messages: { from: string; to: string[]; raw: string }[] = [];
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, session, callback) {
        let raw = '';
        stream.on('data', (chunk: Buffer) => {
          raw += chunk.toString('utf8');
        });
        stream.on('end', () => {
          messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            // The body is quoted-printable: undo soft line breaks and =XX escapes.
            raw: raw.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => smtp.close(() => resolve())));
    const port = (smtp.server.address() as { port: number }).port;
    const email = createEmailNotifier({
      host: '127.0.0.1',
      port,
      secure: false,
      ignoreTLS: true,
      from: 'ssc@example.org',
      to: ['oncall@example.org', 'sec@example.org'],
      externalURL: 'http://ops.example:9090',
    });
    cleanups.push(() => email.close());
    const m = metricsFor();
    const dispatcher = createDispatcher({ notifiers: [email], registry: m.registry, errors: m.errors });
    const events = await qberEvents();
    dispatcher.dispatch(events[0]!);
    dispatcher.dispatch(events[2]!);
    await dispatcher.idle();

    expect(messages).toHaveLength(2);
    const [fired, resolved] = messages;
    expect(fired!.from).toBe('ssc@example.org');
    expect(fired!.to).toEqual(['oncall@example.org', 'sec@example.org']);
    expect(fired!.raw).toContain('Subject: [FIRING:critical] QkdQberHigh link=A-B node=node-1');
    expect(fired!.raw).toMatch(/X-Ssc-Alert-Fingerprint: [0-9a-f]{16}/i);
    expect(fired!.raw).toContain('Value:     qkd_qber{link="A-B"} is 0.21 (> 0.11 for 10 s)');
    expect(fired!.raw).toContain('Action:    suspect an eavesdropper');
    expect(fired!.raw).toContain('Dashboard: http://ops.example:9090/dashboard');
    expect(resolved!.raw).toContain('Subject: [RESOLVED:down] QkdQberHigh');
    expect(resolved!.raw).toContain('Ended:     2030-01-01T12:00:30.000Z');
    expect(await m.value('ssc_alert_notifications_total', { notifier: 'email', result: 'sent' })).toBe(2);
  });

  test('an unreachable SMTP server is counted as a notifier failure and does not throw', async () => {
    // A port with nothing listening: bind and close to find one.
    const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const m = metricsFor();
    const email = createEmailNotifier({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, from: 'a@b.c', to: ['d@e.f'], externalURL: 'http://x' });
    const dispatcher = createDispatcher({ notifiers: [email], registry: m.registry, errors: m.errors, retries: 1, initialDelayMs: 5 });
    const [event] = await qberEvents();
    dispatcher.dispatch(event!);
    await dispatcher.idle();
    email.close();
    expect(await m.value('ssc_errors_total', { kind: 'notifier' })).toBe(1);
    expect(await m.value('ssc_alert_notifications_total', { notifier: 'email', result: 'failed' })).toBe(1);
  });
});
