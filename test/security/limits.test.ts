import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RedisServer, startRedis } from '../helpers/redis.ts';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

const servers: SpawnedServer[] = [];
let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
  await redis.stop('SIGKILL');
});

const adminToken = 'admin-token-for-tests-0123456789';
const limitsEnv = {
  SSC_SECURITY__ADMIN_TOKEN: adminToken,
  SSC_SECURITY__RATE_LIMIT__HTTP_PER_IP: '20',
  SSC_SECURITY__RATE_LIMIT__WINDOW_SECONDS: '60',
  SSC_SECURITY__BANS__THRESHOLD: '10',
  SSC_SECURITY__BANS__BAN_SECONDS: '120',
};

/** A bounded flood: `count` sequential requests, returning the statuses. */
async function flood(url: string, count: number) {
  const statuses: number[] = [];
  let last: Response | undefined;
  for (let i = 0; i < count; i++) {
    last = await fetch(url);
    statuses.push(last.status);
  }
  return { statuses, last: last! };
}

describe('rate limits and bans', () => {
  test('a flood gets 429 with Retry-After, then a ban (403); admin lists and lifts it; all audited', async () => {
    const server = await spawnServer({ env: limitsEnv });
    servers.push(server);
    const { statuses } = await flood(`${server.publicUrl}/health`, 25);
    expect(statuses.slice(0, 20).every((s) => s === 200)).toBe(true);
    expect(statuses.slice(20)).toEqual([429, 429, 429, 429, 429]);
    const limited = await fetch(`${server.publicUrl}/health`);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    // Ten suspicious events (rate-limit hits) within the window place a ban.
    const after = await flood(`${server.publicUrl}/health`, 6);
    expect(after.statuses.at(-1)).toBe(403);
    expect(((await after.last.json()) as { error: { code: string } }).error.code).toBe('BANNED');

    const auth = { authorization: `Bearer ${adminToken}` };
    expect((await fetch(`${server.opsUrl}/api/admin/bans`)).status).toBe(401);
    expect((await fetch(`${server.opsUrl}/api/admin/bans`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const list = (await (await fetch(`${server.opsUrl}/api/admin/bans`, { headers: auth })).json()) as { bans: { source: string }[] };
    expect(list.bans.map((b) => b.source)).toContain('127.0.0.1');
    const metrics = await (await fetch(`${server.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/ssc_bans_active\{[^}]*\} 1/);
    expect(metrics).toMatch(/ssc_rate_limited_total\{[^}]*scope="http"[^}]*\} \d+/);
    const lifted = await fetch(`${server.opsUrl}/api/admin/bans/127.0.0.1`, { method: 'DELETE', headers: auth });
    expect(lifted.status).toBe(200);
    expect((await fetch(`${server.opsUrl}/api/admin/bans/127.0.0.1`, { method: 'DELETE', headers: auth })).status).toBe(404);
    // Lifting the ban does not reset the rate limit window: still 429, no longer 403.
    expect((await fetch(`${server.publicUrl}/health`)).status).toBe(429);

    await server.stop();
    const audit = readFileSync(join(server.logDir, 'audit.log'), 'utf8');
    for (const event of ['rate_limit.hit', 'ban.placed', 'admin.denied', 'ban.lifted', 'admin.unban']) expect(audit).toContain(event);
  });

  test('a ban placed on one node is enforced by a second node through Redis', async () => {
    const env = { ...limitsEnv, SSC_BROKER__TYPE: 'redis', SSC_BROKER__REDIS__URL: redis.url, SSC_BROKER__REDIS__KEY_PREFIX: `t${Date.now()}:` };
    const a = await spawnServer({ env });
    const b = await spawnServer({ env });
    servers.push(a, b);
    expect((await fetch(`${b.publicUrl}/health`)).status).toBe(200);
    const placed = await fetch(`${a.opsUrl}/api/admin/bans`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ source: '127.0.0.1', seconds: 60, reason: 'test' }),
    });
    expect(placed.status).toBe(201);
    // Node B refreshes its view of the shared ban list every second.
    let status = 200;
    for (let i = 0; i < 40 && status !== 403; i++) {
      await Bun.sleep(100);
      status = (await fetch(`${b.publicUrl}/health`)).status;
    }
    expect(status).toBe(403);
    // Invalid admin input gets the structured 400.
    const bad = await fetch(`${a.opsUrl}/api/admin/bans`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ source: 'not a valid source!', seconds: -1 }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('INVALID_INPUT');
  });
});
