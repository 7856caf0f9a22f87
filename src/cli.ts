#!/usr/bin/env bun
/**
 * `ssc` — the command line of Streamlined Secure Comms.
 *
 *   ssc serve [--config FILE] [--port N] [--metrics-port N] [--data-dir DIR] [--log-dir DIR]
 *   ssc keygen [--data-dir DIR] [--force]
 *   ssc config print [--config FILE]
 *   ssc --help
 *
 * The CLI is the one place that prints to the console.
 */
import { parseArgs } from 'node:util';
import { type ConfigInput, ConfigError, loadConfig, redactConfig } from './config/index.ts';
import { generateNodeKeys, KeyFileError } from './security/node-keys.ts';
import { version } from './version.ts';

const help = `ssc ${version} — Streamlined Secure Comms

Usage:
  ssc serve [options]          start a node (embedded default: in-process broker + SQLite)
  ssc keygen [options]         write the node's ML-DSA-65 identity and X25519 static key (mode 0600)
  ssc config print [options]   print the effective configuration, secrets redacted
  ssc --help | --version

Options:
  --config FILE        TOML config file (default: config/<NODE_ENV>.toml when present)
  --port N             public port (0 picks a free port; the chosen port is logged)
  --metrics-port N     ops port for /metrics, probes and the dashboard (0 picks a free port)
  --data-dir DIR       data directory (keys, SQLite store)
  --log-dir DIR        log directory (combined.log, error.log, audit.log)
  --force              keygen: replace existing keys

Environment: SSC_<SECTION>__<KEY>=value overrides any key, e.g. SSC_SERVER__PORT=8443.
`;

const options = {
  config: { type: 'string' },
  port: { type: 'string' },
  'metrics-port': { type: 'string' },
  'data-dir': { type: 'string' },
  'log-dir': { type: 'string' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

type Flags = { [K in keyof typeof options]?: (typeof options)[K]['type'] extends 'boolean' ? boolean : string };

function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new ConfigError(`--${name} = ${JSON.stringify(value)}: expected an integer`);
  return n;
}

function overridesFrom(flags: Flags): ConfigInput {
  const server: Record<string, unknown> = {};
  const port = intFlag('port', flags.port);
  const metricsPort = intFlag('metrics-port', flags['metrics-port']);
  if (port !== undefined) server.port = port;
  if (metricsPort !== undefined) server.metricsPort = metricsPort;
  if (flags['data-dir']) server.dataDir = flags['data-dir'];
  const out: Record<string, unknown> = {};
  if (Object.keys(server).length) out.server = server;
  if (flags['log-dir'] !== undefined) out.log = { dir: flags['log-dir'] };
  return out as ConfigInput;
}

async function serve(flags: Flags): Promise<number> {
  const config = loadConfig({ file: flags.config, overrides: overridesFrom(flags) });
  const { startServer } = await import('./server.ts');
  const node = await startServer(config);
  const logger = node.logging.logger;
  let signals = 0;
  const onSignal = (signal: string) => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    node.stop(signal).then(
      () => process.exit(0),
      (error) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  process.on('uncaughtException', (error) => logger.error({ err: error }, 'uncaught exception'));
  return -1; // keep running
}

function keygen(flags: Flags): number {
  const config = loadConfig({ file: flags.config, overrides: overridesFrom(flags) });
  const keys = generateNodeKeys(config.server.dataDir, { force: flags.force });
  console.log(`wrote ${config.server.dataDir}/keys/identity.json and static.json (mode 0600)`);
  console.log(`identity fingerprint: ${keys.identity.fingerprint}`);
  console.log(`static key (X25519): ${Buffer.from(keys.staticKey.publicKey).toString('hex')}`);
  return 0;
}

function configPrint(flags: Flags): number {
  const config = loadConfig({ file: flags.config, overrides: overridesFrom(flags) });
  console.log(JSON.stringify(redactConfig(config), null, 2));
  return 0;
}

/** Runs the CLI; returns the exit code, or -1 when a server keeps running. */
export async function main(argv: string[]): Promise<number> {
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : undefined;
  const rest = command ? argv.slice(1) : argv;
  const sub = command === 'config' ? rest[0] : undefined;
  const args = sub ? rest.slice(1) : rest;
  const { values } = parseArgs({ args, options, allowPositionals: true, strict: true });
  const flags = values as Flags;
  if (flags.version) {
    console.log(version);
    return 0;
  }
  if (flags.help || !command) {
    console.log(help);
    return command || flags.help ? 0 : 2;
  }
  switch (command) {
    case 'serve':
      return serve(flags);
    case 'keygen':
      return keygen(flags);
    case 'config':
      if (sub === 'print') return configPrint(flags);
      console.error('usage: ssc config print');
      return 2;
    default:
      console.error(`unknown command: ${command}\n\n${help}`);
      return 2;
  }
}

if (import.meta.main) {
  try {
    const code = await main(process.argv.slice(2));
    if (code >= 0) process.exit(code);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof KeyFileError) {
      console.error(error.message);
      process.exit(2);
    }
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${(error as Error).message}\n\n${help}`);
      process.exit(2);
    }
    throw error;
  }
}
