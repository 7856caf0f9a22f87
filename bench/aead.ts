/**
 * AEAD throughput: the WASM ChaCha20-Poly1305 hot path (SIMD and scalar builds, single calls and
 * batches of 1, 16 and 256 frames per JS→WASM crossing, and the packed 256-frame form) against native AES-256-GCM
 * (node:crypto createCipheriv — the baseline every ratio refers to, same size and operation),
 * WebCrypto ChaCha20-Poly1305 (awaited one by one, and 256 promises under Promise.all) and
 * @noble/ciphers chacha20poly1305. Every frame has its own key and nonce, as in a fan-out.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { createNativeAesGcm } from '../src/crypto/native.ts';
import type { AeadBatchItem } from '../src/crypto/types.ts';
import { loadWasmAeadSync } from '../src/crypto/wasm.ts';
import type { BenchContext, BenchResult, BenchRow, Benchmark } from './types.ts';

const SIZES = [64, 128, 1024, 16384];
const POOL = 256;

interface Impl {
  name: string;
  /** Frames per call (1 for single calls). */
  batch: number;
  seal(items: AeadBatchItem[]): unknown | Promise<unknown>;
  open(items: AeadBatchItem[]): unknown | Promise<unknown>;
  async?: boolean;
  /** Produces the sealed frames its own open expects. */
  prepare(items: AeadBatchItem[]): Promise<AeadBatchItem[]>;
}

/**
 * Rate of `run` in ops/s: after a warm-up, the best of three equal timing windows. The box is
 * shared, so a window can lose the CPU to another process; every implementation (the AES-GCM
 * baseline included) is measured the same way, so ratios stay comparable.
 */
async function measure(run: () => unknown | Promise<unknown>, isAsync: boolean, opsPerRun: number, ms: number): Promise<number> {
  // Warm-up: lets the JIT tier up (JSC's OMG for WASM) before timing.
  const warmEnd = performance.now() + Math.max(20, ms / 4);
  while (performance.now() < warmEnd) isAsync ? await run() : run();
  let best = 0;
  for (let window = 0; window < 3; window++) {
    let runs = 0;
    const start = performance.now();
    let now = start;
    const end = start + ms / 3;
    while (now < end) {
      for (let i = 0; i < 8; i++) isAsync ? await run() : run();
      runs += 8;
      now = performance.now();
    }
    best = Math.max(best, (runs * opsPerRun) / ((now - start) / 1000));
  }
  return best;
}

const bench: Benchmark = {
  name: 'aead',
  description: 'WASM ChaCha20-Poly1305 (SIMD/scalar, single and batched) vs native AES-256-GCM, WebCrypto ChaCha20-Poly1305, @noble/ciphers',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const ms = ctx.quick ? 60 : 400;
    const simd = loadWasmAeadSync({ simd: true });
    const scalar = loadWasmAeadSync({ simd: false });
    if (!simd.simd) throw new Error('SIMD build did not load');
    const aes = createNativeAesGcm();
    const subtle = crypto.subtle;
    const wcKeys = new Map<Uint8Array, CryptoKey>();
    const wcKey = async (k: Uint8Array) => {
      let key = wcKeys.get(k);
      // 'raw-secret' (WICG modern algorithms) is newer than the DOM typings' KeyFormat.
      if (!key) wcKeys.set(k, (key = await subtle.importKey('raw-secret' as 'raw', k as BufferSource, { name: 'ChaCha20-Poly1305' }, false, ['encrypt', 'decrypt'])));
      return key;
    };
    const wcSeal = async (i: AeadBatchItem) =>
      subtle.encrypt({ name: 'ChaCha20-Poly1305', iv: i.nonce, additionalData: i.aad } as AlgorithmIdentifier, await wcKey(i.key), i.data as BufferSource);
    const wcOpen = async (i: AeadBatchItem) =>
      subtle.decrypt({ name: 'ChaCha20-Poly1305', iv: i.nonce, additionalData: i.aad } as AlgorithmIdentifier, await wcKey(i.key), i.data as BufferSource);

    const sealed = (f: (i: AeadBatchItem) => Uint8Array) => async (items: AeadBatchItem[]) => items.map((i) => ({ ...i, data: f(i) }));
    const wasmImpl = (label: string, w: typeof simd, batch: number): Impl => ({
      name: `${label} ${batch === 0 ? 'single' : `batch ${batch}`}`,
      batch: Math.max(batch, 1),
      seal: batch === 0 ? (it) => w.chachaPoly.seal(it[0]!.key, it[0]!.nonce, it[0]!.data, it[0]!.aad) : (it) => w.chachaPoly.sealBatch(it),
      open: batch === 0 ? (it) => w.chachaPoly.open(it[0]!.key, it[0]!.nonce, it[0]!.data, it[0]!.aad) : (it) => w.chachaPoly.openBatch(it),
      prepare: sealed((i) => w.chachaPoly.seal(i.key, i.nonce, i.data, i.aad)),
    });
    // The packed form: one output buffer plus offsets, written into a caller-provided region.
    const packedOut = new Uint8Array(POOL * (16384 + 64));
    const wasmPacked = (label: string, w: typeof simd, batch: number): Impl => ({
      name: `${label} packed ${batch}`,
      batch,
      seal: (it) => w.chachaPoly.sealBatchPacked(it, { out: packedOut }),
      open: (it) => w.chachaPoly.openBatchPacked(it, { out: packedOut }),
      prepare: sealed((i) => w.chachaPoly.seal(i.key, i.nonce, i.data, i.aad)),
    });
    const impls: Impl[] = [
      {
        name: 'native AES-256-GCM',
        batch: 1,
        seal: (it) => aes.seal(it[0]!.key, it[0]!.nonce, it[0]!.data, it[0]!.aad),
        open: (it) => aes.open(it[0]!.key, it[0]!.nonce, it[0]!.data, it[0]!.aad),
        prepare: sealed((i) => aes.seal(i.key, i.nonce, i.data, i.aad)),
      },
      wasmImpl('wasm-simd', simd, 0),
      wasmImpl('wasm-simd', simd, 1),
      wasmImpl('wasm-simd', simd, 16),
      wasmImpl('wasm-simd', simd, 256),
      wasmPacked('wasm-simd', simd, 256),
      wasmImpl('wasm-scalar', scalar, 0),
      wasmImpl('wasm-scalar', scalar, 16),
      wasmImpl('wasm-scalar', scalar, 256),
      {
        name: 'webcrypto ChaCha awaited',
        batch: 1,
        async: true,
        seal: (it) => wcSeal(it[0]!),
        open: (it) => wcOpen(it[0]!),
        prepare: async (items) => Promise.all(items.map(async (i) => ({ ...i, data: new Uint8Array(await wcSeal(i)) }))),
      },
      {
        name: 'webcrypto ChaCha Promise.all 256',
        batch: 256,
        async: true,
        seal: (it) => Promise.all(it.map(wcSeal)),
        open: (it) => Promise.all(it.map(wcOpen)),
        prepare: async (items) => Promise.all(items.map(async (i) => ({ ...i, data: new Uint8Array(await wcSeal(i)) }))),
      },
      {
        name: 'noble chacha20poly1305',
        batch: 1,
        seal: (it) => chacha20poly1305(it[0]!.key, it[0]!.nonce, it[0]!.aad).encrypt(it[0]!.data),
        open: (it) => chacha20poly1305(it[0]!.key, it[0]!.nonce, it[0]!.aad).decrypt(it[0]!.data),
        prepare: sealed((i) => chacha20poly1305(i.key, i.nonce, i.aad).encrypt(i.data)),
      },
    ];

    const rows: BenchRow[] = [];
    const rate = new Map<string, number>();
    for (const size of SIZES) {
      // A pool of frames with their own keys and nonces; AAD = a 9-byte frame header (DESIGN §4).
      const pool: AeadBatchItem[] = Array.from({ length: POOL }, () => ({
        key: crypto.getRandomValues(new Uint8Array(32)),
        nonce: crypto.getRandomValues(new Uint8Array(12)),
        aad: crypto.getRandomValues(new Uint8Array(9)),
        data: crypto.getRandomValues(new Uint8Array(size)),
      }));
      for (const op of ['seal', 'open'] as const) {
        let baseline = 0;
        for (const impl of impls) {
          const items = op === 'seal' ? pool : await impl.prepare(pool);
          // Single-call impls walk through the pool, batch impls take `batch` frames at a time.
          let cursor = 0;
          const batches: AeadBatchItem[][] = [];
          for (let i = 0; i < POOL; i += impl.batch) batches.push(items.slice(i, i + impl.batch));
          const fn = op === 'seal' ? impl.seal : impl.open;
          const run = () => fn(batches[cursor++ % batches.length]!);
          const opsPerSec = await measure(run, impl.async === true, impl.batch, ms);
          if (impl.name === 'native AES-256-GCM') baseline = opsPerSec;
          rate.set(`${impl.name}|${op}|${size}`, opsPerSec);
          rows.push({
            size,
            op,
            impl: impl.name,
            'ops/s': Math.round(opsPerSec),
            'MB/s': Math.round((opsPerSec * size) / 1e6),
            'vs AES-GCM': Number((opsPerSec / baseline).toFixed(2)),
          });
          ctx.log(`${size} B ${op} ${impl.name}: ${Math.round(opsPerSec).toLocaleString('en-US')} ops/s`);
        }
      }
    }

    // The kernels alone at 16 KiB, on data already in linear memory (no copies in or out, no
    // output allocation): what the WASM code itself does, to tell it apart from the JS glue.
    const kernel = new Map<string, number>();
    {
      const ex = simd.exports;
      const base = simd.scratch(crypto.getRandomValues(new Uint8Array(64 + 2 * 16384 + 64)));
      const k = base, n = base + 32, src = base + 64, dst = src + 16384 + 16;
      const big = 16384;
      const kern: Record<string, () => unknown> = {
        'ChaCha20 (keystream XOR)': () => ex.chachaXor(k, n, 1, src, dst, big),
        Poly1305: () => ex.poly1305(k, src, big, dst),
        'ChaCha20-Poly1305 seal': () => ex.seal(k, n, 0, 0, src, big, dst),
      };
      ex.seal(k, n, 0, 0, src, big, dst);
      kern['ChaCha20-Poly1305 open'] = () => ex.open(k, n, 0, 0, dst, big + 16, src);
      for (const [name, fn] of Object.entries(kern)) {
        const gbps = ((await measure(fn, false, 1, ms)) * big) / 1e9;
        kernel.set(name, gbps);
        ctx.log(`16 KiB kernel in linear memory, ${name}: ${gbps.toFixed(3)} GB/s`);
      }
    }

    const r = (name: string, op: string, size: number) => rate.get(`${name}|${op}|${size}`)!;
    const bestBatched128 = (op: string) => Math.max(r('wasm-simd batch 16', op, 128), r('wasm-simd batch 256', op, 128), r('wasm-simd packed 256', op, 128));
    const vsAes128 = bestBatched128('seal') / r('native AES-256-GCM', 'seal', 128);
    const vsAes128Open = bestBatched128('open') / r('native AES-256-GCM', 'open', 128);
    const vsNoble128 = bestBatched128('seal') / r('noble chacha20poly1305', 'seal', 128);
    const best16k = Math.max(r('wasm-simd single', 'seal', 16384), r('wasm-simd batch 16', 'seal', 16384), r('wasm-simd batch 256', 'seal', 16384), r('wasm-simd packed 256', 'seal', 16384));
    const gbps16k = (best16k * 16384) / 1e9;
    const best16kOpen = Math.max(r('wasm-simd single', 'open', 16384), r('wasm-simd batch 16', 'open', 16384), r('wasm-simd batch 256', 'open', 16384), r('wasm-simd packed 256', 'open', 16384));
    return {
      rows,
      summary: {
        '128 B batched seal, WASM SIMD / native AES-256-GCM (target ≥ 3)': Number(vsAes128.toFixed(2)),
        '128 B batched open, WASM SIMD / native AES-256-GCM': Number(vsAes128Open.toFixed(2)),
        'target ≥ 3× AES-GCM met': vsAes128 >= 3,
        '128 B batched seal, WASM SIMD / noble (target ≥ 10)': Number(vsNoble128.toFixed(2)),
        'target ≥ 10× noble met': vsNoble128 >= 10,
        '16 KiB seal, WASM SIMD GB/s (target ≥ 1)': Number(gbps16k.toFixed(3)),
        '16 KiB open, WASM SIMD GB/s': Number(((best16kOpen * 16384) / 1e9).toFixed(3)),
        'target ≥ 1 GB/s met': gbps16k >= 1,
        ...Object.fromEntries([...kernel].map(([name, gbps]) => [`16 KiB in linear memory (no JS copies), ${name} GB/s`, Number(gbps.toFixed(3))])),
      },
      notes: [
        'ratios are to native AES-256-GCM (node:crypto createCipheriv, AES-NI) at the same size and operation, measured in the same run; each rate is the best of three timing windows after a warm-up',
        'every frame has its own 32-byte key and 12-byte nonce and a 9-byte AAD; batch N = N frames per JS→WASM call; single calls copy each result out to a fresh Uint8Array, batches copy all results out of linear memory once (sealBatch/openBatch return views of that copy, packed N writes them into a caller-provided buffer and returns offsets)',
        'WebCrypto keys are imported (format raw-secret) once per frame key before timing (a channel keeps its key); AES-GCM and WASM take raw keys per call',
      ],
    };
  },
};

export default bench;
