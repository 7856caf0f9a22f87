/**
 * Privacy amplification by Toeplitz hashing (a 2-universal family): n input bits to m output
 * bits with a seed of n + m − 1 bits, T[i][j] = seed[i − j + n − 1]. The fast path is the WASM
 * word-level kernel; `toeplitzNaive` is the bit-by-bit reference the tests compare it with.
 */
import { toeplitzWasm } from './wasm.ts';

const bit = (w: Uint32Array, i: number) => (w[i >>> 5]! >>> (i & 31)) & 1;

/** Bit-by-bit reference: out_i = ⊕_j seed[i − j + n − 1]·x_j. O(n·m). */
export function toeplitzNaive(seed: Uint32Array, x: Uint32Array, n: number, m: number): Uint32Array {
  const out = new Uint32Array(Math.ceil(m / 32));
  for (let i = 0; i < m; i++) {
    let acc = 0;
    for (let j = 0; j < n; j++) acc ^= bit(seed, i - j + n - 1) & bit(x, j);
    if (acc) out[i >>> 5]! |= 1 << (i & 31);
  }
  return out;
}

/** Word-level Toeplitz hash in WASM (same result as `toeplitzNaive`). */
export function toeplitzHash(seed: Uint32Array, x: Uint32Array, n: number, m: number): Uint32Array {
  if (m <= 0) return new Uint32Array(0);
  if (seed.length * 32 < n + m - 1) throw new RangeError(`Toeplitz seed needs ${n + m - 1} bits`);
  return toeplitzWasm(seed, x, n, m);
}
