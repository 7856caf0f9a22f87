/**
 * Readers shared by the deployment tests: a systemd unit parser, YAML documents, a file-tree
 * snapshot (path, type, mode, content hash) and external-tool helpers.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { repoRoot } from '../helpers/paths.ts';

export const deployDir = join(repoRoot, 'deploy');
export const unitPath = join(deployDir, 'systemd/streamlined-secure-comms.service');
export const installScript = join(deployDir, 'install.sh');

/** A unit file as section → key → every value given (directives may repeat). */
export type Unit = Record<string, Record<string, string[]>>;

/** Parses a systemd unit (systemd.syntax(7)): sections, `Key=value`, comments, continuations. */
export function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section = '';
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      unit[section] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || !section) throw new Error(`not a unit line: ${line}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    (unit[section]![key] ??= []).push(value);
  }
  return unit;
}

/** A parsed YAML or JSON document; its shape is what the assertions reading it check. */
// biome-ignore lint/suspicious/noExplicitAny: parsed documents are walked by key and checked by assertions
export type Doc = any;

/** Parses a YAML file into its documents (one or several, `---`-separated). */
export function readYamlDocuments(path: string): Doc[] {
  const text = readFileSync(path, 'utf8');
  const parsed = Bun.YAML.parse(text);
  // Bun returns an array for a multi-document stream and the value itself for one document.
  const docs = /^---\s*$/m.test(text) ? (parsed as unknown[]) : [parsed];
  return docs.filter((d) => d !== null && d !== undefined);
}

/** The production configuration as `ssc serve --config config/production.toml` sees it. */
export function productionConfig(env: Record<string, string> = {}) {
  return loadConfig({
    file: join(repoRoot, 'config/production.toml'),
    env: { NODE_ENV: 'production', ...env },
  });
}

/** Every entry under `dir`: relative path → "type mode [sha256|link target]". */
export function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (path: string) => {
    const stat = lstatSync(path);
    const rel = relative(dir, path) || '.';
    const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0');
    if (stat.isSymbolicLink()) out[rel] = `link ${readlinkSync(path)}`;
    else if (stat.isDirectory()) {
      out[rel] = `dir ${mode}`;
      for (const name of readdirSync(path)) walk(join(path, name));
    } else out[rel] = `file ${mode} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
  };
  walk(dir);
  return out;
}

/** Whether an executable is on PATH. */
export function hasCommand(name: string): boolean {
  return Bun.which(name) !== null;
}

/** Runs a command to completion; returns its exit code and output. */
export function run(cmd: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const result = Bun.spawnSync(cmd, {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, ...options.env },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}
