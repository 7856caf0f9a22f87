/**
 * End to end: a real server process, light HTTP load, headless Chromium on the dashboard. The
 * test configures a rule on `http_requests_per_second`, raises the load and expects the alert
 * in the page within 10 s; it also checks the REST side of the same round trip.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { repoRoot } from '../helpers/paths.ts';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

const token = 'dashboard-test-admin-token-0123456789';
let server: SpawnedServer;
let browser: Browser;
let loadRate = 2; // requests per second
let loading = true;
let loadLoop: Promise<void>;

beforeAll(async () => {
  server = await spawnServer({
    env: {
      SSC_SECURITY__ADMIN_TOKEN: token,
      SSC_SECURITY__RATE_LIMIT__HTTP_PER_IP: '100000',
      SSC_OBSERVABILITY__HISTORY_INTERVAL_SECONDS: '1',
      SSC_OBSERVABILITY__HEALTH_INTERVAL_SECONDS: '2',
      SSC_ALERTS__EVALUATE_INTERVAL_SECONDS: '1',
      SSC_ALERTS__RULES: JSON.stringify([
        {
          name: 'TestTrafficHigh',
          metric: 'http_requests_per_second',
          op: '>',
          threshold: 15,
          forSeconds: 1,
          severity: 'critical',
          action: 'provoked by the dashboard test',
        },
      ]),
    },
  });
  // Light load on the public port, at `loadRate` requests per second.
  loadLoop = (async () => {
    while (loading) {
      const started = performance.now();
      await fetch(`${server.publicUrl}/health`).then((r) => r.arrayBuffer()).catch(() => undefined);
      await Bun.sleep(Math.max(0, 1000 / loadRate - (performance.now() - started)));
    }
  })();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 60_000);

afterAll(async () => {
  loading = false;
  await loadLoop;
  await browser?.close();
  await server?.stop();
});

test('the dashboard shows the seven components, live charts and a provoked alert within 10 s', async () => {
  const context = await browser.newContext({ viewport: { width: 1500, height: 1250 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()} (${message.location().url})`);
  });
  page.on('requestfailed', (request) => {
    if (!request.url().endsWith('/dashboard/live')) problems.push(`request failed: ${request.url()}`);
  });

  // Without a session the dashboard sends the browser to the login form.
  await page.goto(`${server.opsUrl}/dashboard`);
  expect(new URL(page.url()).pathname).toBe('/dashboard/login');

  // The token is exchanged for an HttpOnly cookie and dropped from the address bar.
  await page.goto(`${server.opsUrl}/dashboard?token=${token}`);
  expect(new URL(page.url()).pathname).toBe('/dashboard');
  expect(page.url()).not.toContain(token);
  const cookies = await context.cookies();
  expect(cookies.find((c) => c.name === 'ssc_dashboard')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });

  // The seven components.
  await page.waitForFunction(() => document.querySelectorAll('[data-component]').length === 7, undefined, { timeout: 10_000 });
  const components = await page.$$eval('[data-component]', (tiles) => tiles.map((t) => [t.getAttribute('data-component'), t.getAttribute('data-status')]));
  expect(components.map(([name]) => name)).toEqual(['security-foundation', 'crypto-protocols', 'quantum-core', 'network', 'consensus', 'logging', 'error-handler']);
  expect(components.find(([name]) => name === 'security-foundation')![1]).toBe('healthy');

  // A chart with data points (uPlot draws on a canvas).
  await page.waitForFunction(() => Number(document.querySelector('[data-chart="requests"]')?.getAttribute('data-points')) >= 3, undefined, { timeout: 15_000 });
  expect(await page.locator('[data-chart="requests"] canvas').count()).toBeGreaterThan(0);
  expect(Number(await page.getAttribute('[data-chart="cpu"]', 'data-points'))).toBeGreaterThan(0);
  expect(await page.locator('#alerts tr[data-rule="TestTrafficHigh"]').count()).toBe(0);

  // Provoke: raise the load above the rule's threshold and time the alert's arrival in the page.
  loadRate = 60;
  const provokedAt = performance.now();
  await page.waitForSelector('#alerts tr[data-rule="TestTrafficHigh"][data-status="firing"]', { timeout: 10_000 });
  const seconds = (performance.now() - provokedAt) / 1000;
  expect(seconds).toBeLessThan(10);
  const row = (await page.locator('#alerts tr[data-rule="TestTrafficHigh"]').textContent()) ?? '';
  expect(await page.getAttribute('#alerts tr[data-rule="TestTrafficHigh"]', 'data-severity')).toBe('critical');
  expect(row).toContain('http_requests_per_second is');
  expect(row).toContain('provoked by the dashboard test');

  // The same alert over the API, with a session cookie only (no bearer) and with the bearer.
  const api = await page.evaluate(async () => (await fetch('/api/alerts')).json());
  expect(api.active.find((a: { rule: string }) => a.rule === 'TestTrafficHigh')).toMatchObject({ status: 'firing', severity: 'critical' });
  const viaBearer = await fetch(`${server.opsUrl}/api/alerts`, { headers: { authorization: `Bearer ${token}` } });
  expect(viaBearer.status).toBe(200);
  expect((await fetch(`${server.opsUrl}/api/alerts`)).status).toBe(401);

  // Let a few more points arrive for the screenshot, then save it.
  await Bun.sleep(2_500);
  mkdirSync(join(repoRoot, 'test-output'), { recursive: true });
  await page.screenshot({ path: join(repoRoot, 'test-output/dashboard.png'), fullPage: true });

  // Back to light load: the alert resolves and leaves the table.
  loadRate = 2;
  await page.waitForSelector('#alerts tr[data-rule="TestTrafficHigh"]', { state: 'detached', timeout: 15_000 });
  const after = (await (await fetch(`${server.opsUrl}/api/alerts`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
    recent: { rule: string; status: string; startsAt: string; endsAt: string }[];
  };
  const resolved = after.recent.find((a) => a.rule === 'TestTrafficHigh')!;
  expect(resolved.status).toBe('resolved');
  expect(Date.parse(resolved.endsAt)).toBeGreaterThan(Date.parse(resolved.startsAt));
  await server.waitForLine((l) => l.msg === 'alert notification: TestTrafficHigh resolved');

  expect(problems).toEqual([]);
  console.info(`alert appeared in the dashboard ${seconds.toFixed(1)} s after the load was raised`);
  await context.close();
}, 90_000);
