/**
 * The crypto room's door: `createCrypto(config.crypto, logger)` picks one backend per primitive
 * from config and what the runtime supports, runs the known-answer self-test of every backend
 * it loaded, and reports its choices (for logs and `/health/detailed`).
 *
 * Order when `auto`: ChaCha20-Poly1305 and XChaCha20-Poly1305 — wasm, then noble; AES-256-GCM,
 * X25519, ML-DSA-65, SHA-2 — native, then noble; BLAKE2 — noble; ML-KEM-768 (synchronous) —
 * noble, because Bun 1.4.5 has native ML-KEM only as async WebCrypto, which is offered beside it
 * as `kemAsync`. A configured backend that cannot serve a primitive falls back to the `auto`
 * order with a warning.
 *
 * @example
 * const suite = await createCrypto(config.crypto, logger);
 * if (suite.selfTest().some((r) => !r.ok)) markComponentDown('crypto');
 * const frames = suite.chachaPoly.sealBatch(items);
 */
import type { Config } from '../config/schema.ts';
import { createHkdf } from './hash.ts';
import { createNativeBackend, type NativeBackend } from './native.ts';
import { createNobleBackend, createNobleSigner } from './noble.ts';
import { runSelfTests, selfTestKemAsync } from './self-test.ts';
import type { BackendName, CryptoSuite, Hash, HashName, SelfTestResult } from './types.ts';
import { loadWasmAeadSync, type WasmAead } from './wasm.ts';

export type * from './types.ts';
export { createNativeBackend } from './native.ts';
export { createNobleBackend } from './noble.ts';
export { runSelfTests, selfTestAead, selfTestDh, selfTestHash, selfTestKem, selfTestKemAsync, selfTestSigner } from './self-test.ts';
export { createHkdf, createNobleHash } from './hash.ts';
export { loadWasmAead, loadWasmAeadSync, type WasmAead } from './wasm.ts';

/** A pino-like logger; only `info` and `warn` are used. */
export interface CryptoLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export type CryptoConfig = Config['crypto'];

const HASHES: HashName[] = ['SHA256', 'SHA512', 'BLAKE2s', 'BLAKE2b'];

/** Builds the suite the server uses. Never throws for a missing optional backend; logs instead. */
export async function createCrypto(config: CryptoConfig, logger?: CryptoLogger): Promise<CryptoSuite> {
  const noble = createNobleBackend();
  let native: NativeBackend | undefined;
  try {
    native = createNativeBackend();
  } catch (error) {
    logger?.warn({ err: String(error) }, 'native crypto unavailable; using noble');
  }
  let wasm: WasmAead | undefined;
  if (config.aead !== 'noble' && config.aead !== 'native') {
    try {
      wasm = loadWasmAeadSync({ simd: config.wasmSimd, logger });
    } catch (error) {
      logger?.warn({ err: String(error) }, 'wasm AEAD unavailable; ChaCha20-Poly1305 from noble');
    }
  }

  const choices: Record<string, BackendName | string> = {};
  const pick = <T>(primitive: string, wanted: string, candidates: [BackendName, T | undefined][]): T => {
    const preferred = candidates.find(([name, impl]) => name === wanted && impl !== undefined);
    const chosen = preferred ?? candidates.find(([, impl]) => impl !== undefined)!;
    if (wanted !== 'auto' && !preferred) {
      logger?.warn({ primitive, wanted, using: chosen[0] }, 'configured crypto backend cannot serve this primitive; falling back');
    }
    choices[primitive] = chosen[0];
    return chosen[1] as T;
  };

  const chachaPoly = pick('chachaPoly', config.aead, [['wasm', wasm?.chachaPoly], ['noble', noble.chachaPoly]]);
  const xchachaPoly = pick('xchachaPoly', config.aead, [['wasm', wasm?.xchachaPoly], ['noble', noble.xchachaPoly]]);
  const aesGcm = pick('aesGcm', config.aead === 'wasm' ? 'auto' : config.aead, [['native', native?.aesGcm], ['noble', noble.aesGcm]]);
  const dh = pick('dh', config.dh, [['native', native?.dh], ['noble', noble.dh]]);
  const kem = pick('kem', config.kem === 'native' ? 'auto' : config.kem, [['noble', noble.kem]]);
  if (config.kem === 'native') logger?.warn({ primitive: 'kem' }, 'native ML-KEM-768 is async-only in this runtime: sync Kem from noble, native as kemAsync');
  const kemAsync = config.kem === 'noble' ? undefined : native?.kemAsync;
  if (kemAsync) choices.kemAsync = 'native';
  const signer = pick('signer', config.signer, [['native', native?.signer], ['noble', noble.signer]]);
  const hashes = new Map<HashName, Hash>();
  for (const name of HASHES) hashes.set(name, pick(`hash:${name}`, 'auto', [['native', native?.hash(name)], ['noble', noble.hash(name)]]));
  if (wasm) choices.wasmBuild = wasm.simd ? 'simd' : 'scalar';

  // Known-answer tests of every backend loaded, not only the chosen ones: a broken fallback
  // would otherwise go unnoticed until it is needed.
  const results: SelfTestResult[] = runSelfTests({
    aeads: [
      ...(wasm ? [wasm.chachaPoly, wasm.xchachaPoly] : []),
      noble.chachaPoly,
      noble.xchachaPoly,
      ...(native ? [native.aesGcm] : []),
      noble.aesGcm,
    ],
    dhs: [...(native ? [native.dh] : []), noble.dh],
    kems: [noble.kem],
    signers: [...(native ? [{ signer: native.signer }] : []), { signer: noble.signer, deterministic: createNobleSigner({ deterministic: true }) }],
    hashes: [...HASHES.map((n) => native?.hash(n)).filter((x): x is Hash => x !== undefined), ...HASHES.map((n) => noble.hash(n))],
  });
  if (kemAsync) results.push(await selfTestKemAsync(kemAsync));
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) logger?.warn({ failed }, 'crypto self-test failed');
  logger?.info({ choices, selfTest: failed.length === 0 ? 'pass' : 'fail' }, 'crypto backends chosen');

  return {
    chachaPoly,
    xchachaPoly,
    aesGcm,
    dh,
    kem,
    signer,
    kemAsync,
    hash: (name) => {
      const h = hashes.get(name);
      if (!h) throw new RangeError(`unknown hash: ${name}`);
      return h;
    },
    kdf: (name) => createHkdf(hashes.get(name)!),
    choices,
    selfTest: () => results.map((r) => ({ ...r })),
  };
}
