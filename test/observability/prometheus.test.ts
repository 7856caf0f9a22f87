/**
 * A real Prometheus (the Debian `prometheus` binary) scrapes a real server process; the test
 * reads the result through Prometheus's HTTP API. `promtool check metrics` lints a scrape.
 */
import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

// biome-ignore lint/suspicious/noExplicitAny: Prometheus API answers are walked by key and checked by assertions
type Json = any;

async function freePort(): Promise<number> {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

async function startPrometheus(target: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ssc-prom-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'prometheus.yml');
  // YAML is a superset of JSON: the generated config is written as JSON.
  writeFileSync(
    file,
    JSON.stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: 'ssc-test', metrics_path: '/metrics', static_configs: [{ targets: [target] }] }],
    }),
  );
  const port = await freePort();
  let stderr = '';
  const proc: Subprocess<'ignore', 'ignore', 'pipe'> = Bun.spawn(
    [
      'prometheus',
      `--config.file=${file}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe' },
  );
  (async () => {
    for await (const chunk of proc.stderr) stderr = (stderr + new TextDecoder().decode(chunk)).slice(-4000);
  })();
  cleanup.push(async () => {
    proc.kill();
    await proc.exited;
  });
  const api = `http://127.0.0.1:${port}/api/v1`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`prometheus exited ${proc.exitCode}: ${stderr}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/-/ready`)).ok) return api;
    } catch {
      // not listening yet
    }
    await Bun.sleep(200);
  }
  throw new Error(`prometheus did not become ready: ${stderr}`);
}

async function query(api: string, promql: string): Promise<Json[]> {
  const body = (await (await fetch(`${api}/query?query=${encodeURIComponent(promql)}`)).json()) as Json;
  expect(body.status).toBe('success');
  return body.data.result;
}

/** Polls a query until it returns at least one series (Prometheus scrapes every second). */
async function eventually(api: string, promql: string, timeoutMs = 20_000): Promise<Json[]> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const result = await query(api, promql);
    if (result.length > 0 || Date.now() > deadline) return result;
    await Bun.sleep(300);
  }
}

describe('metrics with a real Prometheus', () => {
  let server: SpawnedServer;

  test(
    'Prometheus scrapes the ops port: up == 1 and ssc_ series carry their labels',
    async () => {
      server = await spawnServer();
      cleanup.push(() => server.stop());
      // Some traffic, so HTTP series and the error counter have samples.
      for (let i = 0; i < 5; i++) await fetch(`${server.publicUrl}/health`);
      await fetch(`${server.publicUrl}/no/such/route`);
      // Admin routes are off (no token): an AppError through the error renderer → bad_input.
      expect((await fetch(`${server.opsUrl}/api/admin/bans`)).status).toBe(404);
      const api = await startPrometheus(new URL(server.opsUrl).host);

      const up = await eventually(api, 'up{job="ssc-test"} == 1');
      expect(up.length).toBe(1);
      expect(up[0].value[1]).toBe('1');

      const info = await eventually(api, 'ssc_build_info');
      expect(info[0].metric).toMatchObject({ job: 'ssc-test', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
      expect(info[0].metric.runtime).toStartWith('bun ');
      expect(info[0].metric.node).toBeTruthy();

      const components = await eventually(api, 'ssc_component_health');
      expect(components.map((r: Json) => r.metric.component).sort()).toEqual([
        'consensus',
        'crypto-protocols',
        'error-handler',
        'logging',
        'network',
        'quantum-core',
        'security-foundation',
      ]);
      const logging = components.find((r: Json) => r.metric.component === 'logging');
      expect(logging.value[1]).toBe('0');

      const connections = await eventually(api, 'ssc_connections');
      expect(connections.map((r: Json) => r.metric.transport).sort()).toEqual(['http', 'ws']);

      const badInput = await eventually(api, 'ssc_errors_total{kind="bad_input"}');
      expect(Number(badInput[0].value[1])).toBeGreaterThanOrEqual(1);

      // HTTP metrics are labelled by route pattern, not raw path: the 404 is not a series of its own.
      const requests = await eventually(api, 'http_requests_total{route="/health",method="GET",status="200"}');
      expect(Number(requests[0].value[1])).toBeGreaterThanOrEqual(5);
      const routes = (await query(api, 'http_requests_total')).map((r: Json) => r.metric.route);
      expect(routes).not.toContain('/no/such/route');

      const lag = await eventually(api, 'ssc_event_loop_lag_seconds');
      expect(Number(lag[0].value[1])).toBeGreaterThanOrEqual(0);
      const rss = await eventually(api, 'process_resident_memory_bytes');
      expect(Number(rss[0].value[1])).toBeGreaterThan(1_000_000);

      // Every name Prometheus holds from this target is ssc_, http_, process_ or nodejs_.
      const names = (await (await fetch(`${api}/label/__name__/values`)).json()) as Json;
      const own = (names.data as string[]).filter((n) => !n.startsWith('scrape_') && n !== 'up');
      expect(own.length).toBeGreaterThan(20);
      for (const name of own) expect(name).toMatch(/^(ssc|http|process|nodejs)_/);
    },
    60_000,
  );

  test('promtool check metrics passes on a scrape with no warnings', async () => {
    const text = await (await fetch(`${server.opsUrl}/metrics`)).text();
    expect(text).toContain('# HELP ssc_handshakes_total');
    const proc = Bun.spawn(['promtool', 'check', 'metrics'], { stdin: new Blob([text]), stdout: 'pipe', stderr: 'pipe' });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(out + err).toBe('');
    expect(code).toBe(0);
  });

  test('every ssc_ metric the issue lists is exported with its labels', async () => {
    const text = await (await fetch(`${server.opsUrl}/metrics`)).text();
    const expected: Record<string, { type: string; labels: string[] }> = {
      ssc_connections: { type: 'gauge', labels: ['transport'] },
      ssc_handshakes_total: { type: 'counter', labels: ['result', 'protocol'] },
      ssc_handshake_duration_seconds: { type: 'histogram', labels: ['protocol'] },
      ssc_messages_total: { type: 'counter', labels: ['direction', 'kind'] },
      ssc_message_bytes_total: { type: 'counter', labels: ['direction'] },
      ssc_delivery_latency_seconds: { type: 'histogram', labels: [] },
      ssc_crypto_ops_total: { type: 'counter', labels: ['op', 'backend'] },
      ssc_qkd_qber: { type: 'gauge', labels: ['link'] },
      ssc_qkd_key_rate_bits: { type: 'gauge', labels: ['link'] },
      ssc_qkd_pool_keys: { type: 'gauge', labels: ['link'] },
      ssc_qkd_pulses_total: { type: 'counter', labels: ['link'] },
      ssc_broker_command_duration_seconds: { type: 'histogram', labels: ['backend', 'command'] },
      ssc_broker_up: { type: 'gauge', labels: ['backend'] },
      ssc_auth_attempts_total: { type: 'counter', labels: ['result', 'method'] },
      ssc_rate_limited_total: { type: 'counter', labels: ['scope'] },
      ssc_bans_active: { type: 'gauge', labels: [] },
      ssc_alerts_firing: { type: 'gauge', labels: ['rule', 'severity'] },
      ssc_component_health: { type: 'gauge', labels: ['component'] },
      ssc_circuit_breaker_state: { type: 'gauge', labels: ['name'] },
      ssc_errors_total: { type: 'counter', labels: ['kind'] },
      ssc_event_loop_lag_seconds: { type: 'gauge', labels: [] },
      ssc_operation_duration_seconds: { type: 'histogram', labels: ['op'] },
    };
    for (const [name, { type }] of Object.entries(expected)) expect(text).toContain(`# TYPE ${name} ${type}`);
    // Series that exist at start show their labels in the scrape; the label names of the
    // rest are read from the metric objects the server builds.
    expect(text).toMatch(/ssc_component_health\{[^}]*component="logging"/);
    expect(text).toMatch(/ssc_connections\{[^}]*transport="ws"/);
    const { createMetrics } = await import('../../src/observability/metrics.ts');
    const metrics = createMetrics({ defaultMetrics: false });
    try {
      for (const [name, { labels }] of Object.entries(expected)) {
        const metric = metrics.registry.getSingleMetric(name) as unknown as { labelNames: string[] };
        expect({ name, labels: [...metric.labelNames] }).toEqual({ name, labels });
      }
    } finally {
      metrics.close();
    }
  });
});
