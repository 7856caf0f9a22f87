/**
 * Configuration loading: defaults → `config/<env>.toml` (or `--config FILE`) → environment
 * (`SSC_…`, nested with `__`, e.g. `SSC_SERVER__METRICS_PORT=9191`) → explicit overrides (CLI
 * flags). The merged tree is validated by the zod schema once; an invalid value stops startup
 * with one line naming the key, the value and what was expected.
 *
 * @example
 * const config = loadConfig({ file: 'config/production.toml', overrides: { server: { port: 0 } } });
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Config, type ConfigInput, configSchema } from './schema.ts';

export { type Config, type ConfigInput, configSchema } from './schema.ts';

/** An invalid configuration; `message` is the one line shown to the operator. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** A TOML file; replaces `config/<env>.toml`. */
  file?: string;
  /** Environment to read `SSC_…` variables and NODE_ENV from (default: process.env). */
  env?: Record<string, string | undefined>;
  /** Highest-precedence values (CLI flags). */
  overrides?: ConfigInput;
  /** Directory holding `<env>.toml` files (default: `./config`). */
  configDir?: string;
}

type Tree = Record<string, unknown>;

const isTree = (value: unknown): value is Tree =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Deep merge: objects merge key by key, everything else (arrays too) replaces. */
export function mergeTrees(base: Tree, top: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(top)) {
    if (value === undefined) continue;
    out[key] = isTree(value) && isTree(out[key]) ? mergeTrees(out[key] as Tree, value) : value;
  }
  return out;
}

const camel = (segment: string) => segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Parses an env value: JSON for numbers, booleans, arrays and objects; otherwise the string. */
function parseEnvValue(raw: string): unknown {
  const trimmed = raw.trim();
  if (/^(true|false|null|-?\d+(\.\d+)?([eE][+-]?\d+)?)$/.test(trimmed) || /^[[{"]/.test(trimmed)) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return raw;
    }
  }
  return raw;
}

/** Turns `SSC_A__B_C=1` into `{ a: { bC: 1 } }`. */
export function envToTree(env: Record<string, string | undefined>): Tree {
  const tree: Tree = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('SSC_') || raw === undefined) continue;
    const path = name.slice(4).split('__').filter(Boolean).map(camel);
    if (path.length === 0) continue;
    let node = tree;
    for (const segment of path.slice(0, -1)) {
      if (!isTree(node[segment])) node[segment] = {};
      node = node[segment] as Tree;
    }
    node[path[path.length - 1]!] = parseEnvValue(raw);
  }
  return tree;
}

function readToml(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`config: cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    return Bun.TOML.parse(text) as Tree;
  } catch (error) {
    throw new ConfigError(`config: ${file} is not valid TOML: ${(error as Error).message}`);
  }
}

function valueAt(tree: unknown, path: PropertyKey[]): unknown {
  let node = tree;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/** Validates a merged tree; throws `ConfigError` naming the first bad key. */
export function validateConfig(tree: Tree): Config {
  const result = configSchema.safeParse(tree);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.map(String);
  const key = path.join('.') || '(root)';
  if (issue.code === 'unrecognized_keys') {
    const where = path.length ? `${key}.` : '';
    throw new ConfigError(`config: unknown key ${issue.keys.map((k) => where + k).join(', ')}`, key);
  }
  const value = valueAt(tree, issue.path);
  throw new ConfigError(`config: ${key} = ${JSON.stringify(value) ?? 'undefined'}: ${issue.message}`, key);
}

/**
 * Env values are parsed as JSON where they look like it; a string key given a numeric-looking
 * value (a token "1234") gets the raw text back when the schema asks for a string.
 */
function restoreEnvStrings(tree: Tree, env: Record<string, string | undefined>): Tree {
  for (let attempt = 0; attempt < 32; attempt++) {
    const result = configSchema.safeParse(tree);
    if (result.success) break;
    const issue = result.error.issues.find(
      (i) => i.code === 'invalid_type' && i.expected === 'string' && typeof valueAt(tree, i.path) !== 'string',
    );
    if (!issue) break;
    const name = `SSC_${issue.path.map((k) => String(k).replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()).join('__')}`;
    const raw = env[name];
    if (raw === undefined) break;
    let node = tree;
    for (const key of issue.path.slice(0, -1)) node = node[key as string] as Tree;
    node[issue.path[issue.path.length - 1] as string] = raw;
  }
  return tree;
}

/** Loads, merges and validates the configuration. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const envTree = envToTree(env);
  const nodeEnv = String(options.overrides?.env ?? envTree.env ?? env.NODE_ENV ?? 'development');
  let tree: Tree = {};
  const file = options.file ?? resolve(options.configDir ?? 'config', `${nodeEnv}.toml`);
  if (options.file || existsSync(file)) tree = mergeTrees(tree, readToml(file));
  tree = mergeTrees(tree, envTree);
  if (options.overrides) tree = mergeTrees(tree, options.overrides as Tree);
  if (tree.env === undefined && ['development', 'production', 'test'].includes(nodeEnv)) tree.env = nodeEnv;
  return validateConfig(restoreEnvStrings(tree, env));
}

const secretKeys = /token|secret|password|key$|adminToken|saeTokens|tokens/i;

/** A copy of the config with secrets replaced by "[redacted]", for `ssc config print` and the admin view. */
export function redactConfig(config: Config): Tree {
  const walk = (value: unknown, key: string): unknown => {
    if (secretKeys.test(key) && key !== 'keySize' && value !== '' && value !== undefined) {
      if (Array.isArray(value)) return value.map(() => '[redacted]');
      if (isTree(value)) return Object.fromEntries(Object.keys(value).map((k) => [k, '[redacted]']));
      return '[redacted]';
    }
    if (Array.isArray(value)) return value.map((v) => walk(v, ''));
    if (isTree(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    return value;
  };
  return walk(config, '') as Tree;
}
