/**
 * The plain TypeScript per-pulse Monte Carlo: the same algorithm and random stream as the WASM
 * engine's `simulatePulses`, pulse by pulse. It is the benchmark baseline and the test reference
 * (one seed gives bit-identical counts and keys in both engines).
 */
import { seedState256 } from './prng.ts';
import type { SimTables } from './tables.ts';

/** Raw output of one engine run. */
export interface RawRun {
  /** Per class (signal, decoy, vacuum): pulses sent, clicks, sifted clicks, sifted errors. */
  pulses: [number, number, number];
  clicks: [number, number, number];
  sifted: [number, number, number];
  errors: [number, number, number];
  /** Sifted signal bits, bit-packed little-endian (bit i in word i>>5, position i&31). */
  keyA: Uint32Array;
  keyB: Uint32Array;
  /** Bits written to keyA/keyB (≤ capacity). */
  keyBits: number;
}

/** Runs `pulses` pulses one by one. `capBits` bounds the sifted signal bits kept. */
export function simulatePulsesTs(t: SimTables, pulses: number, seed: number, capBits: number): RawRun {
  // xoshiro256** on 32-bit halves (JavaScript has no fast 64-bit integers): h = high, l = low.
  const st = seedState256(seed);
  let s0l = st[0]! | 0;
  let s0h = st[1]! | 0;
  let s1l = st[2]! | 0;
  let s1h = st[3]! | 0;
  let s2l = st[4]! | 0;
  let s2h = st[5]! | 0;
  let s3l = st[6]! | 0;
  let s3h = st[7]! | 0;
  let hiWord = 0;
  /** Next 64-bit output: returns the low word (unsigned), leaves the high word in `hiWord`. */
  const next = (): number => {
    // result = rotl(s1 · 5, 7) · 9, with int32-only carries: carry(a + b) = msb of
    // (a & b) | ((a | b) & ~sum) — keeps every value a small integer for the JIT.
    let al = s1l << 2;
    let l = (al + s1l) | 0;
    let h = (((s1h << 2) | (s1l >>> 30)) + s1h + (((al & s1l) | ((al | s1l) & ~l)) >>> 31)) | 0;
    const rh = (h << 7) | (l >>> 25);
    const rl = (l << 7) | (h >>> 25);
    al = rl << 3;
    l = (al + rl) | 0;
    h = (((rh << 3) | (rl >>> 29)) + rh + (((al & rl) | ((al | rl) & ~l)) >>> 31)) | 0;
    // t = s1 << 17
    const th = (s1h << 17) | (s1l >>> 15);
    const tl = s1l << 17;
    s2h ^= s0h;
    s2l ^= s0l;
    s3h ^= s1h;
    s3l ^= s1l;
    s1h ^= s2h;
    s1l ^= s2l;
    s0h ^= s3h;
    s0l ^= s3l;
    s2h ^= th;
    s2l ^= tl;
    // s3 = rotl(s3, 45): swap halves (32), then rotate by 13
    const a = s3h;
    s3h = (s3l << 13) | (a >>> 19);
    s3l = (a << 13) | (s3l >>> 19);
    hiWord = h >>> 0;
    return l >>> 0;
  };
  const k = t.k;
  const tab = t.pulse;
  const cdf = tab.subarray(0, k);
  const det = tab.subarray(k, 2 * k);
  const sig = tab.subarray(2 * k, 3 * k);
  const cls = tab.subarray(3 * k, 4 * k);
  const nph = tab.subarray(4 * k, 5 * k);
  const guide = tab.subarray(5 * k);
  const perEntry = new Float64Array(k);
  const last = k - 1;
  const eDetT = t.eDetThreshold;
  const eveT = t.eveThreshold;
  const counts = new Float64Array(12);
  const pc = [0, 0, 0];
  const words = Math.ceil(capBits / 32) + 1;
  const keyA = new Uint32Array(words);
  const keyB = new Uint32Array(words);
  let keyBits = 0;
  for (let i = 0; i < pulses; i++) {
    const r1 = next();
    const u = hiWord;
    let e = guide[r1 >>> 24]!;
    while (e < last && r1 >= cdf[e]!) e++;
    perEntry[e]!++;
    if (u < det[e]!) {
      // A click: bases, bits, misalignment and Eve, in the WASM engine's order of draws.
      const c = cls[e]!;
      const photon = u < sig[e]!;
      const r = next();
      const rHigh = hiWord;
      const aBasis = r & 1;
      const aBit = (r >>> 1) & 1;
      const bBasis = (r >>> 2) & 1;
      let bBit = (r >>> 4) & 1;
      if (photon) {
        const flip = rHigh < eDetT ? 1 : 0;
        if (eveT !== 0 && nph[e] !== 0 && next() < eveT) {
          const eBasis = (r >>> 3) & 1;
          const eBit = eBasis === aBasis ? aBit : (r >>> 5) & 1;
          if (bBasis === eBasis) bBit = eBit ^ flip;
        } else if (bBasis === aBasis) {
          bBit = aBit ^ flip;
        }
      }
      counts[c * 4 + 1]!++;
      if (aBasis === bBasis) {
        counts[c * 4 + 2]!++;
        if (aBit !== bBit) counts[c * 4 + 3]!++;
        if (c === 0 && keyBits < capBits) {
          keyA[keyBits >>> 5]! |= aBit << (keyBits & 31);
          keyB[keyBits >>> 5]! |= bBit << (keyBits & 31);
          keyBits++;
        }
      }
    }
  }
  for (let e = 0; e < k; e++) pc[cls[e]!]! += perEntry[e]!;
  return {
    pulses: [pc[0]!, pc[1]!, pc[2]!],
    clicks: [counts[1]!, counts[5]!, counts[9]!],
    sifted: [counts[2]!, counts[6]!, counts[10]!],
    errors: [counts[3]!, counts[7]!, counts[11]!],
    keyA,
    keyB,
    keyBits,
  };
}
