/**
 * Admin access to the ops routes of this room: `Authorization: Bearer <security.adminToken>`
 * (constant-time), or a dashboard session cookie. A browser gets the cookie by presenting the
 * token once — `GET /dashboard?token=…` or the login form — and the server answers with an
 * HttpOnly, SameSite=Strict cookie holding an expiry and an HMAC (keyed by the admin token, so
 * rotating the token ends every session); the token itself never goes into the cookie.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { AppError } from '../../errors.ts';
import type { AuditEvent } from '../logger.ts';

export const sessionCookie = 'ssc_dashboard';

const sha256 = (text: string) => new Bun.CryptoHasher('sha256').update(text).digest();

/** Constant-time comparison of two secrets of any length (compares their SHA-256). */
export function secretsEqual(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}

export interface AdminAuthOptions {
  adminToken: string;
  audit?: (event: AuditEvent) => void;
  /** Session lifetime, seconds. Default 12 h. */
  sessionSeconds?: number;
  now?: () => number;
}

/** Creates the token check, the session cookie issuer and the guard middleware. */
export function createAdminAuth(options: AdminAuthOptions) {
  const { adminToken, audit, sessionSeconds = 12 * 3600, now = Date.now } = options;
  const key = sha256(`ssc-dashboard-session\u0000${adminToken}`);
  const mac = (payload: string) => createHmac('sha256', key).update(payload).digest('base64url');
  const source = (c: Context) => c.req.header('x-forwarded-for') ?? 'direct';

  function sessionValid(value: string | undefined): boolean {
    if (!value || !adminToken) return false;
    const [version, expires, tag] = value.split('.');
    if (version !== 'v1' || !expires || !tag || !/^\d+$/.test(expires)) return false;
    if (Number(expires) < now()) return false;
    return secretsEqual(tag, mac(`v1.${expires}`));
  }

  const auth = {
    enabled: adminToken.length > 0,
    tokenValid: (token: string | undefined) => !!adminToken && !!token && secretsEqual(token, adminToken),
    /** Whether the request carries a valid bearer token or session cookie. */
    authorized(c: Context): boolean {
      const header = c.req.header('authorization') ?? '';
      if (header.startsWith('Bearer ')) return auth.tokenValid(header.slice(7));
      return sessionValid(getCookie(c, sessionCookie));
    },
    /** Sets the session cookie on the response. */
    startSession(c: Context) {
      const expires = now() + sessionSeconds * 1000;
      setCookie(c, sessionCookie, `v1.${expires}.${mac(`v1.${expires}`)}`, {
        httpOnly: true,
        sameSite: 'Strict',
        path: '/',
        maxAge: sessionSeconds,
        secure: new URL(c.req.url).protocol === 'https:',
      });
      audit?.({ event: 'dashboard.login', source: source(c) });
    },
    endSession(c: Context) {
      deleteCookie(c, sessionCookie, { path: '/' });
    },
    /** Guards API routes: 404 when no admin token is configured, 401 without valid credentials. */
    guard(): MiddlewareHandler {
      return async (c, next) => {
        if (!adminToken) throw new AppError(404, 'NOT_FOUND', 'admin routes are disabled (no security.adminToken)');
        if (!auth.authorized(c)) {
          audit?.({ event: 'admin.denied', path: new URL(c.req.url).pathname, source: source(c) });
          throw new AppError(401, 'UNAUTHORIZED', 'admin token required (Authorization: Bearer, or a dashboard session)');
        }
        await next();
      };
    },
  };
  return auth;
}

export type AdminAuth = ReturnType<typeof createAdminAuth>;
