import { describe, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultRules } from '../../src/observability/alerts/index.ts';
import { repoRoot } from '../helpers/paths.ts';

const rulesPath = join(repoRoot, 'deploy/prometheus/alerts.yml');

function promtool(args: string[], cwd = repoRoot) {
  const result = Bun.spawnSync(['promtool', ...args], { cwd, stdout: 'pipe', stderr: 'pipe' });
  return { code: result.exitCode, out: result.stdout.toString() + result.stderr.toString() };
}

describe('deploy/prometheus/alerts.yml', () => {
  test('promtool check rules passes', () => {
    const { code, out } = promtool(['check', 'rules', rulesPath]);
    expect(out).toContain('SUCCESS');
    expect(code).toBe(0);
  });

  test('carries every built-in default rule by name', async () => {
    const text = await Bun.file(rulesPath).text();
    for (const rule of defaultRules) expect(text).toContain(`alert: ${rule.name}\n`);
  });

  test('rules fire on synthetic series (promtool test rules)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssc-promtool-'));
    writeFileSync(
      join(dir, 'tests.yml'),
      `rule_files: [${JSON.stringify(rulesPath)}]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'ssc_qkd_qber{job="ssc",instance="n1:9090",node="n1",link="A-B"}'
        values: '0.03 0.03 0.2 0.2 0.2 0.2 0.2'
      - series: 'http_requests_total{job="ssc",instance="n1:9090",node="n1",status="200"}'
        values: '0+100x40'
      - series: 'http_requests_total{job="ssc",instance="n1:9090",node="n1",status="503"}'
        values: '0+10x40'
      - series: 'process_resident_memory_bytes{job="ssc",instance="n1:9090"}'
        values: '900x40'
      - series: 'ssc_process_memory_limit_bytes{job="ssc",instance="n1:9090",node="n1"}'
        values: '1000x40'
    alert_rule_test:
      - eval_time: 15s
        alertname: QkdQberHigh
        exp_alerts: []
      - eval_time: 90s
        alertname: QkdQberHigh
        exp_alerts:
          - exp_labels: { severity: critical, job: ssc, instance: 'n1:9090', node: n1, link: A-B }
            exp_annotations:
              summary: 'QkdQberHigh: QBER 20% on link A-B'
              action: 'No secret key can be distilled above 11 %; suspect an eavesdropper or a fibre fault.'
      - eval_time: 8m
        alertname: HighMemory
        exp_alerts:
          - exp_labels: { severity: warning, job: ssc, instance: 'n1:9090' }
            exp_annotations:
              summary: 'HighMemory: n1:9090 RSS at 90 % of its limit'
              action: 'Look for slow consumers (send queues) and large histories; raise the memory limit or shed connections.'
`,
    );
    const { code, out } = promtool(['test', 'rules', 'tests.yml'], dir);
    expect(out).toContain('SUCCESS');
    expect(code).toBe(0);
  });
});

describe('deploy/grafana/dashboard.json', () => {
  test('is valid JSON with the dashboard panels, and every query is valid PromQL (promtool)', async () => {
    const dashboard = (await Bun.file(join(repoRoot, 'deploy/grafana/dashboard.json')).json()) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const titles = dashboard.panels.map((p) => p.title);
    for (const title of ['Component health', 'Connections', 'Messages / s', 'HTTP latency p50 / p99', 'HTTP 5xx error rate', 'CPU (% of cores)', 'Memory (RSS, % of limit)', 'Crypto operations / s', 'QKD QBER per link', 'QKD secret key rate per link']) {
      expect(titles).toContain(title);
    }
    // Grafana variables replaced by what Grafana would substitute, then checked as recording rules.
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr.replaceAll('$__rate_interval', '1m').replaceAll('$node', '.*')));
    const dir = mkdtempSync(join(tmpdir(), 'ssc-grafana-'));
    const rules = { groups: [{ name: 'grafana', rules: exprs.map((expr, i) => ({ record: `grafana:panel_${i}`, expr })) }] };
    writeFileSync(join(dir, 'panels.yml'), JSON.stringify(rules));
    const { code, out } = promtool(['check', 'rules', 'panels.yml'], dir);
    expect(out).toContain('SUCCESS');
    expect(code).toBe(0);
  });
});
