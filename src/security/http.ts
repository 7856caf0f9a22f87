/**
 * HTTP defences that need the security state: the ban check and per-IP rate limit
 * middleware, the admin-token guard, and the admin routes (bans, config view). Every admin
 * action is audited.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { Hono } from 'hono';
import { getConnInfo } from 'hono/bun';
import { z } from 'zod';
import { type Config, redactConfig } from '../config/index.ts';
import { AppError } from '../errors.ts';
import type { AuditEvent } from '../observability/logger.ts';
import type { SecurityLimits } from './limits.ts';

/** The client address of a request (socket address; proxies are not trusted by default). */
export function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Refuses banned sources (403) and applies the per-IP HTTP rate limit (429 + Retry-After). */
export function banAndRateLimit(limits: SecurityLimits): MiddlewareHandler {
  return async (c, next) => {
    const source = clientAddress(c);
    const ban = limits.banned(source);
    if (ban) {
      throw new AppError(403, 'BANNED', 'this address is temporarily banned', undefined, Math.ceil((ban.until - Date.now()) / 1000));
    }
    const retryAfter = await limits.consume('http', source);
    if (retryAfter !== null) throw new AppError(429, 'RATE_LIMITED', 'too many requests', undefined, retryAfter);
    await next();
    if (c.res.status === 401) await limits.suspicious(source, 'http.unauthorized');
  };
}

const sha256 = (text: string) => new Bun.CryptoHasher('sha256').update(text).digest();

/** Constant-time comparison of two secrets of any length (compares their SHA-256). */
export function secretsEqual(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}

/** Guards routes with `Authorization: Bearer <security.adminToken>`; disabled when the token is empty. */
export function adminGuard(adminToken: string, audit: (event: AuditEvent) => void): MiddlewareHandler {
  return async (c, next) => {
    if (!adminToken) throw new AppError(404, 'NOT_FOUND', 'admin routes are disabled (no security.adminToken)');
    const header = c.req.header('authorization') ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!token || !secretsEqual(token, adminToken)) {
      audit({ event: 'admin.denied', path: new URL(c.req.url).pathname, source: clientAddress(c) });
      throw new AppError(401, 'UNAUTHORIZED', 'admin token required');
    }
    await next();
  };
}

const sourceParam = z.string().min(1).max(100).regex(/^[0-9A-Za-z.:_-]+$/, 'an IP address or identity');
const banBody = z.object({
  source: sourceParam,
  seconds: z.number().int().positive().max(30 * 86_400),
  reason: z.string().max(200).default('admin'),
});

const silenceBody = z
  .object({
    rule: z.string().min(1).max(100),
    minutes: z.number().int().positive().max(7 * 24 * 60),
    reason: z.string().max(200).default(''),
  })
  .strict();

/** Alert silences as the admin routes need them (`src/observability/alerts/silences.ts`). */
export interface SilenceAdmin {
  list(): { id: string; rule: string; until: number; reason: string }[];
  add(input: { rule: string; minutes: number; reason: string; createdBy: string }): Promise<{ id: string; until: number }>;
  remove(id: string): Promise<boolean>;
}

/**
 * Admin routes: `GET/POST /bans`, `DELETE /bans/:source`, `GET/POST /silences`,
 * `DELETE /silences/:id`, `GET /config`.
 */
export function createAdminRoutes(options: {
  config: Config;
  limits: SecurityLimits;
  audit: (event: AuditEvent) => void;
  silences?: SilenceAdmin;
}): Hono {
  const { config, limits, audit, silences } = options;
  const app = new Hono();
  app.use('*', adminGuard(config.security.adminToken, audit));
  app.get('/bans', async (c) => {
    const bans = await limits.banList.list();
    return c.json({ bans: bans.map((b) => ({ ...b, until: new Date(b.until).toISOString() })) });
  });
  app.post('/bans', async (c) => {
    const parsed = banBody.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success) throw new AppError(400, 'INVALID_INPUT', parsed.error.issues[0]!.message, parsed.error.issues);
    const { source, seconds, reason } = parsed.data;
    await limits.banList.add({ source, until: Date.now() + seconds * 1000, reason });
    await limits.refreshBanGauge();
    audit({ event: 'admin.ban', source, seconds, reason, by: 'admin', from: clientAddress(c) });
    return c.json({ banned: source, seconds }, 201);
  });
  app.delete('/bans/:source', async (c) => {
    const parsed = sourceParam.safeParse(c.req.param('source'));
    if (!parsed.success) throw new AppError(400, 'INVALID_INPUT', parsed.error.issues[0]!.message);
    const lifted = await limits.lift(parsed.data, 'admin');
    audit({ event: 'admin.unban', source: parsed.data, lifted, from: clientAddress(c) });
    if (!lifted) throw new AppError(404, 'NOT_FOUND', `no active ban for ${parsed.data}`);
    return c.json({ lifted: parsed.data });
  });
  if (silences) {
    app.get('/silences', (c) => c.json({ silences: silences.list().map((s) => ({ ...s, until: new Date(s.until).toISOString() })) }));
    app.post('/silences', async (c) => {
      const parsed = silenceBody.safeParse(await c.req.json().catch(() => undefined));
      if (!parsed.success) throw new AppError(400, 'INVALID_INPUT', parsed.error.issues[0]!.message, parsed.error.issues);
      const silence = await silences.add({ ...parsed.data, createdBy: 'admin' });
      audit({ event: 'admin.silence', rule: parsed.data.rule, minutes: parsed.data.minutes, id: silence.id, from: clientAddress(c) });
      return c.json({ ...silence, until: new Date(silence.until).toISOString() }, 201);
    });
    app.delete('/silences/:id', async (c) => {
      const id = c.req.param('id');
      const removed = await silences.remove(id);
      audit({ event: 'admin.unsilence', id, removed, from: clientAddress(c) });
      if (!removed) throw new AppError(404, 'NOT_FOUND', `no active silence ${id}`);
      return c.json({ removed: id });
    });
  }
  app.get('/config', (c) => {
    audit({ event: 'admin.config_view', from: clientAddress(c) });
    return c.json(redactConfig(config));
  });
  return app;
}
