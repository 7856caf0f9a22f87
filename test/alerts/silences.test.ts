import { afterAll, describe, expect, test } from 'bun:test';
import { createSilences } from '../../src/observability/alerts/silences.ts';
import { createMemoryHistoryStore } from '../../src/observability/history/store.ts';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

const servers: SpawnedServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
});

const event = (rule: string) => ({ kind: 'firing', at: 0, alert: { rule } }) as never;

describe('alert silences', () => {
  test('match by rule or *, expire, and persist in the store', async () => {
    let now = 1_000_000;
    const store = createMemoryHistoryStore();
    const silences = await createSilences(store, () => now);
    const one = await silences.add({ rule: 'HighCpu', minutes: 10, reason: 'maintenance', createdBy: 'test' });
    expect(silences.matching(event('HighCpu'))?.id).toBe(one.id);
    expect(silences.matching(event('HighMemory'))).toBeUndefined();
    await silences.add({ rule: '*', minutes: 1, reason: 'all', createdBy: 'test' });
    expect(silences.matching(event('HighMemory'))).toBeDefined();
    const reloaded = await createSilences(store, () => now);
    expect(reloaded.list()).toHaveLength(2);
    now += 2 * 60_000;
    expect(reloaded.matching(event('HighMemory'))).toBeUndefined();
    expect(reloaded.matching(event('HighCpu'))).toBeDefined();
    expect(await reloaded.remove(one.id)).toBe(true);
    expect(reloaded.matching(event('HighCpu'))).toBeUndefined();
  });

  test('a silenced rule still fires but does not notify; admin routes list and lift silences, audited', async () => {
    const token = 'silence-admin-token-0123456789ab';
    const server = await spawnServer({
      env: {
        SSC_SECURITY__ADMIN_TOKEN: token,
        SSC_OBSERVABILITY__HISTORY_INTERVAL_SECONDS: '1',
        SSC_ALERTS__EVALUATE_INTERVAL_SECONDS: '1',
        SSC_ALERTS__RULES: JSON.stringify([
          { name: 'Busy', metric: 'http_requests_per_second', op: '>', threshold: 5, forSeconds: 0, severity: 'warning', cooldownSeconds: 0 },
        ]),
      },
    });
    servers.push(server);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const created = await fetch(`${server.opsUrl}/api/admin/silences`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ rule: 'Busy', minutes: 5, reason: 'test' }),
    });
    expect(created.status).toBe(201);
    const silence = (await created.json()) as { id: string };
    // Drive the rule's series over its threshold (about 40 requests/s for 2 s).
    for (let i = 0; i < 80; i++) {
      await fetch(`${server.publicUrl}/health`);
      await Bun.sleep(25);
    }
    await server.waitForLine((l) => l.msg === 'alert notification silenced' && l.rule === 'Busy', 10_000);
    expect(server.lines.some((l) => l.msg === 'alert firing' && l.alert === 'Busy')).toBe(true);
    expect(server.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('alert notification: Busy'))).toBe(false);
    const alerts = (await (await fetch(`${server.opsUrl}/api/alerts`, { headers: auth })).json()) as { active: { rule: string }[] };
    expect(alerts.active.map((a) => a.rule)).toContain('Busy');
    const list = (await (await fetch(`${server.opsUrl}/api/admin/silences`, { headers: auth })).json()) as { silences: { id: string }[] };
    expect(list.silences.map((s) => s.id)).toEqual([silence.id]);
    expect((await fetch(`${server.opsUrl}/api/admin/silences/${silence.id}`, { method: 'DELETE', headers: auth })).status).toBe(200);
    const bad = await fetch(`${server.opsUrl}/api/admin/silences`, { method: 'POST', headers: auth, body: '{"rule":"","minutes":-1}' });
    expect(bad.status).toBe(400);
    await server.stop();
    const audit = await Bun.file(`${server.logDir}/audit.log`).text();
    expect(audit).toContain('"event":"admin.silence"');
    expect(audit).toContain('"event":"admin.unsilence"');
  });
});
