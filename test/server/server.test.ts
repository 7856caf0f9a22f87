import { afterAll, describe, expect, test } from 'bun:test';
import { spawnServer, type SpawnedServer } from '../helpers/server.ts';

const started: SpawnedServer[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop('SIGKILL')));
});

describe('server process', () => {
  test('starts on free ports and answers the probes on both ports', async () => {
    const server = await spawnServer();
    started.push(server);
    expect(server.publicUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const base of [server.publicUrl, server.opsUrl]) {
      const health = await fetch(`${base}/health`);
      expect(health.status).toBe(200);
      const body = (await health.json()) as { status: string; version: string; uptimeSeconds: number };
      expect(['healthy', 'warning']).toContain(body.status);
      expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
      expect((await fetch(`${base}/live`)).status).toBe(200);
      const ready = await fetch(`${base}/ready`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { ready: boolean }).ready).toBe(true);
      expect(health.headers.get('x-request-id')).toBeTruthy();
    }
    const detailed = await fetch(`${server.opsUrl}/health/detailed`);
    expect(detailed.headers.get('content-type')).toBe('application/health+json');
    const metrics = await fetch(`${server.opsUrl}/metrics`);
    expect(metrics.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    expect(await metrics.text()).toContain('ssc_build_info');
    // Metrics stay off the public port unless configured.
    expect((await fetch(`${server.publicUrl}/metrics`)).status).toBe(404);
    const unknown = await fetch(`${server.publicUrl}/no/such/route`);
    expect(unknown.status).toBe(404);
    const error = (await unknown.json()) as { error: { code: string; requestId: string } };
    expect(error.error.code).toBe('NOT_FOUND');
    expect(error.error.requestId).toBe(unknown.headers.get('x-request-id')!);
    expect(await server.stop()).toBe(0);
  });

  test('SIGTERM drains: readiness goes false, then the process exits 0 within the deadline', async () => {
    const server = await spawnServer({
      env: { SSC_SERVER__DRAIN_DELAY_MS: '1500', SSC_SERVER__SHUTDOWN_DEADLINE_MS: '5000' },
    });
    started.push(server);
    expect((await fetch(`${server.opsUrl}/ready`)).status).toBe(200);
    const t0 = Date.now();
    server.proc.kill('SIGTERM');
    await server.waitForLine((l) => l.msg === 'draining');
    const during = await fetch(`${server.opsUrl}/ready`);
    expect(during.status).toBe(503);
    const body = (await during.json()) as { ready: boolean; lifecycle: string };
    expect(body).toMatchObject({ ready: false, lifecycle: 'draining' });
    // Liveness is unaffected by draining.
    expect((await fetch(`${server.opsUrl}/live`)).status).toBe(200);
    expect(await server.proc.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000 + 2_000);
    expect(server.lines.some((l) => l.msg === 'stopped')).toBe(true);
    // The public port no longer accepts connections.
    await expect(fetch(`${server.publicUrl}/health`)).rejects.toThrow();
  });

  test('an invalid config stops startup with one clear line', async () => {
    const proc = Bun.spawn([process.execPath, 'src/cli.ts', 'serve'], {
      env: { ...process.env, SSC_SERVER__PORT: 'eighty' },
      stdout: 'pipe',
      stderr: 'pipe',
    });
    expect(await proc.exited).toBe(2);
    const stderr = await new Response(proc.stderr).text();
    expect(stderr.trim()).toBe('config: server.port = "eighty": Invalid input: expected number, received string');
  });

  test('a missing TLS file stops startup with exit 2 before anything is written', async () => {
    const proc = Bun.spawn([process.execPath, 'src/cli.ts', 'serve', '--data-dir', '/nonexistent/ssc-data', '--log-dir', ''], {
      env: { ...process.env, NODE_ENV: 'test', SSC_SERVER__TLS__CERT: '/nonexistent/cert.pem', SSC_SERVER__TLS__KEY: '/nonexistent/key.pem' },
      stdout: 'pipe',
      stderr: 'pipe',
    });
    expect(await proc.exited).toBe(2);
    expect((await new Response(proc.stderr).text()).trim()).toBe('config: server.tls.cert = "/nonexistent/cert.pem": file not found');
  });
});
