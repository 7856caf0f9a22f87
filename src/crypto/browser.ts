/**
 * A `CryptoSuite` for browsers and other runtimes without node:crypto: noble for everything,
 * plus the WASM AEAD when the caller hands in the compiled module (e.g. fetched with
 * `WebAssembly.compileStreaming`). Imports nothing from node:*.
 */
import { createNobleBackend, createNobleSigner } from './noble.ts';
import { runSelfTests } from './self-test.ts';
import type { CryptoSuite, HashName } from './types.ts';
import { instantiateWasmAead } from './wasm-glue.ts';

export { createNobleBackend } from './noble.ts';
export { instantiateWasmAead } from './wasm-glue.ts';

export interface BrowserCryptoOptions {
  /** The compiled `aead.simd.wasm` or `aead.wasm`; without it ChaCha20-Poly1305 comes from noble. */
  wasmModule?: WebAssembly.Module;
}

/** Builds the suite from noble (+ WASM AEAD when given). */
export function createBrowserCrypto(options: BrowserCryptoOptions = {}): CryptoSuite {
  const noble = createNobleBackend();
  const wasm = options.wasmModule ? instantiateWasmAead(options.wasmModule) : undefined;
  const chachaPoly = wasm?.chachaPoly ?? noble.chachaPoly;
  const xchachaPoly = wasm?.xchachaPoly ?? noble.xchachaPoly;
  const hashes: HashName[] = ['SHA256', 'SHA512', 'BLAKE2s', 'BLAKE2b'];
  return {
    chachaPoly,
    xchachaPoly,
    aesGcm: noble.aesGcm,
    dh: noble.dh,
    kem: noble.kem,
    signer: noble.signer,
    hash: noble.hash,
    kdf: noble.kdf,
    choices: { chachaPoly: chachaPoly.backend, xchachaPoly: xchachaPoly.backend, aesGcm: 'noble', dh: 'noble', kem: 'noble', signer: 'noble', hash: 'noble' },
    selfTest: () =>
      runSelfTests({
        aeads: [chachaPoly, xchachaPoly, noble.aesGcm],
        dhs: [noble.dh],
        kems: [noble.kem],
        signers: [{ signer: noble.signer, deterministic: createNobleSigner({ deterministic: true }) }],
        hashes: hashes.map(noble.hash),
      }),
  };
}
