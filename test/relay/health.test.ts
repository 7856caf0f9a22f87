/** The relay's health checks as registered in the health registry, and backend choice from config. */
import { afterEach, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema } from '../../src/config/index.ts';
import { createHealth } from '../../src/observability/health.ts';
import { createRelay, createRelayBackends, type RelayBackends, registerRelayHealth } from '../../src/relay/index.ts';

let backends: RelayBackends | undefined;
afterEach(async () => {
  await backends?.close();
  backends = undefined;
});

test('embedded default: SQLite file under dataDir; broker, store and peers checks are healthy', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ssc-relay-health-'));
  const config = configSchema.parse({ server: { dataDir } });
  backends = await createRelayBackends(config);
  expect(backends.kind).toBe('embedded');
  expect(backends.store.backend).toBe('sqlite');
  expect(backends.broker.backend).toBe('memory');
  expect(await Bun.file(join(dataDir, 'relay.sqlite')).exists()).toBe(true);
  const relay = createRelay({ config, broker: backends.broker, store: backends.store, nodeId: 'solo' });
  await relay.heartbeat();
  const health = createHealth();
  registerRelayHealth(health, backends, { nodeId: 'solo' });
  const report = await health.evaluate(true);
  const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
  expect(byName['relay-broker']).toMatchObject({ component: 'network', critical: true, status: 'healthy' });
  expect(byName['relay-store']).toMatchObject({ component: 'network', critical: true, status: 'healthy' });
  expect(byName['cluster-peers']).toMatchObject({ component: 'consensus', status: 'healthy', observedValue: 1 });
  await relay.close();
  // A closed store reports down.
  await backends.close();
  expect((await health.evaluate(true)).checks.find((c) => c.name === 'relay-store')?.status).toBe('down');
  backends = undefined;
});
