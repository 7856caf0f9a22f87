/**
 * Logging: pino JSON lines with three streams — combined (everything at the configured level),
 * error (level ≥ error) and audit (security events only) — under `log.dir`, plus stdout
 * (pretty in development). Secrets are removed by `redact` before any stream sees a record.
 *
 * Created once in `src/server.ts` and handed down; components take `logger.child({ component })`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type DestinationStream, type Logger, type StreamEntry } from 'pino';
import type { Config } from '../config/index.ts';

export type { Logger } from 'pino';

/** Components named in log lines (`component` field). */
export type Component = 'system' | 'security' | 'crypto' | 'quantum' | 'network' | 'relay' | 'consensus' | 'http';

/** Paths pino removes from every record: keys, tokens, authorisation headers, message bodies. */
export const redactPaths = [
  'password',
  'secret',
  'secretKey',
  'privateKey',
  'token',
  'adminToken',
  'authorization',
  'key',
  'psk',
  'body',
  'payload',
  'plaintext',
  '*.password',
  '*.secret',
  '*.secretKey',
  '*.privateKey',
  '*.token',
  '*.authorization',
  '*.key',
  '*.psk',
  '*.body',
  '*.payload',
  '*.plaintext',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.cookie',
];

/** An audit event: a security-relevant fact (handshake, auth result, ban, admin action…). */
export interface AuditEvent {
  event: string;
  [field: string]: unknown;
}

export interface Logging {
  /** The root logger (combined + error streams + console); use `logger.child({ component })`. */
  logger: Logger;
  /** Writes an audit record to the audit stream and a copy to the combined stream. */
  audit(event: AuditEvent): void;
  /** Subscribes to audit events (threat detection, the audit chain). */
  onAudit(listener: (event: AuditEvent) => void): () => void;
  /** Flushes buffered lines; call before exit. */
  flush(): Promise<void>;
  /** Paths of the files written, by stream. */
  files: { combined?: string; error?: string; audit?: string };
}

export interface LoggingOptions {
  log: Config['log'];
  env: Config['env'];
  /** Extra destination for tests (receives every combined line). */
  extraStream?: DestinationStream;
  /** Base fields on every line. */
  base?: Record<string, unknown>;
}

/** Creates the project's logging from the `log` config section. */
export function createLogging(options: LoggingOptions): Logging {
  const { log, env, extraStream, base } = options;
  const streams: StreamEntry[] = [];
  const files: Logging['files'] = {};
  const destinations: pino.DestinationStream[] = [];
  let auditDestination: ReturnType<typeof pino.destination> | undefined;

  if (log.dir) {
    mkdirSync(log.dir, { recursive: true });
    files.combined = join(log.dir, 'combined.log');
    files.error = join(log.dir, 'error.log');
    files.audit = join(log.dir, 'audit.log');
    const combined = pino.destination({ dest: files.combined, sync: false, mkdir: true });
    const errors = pino.destination({ dest: files.error, sync: false, mkdir: true });
    auditDestination = pino.destination({ dest: files.audit, sync: false, mkdir: true });
    destinations.push(combined, errors, auditDestination);
    streams.push({ level: 'trace', stream: combined }, { level: 'error', stream: errors });
  }
  if (log.console && log.level !== 'silent') {
    if (log.pretty && env === 'development') {
      streams.push({ level: 'trace', stream: pino.transport({ target: 'pino-pretty', options: { colorize: true } }) });
    } else {
      streams.push({ level: 'trace', stream: pino.destination({ dest: 1, sync: false }) });
    }
  }
  if (extraStream) streams.push({ level: 'trace', stream: extraStream });

  const pinoOptions: pino.LoggerOptions = {
    level: log.level,
    // No `component` in the root bindings: pino would repeat the key when a child sets it.
    base: { ...base },
    redact: { paths: redactPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const logger = streams.length > 0 ? pino(pinoOptions, pino.multistream(streams)) : pino({ ...pinoOptions, level: 'silent' });
  const auditLogger = auditDestination
    ? pino({ ...pinoOptions, level: 'info', base: { stream: 'audit', ...base } }, auditDestination)
    : undefined;
  const listeners = new Set<(event: AuditEvent) => void>();

  return {
    logger,
    files,
    audit(event) {
      auditLogger?.info({ component: 'security', ...event }, event.event);
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
    async flush() {
      await new Promise<void>((done) => logger.flush(() => done()));
      if (auditLogger) await new Promise<void>((done) => auditLogger.flush(() => done()));
      for (const destination of destinations) {
        try {
          (destination as ReturnType<typeof pino.destination>).flushSync();
        } catch {
          // Not yet open (sonic-boom opens asynchronously); nothing buffered to lose.
        }
      }
    },
  };
}
