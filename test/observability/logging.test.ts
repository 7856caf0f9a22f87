import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Hono } from 'hono';
import { type Config, configSchema } from '../../src/config/index.ts';
import { createHealth } from '../../src/observability/health.ts';
import { createLogging, time } from '../../src/observability/logger.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { testApps } from '../helpers/apps.ts';

const dirs: string[] = [];
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const step of cleanups) await step();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function configWith(logDir: string, log: Partial<Config['log']> = {}, env: Config['env'] = 'test'): Config {
  return configSchema.parse({ env, log: { dir: logDir, level: 'debug', console: false, ...log } });
}
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssc-logging-'));
  dirs.push(dir);
  return dir;
};
const linesOf = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Every byte under the log directory (all streams, rolled files included). */
const everything = (dir: string) => readdirSync(dir).map((name) => readFileSync(join(dir, name), 'utf8')).join('\n');

describe('createLogging streams', () => {
  test('combined gets every level, error only ≥ error, audit only audit events; component children', async () => {
    const dir = tempDir();
    const config = configWith(dir);
    const logging = createLogging({ log: config.log, env: config.env, base: { node: 'n1' } });
    const relay = logging.child('relay', { requestId: 'r-1' });
    relay.debug({ topic: 't' }, 'debug line');
    relay.info('info line');
    relay.warn('warn line');
    relay.error({ code: 'E1' }, 'error line');
    logging.child('crypto').fatal('fatal line');
    logging.audit({ event: 'auth.failed', method: 'token', source: '10.0.0.1' });
    await logging.flush();

    const combined = linesOf(logging.files.combined!);
    expect(combined.map((l) => l.msg)).toEqual(['debug line', 'info line', 'warn line', 'error line', 'fatal line', 'auth.failed']);
    expect(combined[0]).toMatchObject({ level: 'debug', component: 'relay', requestId: 'r-1', node: 'n1', topic: 't' });
    expect(typeof combined[0]!.time).toBe('string');
    expect(combined[5]).toMatchObject({ component: 'security', audit: true, event: 'auth.failed' });

    const errors = linesOf(logging.files.error!);
    expect(errors.map((l) => [l.level, l.msg])).toEqual([
      ['error', 'error line'],
      ['fatal', 'fatal line'],
    ]);

    const audit = linesOf(logging.files.audit!);
    expect(audit.length).toBe(1);
    expect(audit[0]).toMatchObject({ event: 'auth.failed', method: 'token', component: 'security', stream: 'audit' });
  });

  test('redaction: keys, tokens, authorization headers, cookies and bodies never reach any stream', async () => {
    const dir = tempDir();
    const config = configWith(dir);
    const logging = createLogging({ log: config.log, env: config.env });
    const secrets = ['s3cr3t-header', 's3cr3t-token', 's3cr3t-key', 's3cr3t-body', 's3cr3t-cookie', 's3cr3t-psk', 's3cr3t-api'];
    const log = logging.child('http');
    log.error(
      {
        req: { headers: { authorization: `Bearer ${secrets[0]}`, cookie: secrets[4], 'x-api-key': secrets[6] } },
        token: secrets[1],
        link: { key: secrets[2], psk: secrets[5] },
        message: { body: secrets[3] },
      },
      'request with secrets',
    );
    logging.audit({ event: 'admin.denied', headers: { authorization: `Bearer ${secrets[0]}` }, token: secrets[1] });
    await logging.flush();
    const all = everything(dir);
    expect(all).toContain('request with secrets');
    expect(all).toContain('[redacted]');
    for (const secret of secrets) expect(all).not.toContain(secret);
  });

  test('externalAudit: audit.log is left to the writer handed over, which gets every event redacted and in order', async () => {
    const dir = tempDir();
    const config = configWith(dir);
    const logging = createLogging({ log: config.log, env: config.env, externalAudit: true });
    logging.audit({ event: 'keys.generated', fingerprint: 'f1' });
    logging.audit({ event: 'auth.failed', token: 'queued-SECRET-1' });
    const received: Record<string, unknown>[] = [];
    logging.useAuditWriter({ append: (event) => received.push(event) });
    logging.audit({ event: 'admin.ban', source: '192.0.2.1', headers: { authorization: 'Bearer live-SECRET-2' } });
    await logging.flush();
    expect(received.map((e) => e.event)).toEqual(['keys.generated', 'auth.failed', 'admin.ban']);
    expect(received[1]).toEqual({ event: 'auth.failed', component: 'security', token: '[redacted]' });
    expect(received[2]).toMatchObject({ source: '192.0.2.1', headers: { authorization: '[redacted]' } });
    // pino never opened audit.log; the combined copies are still there.
    expect(readdirSync(dir).sort()).toEqual(['combined.log', 'error.log']);
    expect(logging.files.audit).toBe(join(dir, 'audit.log'));
    expect(linesOf(logging.files.combined!).filter((l) => l.audit === true).length).toBe(3);
    expect(everything(dir)).not.toContain('SECRET');
  });

  test('time() logs a duration field and observes the histogram under the op label', async () => {
    const dir = tempDir();
    const config = configWith(dir);
    const logging = createLogging({ log: config.log, env: config.env });
    const metrics = createMetrics({ defaultMetrics: false });
    cleanups.push(() => metrics.close());
    const timed = time(logging.child('relay'), metrics.operationDuration);
    const done = timed('store.append');
    await Bun.sleep(5);
    const seconds = done({ topic: 'news' });
    await logging.flush();
    expect(seconds).toBeGreaterThan(0);
    const line = linesOf(logging.files.combined!).find((l) => l.op === 'store.append')!;
    expect(line).toMatchObject({ component: 'relay', topic: 'news', level: 'debug' });
    expect(line.durationMs as number).toBeCloseTo(seconds * 1000, 1);
    const text = await metrics.registry.metrics();
    expect(text).toContain('ssc_operation_duration_seconds_count{op="store.append"} 1');
  });

  test('development with log.pretty writes pino-pretty lines (not JSON) to the console', async () => {
    const dir = tempDir();
    const config = configWith(dir, { console: true, pretty: true }, 'development');
    let out = '';
    const consoleStream = new Writable({
      write(chunk, _encoding, callback) {
        out += chunk.toString();
        callback();
      },
    });
    const logging = createLogging({ log: config.log, env: config.env, consoleStream });
    logging.child('quantum').info({ link: 'a-b' }, 'pretty line');
    await logging.flush();
    const printed = Bun.stripANSI(out);
    expect(printed).toContain('INFO');
    expect(printed).toContain('pretty line');
    expect(printed).toContain('component: "quantum"');
    expect(() => JSON.parse(printed.trim())).toThrow();
    // The files stay JSON.
    expect(linesOf(logging.files.combined!)[0]).toMatchObject({ msg: 'pretty line', component: 'quantum' });
  });
});

describe('HTTP request logging through the real apps', () => {
  test('request ID in the response header and the access line; 500s reach error.log with their ID; secrets do not', async () => {
    const dir = tempDir();
    const config = configWith(dir);
    const logging = createLogging({ log: config.log, env: config.env });
    const metrics = createMetrics({ defaultMetrics: false });
    cleanups.push(() => metrics.close());
    const health = createHealth({ metrics });
    const failing = new Hono();
    failing.post('/fail', async (c) => {
      await c.req.json();
      throw new Error('handler exploded');
    });
    const { publicApp } = testApps({ config, logger: logging.logger, metrics, health, routes: failing });

    const ok = await publicApp.request('/health', { headers: { 'x-request-id': 'given-id-123' } });
    expect(ok.headers.get('x-request-id')).toBe('given-id-123');

    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const traced = await publicApp.request('/health', { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    expect(traced.headers.get('x-request-id')).toBe(traceId);

    const failed = await publicApp.request('/t/fail', {
      method: 'POST',
      headers: { authorization: 'Bearer hdr-secret-0001', 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'body-secret-0002', text: 'hello' }),
    });
    expect(failed.status).toBe(500);
    const failedId = failed.headers.get('x-request-id')!;
    expect(failedId).toMatch(/^[0-9a-f-]{36}$/);
    await logging.flush();

    const combined = linesOf(logging.files.combined!);
    expect(combined.find((l) => l.requestId === 'given-id-123' && l.msg === 'request')).toMatchObject({
      component: 'http',
      method: 'GET',
      path: '/health',
      status: 200,
    });
    expect(combined.find((l) => l.requestId === traceId)).toMatchObject({ traceId });

    const errors = linesOf(logging.files.error!);
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors.every((l) => l.level === 'error' || l.level === 'fatal')).toBe(true);
    expect(errors.every((l) => l.requestId === failedId)).toBe(true);
    expect(errors.map((l) => l.msg)).toEqual(['unhandled error', 'request failed']);
    expect((errors[0]!.err as { message: string }).message).toBe('handler exploded');
    expect(errors[1]).toMatchObject({ path: '/t/fail', status: 500 });

    const all = everything(dir);
    expect(all).not.toContain('hdr-secret-0001');
    expect(all).not.toContain('body-secret-0002');
    expect(await metrics.registry.metrics()).toContain('ssc_errors_total{kind="internal"} 1');
  });
});
