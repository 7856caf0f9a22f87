/**
 * Loader of `wasm/build/qkd.wasm` (build with `bun run build:wasm`): one instance per thread,
 * instantiated synchronously on first use, with a bump region of linear memory reused per call.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RawRun } from './reference.ts';
import { seedState256 } from './prng.ts';
import type { SimTables } from './tables.ts';

interface QkdExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  setState(a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number): void;
  nextLo(): number;
  simulatePulses(
    tab: number,
    k: number,
    pulses: number,
    eDetT: number,
    eveT: number,
    stats: number,
    keyA: number,
    keyB: number,
    capBits: number,
  ): number;
  simulateSkip(
    tab: number,
    k: number,
    pulses: number,
    logNoClick: number,
    eDetT: number,
    eveT: number,
    stats: number,
    keyA: number,
    keyB: number,
    capBits: number,
  ): number;
  toeplitz(seed: number, x: number, n: number, out: number, m: number): void;
  hamming(a: number, b: number, words: number): number;
}

/** Path of the compiled module. */
export const qkdWasmPath = resolve(import.meta.dir, '../../wasm/build/qkd.wasm');

let instance: QkdExports | null = null;

/** The module's exports; throws a clear error when the module has not been built. */
export function qkdWasm(): QkdExports {
  if (instance) return instance;
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(qkdWasmPath);
  } catch {
    throw new Error(`QKD WASM module missing at ${qkdWasmPath}: run \`bun run build:wasm\``);
  }
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  instance = new WebAssembly.Instance(module, {
    env: {
      abort() {
        throw new Error('qkd.wasm aborted');
      },
    },
  }).exports as unknown as QkdExports;
  return instance;
}

/** Grows memory so that [base, base + bytes) exists; returns base aligned to 16. */
function reserve(w: QkdExports, bytes: number): number {
  const base = (w.heapBase() + 15) & ~15;
  const need = base + bytes;
  const have = w.memory.buffer.byteLength;
  if (need > have) w.memory.grow(Math.ceil((need - have) / 65536));
  return base;
}

/** Which WASM Monte Carlo: every pulse, or gaps between clicks sampled geometrically. */
export type WasmMode = 'pulse' | 'skip';

/**
 * Runs the WASM Monte Carlo. In skip mode the per-class pulse counts of pulses that did not
 * click are drawn afterwards from their multinomial (normal approximation, exact to < 1e-6
 * relative at block sizes ≥ 10^5), using `rngNormal`.
 */
export function simulateWasm(
  t: SimTables,
  pulses: number,
  seed: number,
  capBits: number,
  mode: WasmMode,
  rngNormal: () => number,
): RawRun {
  const w = qkdWasm();
  const kTab = mode === 'pulse' ? t.k : t.kSkip;
  const words = Math.ceil(capBits / 32) + 1;
  const table = mode === 'pulse' ? t.pulse : t.skip;
  const tabBytes = table.length * 4;
  const base = reserve(w, tabBytes + 96 + 8 * kTab + 8 * words + 64);
  const tab = base;
  const stats = (tab + tabBytes + 15) & ~15;
  const keyA = stats + 96 + 8 * kTab;
  const keyB = keyA + 4 * words;
  new Uint32Array(w.memory.buffer, tab, table.length).set(table);
  const st = seedState256(seed);
  w.setState(st[0]!, st[1]!, st[2]!, st[3]!, st[4]!, st[5]!, st[6]!, st[7]!);
  const bits =
    mode === 'pulse'
      ? w.simulatePulses(tab, kTab, pulses, t.eDetThreshold, t.eveThreshold, stats, keyA, keyB, capBits)
      : w.simulateSkip(
          tab,
          kTab,
          pulses,
          Math.log1p(-t.pClick),
          t.eDetThreshold,
          t.eveThreshold,
          stats,
          keyA,
          keyB,
          capBits,
        );
  const mem = w.memory.buffer;
  const s = new Float64Array(mem, stats, 12);
  const clicks: [number, number, number] = [s[1]!, s[5]!, s[9]!];
  let pulseCounts: [number, number, number];
  if (mode === 'pulse') {
    pulseCounts = [s[0]!, s[4]!, s[8]!];
  } else {
    const quiet = pulses - clicks[0] - clicks[1] - clicks[2];
    pulseCounts = multinomial(quiet, t.noClickClass, rngNormal);
    for (let c = 0; c < 3; c++) pulseCounts[c]! += clicks[c]!;
  }
  const used = Math.ceil(bits / 32);
  return {
    pulses: pulseCounts,
    clicks,
    sifted: [s[2]!, s[6]!, s[10]!],
    errors: [s[3]!, s[7]!, s[11]!],
    keyA: new Uint32Array(mem.slice(keyA, keyA + 4 * used)),
    keyB: new Uint32Array(mem.slice(keyB, keyB + 4 * used)),
    keyBits: bits,
  };
}

/** Multinomial counts of `n` trials over three cells, by chained normal-approximate binomials. */
function multinomial(n: number, p: readonly number[], normal: () => number): [number, number, number] {
  const out: [number, number, number] = [0, 0, 0];
  let left = n;
  let mass = 1;
  for (let c = 0; c < 2; c++) {
    const q = Math.min(1, Math.max(0, p[c]! / mass));
    const x = Math.round(left * q + Math.sqrt(left * q * (1 - q)) * normal());
    out[c] = Math.min(left, Math.max(0, x));
    left -= out[c]!;
    mass -= p[c]!;
  }
  out[2] = left;
  return out;
}

/**
 * Toeplitz hashing of an n-bit input to m bits with an (n + m − 1)-bit seed, in WASM.
 * Bits are packed little-endian in Uint32Arrays (bit i in word i>>5, position i&31).
 * T[i][j] = seed[i − j + n − 1]; out_i = ⊕_j T[i][j]·x_j.
 */
export function toeplitzWasm(seed: Uint32Array, x: Uint32Array, n: number, m: number): Uint32Array {
  const w = qkdWasm();
  const seedBits = n + m - 1;
  const seedWords64 = Math.ceil(seedBits / 64) + 2;
  const xWords64 = Math.ceil(n / 64) + 1;
  const outWords = Math.ceil(m / 32);
  const base = reserve(w, 8 * (seedWords64 + xWords64) + 4 * outWords + 32);
  const seedPtr = base;
  const xPtr = seedPtr + 8 * seedWords64;
  const outPtr = xPtr + 8 * xWords64;
  const mem = new Uint32Array(w.memory.buffer);
  mem.fill(0, seedPtr >>> 2, (outPtr >>> 2) + outWords);
  mem.set(seed.subarray(0, Math.ceil(seedBits / 32)), seedPtr >>> 2);
  // Mask any seed bits past n + m − 1 so stale bits never enter a window.
  if (seedBits & 31) mem[(seedPtr >>> 2) + (seedBits >>> 5)]! &= (1 << (seedBits & 31)) - 1;
  // Reverse the input's bit order: row i then reads the seed window [i, i + n).
  const rev = new Uint32Array(w.memory.buffer, xPtr, 2 * xWords64);
  for (let j = 0; j < n; j++) {
    if ((x[j >>> 5]! >>> (j & 31)) & 1) {
      const r = n - 1 - j;
      rev[r >>> 5]! |= 1 << (r & 31);
    }
  }
  w.toeplitz(seedPtr, xPtr, n, outPtr, m);
  return new Uint32Array(w.memory.buffer.slice(outPtr, outPtr + 4 * outWords));
}
