/** Paths tests share: the repo root and the published vectors beside the checkout. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dir, '../..');

/** `../shared/vectors` relative to the checkout (CI clones with shared/ beside it). */
export const vectorsDir = resolve(repoRoot, '../shared/vectors');

if (!existsSync(vectorsDir)) {
  throw new Error(`published test vectors not found at ${vectorsDir}: clone with shared/ beside the checkout`);
}

/** Reads one vector file as JSON, e.g. `readVectors('wycheproof/x25519_test.json')`. */
export async function readVectors<T = any>(relative: string): Promise<T> {
  return (await Bun.file(join(vectorsDir, relative)).json()) as T;
}
