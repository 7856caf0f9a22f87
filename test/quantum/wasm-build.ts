/** Builds `wasm/build/qkd.wasm` once if a test run starts without it (CI builds it first). */
import { existsSync } from 'node:fs';
import { qkdWasmPath } from '../../src/quantum/wasm.ts';
import { repoRoot } from '../helpers/paths.ts';

export function ensureQkdWasm(): void {
  if (existsSync(qkdWasmPath)) return;
  const r = Bun.spawnSync(['bun', 'wasm/build.ts', '--if-missing'], {
    cwd: repoRoot,
    stdout: 'pipe',
    stderr: 'pipe',
  });
  if (!existsSync(qkdWasmPath)) throw new Error(`could not build qkd.wasm: ${r.stderr.toString()}`);
}
