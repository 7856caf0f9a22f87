/**
 * Logging: pino JSON lines with three streams — combined (everything at the configured level),
 * error (level ≥ error) and audit (security events only) — under `log.dir`, each rotated by
 * day and size with gzip and a retention count (`rotating-file.ts`), plus stdout (pretty in
 * development). Secrets are removed by `redact` before any stream sees a record.
 *
 * Created once in `src/server.ts` and handed down; components take `logger.child({ component })`.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import pino, { type DestinationStream, type Logger, type StreamEntry } from 'pino';
import type { Config } from '../config/index.ts';
import { createRotatingFile, parseSize, type RotatingFile } from './rotating-file.ts';

export type { Logger } from 'pino';

/** Components named in log lines (`component` field). */
export type Component = 'system' | 'security' | 'crypto' | 'quantum' | 'network' | 'relay' | 'consensus' | 'http';

/**
 * Paths pino removes from every record before any stream sees it: keys, tokens, authorisation
 * headers, cookies and message bodies, at the top level and one or two levels down (pino's
 * `*` matches one level). Code that logs a request logs `{ headers }` or `{ req: { headers } }`.
 */
export const redactPaths = (() => {
  const secretKeys = [
    'password',
    'secret',
    'secretKey',
    'privateKey',
    'sharedSecret',
    'token',
    'accessToken',
    'refreshToken',
    'adminToken',
    'apiKey',
    'authorization',
    'cookie',
    'key',
    'psk',
    'body',
    'payload',
    'plaintext',
    'frame',
    '"set-cookie"',
    '"x-api-key"',
    '"x-admin-token"',
  ];
  const paths: string[] = [];
  for (const key of secretKeys) {
    const part = key.startsWith('"') ? `[${key}]` : `.${key}`;
    paths.push(key.startsWith('"') ? `["${key.slice(1, -1)}"]` : key, `*${part}`, `*.*${part}`);
  }
  return paths;
})();

const secretKeySet = new Set([
  'password', 'secret', 'secretKey', 'privateKey', 'sharedSecret', 'token', 'accessToken', 'refreshToken',
  'adminToken', 'apiKey', 'authorization', 'cookie', 'key', 'psk', 'body', 'payload', 'plaintext', 'frame',
  'set-cookie', 'x-api-key', 'x-admin-token',
]);
const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;

/**
 * Replaces secret fields (the names in `redactPaths`) with "[redacted]" at the top level and two
 * levels below, copying only the objects it changes. One pass over a small object: much cheaper
 * than pino's wildcard `redact` paths, which cost a quarter of a handshake's CPU in profiles.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (!isPlainObject(value)) return value;
  let out: Record<string, unknown> | undefined;
  for (const key in value) {
    const field = value[key];
    if (secretKeySet.has(key)) {
      if (field !== undefined) (out ??= { ...value })[key] = '[redacted]';
    } else if (depth < 2 && isPlainObject(field)) {
      const cleaned = redactSecrets(field, depth + 1);
      if (cleaned !== field) (out ??= { ...value })[key] = cleaned;
    }
  }
  return (out ?? value) as T;
}

/** An audit event: a security-relevant fact (handshake, auth result, ban, admin action…). */
export interface AuditEvent {
  event: string;
  [field: string]: unknown;
}

export interface Logging {
  /** The root logger (combined + error streams + console); use `logger.child({ component })`. */
  logger: Logger;
  /** A child logger for one component (`component` field on every line). */
  child(component: Component, bindings?: Record<string, unknown>): Logger;
  /** Writes an audit record to the audit stream and a copy to the combined stream. */
  audit(event: AuditEvent): void;
  /** Subscribes to audit events (threat detection, the audit chain). */
  onAudit(listener: (event: AuditEvent) => void): () => void;
  /**
   * Hands `audit.log` to another writer (the hash-chained audit log). Only with
   * `externalAudit: true`; events audited before the call are queued and handed over first.
   * The writer receives events already redacted.
   */
  useAuditWriter(writer: AuditWriter): void;
  /** Writes buffered lines and waits for pending compressions; call before exit. */
  flush(): Promise<void>;
  /** State of the file streams, for the logging health check (reopens a removed live file). */
  streams(): StreamState[];
  /** Paths of the files written, by stream. */
  files: { combined?: string; error?: string; audit?: string };
}

/** A writer that owns `audit.log` instead of pino (see `LoggingOptions.externalAudit`). */
export interface AuditWriter {
  append(event: AuditEvent): unknown;
}

/** One file stream's state. */
export interface StreamState {
  stream: 'combined' | 'error' | 'audit';
  path: string;
  writable: boolean;
  lastError?: string;
}

export interface LoggingOptions {
  log: Config['log'];
  env: Config['env'];
  /** Extra destination for tests (receives every combined line). */
  extraStream?: DestinationStream;
  /** Where console lines go (default: stdout). Pretty output is written here too. */
  consoleStream?: DestinationStream;
  /** Base fields on every line. */
  base?: Record<string, unknown>;
  /** Clock for rotation (tests). */
  now?: () => Date;
  /**
   * `audit.log` is written by another writer handed over with `useAuditWriter` (the hash chain
   * covers every byte of its lines, so pino must not write that file). Until then events queue.
   */
  externalAudit?: boolean;
}

/**
 * Creates the project's logging from the `log` config section: three rotating files under
 * `log.dir` (combined ≥ level, error ≥ error, audit = audit events only) and the console.
 *
 * @example
 * const logging = createLogging({ log: config.log, env: config.env });
 * const log = logging.child('relay');
 * log.info({ topic }, 'subscribed');
 * logging.audit({ event: 'admin.ban', source });
 */
export function createLogging(options: LoggingOptions): Logging {
  const { log, env, extraStream, base, now } = options;
  const streams: StreamEntry[] = [];
  const files: Logging['files'] = {};
  const rotating: { stream: StreamState['stream']; file: RotatingFile }[] = [];
  let auditDestination: RotatingFile | undefined;

  if (log.dir) {
    mkdirSync(log.dir, { recursive: true });
    const open = (stream: StreamState['stream'], flushIntervalMs: number) => {
      const path = join(log.dir, `${stream}.log`);
      files[stream] = path;
      const file = createRotatingFile({
        file: path,
        maxBytes: parseSize(log.rotation.size),
        frequency: log.rotation.frequency,
        keep: log.rotation.keep,
        compress: log.rotation.compress,
        flushIntervalMs,
        now,
        // Not through the logger: a broken file stream must not recurse into itself.
        onError: (error) => reportIoError(stream, error),
      });
      rotating.push({ stream, file });
      return file;
    };
    const combined = open('combined', 100);
    // Error lines are written at once so the line before a crash is on disk.
    const errors = open('error', 0);
    if (!options.externalAudit) auditDestination = open('audit', 100);
    else files.audit = join(log.dir, 'audit.log');
    streams.push({ level: 'trace', stream: combined }, { level: 'error', stream: errors });
  }
  let consoleOut: DestinationStream | undefined;
  if (log.console && log.level !== 'silent') {
    consoleOut = options.consoleStream ?? pino.destination({ dest: 1, sync: false });
    const pretty = log.pretty && env === 'development' ? loadPretty(consoleOut) : undefined;
    streams.push({ level: 'trace', stream: pretty ?? consoleOut });
  }
  if (extraStream) streams.push({ level: 'trace', stream: extraStream });

  // Throttled: one stderr line per stream per minute at most, whatever the log volume.
  const lastReported = new Map<string, number>();
  function reportIoError(stream: string, error: Error) {
    const at = Date.now();
    if (at - (lastReported.get(stream) ?? 0) < 60_000) return;
    lastReported.set(stream, at);
    process.stderr.write(`${JSON.stringify({ level: 'error', time: new Date(at).toISOString(), component: 'system', stream, err: error.message, msg: 'log stream write failed' })}\n`);
  }

  const pinoOptions: pino.LoggerOptions = {
    level: log.level,
    // No `component` in the root bindings: pino would repeat the key when a child sets it.
    base: { ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Secrets are removed from every record's fields before any stream sees them.
    formatters: { level: (label) => ({ level: label }), log: (object) => redactSecrets(object) },
  };
  const logger = streams.length > 0 ? pino(pinoOptions, pino.multistream(streams)) : pino({ ...pinoOptions, level: 'silent' });
  const auditLogger = auditDestination
    ? pino({ ...pinoOptions, level: 'info', base: { stream: 'audit', ...base } }, auditDestination)
    : undefined;
  const listeners = new Set<(event: AuditEvent) => void>();
  // External audit writer: events are redacted by the same rules, queued until the writer
  // arrives (bounded; overflow is counted).
  let auditWriter: AuditWriter | undefined;
  const pendingAudit: AuditEvent[] = [];
  let droppedAudit = 0;
  const toWriter = (event: AuditEvent) => redactSecrets(event);

  return {
    logger,
    files,
    child(component, bindings) {
      return logger.child({ component, ...bindings });
    },
    audit(event) {
      auditLogger?.info({ component: 'security', ...event }, event.event);
      if (options.externalAudit) {
        const clean = toWriter({ component: 'security', ...event });
        if (auditWriter) auditWriter.append(clean);
        else if (pendingAudit.length < 10_000) pendingAudit.push(clean);
        else droppedAudit += 1;
      }
      logger.info({ ...event, component: 'security', audit: true }, event.event);
      for (const listener of listeners) {
        try {
          listener(event);
        } catch (error) {
          logger.error({ err: error }, 'audit listener failed');
        }
      }
    },
    onAudit(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    useAuditWriter(writer) {
      if (!options.externalAudit) throw new Error('useAuditWriter needs createLogging({ externalAudit: true })');
      auditWriter = writer;
      for (const event of pendingAudit.splice(0)) writer.append(event);
      if (droppedAudit > 0) {
        writer.append({ event: 'audit.dropped', component: 'security', count: droppedAudit });
        logger.error({ count: droppedAudit }, 'audit events dropped before the audit writer started');
        droppedAudit = 0;
      }
    },
    streams() {
      return rotating.map(({ stream, file }) => {
        const found = file.verify();
        return { stream, path: file.path, writable: found.ok, lastError: found.reason };
      });
    },
    async flush() {
      for (const { file } of rotating) file.flushSync();
      try {
        (consoleOut as { flushSync?: () => void } | undefined)?.flushSync?.();
      } catch {
        // Not yet open (sonic-boom opens asynchronously); nothing buffered to lose.
      }
      await Promise.all(rotating.map(({ file }) => file.settled()));
    },
  };
}

/**
 * pino-pretty as an in-process stream writing to `destination`. It is a development
 * dependency: when it is not installed (a production install) JSON lines are written instead.
 */
function loadPretty(destination: DestinationStream): DestinationStream | undefined {
  try {
    const pretty = createRequire(import.meta.url)('pino-pretty') as (options: Record<string, unknown>) => DestinationStream;
    return pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', destination, sync: true });
  } catch {
    return undefined;
  }
}

/** A histogram a timer can observe into (`ssc_operation_duration_seconds` or any with an `op` label). */
export interface TimerHistogram {
  observe(labels: { op: string }, seconds: number): void;
}

/**
 * A performance timer: `const done = time(log, histogram)('handshake')` … `done({ peer })`
 * logs `{ op, durationMs }` at debug and observes the seconds in the histogram (labelled `op`;
 * keep op names a fixed set so the label stays bounded). Returns the seconds.
 *
 * @example
 * const timed = time(log, metrics.operationDuration);
 * const done = timed('store.append');
 * await store.append(record);
 * done();
 */
export function time(logger: Logger, histogram?: TimerHistogram, level: pino.Level = 'debug') {
  return (op: string) => {
    const started = performance.now();
    return (fields?: Record<string, unknown>): number => {
      const seconds = (performance.now() - started) / 1000;
      histogram?.observe({ op }, seconds);
      logger[level]({ ...fields, op, durationMs: Math.round(seconds * 1e5) / 100 }, op);
      return seconds;
    };
  };
}
