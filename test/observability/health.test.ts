import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { configSchema } from '../../src/config/index.ts';
import { errorHandlerCheck, networkCheck } from '../../src/observability/default-checks.ts';
import { createHealth } from '../../src/observability/health.ts';
import { createLogging } from '../../src/observability/logger.ts';
import { createEventLoopMonitor, createMetrics } from '../../src/observability/metrics.ts';
import { createStatusLine, type StatusFields } from '../../src/observability/status-line.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { testApps } from '../helpers/apps.ts';

const dirs: string[] = [];
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const step of cleanups.reverse()) await step();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssc-health-'));
  dirs.push(dir);
  return dir;
};

// biome-ignore lint/suspicious/noExplicitAny: health+json bodies are walked by key and checked by assertions
type Json = any;

async function startInProcess(): Promise<{ server: RunningServer; logDir: string }> {
  const base = tempDir();
  const logDir = join(base, 'logs');
  const config = configSchema.parse({
    env: 'test',
    server: { host: '127.0.0.1', port: 0, metricsPort: 0, dataDir: join(base, 'data'), drainDelayMs: 300 },
    log: { dir: logDir, console: false, level: 'info' },
  });
  const server = await startServer(config);
  cleanups.push(() => server.stop('test end'));
  return { server, logDir };
}

const detailed = async (server: RunningServer) => {
  const response = await fetch(`${server.urls.ops}/health/detailed?fresh=1`);
  expect(response.headers.get('content-type')).toBe('application/health+json');
  return { status: response.status, body: (await response.json()) as Json };
};

describe('health in a running server', () => {
  let running: { server: RunningServer; logDir: string };

  test('every component of DESIGN §2 has a check with status, value, unit and time', async () => {
    running = await startInProcess();
    const { body } = await detailed(running.server);
    const byComponent = new Map<string, Json[]>();
    for (const [key, list] of Object.entries(body.checks as Record<string, Json[]>)) {
      expect(key.split(':')[0]).toBe(list[0].componentId);
      byComponent.set(list[0].componentId, [...(byComponent.get(list[0].componentId) ?? []), ...list]);
    }
    expect([...byComponent.keys()].sort()).toEqual([
      'consensus',
      'crypto-protocols',
      'error-handler',
      'logging',
      'network',
      'quantum-core',
      'security-foundation',
    ]);
    for (const checks of byComponent.values()) {
      for (const check of checks) {
        expect(['pass', 'warn', 'fail']).toContain(check.status);
        expect(['healthy', 'warning', 'degraded', 'critical', 'down']).toContain(check.severity);
        expect(Number.isNaN(Date.parse(check.time))).toBe(false);
        if (check.status !== 'pass') expect(check.action).toBeTruthy();
      }
    }
    // The default checks (this component's) always carry an observed value and unit.
    for (const key of ['logging:log-streams', 'error-handler:error-rate', 'network:connections', 'consensus:cluster']) {
      const [check] = body.checks[key];
      expect(check.observedValue).toBeDefined();
      expect(typeof check.observedUnit).toBe('string');
      expect(check.output).toBeTruthy();
    }
    // The cluster view (src/cluster) replaced the single-node placeholder: this node, verified.
    expect(body.checks['consensus:cluster'][0]).toMatchObject({ observedValue: 1, observedUnit: 'of 1 peers verified' });
    expect(body.checks['network:connections'][0]).toMatchObject({ observedValue: 0, observedUnit: 'connections (limit 5000)' });
    expect(body.checks['logging:log-streams'][0].status).toBe('pass');
  });

  test('a critical dependency that fails (a WASM module that does not compile) turns its check and /ready', async () => {
    const { server } = running;
    const wasmFile = join(tempDir(), 'core.wasm');
    writeFileSync(wasmFile, 'not a wasm module');
    server.health.register('quantum-core', 'wasm-module', {
      critical: true,
      check: () =>
        WebAssembly.validate(readFileSync(wasmFile))
          ? { status: 'healthy', observedValue: 1, observedUnit: 'modules loaded', output: 'WASM core validated' }
          : {
              status: 'down',
              observedValue: 0,
              observedUnit: 'modules loaded',
              output: `${wasmFile} does not validate`,
              action: 'run `bun run build:wasm` and restart',
            },
    });
    const { status, body } = await detailed(server);
    expect(status).toBe(503);
    expect(body.status).toBe('fail');
    expect(body.checks['quantum-core:wasm-module'][0]).toMatchObject({
      status: 'fail',
      severity: 'down',
      critical: true,
      action: 'run `bun run build:wasm` and restart',
    });
    // The placeholder for the unmonitored component is gone once a check is registered.
    expect(body.checks['quantum-core:registered-checks']).toBeUndefined();
    const ready = await fetch(`${server.urls.ops}/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as Json).reasons).toEqual([`wasm-module: ${wasmFile} does not validate`]);
    expect((await fetch(`${server.urls.public}/ready`)).status).toBe(503);
    // Liveness is about the event loop only.
    expect((await fetch(`${server.urls.ops}/live`)).status).toBe(200);
    expect(await (await fetch(`${server.urls.ops}/metrics`)).text()).toMatch(/ssc_component_health\{[^}]*component="quantum-core"[^}]*\} 4/);

    // Repaired (the smallest valid module: magic + version), the next evaluation is ready again.
    writeFileSync(wasmFile, new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
    expect((await detailed(server)).body.checks['quantum-core:wasm-module'][0].status).toBe('pass');
    expect((await fetch(`${server.urls.ops}/ready`)).status).toBe(200);
    server.health.unregister('wasm-module');
  });

  test('the log directory replaced by a file turns the logging check critical; /ready stays up (logging is not a critical dependency)', async () => {
    const { server, logDir } = running;
    rmSync(logDir, { recursive: true, force: true });
    writeFileSync(logDir, 'in the way');
    const broken = (await detailed(server)).body.checks['logging:log-streams'][0];
    expect(broken).toMatchObject({ status: 'fail', severity: 'critical' });
    expect(broken.output).toContain('combined.log');
    expect(broken.action).toContain(logDir);
    expect((await fetch(`${server.urls.ops}/ready`)).status).toBe(200);

    // Restored: the streams reopen at their paths and lines land there again.
    rmSync(logDir);
    mkdirSync(logDir);
    expect((await detailed(server)).body.checks['logging:log-streams'][0].severity).toBe('warning');
    expect((await detailed(server)).body.checks['logging:log-streams'][0].severity).toBe('healthy');
    server.logging.child('system').error('after the repair');
    await server.logging.flush();
    expect(existsSync(join(logDir, 'error.log'))).toBe(true);
    expect(readFileSync(join(logDir, 'error.log'), 'utf8')).toContain('after the repair');
  });

  test('/ready is 503 while draining', async () => {
    const { server } = running;
    const stopping = server.stop('drain test');
    // drainDelayMs keeps the listeners open while not ready, as a load balancer needs.
    const ready = await fetch(`${server.urls.ops}/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as Json).reasons).toContain('lifecycle is draining');
    await stopping;
    expect(server.health.lifecycle).toBe('stopped');
  });
});

describe('health registry', () => {
  test('not ready while starting; ready once ready; a non-critical failure does not change readiness', async () => {
    const health = createHealth({ cacheMs: 0 });
    health.register('network', 'store', { critical: false, check: () => ({ status: 'down', output: 'store unreachable' }) });
    expect(await health.readiness()).toEqual({ ready: false, reasons: ['lifecycle is starting'] });
    health.setLifecycle('ready');
    expect((await health.readiness()).ready).toBe(true);
    health.setLifecycle('draining');
    expect(await health.readiness()).toEqual({ ready: false, reasons: ['lifecycle is draining'] });
  });

  test('a check that throws is reported down with its message; results are cached briefly', async () => {
    let calls = 0;
    const health = createHealth({ cacheMs: 60_000 });
    health.register('crypto-protocols', 'self-test', {
      critical: true,
      check: () => {
        calls += 1;
        throw new Error('ML-KEM known-answer test mismatch');
      },
    });
    const first = await health.evaluate();
    await health.evaluate();
    expect(calls).toBe(1);
    await health.evaluate(true);
    expect(calls).toBe(2);
    expect(first.checks.find((c) => c.name === 'self-test')).toMatchObject({
      status: 'down',
      output: 'check failed: ML-KEM known-answer test mismatch',
    });
  });
});

describe('default checks read the registry', () => {
  test('error handler: the 5xx share since the last check, and open circuit breakers', async () => {
    const base = tempDir();
    const config = configSchema.parse({ env: 'test', log: { dir: join(base, 'logs'), console: false } });
    const logging = createLogging({ log: config.log, env: config.env });
    const metrics = createMetrics({ defaultMetrics: false });
    cleanups.push(() => metrics.close());
    const health = createHealth({ metrics });
    const routes = new Hono();
    routes.get('/boom', () => {
      throw new Error('boom');
    });
    const { publicApp } = testApps({ config, logger: logging.logger, metrics, health, routes });
    const check = errorHandlerCheck(metrics);
    for (let i = 0; i < 9; i++) await publicApp.request('/health');
    await publicApp.request('/t/boom');
    const tenPercent = await check();
    expect(tenPercent).toMatchObject({ status: 'degraded', observedValue: 10, observedUnit: 'percent 5xx' });
    // The next check sees only what happened since: 20 good responses.
    for (let i = 0; i < 20; i++) await publicApp.request('/health');
    expect(await check()).toMatchObject({ status: 'healthy', observedValue: 0 });
    metrics.circuitBreakerState.set({ name: 'redis' }, 2);
    const open = await check();
    expect(open.status).toBe('degraded');
    expect(open.output).toContain('open circuit breakers: redis');
    expect(open.action).toContain('redis');
  });

  test('network: connections against channel.maxConnections', async () => {
    const config = configSchema.parse({ env: 'test', channel: { maxConnections: 100 } });
    const metrics = createMetrics({ defaultMetrics: false });
    cleanups.push(() => metrics.close());
    const check = networkCheck(config, metrics);
    expect((await check()).status).toBe('healthy');
    metrics.connections.set({ transport: 'ws' }, 90);
    metrics.connections.set({ transport: 'http' }, 6);
    expect(await check()).toMatchObject({ status: 'degraded', observedValue: 96, details: { ws: 90, http: 6 } });
    metrics.connections.set({ transport: 'http' }, 10);
    expect((await check()).status).toBe('critical');
  });
});

describe('status line and event loop', () => {
  test('the status line reports rates as deltas between ticks and counts healthy components', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    cleanups.push(() => metrics.close());
    const health = createHealth({ metrics, cacheMs: 0 });
    health.register('logging', 'ok', { critical: false, check: () => ({ status: 'healthy' }) });
    health.register('network', 'busy', { critical: false, check: () => ({ status: 'degraded' }) });
    const written: { line: string; fields: StatusFields }[] = [];
    const status = createStatusLine({ metrics, health, intervalSeconds: 0, write: (line, fields) => written.push({ line, fields }) });
    metrics.messages.inc({ direction: 'in', kind: 'publish' }, 1_000);
    await status.tick();
    // Between ticks: 50 messages, 10 crypto ops, connections up.
    metrics.messages.inc({ direction: 'out', kind: 'publish' }, 50);
    metrics.cryptoOps.inc({ op: 'seal', backend: 'wasm' }, 10);
    metrics.connections.set({ transport: 'ws' }, 3);
    await Bun.sleep(50);
    const { line, fields } = await status.tick();
    expect(written.length).toBe(2);
    expect(fields).toMatchObject({ health: 'degraded', connections: 3, componentsHealthy: 1, componentsTotal: 7, errorRatePercent: 0 });
    // Only what happened between the ticks counts: 10 crypto ops per 50 messages (counting the
    // 1 000 messages before the first tick would make it 10 per 1 050). Over ≥ 50 ms, ≤ 1 000/s.
    expect(fields.messagesPerSecond).toBeGreaterThan(0);
    expect(fields.messagesPerSecond).toBeLessThanOrEqual(1_000);
    expect(fields.cryptoOpsPerSecond / fields.messagesPerSecond).toBeCloseTo(10 / 50, 5);
    expect(fields.memoryBytes).toBeGreaterThan(0);
    expect(line).toStartWith('status degraded | cpu ');
    expect(line).toContain('| conn 3 |');
    expect(line).toEndWith('| components 1/7');
  });

  test('the event-loop monitor sees a blocked loop', async () => {
    const monitor = createEventLoopMonitor({ intervalMs: 20, windowMs: 1_000 });
    cleanups.push(() => monitor.close());
    await Bun.sleep(60);
    const until = performance.now() + 200;
    while (performance.now() < until) {
      // block the loop
    }
    expect(monitor.currentMs()).toBeGreaterThan(150);
    await Bun.sleep(40);
    expect(monitor.maxMs()).toBeGreaterThan(150);
    expect(monitor.meanMs()).toBeGreaterThan(0);
  });
});
