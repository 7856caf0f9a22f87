/**
 * Seeded generators. The Monte Carlo engines (WASM and the TypeScript reference) share
 * xoshiro256** seeded from `seedState256`, so one seed gives the same run in both. Protocol-side
 * randomness (sampling, shuffles, Toeplitz seeds) uses the 32-bit xoshiro128** below.
 */

/** Mixes a 32-bit counter into a well-spread word (splitmix32 finaliser). */
function mix32(z: number): number {
  z ^= z >>> 16;
  z = Math.imul(z, 0x21f0aaad);
  z ^= z >>> 15;
  z = Math.imul(z, 0x735a2d97);
  z ^= z >>> 15;
  return z >>> 0;
}

/** Four state words from a seed (any safe integer). Never all zero. */
export function seedState(seed: number): [number, number, number, number] {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  let x = (lo ^ Math.imul(hi, 0x85ebca6b)) | 0;
  const out: number[] = [];
  for (let i = 0; i < 4; i++) {
    x = (x + 0x9e3779b9) | 0;
    out.push(mix32(x));
  }
  if ((out[0]! | out[1]! | out[2]! | out[3]!) === 0) out[0] = 1;
  return out as [number, number, number, number];
}

/** Eight 32-bit words (lo, hi of the four 64-bit words) of xoshiro256** state from a seed. */
export function seedState256(seed: number): number[] {
  const a = seedState(seed);
  const b = seedState(seed + 0x632be5ab);
  return [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]];
}

/** A stateful xoshiro128** generator. */
export interface Rng {
  /** Next 32-bit unsigned word. */
  u32(): number;
  /** Uniform in [0, 1) with 53 bits. */
  float(): number;
  /** Standard normal deviate (Box–Muller). */
  normal(): number;
  /** The current state, e.g. to hand to the WASM engine. */
  state(): [number, number, number, number];
  /** Replaces the state. */
  setState(s: readonly number[]): void;
}

/** Creates a generator from a seed. */
export function createRng(seed: number): Rng {
  let [s0, s1, s2, s3] = seedState(seed);
  const u32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
  const float = () => ((u32() >>> 5) * 67108864 + (u32() >>> 6)) / 9007199254740992;
  return {
    u32,
    float,
    normal() {
      const u = 1 - float();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * float());
    },
    state: () => [s0 >>> 0, s1 >>> 0, s2 >>> 0, s3 >>> 0],
    setState(s) {
      [s0, s1, s2, s3] = [s[0]! | 0, s[1]! | 0, s[2]! | 0, s[3]! | 0];
    },
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
