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
  ssc audit verify [--data-dir DIR] [--public-key FILE] FILE…
                               check the audit log's hash chain and signed checkpoints
                               (rotated .gz files too); exit 1 at the first broken record
  ssc tls dev-cert [--out DIR] [--host NAME]
                               write a self-signed certificate and key for development
  ssc grant --topic private:NAME --identity FINGERPRINT [--rights subscribe,publish] [--hours 24]
                               sign a grant for a private topic with the node identity
  ssc qkd simulate --distance KM --pulses N [--eve P] [--json]
                               run the decoy-state BB84 Monte Carlo beside the analytic model
  ssc qkd curve                key rate vs distance (GYS parameters)
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
  'public-key': { type: 'string' },
  topic: { type: 'string' },
  identity: { type: 'string' },
  rights: { type: 'string' },
  hours: { type: 'string' },
  out: { type: 'string' },
  host: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

type Flags = {
  [K in keyof typeof options]?: (typeof options)[K] extends { multiple: true }
    ? string[]
    : (typeof options)[K]['type'] extends 'boolean'
      ? boolean
      : string;
};

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

async function auditVerify(flags: Flags, files: string[]): Promise<number> {
  const { verifyAuditFiles } = await import('./security/audit-log.ts');
  const { ml_dsa65 } = await import('@noble/post-quantum/ml-dsa.js');
  const { fingerprintOf, loadNodeKeys } = await import('./security/node-keys.ts');
  if (files.length === 0) {
    console.error('usage: ssc audit verify [--data-dir DIR] [--public-key FILE] FILE…');
    return 2;
  }
  const keys = new Map<string, Uint8Array>();
  if (flags['public-key']) {
    const json = JSON.parse(await Bun.file(flags['public-key']).text());
    const publicKey = new Uint8Array(Buffer.from(json.publicKey, 'base64'));
    keys.set(fingerprintOf(publicKey), publicKey);
  } else {
    const config = loadConfig({ file: flags.config, overrides: overridesFrom(flags) });
    const identity = loadNodeKeys(config.server.dataDir).identity;
    keys.set(identity.fingerprint, identity.publicKey);
  }
  const result = verifyAuditFiles(files, (signature, message, signer) => {
    const key = keys.get(signer);
    return key !== undefined && ml_dsa65.verify(signature, message, key);
  });
  const span = `seq ${result.firstSeq ?? '-'}…${result.lastSeq ?? '-'}`;
  if (!result.ok) {
    const b = result.broken!;
    console.log(`BROKEN at ${b.file}:${b.line} (seq ${b.seq ?? '?'}): ${b.reason}`);
    console.log(`verified before it: ${result.records} records, ${result.checkpoints} signed checkpoints`);
    return 1;
  }
  console.log(`audit chain intact: ${result.records} records (${span}) in ${result.files} files, ${result.checkpoints} signed checkpoints`);
  if (result.startsAfterGenesis) console.log('note: the chain starts after genesis (older files pruned by retention)');
  if (result.unsignedTail > 0) console.log(`note: ${result.unsignedTail} records after the last checkpoint are not yet signed`);
  return 0;
}

async function grant(flags: Flags): Promise<number> {
  const { signGrant } = await import('./security/grants.ts');
  const { createNativeSigner } = await import('./crypto/native.ts');
  const { loadNodeKeys } = await import('./security/node-keys.ts');
  if (!flags.topic || !flags.identity) {
    console.error('usage: ssc grant --topic private:NAME --identity FINGERPRINT [--rights subscribe,publish] [--hours 24]');
    return 2;
  }
  const rights = (flags.rights ?? 'subscribe').split(',').map((r) => r.trim());
  if (rights.some((r) => r !== 'subscribe' && r !== 'publish')) {
    console.error('--rights takes subscribe, publish or both');
    return 2;
  }
  const hours = Number(flags.hours ?? '24');
  if (!(hours > 0)) throw new ConfigError(`--hours = ${JSON.stringify(flags.hours)}: expected a positive number`);
  const config = loadConfig({ file: flags.config, overrides: overridesFrom(flags) });
  const identity = loadNodeKeys(config.server.dataDir).identity;
  const signed = signGrant(
    {
      topic: flags.topic,
      identity: flags.identity,
      rights: rights as ('subscribe' | 'publish')[],
      exp: Math.floor(Date.now() / 1000 + hours * 3600),
      issuer: identity.fingerprint,
    },
    createNativeSigner(),
    identity.seed,
  );
  console.log(JSON.stringify(signed));
  return 0;
}

async function tlsDevCert(flags: Flags): Promise<number> {
  const { generateDevCertificate } = await import('./security/tls.ts');
  const out = flags.out ?? './data/tls';
  const { cert, key } = await generateDevCertificate({ outDir: out, hosts: flags.host ?? ['localhost', '127.0.0.1'] });
  console.log(`wrote ${cert} and ${key} (self-signed, for development only)`);
  console.log(`use: [server.tls] cert = "${cert}"  key = "${key}"`);
  return 0;
}

/** Runs the CLI; returns the exit code, or -1 when a server keeps running. */
export async function main(argv: string[]): Promise<number> {
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : undefined;
  const rest = command ? argv.slice(1) : argv;
  if (command === 'qkd') {
    // The simulator's own flags (--distance, --pulses, --eve, --json) are parsed by its handler.
    const { runQkdCommand } = await import('./quantum/index.ts');
    return runQkdCommand(rest, (line) => console.log(line));
  }
  const sub = command && ['config', 'audit', 'tls'].includes(command) ? rest[0] : undefined;
  const args = sub ? rest.slice(1) : rest;
  const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
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
    case 'audit':
      if (sub === 'verify') return auditVerify(flags, positionals);
      console.error('usage: ssc audit verify FILE…');
      return 2;
    case 'grant':
      return grant(flags);
    case 'tls':
      if (sub === 'dev-cert') return tlsDevCert(flags);
      console.error('usage: ssc tls dev-cert [--out DIR] [--host NAME]…');
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
