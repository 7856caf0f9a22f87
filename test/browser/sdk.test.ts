/**
 * The client SDK in a real browser: headless Chromium (system package, driven by
 * playwright-core) loads the SDK bundled for the browser (noble crypto, no node:*), opens a
 * hybrid post-quantum channel to a real server process, and exchanges topic and direct
 * messages with a Bun-side client.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { connect, type SecureClient } from '../../src/client/index.ts';
import { createCrypto } from '../../src/crypto/index.ts';
import { repoRoot } from '../helpers/paths.ts';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

let server: SpawnedServer;
let page: Bun.Server<undefined>;
let browser: Browser;
let fingerprint: string;
let bunClient: SecureClient;

beforeAll(async () => {
  server = await spawnServer();
  fingerprint = String((await server.waitForLine((l) => l.msg === 'node identity loaded')).fingerprint);
  const build = await Bun.build({ entrypoints: [join(repoRoot, 'src/client/index.ts')], target: 'browser', format: 'esm' });
  if (!build.success) throw new Error(build.logs.join('\n'));
  const bundle = await build.outputs[0]!.text();
  expect(bundle).not.toContain('node:crypto');
  page = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch(request) {
      const path = new URL(request.url).pathname;
      if (path === '/sdk.js') return new Response(bundle, { headers: { 'content-type': 'text/javascript' } });
      return new Response('<!doctype html><meta charset="utf-8"><title>sdk</title><body>sdk test</body>', {
        headers: { 'content-type': 'text/html' },
      });
    },
  });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const crypto = await createCrypto({ aead: 'auto', kem: 'auto', signer: 'auto', dh: 'auto', wasmSimd: true });
  bunClient = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false });
});

afterAll(async () => {
  bunClient?.close();
  await browser?.close();
  page?.stop(true);
  await server?.stop('SIGKILL');
});

describe('SDK in headless Chromium', () => {
  test('handshakes with a real server and exchanges topic and direct messages with a Bun client', async () => {
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(String(e)));
    await tab.goto(`http://127.0.0.1:${page.port}/`);
    const identity = await tab.evaluate(
      async ({ url, fingerprint }) => {
        const sdkPath = '/sdk.js';
        const sdk = await import(sdkPath);
        const w = window as unknown as Record<string, unknown>;
        const got: string[] = [];
        w.got = got;
        const client = await sdk.connect(url, { serverFingerprint: fingerprint, reconnect: false });
        w.client = client;
        client.on('publication', (p: { text(): string }) => got.push(`pub:${p.text()}`));
        client.on('message', (m: { text(): string }) => got.push(`dm:${m.text()}`));
        await client.subscribe('public:browser');
        await client.publish('public:browser', 'hello from chromium');
        return client.identity as string;
      },
      { url: server.publicUrl, fingerprint },
    );
    expect(identity).toMatch(/^[0-9a-f]{64}$/);
    await bunClient.publish('public:browser', 'hello from bun');
    await bunClient.send(identity, 'direct to chromium');
    await tab.waitForFunction(() => ((window as unknown as { got: string[] }).got ?? []).length >= 3, undefined, { timeout: 10_000 });
    const got = await tab.evaluate(() => (window as unknown as { got: string[] }).got);
    expect(got).toContain('pub:hello from chromium');
    expect(got).toContain('pub:hello from bun');
    expect(got).toContain('dm:direct to chromium');
    // A wrong pin fails the handshake in the browser too.
    const refused = await tab.evaluate(
      async ({ url }) => {
        const sdkPath = '/sdk.js';
        const sdk = await import(sdkPath);
        try {
          await sdk.connect(url, { serverFingerprint: 'ab'.repeat(32), reconnect: false });
          return 'connected';
        } catch (error) {
          return String(error);
        }
      },
      { url: server.publicUrl },
    );
    expect(refused).toMatch(/IDENTITY_MISMATCH|identity/i);
    expect(errors).toEqual([]);
    await tab.close();
  });
});
