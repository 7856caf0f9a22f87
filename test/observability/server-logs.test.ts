/**
 * Logs of a real server process (`ssc serve`): request IDs, secrets, the audit and error
 * streams, rotation with gzip and retention, and the console status line.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

const started: SpawnedServer[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop('SIGKILL')));
});

/** Text of every file in the log directory, rolled .gz files decompressed. */
function allLogText(dir: string): string {
  return readdirSync(dir)
    .map((name) => {
      const raw = readFileSync(join(dir, name));
      return (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
    })
    .join('\n');
}
const jsonLines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('server logs', () => {
  test('request IDs, secrets kept out of every stream, audit and error files', async () => {
    const adminToken = 'admin-token-SECRET-0000000001';
    const server = await spawnServer({ env: { SSC_SECURITY__ADMIN_TOKEN: adminToken } });
    started.push(server);

    // A given request ID comes back in the header and is on the request's log line.
    const ok = await fetch(`${server.publicUrl}/health`, { headers: { 'x-request-id': 'obs-test-req-1' } });
    expect(ok.headers.get('x-request-id')).toBe('obs-test-req-1');
    const access = await server.waitForLine((l) => l.requestId === 'obs-test-req-1');
    expect(access).toMatchObject({ component: 'http', method: 'GET', path: '/health', status: 200 });
    // One is generated when absent.
    const generated = (await fetch(`${server.publicUrl}/live`)).headers.get('x-request-id')!;
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    await server.waitForLine((l) => l.requestId === generated);

    // Secrets: a wrong bearer token, a token inside a JSON body, and the real admin token.
    const denied = await fetch(`${server.opsUrl}/api/admin/bans`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong-SECRET-0000000002', 'content-type': 'application/json' },
      body: JSON.stringify({ source: '192.0.2.7', seconds: 60, token: 'body-SECRET-0000000003' }),
    });
    expect(denied.status).toBe(401);
    const banned = await fetch(`${server.opsUrl}/api/admin/bans`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', 'x-request-id': 'obs-ban-1' },
      body: JSON.stringify({ source: '192.0.2.8', seconds: 60, reason: 'test', token: 'body-SECRET-0000000004' }),
    });
    expect(banned.status).toBe(201);
    await server.waitForLine((l) => l.event === 'admin.ban');
    expect(await server.stop()).toBe(0);

    const text = allLogText(server.logDir) + JSON.stringify(server.lines);
    for (const secret of [adminToken, 'wrong-SECRET-0000000002', 'body-SECRET-0000000003', 'body-SECRET-0000000004']) {
      expect(text).not.toContain(secret);
    }

    // The audit file holds audit events only: key generation, the denial, the ban.
    // (Checkpoint records of the hash chain, when it owns the file, are audit records too.)
    const audit = jsonLines(join(server.logDir, 'audit.log')).filter((l) => l.event !== 'audit.checkpoint');
    expect(audit.map((l) => l.event)).toEqual(['keys.generated', 'admin.denied', 'admin.ban']);
    expect(audit.every((l) => l.component === 'security' && typeof l.event === 'string')).toBe(true);
    expect(audit[2]).toMatchObject({ source: '192.0.2.8', seconds: 60 });
    // The combined file has the same events marked audit, among everything else.
    const combined = jsonLines(join(server.logDir, 'combined.log'));
    expect(combined.filter((l) => l.audit === true).map((l) => l.event)).toEqual(['keys.generated', 'admin.denied', 'admin.ban']);
    expect(combined.some((l) => l.msg === 'listening')).toBe(true);
    expect(combined.find((l) => l.requestId === 'obs-test-req-1')).toMatchObject({ status: 200 });

    // Nothing in this run was an error: the error file holds no line below error.
    const errors = jsonLines(join(server.logDir, 'error.log'));
    expect(errors.every((l) => l.level === 'error' || l.level === 'fatal')).toBe(true);
  }, 30_000);

  test('rotation: a small size limit produces gzipped rolled files and keeps only `keep`; the status line prints', async () => {
    const server = await spawnServer({
      env: {
        SSC_LOG__ROTATION__SIZE: '4k',
        SSC_LOG__ROTATION__KEEP: '2',
        SSC_OBSERVABILITY__STATUS_LINE__INTERVAL_SECONDS: '1',
      },
    });
    started.push(server);
    // ~300 debug access lines of ~300 bytes: about twenty 4 KiB rolls of combined.log.
    for (let i = 0; i < 300; i++) await fetch(`${server.publicUrl}/health`, { headers: { 'x-request-id': `rot-${i}` } });

    const status = await server.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('status '), 10_000);
    expect(status.msg).toMatch(
      /^status (healthy|warning|degraded|critical|down) \| cpu [\d.]+% \| mem \d+ MiB \| conn \d+ \| msg\/s [\d.]+ \| resp [\d.]+ ms \| err [\d.]+% \| crypto\/s \d+ \| qkd pulses\/s \d+ \| components \d\/7$/,
    );
    expect(status.statusLine).toMatchObject({ componentsTotal: 7, connections: 0 });
    expect(await server.stop()).toBe(0);

    const names = readdirSync(server.logDir);
    const rolled = names.filter((n) => /^combined\.\d{8}T\d{6}Z-\d+\.log\.gz$/.test(n));
    expect(rolled.length).toBe(2);
    expect(names.filter((n) => n.startsWith('combined.') && n.endsWith('.log') && n !== 'combined.log')).toEqual([]);
    // Roll numbers keep growing: the kept two are the newest of many.
    const numbers = rolled.map((n) => Number(/-(\d+)\.log\.gz$/.exec(n)![1])).sort((a, b) => a - b);
    expect(numbers[0]).toBeGreaterThan(5);
    expect(numbers[1]).toBe(numbers[0]! + 1);
    for (const name of rolled) {
      const lines = gunzipSync(readFileSync(join(server.logDir, name)))
        .toString('utf8')
        .split('\n')
        .filter(Boolean);
      expect(lines.length).toBeGreaterThan(3);
      for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    }
    // The newest access line is in the live file or the newest rolled file.
    const newest = readFileSync(join(server.logDir, 'combined.log'), 'utf8') + allLogText(server.logDir);
    expect(newest).toContain('"requestId":"rot-299"');
  }, 60_000);
});
