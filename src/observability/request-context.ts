/**
 * Request correlation: every request gets an ID — the caller's `x-request-id` when it is
 * well-formed, else the trace ID of a W3C `traceparent`, else a fresh UUID — returned in the
 * `x-request-id` response header and carried by a per-request child logger.
 */
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';

export interface RequestVariables {
  requestId: string;
  traceId?: string;
  log: Logger;
}

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;
const traceparentPattern = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/** Parses a W3C traceparent header; returns the trace ID or undefined. */
export function parseTraceparent(header: string | undefined): string | undefined {
  const match = header ? traceparentPattern.exec(header.trim()) : null;
  if (!match || /^0+$/.test(match[1]!)) return undefined;
  return match[1];
}

/** Sets `requestId`, `traceId` and `log` on the context and logs one access line per request. */
export function requestContext(logger: Logger): MiddlewareHandler<{ Variables: RequestVariables }> {
  return async (c, next) => {
    const started = performance.now();
    const traceId = parseTraceparent(c.req.header('traceparent'));
    const given = c.req.header('x-request-id');
    const requestId = given && requestIdPattern.test(given) ? given : (traceId ?? crypto.randomUUID());
    const log = logger.child({ component: 'http', requestId, traceId });
    c.set('requestId', requestId);
    if (traceId) c.set('traceId', traceId);
    c.set('log', log);
    c.header('x-request-id', requestId);
    await next();
    const status = c.res.status;
    const line = {
      method: c.req.method,
      path: c.req.routePath && c.req.routePath !== '/*' ? c.req.routePath : new URL(c.req.url).pathname,
      status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
    };
    if (status >= 500) log.error(line, 'request failed');
    else if (status >= 400) log.warn(line, 'request rejected');
    else log.debug(line, 'request');
  };
}
