import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';
import { type Doc, deployDir, hasCommand, productionConfig, readYamlDocuments, run } from './deploy-files.ts';

const configPath = join(deployDir, 'prometheus/prometheus.yml');
const alertsPath = join(deployDir, 'prometheus/alerts.yml');
const scrape = readYamlDocuments(configPath)[0];
const sscJob = scrape.scrape_configs.find((job: Doc) => job.job_name === 'ssc');

// CI installs promtool and prometheus (scripts/install-test-deps.sh); elsewhere they may be absent.
const requireTool = (name: string) => hasCommand(name) || Boolean(process.env.CI);

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

describe('deploy/prometheus/prometheus.yml', () => {
  test('passes promtool check config', () => {
    const result = run(['promtool', 'check', 'config', configPath]);
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.code).toBe(0);
  });

  test('scrapes /metrics on the ops port of the production config', () => {
    const config = productionConfig();
    expect(sscJob.metrics_path).toBe('/metrics');
    expect(sscJob.scheme).toBe('http');
    const targets: string[] = sscJob.static_configs.flatMap((c: Doc) => c.targets);
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) expect(Number(target.split(':').at(-1))).toBe(config.server.metricsPort);
  });

  test('loads alerts.yml exactly when it exists', () => {
    // When alerts.yml lands, uncomment `rule_files` in prometheus.yml so Prometheus loads it.
    const rules: string[] = scrape.rule_files ?? [];
    expect(rules.includes('alerts.yml')).toBe(existsSync(alertsPath));
    for (const file of rules) expect(existsSync(join(deployDir, 'prometheus', file))).toBe(true);
  });

  test(
    'a real Prometheus with this scrape job finds a running server up and reads its metrics',
    async () => {
      const server: SpawnedServer = await spawnServer();
      cleanup.push(() => server.stop());
      const dir = mkdtempSync(join(tmpdir(), 'ssc-prometheus-'));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      // The shipped job, pointed at the spawned server and scraped every second.
      const job = {
        ...sscJob,
        scrape_interval: '1s',
        static_configs: [{ ...sscJob.static_configs[0], targets: [new URL(server.opsUrl).host] }],
      };
      const file = join(dir, 'prometheus.yml');
      writeFileSync(file, JSON.stringify({ global: scrape.global, scrape_configs: [job] }));
      const port = await freePort();
      const prometheus: Subprocess = Bun.spawn(
        [
          'prometheus',
          `--config.file=${file}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
        ],
        { stdout: 'ignore', stderr: 'ignore' },
      );
      cleanup.push(async () => {
        prometheus.kill();
        await prometheus.exited;
      });
      const api = `http://127.0.0.1:${port}/api/v1`;
      const deadline = Date.now() + 30_000;
      let health = '';
      while (Date.now() < deadline) {
        try {
          const body = (await (await fetch(`${api}/targets`)).json()) as Doc;
          health = body.data.activeTargets.find((t: Doc) => t.labels.job === 'ssc')?.health ?? '';
          if (health === 'up') break;
        } catch {
          // not listening yet
        }
        await Bun.sleep(250);
      }
      expect(health).toBe('up');
      const query = (await (await fetch(`${api}/query?query=ssc_build_info`)).json()) as Doc;
      expect(query.data.result.length).toBe(1);
      expect(query.data.result[0].metric).toMatchObject({ job: 'ssc', service: 'streamlined-secure-comms' });
    },
    45_000,
  );
});

/** A free loopback TCP port. */
async function freePort(): Promise<number> {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}
