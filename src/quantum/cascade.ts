/**
 * Cascade error correction (Brassard–Salvail 1993), counting every parity bit Alice discloses.
 *
 * Block sizes: k1 = ⌈0.73/Q⌉ (original) doubled each pass, or the "modified" schedule of
 * Martinez-Mateo et al. (2015): k1 = 2^⌈log2(1/Q)⌉ capped, k2 = 4·k1, then n/2, which reaches
 * efficiency f ≈ 1.1–1.2 with enough passes. Shuffles come from a shared public seed.
 */
import { createRng } from './prng.ts';

export interface CascadeOptions {
  /** Estimated QBER (0 < Q < 0.5) used to size blocks. */
  qber: number;
  /** Seed of the public shuffles. */
  seed: number;
  /** Passes (default 4 for 'original', 14 for 'modified'). */
  passes?: number;
  schedule?: 'original' | 'modified';
}

export interface CascadeResult {
  /** Parity bits disclosed (the leakage to subtract in privacy amplification). */
  leakedBits: number;
  /** Bits Bob flipped. */
  corrected: number;
  passes: number;
}

/**
 * Corrects `bob` (one byte per bit) towards `alice` in place. Only parities cross the channel:
 * the comparison with `alice` stands for Alice's announced parities, each one counted as leaked.
 */
export function cascade(alice: Uint8Array, bob: Uint8Array, opts: CascadeOptions): CascadeResult {
  const n = alice.length;
  if (bob.length !== n) throw new RangeError('cascade: strings differ in length');
  if (n === 0) return { leakedBits: 0, corrected: 0, passes: 0 };
  const q = Math.min(0.25, Math.max(1e-4, opts.qber));
  const schedule = opts.schedule ?? 'modified';
  const passes = opts.passes ?? (schedule === 'original' ? 4 : 14);
  const sizes: number[] = [];
  for (let p = 0; p < passes; p++) {
    let k: number;
    if (schedule === 'original') k = Math.ceil(0.73 / q) * 2 ** p;
    else {
      const k1 = Math.min(2 ** Math.ceil(Math.log2(1 / q)), Math.ceil(n / 2));
      k = p === 0 ? k1 : p === 1 ? 4 * k1 : Math.ceil(n / 2);
    }
    sizes.push(Math.max(1, Math.min(k, n)));
  }
  const rng = createRng(opts.seed);
  // perm[p][i] = position of the i-th bit of pass p; where[p][x] = index of bit x in pass p.
  const perms: Uint32Array[] = [];
  const where: Uint32Array[] = [];
  const diff: Uint8Array[] = [];
  let leaked = 0;
  let corrected = 0;

  // Binary search inside block b of pass p (its parity is known to differ): returns the index.
  const search = (p: number, b: number): number => {
    const perm = perms[p]!;
    let lo = b * sizes[p]!;
    let hi = Math.min(lo + sizes[p]!, n);
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      let pa = 0;
      let pb = 0;
      for (let i = lo; i < mid; i++) {
        const x = perm[i]!;
        pa ^= alice[x]!;
        pb ^= bob[x]!;
      }
      leaked++; // Alice announces the parity of the first half
      if (pa !== pb) hi = mid;
      else lo = mid;
    }
    return perm[lo]!;
  };

  const queue: number[] = [];
  const flip = (x: number, upTo: number) => {
    bob[x]! ^= 1;
    corrected++;
    for (let p = 0; p <= upTo; p++) {
      const b = Math.floor(where[p]![x]! / sizes[p]!);
      diff[p]![b]! ^= 1;
      if (diff[p]![b]) queue.push(p, b);
    }
  };

  for (let p = 0; p < passes; p++) {
    const perm = new Uint32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    if (p > 0) {
      for (let i = n - 1; i > 0; i--) {
        const j = rng.u32() % (i + 1);
        const t = perm[i]!;
        perm[i] = perm[j]!;
        perm[j] = t;
      }
    }
    const inv = new Uint32Array(n);
    for (let i = 0; i < n; i++) inv[perm[i]!] = i;
    perms.push(perm);
    where.push(inv);
    const k = sizes[p]!;
    const blocks = Math.ceil(n / k);
    const d = new Uint8Array(blocks);
    for (let b = 0; b < blocks; b++) {
      let pa = 0;
      let pb = 0;
      const end = Math.min((b + 1) * k, n);
      for (let i = b * k; i < end; i++) {
        pa ^= alice[perm[i]!]!;
        pb ^= bob[perm[i]!]!;
      }
      leaked++; // Alice announces each block's parity
      d[b] = pa ^ pb;
    }
    diff.push(d);
    for (let b = 0; b < blocks; b++) {
      if (!d[b]) continue;
      flip(search(p, b), p);
      // Cascade: blocks of earlier passes that now hold an odd number of errors.
      while (queue.length > 0) {
        const qb = queue.pop()!;
        const qp = queue.pop()!;
        if (diff[qp]![qb]) flip(search(qp, qb), p);
      }
    }
  }
  return { leakedBits: leaked, corrected, passes };
}
