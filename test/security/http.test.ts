import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

let server: SpawnedServer;
const adminToken = 'http-test-admin-token-0123456789';
beforeAll(async () => {
  server = await spawnServer({
    env: {
      SSC_SERVER__CORS_ORIGINS: '["https://app.example"]',
      SSC_SERVER__BODY_LIMIT_BYTES: '4096',
      SSC_SECURITY__ADMIN_TOKEN: adminToken,
      // The fuzz run below must not trip the limiter or the ban list.
      SSC_SECURITY__RATE_LIMIT__HTTP_PER_IP: '100000',
      SSC_SECURITY__BANS__THRESHOLD: '100000',
    },
  });
});
afterAll(async () => {
  await server.stop('SIGKILL');
});

type ErrorShape = { error: { code: string; message: string; requestId: string } };

describe('HTTP defences', () => {
  test('secure headers are present', async () => {
    const response = await fetch(`${server.publicUrl}/health`);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(response.headers.get('strict-transport-security')).toContain('max-age=');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('x-powered-by')).toBeNull();
  });

  test('CORS answers the allow-listed origin and refuses others', async () => {
    const allowed = await fetch(`${server.publicUrl}/health`, { headers: { origin: 'https://app.example' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const refused = await fetch(`${server.publicUrl}/health`, { headers: { origin: 'https://evil.example' } });
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${server.publicUrl}/health`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('oversized bodies get 413, unknown routes 404, invalid input 400 — all in the one error shape', async () => {
    const big = await fetch(`${server.publicUrl}/health`, { method: 'POST', body: 'x'.repeat(10_000) });
    expect(big.status).toBe(413);
    const bigBody = (await big.json()) as ErrorShape;
    expect(bigBody.error.code).toBe('BODY_TOO_LARGE');
    expect(bigBody.error.requestId).toBe(big.headers.get('x-request-id')!);

    const missing = await fetch(`${server.publicUrl}/nothing/here`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as ErrorShape).error.code).toBe('NOT_FOUND');

    const invalid = await fetch(`${server.opsUrl}/api/admin/bans`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: '{"source": 42}',
    });
    expect(invalid.status).toBe(400);
    const invalidBody = (await invalid.json()) as ErrorShape;
    expect(invalidBody.error.code).toBe('INVALID_INPUT');
    expect(invalidBody.error.message).toBeTruthy();
    expect(JSON.stringify(invalidBody)).not.toContain('    at '); // no stack trace
  });

  test('fuzz: random methods, paths, headers and bodies never get a 5xx and never crash the process', async () => {
    const paths = ['/health', '/health/detailed', '/ready', '/live', '/metrics', '/api/admin/bans', '/api/admin/config', '/api/v1/keys/x/status', '/v1/channels', '/v1/ws'];
    const arbitraryPath = fc.oneof(
      fc.constantFrom(...paths),
      fc.constantFrom(...paths).chain((p) => fc.string({ maxLength: 20 }).map((s) => `${p}/${encodeURIComponent(s)}`)),
      fc.webPath(),
    );
    const arbitraryBody = fc.oneof(
      fc.constant(undefined),
      fc.json(),
      fc.string({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.constant('{"source":"1.2.3.4","seconds":1e309}'),
      fc.constant('{"__proto__":{"admin":true}}'),
    );
    let requests = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
        arbitraryPath,
        arbitraryBody,
        fc.boolean(),
        fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', '*/*;;'),
        fc.boolean(),
        async (method, path, body, withToken, contentType, ops) => {
          const base = ops ? server.opsUrl : server.publicUrl;
          const init: RequestInit = {
            method,
            headers: {
              'content-type': contentType,
              ...(withToken ? { authorization: `Bearer ${adminToken}` } : {}),
              traceparent: '00-zz-not-a-trace-01',
            },
          };
          if (body !== undefined && method !== 'GET' && method !== 'HEAD') {
            init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
          }
          // Never ban or mutate: skip requests that would lift or place real bans with a valid token.
          if (withToken && path.startsWith('/api/admin/bans') && method !== 'GET') return;
          const response = await fetch(`${base}${path.startsWith('/') ? path : `/${path}`}`, init);
          requests++;
          expect(response.status).toBeLessThan(500);
          await response.arrayBuffer();
        },
      ),
      { numRuns: 400 },
    );
    expect(requests).toBeGreaterThan(300);
    expect(server.proc.exitCode).toBeNull();
    expect((await fetch(`${server.publicUrl}/live`)).status).toBe(200);
    expect(server.lines.filter((l) => l.msg === 'unhandled rejection' || l.msg === 'uncaught exception')).toEqual([]);
    expect(server.lines.filter((l) => l.msg === 'unhandled error')).toEqual([]);
  });
});
