/**
 * Admin API of alerts and history on the ops port: `GET /api/alerts` (active and recent) and
 * `GET /api/metrics/history?series=&from=&to=&step=`. Both behind the admin token (or a
 * dashboard session); query strings are validated with zod and refused with a structured 400.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import type { AdminAuth } from '../dashboard/auth.ts';
import type { History } from '../history/index.ts';
import { seriesCatalogue } from '../history/index.ts';
import type { AlertEngine } from './engine.ts';

const seriesPattern = /^[a-z_][a-z0-9_]*(\{[a-z_]+="[^"{}]{0,100}"(,[a-z_]+="[^"{}]{0,100}")*\})?$/;
const maxRangeMs = 8 * 24 * 3_600_000;

/** A time: epoch milliseconds or an ISO 8601 date. */
const instant = z
  .string()
  .trim()
  .refine((s) => /^\d{1,15}$/.test(s) || !Number.isNaN(Date.parse(s)), 'epoch milliseconds or an ISO 8601 date')
  .transform((s) => (/^\d+$/.test(s) ? Number(s) : Date.parse(s)));

export const historyQuerySchema = z
  .object({
    series: z
      .string()
      .min(1, 'at least one series')
      .transform((s) => [...new Set(s.split(',').map((x) => x.trim()).filter(Boolean))])
      .pipe(z.array(z.string().regex(seriesPattern, 'a series name like cpu_percent or qkd_qber{link="a-b"}')).min(1).max(50)),
    from: instant.optional(),
    to: instant.optional(),
    /** Bucket width in seconds. */
    step: z
      .string()
      .regex(/^\d+$/, 'whole seconds')
      .transform(Number)
      .pipe(z.number().int().min(1).max(86_400))
      .optional(),
  })
  .strict();

/** Creates the API routes (mount at `/` on the ops app). */
export function createAlertApiRoutes(options: { auth: AdminAuth; engine: AlertEngine; history: History; now?: () => number }): Hono {
  const { auth, engine, history, now = Date.now } = options;
  const app = new Hono();
  app.use('/api/alerts', auth.guard());
  app.use('/api/metrics/*', auth.guard());

  app.get('/api/alerts', (c) => {
    const iso = (ms?: number) => (ms === undefined ? undefined : new Date(ms).toISOString());
    const view = (a: ReturnType<AlertEngine['active']>[number]) => ({
      ...a,
      activeAt: iso(a.activeAt),
      startsAt: iso(a.startsAt),
      endsAt: iso(a.endsAt),
      lastNotifiedAt: iso(a.lastNotifiedAt),
    });
    return c.json({
      active: engine.active().map(view),
      recent: engine.recent().map(view),
      rules: engine.rules(),
    });
  });

  app.get('/api/metrics/series', async (c) => {
    const latest = history.latest;
    return c.json({ catalogue: seriesCatalogue, current: latest ? Object.keys(latest.values).sort() : [] });
  });

  app.get('/api/metrics/history', async (c) => {
    const parsed = historyQuerySchema.safeParse(c.req.query());
    if (!parsed.success) {
      throw new AppError(
        400,
        'INVALID_QUERY',
        'invalid history query',
        parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      );
    }
    const to = parsed.data.to ?? now();
    const from = parsed.data.from ?? to - 3_600_000;
    if (from >= to) throw new AppError(400, 'INVALID_QUERY', 'from must be before to', [{ path: 'from', message: 'from >= to' }]);
    if (to - from > maxRangeMs) throw new AppError(400, 'INVALID_QUERY', 'range longer than 8 days', [{ path: 'from', message: 'range too long' }]);
    const result = await history.query({ series: parsed.data.series, from, to, step: parsed.data.step });
    return c.json(result);
  });
  return app;
}
