/** The public and ops apps for in-process tests, with test routes mounted under `/t`. */
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import { type AppDeps, createApps } from '../../src/app.ts';

export function testApps(deps: Pick<AppDeps, 'config' | 'metrics' | 'health'> & { logger: Logger; routes: Hono }) {
  const { routes, ...rest } = deps;
  return createApps({
    ...rest,
    version: '0.0.0-test',
    startedAt: Date.now(),
    eventLoopLagMs: () => 0,
    publicRoutes: [{ prefix: '/t', app: routes }],
  });
}
