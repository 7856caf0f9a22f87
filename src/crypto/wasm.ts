/**
 * Loads the AEAD WebAssembly module from `wasm/build/`: the SIMD build when the runtime
 * validates it and the caller allows it, else the scalar build. Both produce identical bytes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { instantiateWasmAead, type WasmAead } from './wasm-glue.ts';

export type { PackedFrames, PackedOptions, WasmAead, WasmAeadExports, WasmBatchAead } from './wasm-glue.ts';
export { instantiateWasmAead, wrapWasmAead } from './wasm-glue.ts';

export interface LoadWasmAeadOptions {
  /** Prefer the SIMD build (default true); it is used only if `WebAssembly.validate` accepts it. */
  simd?: boolean;
  /** Directory holding `aead.wasm` and `aead.simd.wasm` (default `<repo>/wasm/build`). */
  dir?: string;
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

/** Where `bun run build:wasm` writes the modules. */
export const defaultWasmDir = resolve(import.meta.dir, '../../wasm/build');

/**
 * Loads and instantiates the AEAD module synchronously. Throws when no usable build exists
 * (run `bun run build:wasm`).
 */
export function loadWasmAeadSync(options: LoadWasmAeadOptions = {}): WasmAead {
  const { simd = true, dir = defaultWasmDir, logger } = options;
  const simdPath = join(dir, 'aead.simd.wasm');
  const scalarPath = join(dir, 'aead.wasm');
  if (simd && existsSync(simdPath)) {
    const bytes = readFileSync(simdPath);
    if (WebAssembly.validate(bytes)) {
      const aead = instantiateWasmAead(new WebAssembly.Module(bytes));
      logger?.info({ build: 'simd' }, 'wasm aead loaded');
      return aead;
    }
    logger?.warn({ build: 'simd' }, 'wasm SIMD build does not validate on this runtime; using the scalar build');
  }
  if (!existsSync(scalarPath)) throw new Error(`wasm aead: ${scalarPath} missing (run \`bun run build:wasm\`)`);
  const aead = instantiateWasmAead(new WebAssembly.Module(readFileSync(scalarPath)));
  logger?.info({ build: 'scalar' }, 'wasm aead loaded');
  return aead;
}

/** Async form of `loadWasmAeadSync`, for symmetry with other loaders. */
export async function loadWasmAead(options: LoadWasmAeadOptions = {}): Promise<WasmAead> {
  return loadWasmAeadSync(options);
}
