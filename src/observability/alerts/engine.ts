/**
 * The rule engine: evaluates every rule against each snapshot and drives the lifecycle
 * pending → firing → resolved per (rule, series), the way Prometheus does (`for`), with an
 * Alertmanager-like repeat interval (`cooldownSeconds`) and escalation. Time comes from an
 * injectable clock; state is persisted after each evaluation and restored after a restart.
 */
import type { Logger } from 'pino';
import type { Snapshot } from '../history/sampler.ts';
import { baseName, seriesLabels } from '../history/sampler.ts';
import { type AlertRule, type AlertSeverity, compare, raise } from './rules.ts';

export type AlertStatus = 'pending' | 'firing' | 'resolved';

/** One alert instance: a rule applied to one series. */
export interface Alert {
  /** Stable fingerprint of the identifying labels (rule + series labels), hex. */
  fingerprint: string;
  rule: string;
  series: string;
  status: AlertStatus;
  severity: AlertSeverity;
  /** Labels: `alertname`, `severity`, the series' own labels and the external labels (node). */
  labels: Record<string, string>;
  annotations: { summary: string; description: string; action: string };
  value: number;
  op: AlertRule['op'];
  threshold: number;
  /** When the condition was first seen true (epoch ms). */
  activeAt: number;
  /** When it started firing. */
  startsAt?: number;
  /** When it resolved. */
  endsAt?: number;
  /** Last notification sent for it. */
  lastNotifiedAt?: number;
  /** Whether this firing episode was announced (a suppressed flap is resolved silently). */
  announced: boolean;
  /** Evaluations the condition held since firing or the last escalation. */
  heldEvaluations: number;
  escalations: number;
}

export type AlertEventKind = 'firing' | 'repeat' | 'escalated' | 'resolved';

/** A notification-worthy change. */
export interface AlertEvent {
  kind: AlertEventKind;
  alert: Alert;
  at: number;
}

/** The persisted state (KV key `alerts:state`). */
interface PersistedState {
  version: 1;
  active: Alert[];
  recent: Alert[];
  /** Last "firing" notification per fingerprint, kept after resolve for the cooldown. */
  lastFiringNotice: Record<string, number>;
}

export interface AlertStateStore {
  kvGet(key: string): Promise<string | undefined>;
  kvSet(key: string, value: string): Promise<void>;
}

export interface AlertEngineOptions {
  rules: AlertRule[];
  /** Epoch ms. Tests pass a fake clock. */
  now?: () => number;
  store?: AlertStateStore;
  /** Labels added to every alert (e.g. `{ node }`). */
  externalLabels?: Record<string, string>;
  /** Receives the events of each evaluation (notifiers); must not throw or block. */
  onEvent?: (event: AlertEvent) => void;
  /** Called with the firing alerts after each evaluation (the `ssc_alerts_firing` gauge). */
  onFiring?: (firing: Alert[]) => void;
  logger?: Logger;
  /** Resolved alerts kept in the recent list. */
  recentLimit?: number;
}

const stateKey = 'alerts:state';

/** A short hex fingerprint of a label set (sorted), as Alertmanager shows one. */
export function fingerprint(labels: Record<string, string>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}\u00ff${labels[k]}`)
    .join('\u00ff');
  return new Bun.CryptoHasher('sha256').update(text).digest('hex').slice(0, 16);
}

const formatValue = (metric: string, v: number) =>
  metric.endsWith('_percent') ? `${v.toFixed(1)} %` : metric.endsWith('_seconds') ? `${(v * 1000).toFixed(0)} ms` : String(Math.round(v * 1e4) / 1e4);

/** Creates the engine. Call `restore()` once, then `evaluate(snapshot)` on every interval. */
export function createAlertEngine(options: AlertEngineOptions) {
  const { now = Date.now, store, externalLabels = {}, onEvent, onFiring, logger, recentLimit = 100 } = options;
  let rules = options.rules;
  const active = new Map<string, Alert>();
  let recent: Alert[] = [];
  let lastFiringNotice: Record<string, number> = {};
  const changeListeners = new Set<(alerts: Alert[]) => void>();

  function matches(rule: AlertRule, series: string) {
    return series === rule.metric || (baseName(series) === rule.metric && series.includes('{'));
  }

  function newAlert(rule: AlertRule, series: string, value: number, at: number): Alert {
    const identity = { alertname: rule.name, ...externalLabels, ...seriesLabels(series) };
    return {
      fingerprint: fingerprint(identity),
      rule: rule.name,
      series,
      status: 'pending',
      severity: rule.severity,
      labels: { ...identity, severity: rule.severity },
      annotations: {
        summary: `${rule.name}: ${series} ${rule.op} ${formatValue(rule.metric, rule.threshold)}`,
        description: `${series} is ${formatValue(rule.metric, value)} (${rule.op} ${formatValue(rule.metric, rule.threshold)} for ${rule.forSeconds} s)`,
        action: rule.action,
      },
      value,
      op: rule.op,
      threshold: rule.threshold,
      activeAt: at,
      announced: false,
      heldEvaluations: 0,
      escalations: 0,
    };
  }

  function describe(alert: Alert, rule: AlertRule) {
    alert.annotations.description = `${alert.series} is ${formatValue(rule.metric, alert.value)} (${rule.op} ${formatValue(rule.metric, rule.threshold)} for ${rule.forSeconds} s)`;
  }

  async function persist() {
    if (!store) return;
    const state: PersistedState = { version: 1, active: [...active.values()], recent, lastFiringNotice };
    await store.kvSet(stateKey, JSON.stringify(state));
  }

  const engine = {
    /** Loads the state saved by a previous process (alerts keep firing with their start times). */
    async restore() {
      if (!store) return;
      const text = await store.kvGet(stateKey);
      if (!text) return;
      try {
        const state = JSON.parse(text) as PersistedState;
        if (state.version !== 1) return;
        active.clear();
        for (const alert of state.active) active.set(`${alert.rule}\u0000${alert.series}`, alert);
        recent = state.recent ?? [];
        lastFiringNotice = state.lastFiringNotice ?? {};
        logger?.info({ active: active.size, recent: recent.length }, 'alert state restored');
        onFiring?.(engine.firing());
      } catch (error) {
        logger?.warn({ err: error }, 'alert state unreadable; starting empty');
      }
    },

    /** Evaluates every rule against a snapshot; returns the events (also passed to `onEvent`). */
    async evaluate(snapshot: Snapshot): Promise<AlertEvent[]> {
      const at = now();
      const events: AlertEvent[] = [];
      const emit = (kind: AlertEventKind, alert: Alert) => {
        alert.lastNotifiedAt = at;
        if (kind === 'firing' || kind === 'repeat') lastFiringNotice[alert.fingerprint] = at;
        events.push({ kind, alert: structuredClone(alert), at });
      };
      const seen = new Set<string>();
      let changed = false;

      for (const rule of rules) {
        for (const [series, value] of Object.entries(snapshot.values)) {
          if (!matches(rule, series) || !compare(value, rule.op, rule.threshold)) continue;
          const key = `${rule.name}\u0000${series}`;
          seen.add(key);
          let alert = active.get(key);
          if (!alert) {
            alert = newAlert(rule, series, value, at);
            active.set(key, alert);
            changed = true;
          }
          alert.value = value;
          describe(alert, rule);
          if (alert.status === 'pending' && at - alert.activeAt >= rule.forSeconds * 1000) {
            alert.status = 'firing';
            alert.startsAt = at;
            alert.heldEvaluations = 0;
            changed = true;
            // Cooldown also damps flapping: a re-fire soon after the last notice stays quiet.
            const last = lastFiringNotice[alert.fingerprint];
            if (last === undefined || at - last >= rule.cooldownSeconds * 1000) {
              alert.announced = true;
              emit('firing', alert);
            } else {
              logger?.info({ rule: rule.name, series }, 'alert fired within its cooldown; notification suppressed');
            }
          } else if (alert.status === 'firing') {
            alert.heldEvaluations += 1;
            if (rule.escalateAfter > 0 && alert.heldEvaluations >= rule.escalateAfter && alert.severity !== 'down') {
              alert.severity = raise(alert.severity);
              alert.labels.severity = alert.severity;
              alert.escalations += 1;
              alert.heldEvaluations = 0;
              alert.announced = true;
              changed = true;
              emit('escalated', alert);
            } else if (rule.cooldownSeconds > 0 && at - (alert.lastNotifiedAt ?? alert.startsAt ?? at) >= rule.cooldownSeconds * 1000) {
              alert.announced = true;
              emit('repeat', alert);
            }
          }
        }
      }

      // Anything active whose condition no longer holds (or whose series vanished, or whose rule is gone).
      for (const [key, alert] of active) {
        if (seen.has(key)) continue;
        active.delete(key);
        changed = true;
        if (alert.status !== 'firing') continue;
        alert.status = 'resolved';
        alert.endsAt = at;
        if (alert.announced) emit('resolved', alert);
        recent.unshift(alert);
        if (recent.length > recentLimit) recent.length = recentLimit;
      }

      if (changed || events.length) {
        for (const event of events) {
          logger?.[event.kind === 'resolved' ? 'info' : 'warn'](
            { alert: event.alert.rule, series: event.alert.series, severity: event.alert.severity, value: event.alert.value, kind: event.kind },
            `alert ${event.kind}`,
          );
        }
        try {
          await persist();
        } catch (error) {
          logger?.error({ err: error }, 'alert state not persisted');
        }
      }
      onFiring?.(engine.firing());
      for (const event of events) onEvent?.(event);
      if (changed || events.length) for (const listener of changeListeners) listener(engine.active());
      return events;
    },

    /** Pending and firing alerts. */
    active: (): Alert[] => [...active.values()].map((a) => structuredClone(a)),
    /** Firing alerts only. */
    firing: (): Alert[] => [...active.values()].filter((a) => a.status === 'firing').map((a) => structuredClone(a)),
    /** Recently resolved alerts, newest first. */
    recent: (): Alert[] => recent.map((a) => structuredClone(a)),
    rules: () => rules,
    /** Replaces the rules (config reload). */
    setRules(next: AlertRule[]) {
      rules = next;
    },
    /** Subscribes to changes of the active set (dashboard push). */
    onChange(listener: (alerts: Alert[]) => void) {
      changeListeners.add(listener);
      return () => changeListeners.delete(listener);
    },
  };
  return engine;
}

export type AlertEngine = ReturnType<typeof createAlertEngine>;
