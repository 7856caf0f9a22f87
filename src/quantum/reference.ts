/**
 * The plain TypeScript per-pulse Monte Carlo: the same algorithm and random stream as the WASM
 * engine's `simulatePulses`, pulse by pulse. It is the benchmark baseline and the test reference
 * (one seed gives bit-identical counts and keys in both engines).
 */
import { seedState } from './prng.ts';
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
  let [s0, s1, s2, s3] = seedState(seed);
  const next = (): number => {
    const result = Math.imul(((Math.imul(s1, 5) << 7) | (Math.imul(s1, 5) >>> 25)), 9) >>> 0;
    const u = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= u;
    s3 = (s3 << 11) | (s3 >>> 21);
    return result;
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
    let e = guide[r1 >>> 24]!;
    while (e < last && r1 >= cdf[e]!) e++;
    perEntry[e]!++;
    const u = next();
    if (u < det[e]!) {
      // A click: bases, bits, misalignment and Eve, in the WASM engine's order of draws.
      const c = cls[e]!;
      const photon = u < sig[e]!;
      const r = next();
      const aBasis = r & 1;
      const aBit = (r >>> 1) & 1;
      const bBasis = (r >>> 2) & 1;
      let bBit = (r >>> 4) & 1;
      if (photon) {
        const flip = next() < eDetT ? 1 : 0;
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
