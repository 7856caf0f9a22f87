/**
 * Builds the quantum core's WebAssembly modules from `wasm/assembly/` into `wasm/build/`.
 *
 * Two modules, each with its own linear memory (see docs/DECISIONS.md, "two WASM modules"):
 * - `aead`: ChaCha20-Poly1305 / XChaCha20-Poly1305 hot path, built twice — scalar and SIMD
 *   (`--enable simd`); the loader picks SIMD when `WebAssembly.validate` accepts it.
 * - `qkd`: the decoy-state BB84 link simulator and its post-processing kernels.
 *
 * Usage: `bun wasm/build.ts [--debug] [--if-missing]`. `--if-missing` rebuilds only when an
 * output is absent or older than a source file (used by `postinstall` and `bun run server`).
 */
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import asc from 'assemblyscript/asc';

const root = resolve(import.meta.dir, '..');
const outDir = join(root, 'wasm/build');

interface Target {
  name: string;
  entry: string;
  out: string;
  simd: boolean;
}

const targets: Target[] = [
  { name: 'aead', entry: 'wasm/assembly/aead/index.ts', out: 'aead.wasm', simd: false },
  { name: 'aead', entry: 'wasm/assembly/aead/index.ts', out: 'aead.simd.wasm', simd: true },
  { name: 'qkd', entry: 'wasm/assembly/qkd/index.ts', out: 'qkd.wasm', simd: false },
];

function newestSource(dir: string): number {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

async function main(): Promise<void> {
  const args = new Set(process.argv.slice(2));
  const debug = args.has('--debug');
  const ifMissing = args.has('--if-missing');
  mkdirSync(outDir, { recursive: true });
  let failed = false;
  for (const target of targets) {
    const entry = join(root, target.entry);
    if (!existsSync(entry)) continue;
    const out = join(outDir, target.out);
    if (ifMissing && existsSync(out)) {
      const srcTime = Math.max(newestSource(join(root, 'wasm/assembly', target.name)), newestSource(join(root, 'wasm/assembly/shared')));
      if (statSync(out).mtimeMs >= srcTime) continue;
    }
    const argv = [entry, '--config', join(root, 'asconfig.json'), '--target', debug ? 'debug' : 'release', '-o', out];
    if (target.simd) argv.push('--enable', 'simd');
    const started = performance.now();
    const { error, stderr } = await asc.main(argv, { stdout: process.stdout, stderr: process.stderr });
    if (error) {
      failed = true;
      process.stderr.write(`wasm build failed: ${target.out}: ${error.message}\n${stderr.toString()}\n`);
    } else {
      process.stdout.write(`wasm: built ${target.out} (${Math.round(performance.now() - started)} ms)\n`);
    }
  }
  if (failed) process.exit(1);
}

await main();
