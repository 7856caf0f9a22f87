import { describe, expect, test } from 'bun:test';
import pino from 'pino';
import { createApps } from '../../src/app.ts';
import { configSchema } from '../../src/config/schema.ts';
import { createAlertApiRoutes, createAlertEngine, defaultRules } from '../../src/observability/alerts/index.ts';
import { createAdminAuth, createDashboardRoutes } from '../../src/observability/dashboard/index.ts';
import { createHealth } from '../../src/observability/health.ts';
import { createHistory, createMemoryHistoryStore, createSampler } from '../../src/observability/history/index.ts';
import { createMetrics } from '../../src/observability/metrics.ts';

const token = 'routes-test-admin-token-0123456789';

async function opsApp(adminToken = token) {
  const config = configSchema.parse({ security: { adminToken } });
  const metrics = createMetrics({ defaultMetrics: false });
  const health = createHealth();
  const store = createMemoryHistoryStore();
  const history = createHistory({ store, sampler: createSampler({ registry: metrics.registry }), intervalSeconds: 10 });
  await history.tick();
  await Bun.sleep(5); // two snapshots at distinct milliseconds
  await history.tick();
  const engine = createAlertEngine({ rules: defaultRules, store });
  const audits: string[] = [];
  const auth = createAdminAuth({ adminToken, audit: (e) => audits.push(e.event) });
  const { Hono } = await import('hono');
  const routes = new Hono();
  routes.route('/', createAlertApiRoutes({ auth, engine, history }));
  routes.route('/', createDashboardRoutes({ auth, engine, history, health, version: 't', nodeId: 'n' }));
  const { opsApp } = createApps({
    config,
    logger: pino({ level: 'silent' }),
    metrics,
    health,
    version: 't',
    startedAt: Date.now(),
    eventLoopLagMs: () => 0,
    opsRoutes: [{ prefix: '/', app: routes }],
  });
  metrics.close();
  return { app: opsApp, audits };
}

const bearer = { authorization: `Bearer ${token}` };

describe('alert and dashboard routes', () => {
  test('the token guards the API; a wrong token is refused and audited', async () => {
    const { app, audits } = await opsApp();
    expect((await app.request('/api/alerts')).status).toBe(401);
    expect((await app.request('/api/alerts', { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect(audits).toEqual(['admin.denied', 'admin.denied']);
    const ok = await app.request('/api/alerts', { headers: bearer });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { active: unknown[]; rules: { name: string }[] };
    expect(body.active).toEqual([]);
    expect(body.rules.map((r) => r.name)).toContain('QkdQberHigh');
    // Probes and metrics stay open.
    expect((await app.request('/health')).status).toBe(200);
  });

  test('history queries are validated with structured 400 errors', async () => {
    const { app } = await opsApp();
    const bad = await app.request('/api/metrics/history?series=cpu_percent;drop&step=-1&extra=1', { headers: bearer });
    expect(bad.status).toBe(400);
    const error = ((await bad.json()) as { error: { code: string; requestId: string; details: { path: string }[] } }).error;
    expect(error.code).toBe('INVALID_QUERY');
    expect(error.requestId).toBeString();
    expect(error.details.map((d) => d.path).sort()).toEqual(['', 'series.0', 'step']);
    const backwards = await app.request('/api/metrics/history?series=cpu_percent&from=2000&to=1000', { headers: bearer });
    expect(backwards.status).toBe(400);
    const ok = await app.request(`/api/metrics/history?series=memory_percent,connections&from=${Date.now() - 60_000}`, { headers: bearer });
    expect(ok.status).toBe(200);
    const result = (await ok.json()) as { level: string; series: Record<string, [number, number][]> };
    expect(result.level).toBe('raw');
    expect(result.series.memory_percent!.length).toBe(2);
  });

  test('login form and token exchange set a strict HttpOnly session cookie; CSP on dashboard routes', async () => {
    const { app, audits } = await opsApp();
    const redirect = await app.request('/dashboard');
    expect(redirect.status).toBe(303);
    expect(redirect.headers.get('location')).toBe('/dashboard/login');
    const loginPage = await app.request('/dashboard/login');
    expect(loginPage.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await loginPage.text()).not.toContain('<script');

    const wrong = await app.request('/dashboard/login', { method: 'POST', body: new URLSearchParams({ token: 'wrong' }) });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();

    const login = await app.request('/dashboard/login', { method: 'POST', body: new URLSearchParams({ token }) });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!;
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).not.toContain(token);
    expect(audits).toContain('dashboard.login');
    const session = cookie.split(';')[0]!;
    expect((await app.request('/api/alerts', { headers: { cookie: session } })).status).toBe(200);
    const page = await app.request('/dashboard', { headers: { cookie: session } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/dashboard/assets/dashboard.js">');
    // A forged or tampered cookie is refused.
    expect((await app.request('/api/alerts', { headers: { cookie: `${session.slice(0, -2)}xx` } })).status).toBe(401);
    expect((await app.request('/api/alerts', { headers: { cookie: 'ssc_dashboard=v1.99999999999999.abc' } })).status).toBe(401);
  });

  test('with no admin token the routes are disabled', async () => {
    const { app } = await opsApp('');
    expect((await app.request('/api/alerts', { headers: { authorization: 'Bearer ' } })).status).toBe(404);
    expect((await app.request('/dashboard')).status).toBe(404);
  });
});
