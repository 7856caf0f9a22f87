// Decoy-state BB84 link simulator and post-processing kernels (AssemblyScript).
//
// The model is QKD-MODEL.md: weak coherent pulses with Poisson photon numbers at three
// intensities (signal μ, decoy ν, vacuum), fibre + detector transmittance η, dark counts Y0,
// misalignment e_det and an optional intercept-resend eavesdropper on a fraction of pulses.
//
// The probability tables are computed once in TypeScript (src/quantum/tables.ts) and written
// into linear memory, so this module and the plain TypeScript reference draw the same random
// numbers in the same order and give bit-identical results for one seed (per-pulse mode).
//
// Table layout at `tab` (K entries each, u32): cdf | det | sig | cls | nph
//   cdf[k]  cumulative probability of entry k (class, photon number) × 2^32
//   det[k]  P(click | entry) × 2^32            (per-pulse mode)
//   sig[k]  P(photon click | entry) × 2^32     (per-pulse: unconditional; skip: given a click)
//   cls[k]  intensity class (0 signal, 1 decoy, 2 vacuum), nph[k] photon number
// Per-pulse tables are followed by a 256-entry guide table (see src/quantum/tables.ts).
// Stats at `stats` (f64): for class c, [c*4+0] pulses, +1 clicks, +2 sifted, +3 sifted errors;
// per-pulse mode uses k u64 counters after the 96 bytes of stats as scratch.
// Keys: sifted signal bits of Alice at `keyA`, of Bob at `keyB`, bit-packed little-endian.

// xoshiro256** state (Blackman–Vigna), 4 × u64; seeded from TypeScript (splitmix32 words).
let s0: u64 = 1;
let s1: u64 = 0;
let s2: u64 = 0;
let s3: u64 = 0;

/** Start of free linear memory (after static data). */
export function heapBase(): usize {
  return __heap_base;
}

/** Sets the PRNG state from eight 32-bit words (lo, hi of s0 … s3); all-zero becomes s0 = 1. */
export function setState(a: u32, b: u32, c: u32, d: u32, e: u32, f: u32, g: u32, h: u32): void {
  s0 = (<u64>b << 32) | <u64>a;
  s1 = (<u64>d << 32) | <u64>c;
  s2 = (<u64>f << 32) | <u64>e;
  s3 = (<u64>h << 32) | <u64>g;
  if ((s0 | s1 | s2 | s3) == 0) s0 = 1;
}

// @ts-ignore: decorator
@inline
function next(): u64 {
  const result = rotl<u64>(s1 * 5, 7) * 9;
  const t = s1 << 17;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = rotl<u64>(s3, 45);
  return result;
}

/** Exported draw (low 32 bits, then high 32 bits) for cross-checking the generator against TS. */
export function nextLo(): u32 {
  return <u32>next();
}

// Key writers (bit-packed, flushed every 32 bits).
let accA: u32 = 0;
let accB: u32 = 0;
let keyBits: u32 = 0;
let keyCap: u32 = 0;
let keyAPtr: usize = 0;
let keyBPtr: usize = 0;
let statsPtr: usize = 0;
let eDetT: u32 = 0;
let eveT: u32 = 0;

// @ts-ignore: decorator
@inline
function bump(index: i32, by: f64): void {
  const p = statsPtr + (<usize>index << 3);
  store<f64>(p, load<f64>(p) + by);
}

/** One click: draws bases, bits, misalignment and Eve, tallies and keeps sifted signal bits. */
// @ts-ignore: decorator
@inline
function click(c: u32, n: u32, photon: bool): void {
  // One 64-bit draw: low word gives the bases and bits, high word the misalignment flip.
  const r64 = next();
  const r = <u32>r64;
  const aBasis = r & 1;
  const aBit = (r >> 1) & 1;
  const bBasis = (r >> 2) & 1;
  let bBit: u32 = (r >> 4) & 1; // a random outcome unless the photon decides it
  if (photon) {
    const flip: u32 = <u32>(r64 >> 32) < eDetT ? 1 : 0;
    if (eveT != 0 && n != 0 && <u32>next() < eveT) {
      // Intercept-resend: Eve measures in a random basis and resends her result.
      const eBasis = (r >> 3) & 1;
      const eBit = eBasis == aBasis ? aBit : (r >> 5) & 1;
      if (bBasis == eBasis) bBit = eBit ^ flip;
    } else if (bBasis == aBasis) {
      bBit = aBit ^ flip;
    }
  }
  const base = <i32>c << 2;
  bump(base + 1, 1);
  if (aBasis == bBasis) {
    bump(base + 2, 1);
    if (aBit != bBit) bump(base + 3, 1);
    if (c == 0 && keyBits < keyCap) {
      const sh = keyBits & 31;
      accA |= aBit << sh;
      accB |= bBit << sh;
      keyBits++;
      if ((keyBits & 31) == 0) {
        const off = <usize>((keyBits >> 5) - 1) << 2;
        store<u32>(keyAPtr + off, accA);
        store<u32>(keyBPtr + off, accB);
        accA = 0;
        accB = 0;
      }
    }
  }
}

function begin(stats: usize, keyA: usize, keyB: usize, capBits: u32, eDetThreshold: u32, eveThreshold: u32): void {
  statsPtr = stats;
  keyAPtr = keyA;
  keyBPtr = keyB;
  keyCap = capBits;
  keyBits = 0;
  accA = 0;
  accB = 0;
  eDetT = eDetThreshold;
  eveT = eveThreshold;
  memory.fill(stats, 0, 12 * 8);
}

function finish(): u32 {
  if ((keyBits & 31) != 0) {
    const off = <usize>(keyBits >> 5) << 2;
    store<u32>(keyAPtr + off, accA);
    store<u32>(keyBPtr + off, accB);
  }
  return keyBits;
}

// @ts-ignore: decorator
@inline
function search(tab: usize, last: u32, u: u32): u32 {
  let k: u32 = 0;
  while (k < last && u >= load<u32>(tab + (<usize>k << 2))) k++;
  return k;
}

/**
 * Per-pulse Monte Carlo: every pulse draws its (intensity, photon number) entry and whether it
 * clicks. Returns the number of sifted signal bits written (capped at capBits).
 */
export function simulatePulses(
  tab: usize,
  k: u32,
  pulses: f64,
  eDetThreshold: u32,
  eveThreshold: u32,
  stats: usize,
  keyA: usize,
  keyB: usize,
  capBits: u32,
): u32 {
  begin(stats, keyA, keyB, capBits, eDetThreshold, eveThreshold);
  const det = tab + (<usize>k << 2);
  const sig = tab + (<usize>k << 3);
  const cls = tab + (<usize>k * 12);
  const nph = tab + (<usize>k << 4);
  const last = k - 1;
  const guide = tab + (<usize>k * 20);
  const total = <u64>pulses;
  // Pulses per entry (u64 at `counts`), summed per class at the end.
  const counts = stats + 96;
  memory.fill(counts, 0, <usize>k << 3);
  for (let i: u64 = 0; i < total; i++) {
    // One 64-bit draw per pulse: low word picks the entry, high word decides the click.
    const r64 = next();
    const r1 = <u32>r64;
    let e = load<u32>(guide + (<usize>(r1 >> 24) << 2));
    while (e < last && r1 >= load<u32>(tab + (<usize>e << 2))) e++;
    const off = <usize>e << 2;
    const cp = counts + (<usize>e << 3);
    store<u64>(cp, load<u64>(cp) + 1);
    const u = <u32>(r64 >> 32);
    if (u < load<u32>(det + off)) click(load<u32>(cls + off), load<u32>(nph + off), u < load<u32>(sig + off));
  }
  for (let e: u32 = 0; e < k; e++) {
    const sp = stats + (<usize>load<u32>(cls + (<usize>e << 2)) << 5);
    store<f64>(sp, load<f64>(sp) + <f64>load<u64>(counts + (<usize>e << 3)));
  }
  return finish();
}

/**
 * Event-skipping Monte Carlo: pulses are i.i.d., so the gap to the next click is geometric with
 * the mixture click probability; at a click the entry is drawn from its posterior. Pulse counts
 * per class are left for TypeScript to sample (multinomial over the pulses that did not click).
 * `logNoClick` is ln(1 − P(click)). Returns the number of sifted signal bits written.
 */
export function simulateSkip(
  tab: usize,
  k: u32,
  pulses: f64,
  logNoClick: f64,
  eDetThreshold: u32,
  eveThreshold: u32,
  stats: usize,
  keyA: usize,
  keyB: usize,
  capBits: u32,
): u32 {
  begin(stats, keyA, keyB, capBits, eDetThreshold, eveThreshold);
  const sig = tab + (<usize>k << 3);
  const cls = tab + (<usize>k * 12);
  const nph = tab + (<usize>k << 4);
  const last = k - 1;
  const inv = 1.0 / logNoClick;
  let pos: f64 = 0;
  while (true) {
    // 53-bit uniform in (0, 1]: the geometric tail is exact far beyond any block length.
    const u = (<f64>(next() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    pos += Math.floor(Math.log(u) * inv);
    if (pos >= pulses) break;
    const r64 = next();
    const e = search(tab, last, <u32>r64);
    const off = <usize>e << 2;
    click(load<u32>(cls + off), load<u32>(nph + off), <u32>(r64 >> 32) < load<u32>(sig + off));
    pos += 1;
  }
  return finish();
}

/**
 * Toeplitz hashing, word-level: out_i = parity(seed[i .. i+n) AND x) for i < m, where `x` is
 * the input with its bit order reversed (so T[i][j] = seed[i − j + n − 1], a Toeplitz matrix).
 * `seed` holds n + m − 1 bits plus 8 zero bytes of padding; `x` is zero-padded to 64 bits.
 * Parity of an AND over many words is the parity of the XOR of the ANDed words: one popcnt/row.
 */
export function toeplitz(seed: usize, x: usize, n: u32, out: usize, m: u32): void {
  const words = (n + 63) >> 6;
  memory.fill(out, 0, <usize>((m + 31) >> 5) << 2);
  for (let i: u32 = 0; i < m; i++) {
    const sh = <u64>(i & 63);
    const base = seed + (<usize>(i >> 6) << 3);
    let acc: u64 = 0;
    let cur = load<u64>(base);
    if (sh == 0) {
      for (let w: u32 = 0; w < words; w++) {
        acc ^= load<u64>(base + (<usize>w << 3)) & load<u64>(x + (<usize>w << 3));
      }
    } else {
      const back = 64 - sh;
      for (let w: u32 = 0; w < words; w++) {
        const nxt = load<u64>(base + (<usize>(w + 1) << 3));
        acc ^= ((cur >> sh) | (nxt << back)) & load<u64>(x + (<usize>w << 3));
        cur = nxt;
      }
    }
    const bit = <u32>(popcnt<u64>(acc) & 1);
    const p = out + (<usize>(i >> 5) << 2);
    store<u32>(p, load<u32>(p) | (bit << (i & 31)));
  }
}

/** Number of differing bits between two bit-packed arrays of `words` u32 words. */
export function hamming(a: usize, b: usize, words: u32): u32 {
  let d: u32 = 0;
  for (let w: u32 = 0; w < words; w++) {
    const off = <usize>w << 2;
    d += popcnt<u32>(load<u32>(a + off) ^ load<u32>(b + off));
  }
  return d;
}
