/**
 * Alert silences: an operator mutes notifications for one rule (or every rule, `*`) until a
 * time. Evaluation goes on — alerts still fire, show on the dashboard and in `/api/alerts` —
 * only the notifiers stay quiet. Silences persist in the history store's KV (`alerts:silences`).
 */
import type { HistoryStore } from '../history/store.ts';
import type { AlertEvent } from './engine.ts';

export interface Silence {
  id: string;
  /** Rule name, or `*` for every rule. */
  rule: string;
  until: number;
  reason: string;
  createdBy: string;
  createdAt: number;
}

const KEY = 'alerts:silences';

export async function createSilences(store: Pick<HistoryStore, 'kvGet' | 'kvSet'>, now: () => number = Date.now) {
  let silences: Silence[] = [];
  try {
    silences = JSON.parse((await store.kvGet(KEY)) ?? '[]') as Silence[];
  } catch {
    silences = [];
  }
  const save = () => store.kvSet(KEY, JSON.stringify(silences));
  const active = () => silences.filter((s) => s.until > now());
  return {
    list: active,
    async add(input: { rule: string; minutes: number; reason: string; createdBy: string }): Promise<Silence> {
      const silence: Silence = {
        id: crypto.randomUUID(),
        rule: input.rule,
        until: now() + input.minutes * 60_000,
        reason: input.reason,
        createdBy: input.createdBy,
        createdAt: now(),
      };
      silences = [...active(), silence];
      await save();
      return silence;
    },
    async remove(id: string): Promise<boolean> {
      const before = silences.length;
      silences = active().filter((s) => s.id !== id);
      await save();
      return silences.length < before;
    },
    /** The silence that mutes this event, if any. */
    matching(event: AlertEvent): Silence | undefined {
      return active().find((s) => s.rule === '*' || s.rule === event.alert.rule);
    },
  };
}

export type Silences = Awaited<ReturnType<typeof createSilences>>;
