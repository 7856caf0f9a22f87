import { describe, expect, test } from 'bun:test';
import { type AlertEvent, type AlertRule, createAlertEngine, defaultRules, effectiveRules } from '../../src/observability/alerts/index.ts';
import { createMemoryHistoryStore } from '../../src/observability/history/index.ts';
import { alertRuleSchema } from '../../src/config/schema.ts';

/** A fake clock: time only moves when the test says so. */
function fakeClock(start = Date.UTC(2030, 0, 1)) {
  let t = start;
  return { now: () => t, advance: (seconds: number) => (t += seconds * 1000) };
}

const rule = (r: Partial<AlertRule> & { name: string; metric: string; threshold: number }): AlertRule =>
  alertRuleSchema.parse(r);

function setup(rules: AlertRule[], store = createMemoryHistoryStore()) {
  const clock = fakeClock();
  const events: AlertEvent[] = [];
  const engine = createAlertEngine({ rules, now: clock.now, store, externalLabels: { node: 'n1' }, onEvent: (e) => events.push(e) });
  const at = (values: Record<string, number>) => engine.evaluate({ ts: clock.now(), values });
  return { clock, events, engine, at, store };
}

describe('rule engine', () => {
  test('pending for the `for` duration, then firing; resolve ends it', async () => {
    const { clock, events, engine, at } = setup([rule({ name: 'HighCpu', metric: 'cpu_percent', threshold: 80, forSeconds: 30 })]);
    await at({ cpu_percent: 90 });
    expect(engine.active()[0]).toMatchObject({ status: 'pending', rule: 'HighCpu' });
    expect(events).toHaveLength(0);
    clock.advance(20);
    await at({ cpu_percent: 95 });
    expect(engine.active()[0]!.status).toBe('pending');
    clock.advance(10);
    await at({ cpu_percent: 92 });
    expect(engine.active()[0]!.status).toBe('firing');
    expect(events.map((e) => e.kind)).toEqual(['firing']);
    const fired = events[0]!.alert;
    expect(fired.labels).toEqual({ alertname: 'HighCpu', node: 'n1', severity: 'warning' });
    expect(fired.startsAt).toBe(clock.now());
    expect(fired.activeAt).toBe(clock.now() - 30_000);
    expect(fired.value).toBe(92);

    clock.advance(10);
    await at({ cpu_percent: 40 });
    expect(engine.active()).toHaveLength(0);
    expect(events.map((e) => e.kind)).toEqual(['firing', 'resolved']);
    expect(events[1]!.alert.endsAt).toBe(clock.now());
    expect(engine.recent()[0]).toMatchObject({ rule: 'HighCpu', status: 'resolved', endsAt: clock.now() });
  });

  test('a condition that stops holding while pending never fires', async () => {
    const { clock, events, engine, at } = setup([rule({ name: 'HighCpu', metric: 'cpu_percent', threshold: 80, forSeconds: 30 })]);
    await at({ cpu_percent: 90 });
    clock.advance(20);
    await at({ cpu_percent: 50 });
    clock.advance(20);
    await at({ cpu_percent: 90 });
    expect(engine.active()[0]!.status).toBe('pending');
    expect(events).toHaveLength(0);
    expect(engine.recent()).toHaveLength(0);
  });

  test('cooldown: repeats while firing at most every cooldownSeconds, and damps a quick re-fire', async () => {
    const { clock, events, at } = setup([
      rule({ name: 'Errors', metric: 'http_error_rate', threshold: 0.02, forSeconds: 0, cooldownSeconds: 300 }),
    ]);
    await at({ http_error_rate: 0.5 });
    expect(events.map((e) => e.kind)).toEqual(['firing']);
    for (let i = 0; i < 29; i++) {
      clock.advance(10);
      await at({ http_error_rate: 0.5 });
    }
    expect(events).toHaveLength(1); // 290 s: still inside the cooldown
    clock.advance(10);
    await at({ http_error_rate: 0.5 });
    expect(events.map((e) => e.kind)).toEqual(['firing', 'repeat']);

    // Resolve, then fire again 60 s later: within the cooldown of the last notice, so silent…
    clock.advance(10);
    await at({ http_error_rate: 0 });
    expect(events.at(-1)!.kind).toBe('resolved');
    clock.advance(60);
    await at({ http_error_rate: 0.5 });
    expect(events).toHaveLength(3);
    // …and its resolve is silent too (nobody heard it fire).
    clock.advance(10);
    await at({ http_error_rate: 0 });
    expect(events).toHaveLength(3);
    // After the cooldown a new episode is announced again.
    clock.advance(300);
    await at({ http_error_rate: 0.5 });
    expect(events.map((e) => e.kind)).toEqual(['firing', 'repeat', 'resolved', 'firing']);
  });

  test('escalation raises severity one step after N more evaluations, up to down', async () => {
    const { clock, events, engine, at } = setup([
      rule({ name: 'BrokerDown', metric: 'broker_up', op: '<', threshold: 1, forSeconds: 0, severity: 'degraded', escalateAfter: 3, cooldownSeconds: 3600 }),
    ]);
    await at({ broker_up: 0 });
    expect(events.map((e) => [e.kind, e.alert.severity])).toEqual([['firing', 'degraded']]);
    for (let i = 0; i < 3; i++) {
      clock.advance(10);
      await at({ broker_up: 0 });
    }
    expect(events.map((e) => [e.kind, e.alert.severity])).toEqual([['firing', 'degraded'], ['escalated', 'critical']]);
    expect(events[1]!.alert.labels.severity).toBe('critical');
    for (let i = 0; i < 10; i++) {
      clock.advance(10);
      await at({ broker_up: 0 });
    }
    // critical → down after 3 more; down is the top, so no further escalation.
    expect(events.map((e) => e.alert.severity)).toEqual(['degraded', 'critical', 'down']);
    expect(engine.firing()[0]).toMatchObject({ severity: 'down', escalations: 2 });
    // The fingerprint does not change with severity.
    expect(new Set(events.map((e) => e.alert.fingerprint)).size).toBe(1);
    clock.advance(10);
    await at({ broker_up: 1 });
    expect(events.at(-1)).toMatchObject({ kind: 'resolved', alert: { severity: 'down', status: 'resolved' } });
  });

  test('labelled series give one alert per label set (QBER per link)', async () => {
    const { events, engine, at } = setup([rule({ name: 'QkdQberHigh', metric: 'qkd_qber', threshold: 0.11, forSeconds: 0, severity: 'critical' })]);
    await at({ 'qkd_qber{link="A-B"}': 0.25, 'qkd_qber{link="A-C"}': 0.03, 'qkd_qber{link="B-C"}': 0.2 });
    expect(engine.firing().map((a) => a.labels.link).sort()).toEqual(['A-B', 'B-C']);
    expect(events).toHaveLength(2);
    expect(events[0]!.alert.fingerprint).not.toBe(events[1]!.alert.fingerprint);
    // A series that disappears resolves its alert.
    await at({ 'qkd_qber{link="A-B"}': 0.25 });
    expect(engine.firing().map((a) => a.labels.link)).toEqual(['A-B']);
    expect(events.at(-1)).toMatchObject({ kind: 'resolved', alert: { labels: { link: 'B-C' } } });
  });

  test('state survives a restart: firing alerts keep their start time and are not re-announced', async () => {
    const store = createMemoryHistoryStore();
    const rules = [rule({ name: 'HighMemory', metric: 'memory_percent', threshold: 85, forSeconds: 0 })];
    const first = setup(rules, store);
    await first.at({ memory_percent: 90 });
    const startsAt = first.engine.firing()[0]!.startsAt;

    const clock = fakeClock(first.clock.now() + 20_000);
    const events: AlertEvent[] = [];
    const second = createAlertEngine({ rules, now: clock.now, store, externalLabels: { node: 'n1' }, onEvent: (e) => events.push(e) });
    await second.restore();
    expect(second.firing()).toHaveLength(1);
    expect(second.firing()[0]!.startsAt).toBe(startsAt);
    await second.evaluate({ ts: clock.now(), values: { memory_percent: 91 } });
    expect(events).toHaveLength(0);
    clock.advance(10);
    await second.evaluate({ ts: clock.now(), values: { memory_percent: 50 } });
    expect(events.map((e) => e.kind)).toEqual(['resolved']);
    expect(events[0]!.alert.startsAt).toBe(startsAt);
  });

  test('defaults merge with configured rules by name; enabled = false removes one', () => {
    const merged = effectiveRules([
      rule({ name: 'HighCpu', metric: 'cpu_percent', threshold: 95 }),
      rule({ name: 'QkdQberHigh', metric: 'qkd_qber', threshold: 0.11, enabled: false }),
      rule({ name: 'Custom', metric: 'connections', threshold: 10 }),
    ]);
    expect(merged.find((r) => r.name === 'HighCpu')!.threshold).toBe(95);
    expect(merged.find((r) => r.name === 'QkdQberHigh')).toBeUndefined();
    expect(merged.find((r) => r.name === 'Custom')).toBeDefined();
    expect(merged).toHaveLength(defaultRules.length + 1 - 1);
    const names = defaultRules.map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['HighCpu', 'HighMemory', 'HighHttpErrorRate', 'SlowHttpResponses', 'TooManyConnections', 'QkdQberHigh', 'BrokerDown', 'HandshakeFailures', 'RateLimitAbuse', 'AuditChainBroken']));
    for (const r of defaultRules) expect(alertRuleSchema.parse(r)).toEqual(r);
  });
});
