/**
 * The Hono apps: middleware order and route mounting, nothing else. Two apps — the public one
 * (channels, HTTP API, ETSI GS QKD 014) and the ops one (metrics, probes, dashboard) — each
 * served on its own port by `src/server.ts`.
 */
import { prometheus } from '@hono/prometheus';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { compress } from 'hono/compress';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import { timeout } from 'hono/timeout';
import type { Logger } from 'pino';
import type { Config } from './config/index.ts';
import { AppError, type ErrorBody } from './errors.ts';
import type { Health } from './observability/health.ts';
import type { Metrics } from './observability/metrics.ts';
import { type RequestVariables, requestContext } from './observability/request-context.ts';
import { createMetricsRoute, createProbeRoutes } from './observability/routes.ts';

export type AppEnv = { Variables: RequestVariables };

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  health: Health;
  version: string;
  startedAt: number;
  eventLoopLagMs: () => number;
  /** Middleware that runs on the public app after correlation and before routes (bans, rate limits). */
  publicGuards?: import('hono').MiddlewareHandler[];
  /** Routes of the domain rooms, mounted on the public app at the given prefix. */
  publicRoutes?: { prefix: string; app: Hono<any> }[];
  /** Routes mounted on the ops app (dashboard, admin). */
  opsRoutes?: { prefix: string; app: Hono<any> }[];
}

/** Renders any thrown error as the structured error body; never leaks a stack in production. */
function errorRenderer(config: Config, metrics: Metrics) {
  return (error: Error, c: import('hono').Context<AppEnv>) => {
    const requestId = c.get('requestId');
    const log = c.get('log');
    let status = 500;
    let code = 'INTERNAL';
    let message = 'internal error';
    let details: unknown;
    if (error instanceof AppError) {
      ({ status, code, message, details } = error);
      if (error.retryAfter) c.header('retry-after', String(error.retryAfter));
    } else if (error instanceof HTTPException) {
      status = error.status;
      code = status === 413 ? 'BODY_TOO_LARGE' : status === 504 ? 'TIMEOUT' : `HTTP_${status}`;
      message = error.message || (status === 413 ? 'request body too large' : 'request failed');
    }
    if (status >= 500) {
      metrics.errors.inc({ kind: 'internal' });
      log?.error({ err: error, code }, 'unhandled error');
      if (config.env === 'development' && !(error instanceof AppError)) message = `${message}: ${error.message}`;
    } else {
      metrics.errors.inc({ kind: 'bad_input' });
    }
    const body: ErrorBody = { error: { code, message, requestId, ...(details === undefined ? {} : { details }) } };
    return c.json(body, status as 400);
  };
}

function notFound(c: import('hono').Context<AppEnv>) {
  const body: ErrorBody = { error: { code: 'NOT_FOUND', message: `no route for ${c.req.method} ${new URL(c.req.url).pathname}`, requestId: c.get('requestId') } };
  return c.json(body, 404);
}

/** Builds the public and ops apps with the middleware in their one order. */
export function createApps(deps: AppDeps): { publicApp: Hono<AppEnv>; opsApp: Hono<AppEnv> } {
  const { config, logger, metrics, health } = deps;
  const { registerMetrics } = prometheus({ registry: metrics.registry });
  const probes = createProbeRoutes({
    health,
    version: deps.version,
    startedAt: deps.startedAt,
    eventLoopLagMs: deps.eventLoopLagMs,
    liveLagLimitMs: config.observability.liveLagLimitMs,
  });

  const publicApp = new Hono<AppEnv>();
  // Order: correlation first (so every later line carries the ID), then HTTP metrics, then
  // defences, then routes.
  publicApp.use('*', requestContext(logger));
  publicApp.use('*', registerMetrics);
  publicApp.use('*', secureHeaders());
  publicApp.use(
    '*',
    cors({ origin: (origin) => (config.server.corsOrigins.includes(origin) ? origin : null), credentials: false }),
  );
  for (const guard of deps.publicGuards ?? []) publicApp.use('*', guard);
  publicApp.use('*', bodyLimit({ maxSize: config.server.bodyLimitBytes }));
  // JSON answers are compressed; event streams and binary frames are not (they must flush as
  // they go, and ciphertext does not compress).
  publicApp.use('*', compress({ contentTypeFilter: /^application\/(json|health\+json)/ }));
  // A route timeout for ordinary requests; streams (SSE) and upgrades return before it fires.
  publicApp.use('*', timeout(config.server.requestTimeoutMs));
  publicApp.onError(errorRenderer(config, metrics));
  publicApp.notFound(notFound);
  publicApp.route('/', probes);
  if (config.server.publicMetrics) publicApp.route('/', createMetricsRoute(metrics));
  for (const { prefix, app } of deps.publicRoutes ?? []) publicApp.route(prefix, app);

  const opsApp = new Hono<AppEnv>();
  opsApp.use('*', requestContext(logger));
  opsApp.use('*', secureHeaders());
  opsApp.use('*', bodyLimit({ maxSize: config.server.bodyLimitBytes }));
  opsApp.onError(errorRenderer(config, metrics));
  opsApp.notFound(notFound);
  opsApp.route('/', probes);
  opsApp.route('/', createMetricsRoute(metrics));
  for (const { prefix, app } of deps.opsRoutes ?? []) opsApp.route(prefix, app);

  return { publicApp, opsApp };
}
