/**
 * The live dashboard on the ops port: `/dashboard` (HTML shell), `/dashboard/assets/*` (the
 * bundle: our client + uPlot + CSS, built by `Bun.build`), `/dashboard/live` (server-sent events
 * every 5 s and on alert changes), `/dashboard/login` and `/dashboard/logout`. No inline script
 * or style: the routes send a strict Content-Security-Policy of their own.
 */
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import type { Alert, AlertEngine } from '../alerts/engine.ts';
import type { Health } from '../health.ts';
import { components } from '../health.ts';
import type { History } from '../history/index.ts';
import type { AdminAuth } from './auth.ts';
import { dashboardAssets } from './bundle.ts';

export { type AdminAuth, createAdminAuth, secretsEqual, sessionCookie } from './auth.ts';
export { dashboardAssets } from './bundle.ts';

/** The dashboard's CSP: only our own origin, no inline code, no framing. */
export const dashboardCsp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export interface DashboardOptions {
  auth: AdminAuth;
  engine: AlertEngine;
  history: History;
  health: Health;
  version: string;
  nodeId: string;
  /** Push interval of the live feed, ms. Default 5000. */
  refreshMs?: number;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
</head>
<body>
${body}
</body>
</html>`;
}

const dashboardPage = (nodeId: string) =>
  page(
    `SSC dashboard · ${nodeId}`,
    `<header><h1>Streamlined Secure Comms</h1><span class="meta" id="node">node ${escapeHtml(nodeId)}</span><span class="live" id="live">connecting…</span>
<form method="post" action="/dashboard/logout"><button class="meta" type="submit">log out</button></form></header>
<main>
<section><h2>Components</h2><div class="components" id="components"></div></section>
<section><h2>Active alerts</h2>
<table id="alerts"><thead><tr><th>rule</th><th>severity</th><th>status</th><th>value</th><th>since</th><th>action</th></tr></thead><tbody></tbody></table>
<div class="none" id="alerts-none">no active alerts</div></section>
<section><h2>Metrics (last 15 minutes)</h2><div class="charts" id="charts"></div></section>
</main>
<script type="module" src="/dashboard/assets/dashboard.js"></script>`,
  );

const loginPage = (message = '') =>
  page(
    'SSC dashboard · log in',
    `<form class="login" method="post" action="/dashboard/login">
<h2>Dashboard</h2>
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${message ? `<p class="error">${escapeHtml(message)}</p>` : ''}
<button type="submit">Log in</button>
</form>`,
  );

/** One live frame: the newest snapshot, the seven components' health and the active alerts. */
export async function liveFrame(options: Pick<DashboardOptions, 'engine' | 'history' | 'health' | 'version' | 'nodeId'>) {
  const report = await options.health.evaluate();
  const order = ['healthy', 'warning', 'degraded', 'critical', 'down'];
  const componentList = components.map((component) => {
    const checks = report.checks.filter((c) => c.component === component);
    if (checks.length === 0) return { component, status: 'unknown', detail: 'no checks registered' };
    const status = checks.reduce((s, c) => (order.indexOf(c.status) > order.indexOf(s) ? c.status : s), 'healthy' as string);
    const detail = checks.map((c) => c.output ?? c.status).join('; ');
    return { component, status, detail };
  });
  const latest = options.history.latest;
  const alerts = options.engine.active().map((a: Alert) => ({
    rule: a.rule,
    series: a.series,
    status: a.status,
    severity: a.severity,
    value: a.value,
    activeAt: a.activeAt,
    startsAt: a.startsAt,
    annotations: a.annotations,
  }));
  return { ts: latest?.ts ?? Date.now(), values: latest?.values ?? {}, components: componentList, alerts, node: options.nodeId, version: options.version };
}

const loginBody = z.object({ token: z.string().min(1).max(4096) });

/** Creates the dashboard routes (mount at `/` on the ops app). */
export function createDashboardRoutes(options: DashboardOptions): Hono {
  const { auth, refreshMs = 5_000 } = options;
  const app = new Hono();
  const csp: MiddlewareHandler = async (c, next) => {
    await next();
    c.res.headers.set('content-security-policy', dashboardCsp);
    c.res.headers.set('cache-control', c.res.headers.get('cache-control') ?? 'no-store');
  };
  app.use('/dashboard', csp);
  app.use('/dashboard/*', csp);

  const html = (c: Context, body: string, status: 200 | 401 | 404 = 200) => c.html(body, status);

  app.get('/dashboard', (c) => {
    if (!auth.enabled) return html(c, page('SSC dashboard', '<p class="login">The dashboard is disabled: set security.adminToken.</p>'), 404);
    const token = c.req.query('token');
    if (token !== undefined) {
      // Exchange the token for a session cookie, then drop it from the address bar and history.
      if (!auth.tokenValid(token)) return html(c, loginPage('invalid token'), 401);
      auth.startSession(c);
      return c.redirect('/dashboard', 303);
    }
    if (!auth.authorized(c)) return c.redirect('/dashboard/login', 303);
    return html(c, dashboardPage(options.nodeId));
  });

  app.get('/dashboard/login', (c) => html(c, loginPage()));
  app.post('/dashboard/login', async (c) => {
    const parsed = loginBody.safeParse(await c.req.parseBody());
    if (!parsed.success || !auth.tokenValid(parsed.data.token)) return html(c, loginPage('invalid token'), 401);
    auth.startSession(c);
    return c.redirect('/dashboard', 303);
  });
  app.post('/dashboard/logout', (c) => {
    auth.endSession(c);
    return c.redirect('/dashboard/login', 303);
  });

  // The bundle is not secret (our client code, uPlot and CSS); the login page needs the CSS.
  app.get('/dashboard/assets/:file{dashboard\\.(js|css)}', async (c) => {
    const assets = await dashboardAssets();
    const isJs = c.req.param('file').endsWith('.js');
    if (c.req.header('if-none-match') === assets.etag) return c.body(null, 304);
    c.header('etag', assets.etag);
    c.header('cache-control', 'no-cache');
    c.header('content-type', isJs ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8');
    return c.body(isJs ? assets.js : assets.css);
  });

  app.get('/dashboard/live', auth.guard(), (c) =>
    streamSSE(c, async (stream) => {
      let open = true;
      let wake: (() => void) | undefined;
      stream.onAbort(() => {
        open = false;
        wake?.();
      });
      // Alert changes are pushed at once; otherwise a frame every `refreshMs`.
      const unsubscribe = options.engine.onChange(() => wake?.());
      try {
        while (open) {
          await stream.writeSSE({ event: 'frame', data: JSON.stringify(await liveFrame(options)), retry: 3_000 });
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, refreshMs);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
      } finally {
        unsubscribe();
      }
    }),
  );

  return app;
}
