import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { type RunningServer, startServer } from '../../src/server.ts';

const nodes: RunningServer[] = [];
afterAll(async () => {
  for (const node of nodes) await node.stop('test');
});

describe('entropy gate', () => {
  test('a stuck entropy source marks the security component down, fails /ready and refuses handshakes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssc-entropy-'));
    const config = loadConfig({
      env: { NODE_ENV: 'test' },
      overrides: { server: { port: 0, metricsPort: 0, host: '127.0.0.1', dataDir: join(dir, 'data') }, log: { dir: '', level: 'silent' } },
    });
    // A source that repeats one byte: the repetition count test fails at once.
    const node = await startServer(config, { entropySource: (bytes) => bytes.fill(0x42) });
    nodes.push(node);
    const ready = await fetch(`${node.urls.ops}/ready`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(await ready.json())).toContain('entropy');
    const detailed = (await (await fetch(`${node.urls.ops}/health/detailed?fresh=1`)).json()) as {
      checks: Record<string, { severity: string }[]>;
    };
    expect(detailed.checks['security-foundation:entropy']![0]!.severity).toBe('down');
    // New channels are refused before the upgrade, with the structured error.
    const upgrade = await fetch(`${node.urls.public}/v1/ws`, { headers: { upgrade: 'websocket', connection: 'upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } });
    expect(upgrade.status).toBe(503);
    expect(((await upgrade.json()) as { error: { code: string } }).error.code).toBe('HANDSHAKES_REFUSED');
    const http = await fetch(`${node.urls.public}/v1/channels`, { method: 'POST', body: new Uint8Array(64) });
    expect(http.status).toBe(503);
  });

  test('the system CSPRNG passes and the node is ready', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssc-entropy-'));
    const config = loadConfig({
      env: { NODE_ENV: 'test' },
      overrides: { server: { port: 0, metricsPort: 0, host: '127.0.0.1', dataDir: join(dir, 'data') }, log: { dir: '', level: 'silent' } },
    });
    const node = await startServer(config);
    nodes.push(node);
    expect((await fetch(`${node.urls.ops}/ready`)).status).toBe(200);
  });
});
