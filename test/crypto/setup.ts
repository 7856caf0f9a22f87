/** Shared test setup: builds the WASM modules when they are missing (CI builds them first anyway). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.ts';

/** Runs `bun wasm/build.ts --if-missing` once per process. */
export function ensureWasmBuilt(): void {
  if (existsSync(join(repoRoot, 'wasm/build/aead.wasm')) && existsSync(join(repoRoot, 'wasm/build/aead.simd.wasm'))) return;
  const result = Bun.spawnSync(['bun', 'wasm/build.ts', '--if-missing'], { cwd: repoRoot, stdout: 'pipe', stderr: 'pipe' });
  if (result.exitCode !== 0) throw new Error(`wasm build failed: ${result.stderr.toString()}`);
}
