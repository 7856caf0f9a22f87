/**
 * One block of a QKD link, end to end: Monte Carlo of the quantum exchange (sifting included),
 * parameter estimation on a random sample, vacuum + weak decoy bounds, Cascade, a verification
 * hash and Toeplitz privacy amplification, with the aborts of QKD-MODEL.md.
 */
import { createHash } from 'node:crypto';
import { packBits, unpackBits, wordsToBytes } from './bits.ts';
import { cascade } from './cascade.ts';
import { e1Upper, h2, qberThreshold, y1Lower } from './model.ts';
import { createRng, type Rng } from './prng.ts';
import { type RawRun, simulatePulsesTs } from './reference.ts';
import { buildTables, type SimParams, type SimTables } from './tables.ts';
import { toeplitzHash } from './toeplitz.ts';
import { simulateWasm } from './wasm.ts';

/** Which Monte Carlo engine runs the quantum exchange. */
export type Engine = 'wasm-skip' | 'wasm-pulse' | 'ts-pulse';

/** Observables of one run, per intensity class. */
export interface RunStats {
  pulses: number;
  /** Per class [signal, decoy, vacuum]. */
  sent: [number, number, number];
  clicks: [number, number, number];
  sifted: [number, number, number];
  /** True sifted error counts (known to the simulator; the protocol only uses public ones). */
  errors: [number, number, number];
  /** Gains Q = clicks / pulses sent, per class. */
  gain: [number, number, number];
  /** True QBER of sifted clicks, per class. */
  qber: [number, number, number];
}

/** Runs the Monte Carlo only (no post-processing). */
export function runMonteCarlo(
  params: SimParams,
  pulses: number,
  opts: { seed?: number; engine?: Engine; capBits?: number; tables?: SimTables } = {},
): RunStats & { raw: RawRun } {
  const { seed = 1, engine = 'wasm-skip' } = opts;
  const tables = opts.tables ?? buildTables(params);
  // Sifted clicks of all classes bound the sifted signal bits; + 6σ + slack never truncates.
  const expected = (pulses * tables.pClick) / 2;
  const capBits = opts.capBits ?? Math.min(2 ** 28, Math.ceil(expected + 6 * Math.sqrt(expected) + 1024));
  const rng = createRng(seed ^ 0x5bd1e995);
  const raw =
    engine === 'ts-pulse'
      ? simulatePulsesTs(tables, pulses, seed, capBits)
      : simulateWasm(tables, pulses, seed, capBits, engine === 'wasm-pulse' ? 'pulse' : 'skip', rng.normal);
  return { ...statsOf(raw, pulses), raw };
}

function statsOf(raw: RawRun, pulses: number): RunStats {
  const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
  return {
    pulses,
    sent: raw.pulses,
    clicks: raw.clicks,
    sifted: raw.sifted,
    errors: raw.errors,
    gain: [0, 1, 2].map((c) => ratio(raw.clicks[c]!, raw.pulses[c]!)) as [number, number, number],
    qber: [0, 1, 2].map((c) => ratio(raw.errors[c]!, raw.sifted[c]!)) as [number, number, number],
  };
}

export interface BlockOptions {
  seed?: number;
  engine?: Engine;
  /** Fraction of sifted signal bits disclosed to estimate the QBER (default 0.1). */
  sampleFraction?: number;
  /** Standard deviations of the QBER upper bound (default 3, ~99.9 % one-sided). */
  confidenceZ?: number;
  /** Abort above this QBER upper bound (default 0.11). */
  qberAbort?: number;
  /** Security parameter of privacy amplification, bits subtracted: 2·log2(1/ε) (default ε = 1e-10). */
  epsilonPa?: number;
  /** Input bits per Toeplitz sub-block (default 2^16): cost is linear in the block length. */
  paBlockBits?: number;
  /** Bits per Cascade frame (default 2^16); frames are corrected independently. */
  ecFrameBits?: number;
  /** Cascade block-size schedule (default 'original', 4 passes). */
  ecSchedule?: 'original' | 'modified';
  /** Skip privacy amplification (the Monte Carlo + estimation only), e.g. for convergence runs. */
  estimateOnly?: boolean;
}

export type AbortReason = 'qber' | 'decoy' | 'verification' | 'key-length' | 'no-clicks';

export interface BlockResult {
  stats: RunStats;
  /** Estimated QBER of the signal from the disclosed sample, and its upper bound. */
  qberEstimate: number;
  qberUpper: number;
  sampleBits: number;
  /** Decoy bounds from observed gains: Y1^L, e1^U, and Y0 from vacuum pulses. */
  y0Estimate: number;
  y1Lower: number;
  e1Upper: number;
  /** Sifted signal bits kept for the key (after the sample). */
  keyInputBits: number;
  /** Bits leaked by Cascade and by the verification hash. */
  leakEc: number;
  leakVerify: number;
  /** Cascade efficiency f = leakEc / (n·H2(Q)), Q the true error fraction of the input. */
  cascadeEfficiency: number;
  /** Secret bits produced (a multiple of 8), and the key itself. */
  secretBits: number;
  key: Uint8Array;
  /** Why the block produced no key, or null. */
  aborted: AbortReason | null;
  /** QBER bound above threshold: the link raises its eavesdropping alert. */
  eavesdropping: boolean;
  /** Wall milliseconds per stage. */
  timings: { simulate: number; estimate: number; cascade: number; amplify: number };
}

/** Runs one block of `pulses` pulses through the whole protocol. */
export function runBlock(params: SimParams, pulses: number, opts: BlockOptions = {}): BlockResult {
  const {
    seed = 1,
    engine = 'wasm-skip',
    sampleFraction = 0.1,
    confidenceZ = 3,
    qberAbort = qberThreshold,
    epsilonPa = 1e-10,
    paBlockBits = 65536,
  } = opts;
  const t0 = performance.now();
  const mc = runMonteCarlo(params, pulses, { seed, engine });
  const t1 = performance.now();
  const rng = createRng(seed * 7 + 13);
  const { raw } = mc;
  const n = raw.keyBits;
  const result: BlockResult = {
    stats: statsOf(raw, pulses),
    qberEstimate: 0,
    qberUpper: 0,
    sampleBits: 0,
    y0Estimate: 0,
    y1Lower: 0,
    e1Upper: 0,
    keyInputBits: 0,
    leakEc: 0,
    leakVerify: 0,
    cascadeEfficiency: 0,
    secretBits: 0,
    key: new Uint8Array(0),
    aborted: null,
    eavesdropping: false,
    timings: { simulate: t1 - t0, estimate: 0, cascade: 0, amplify: 0 },
  };
  if (n < 64) {
    result.aborted = 'no-clicks';
    return result;
  }

  // Parameter estimation: disclose a random sample of the sifted signal bits.
  const alice = unpackBits(raw.keyA, n);
  const bob = unpackBits(raw.keyB, n);
  const keepA = new Uint8Array(n);
  const keepB = new Uint8Array(n);
  let kept = 0;
  let sample = 0;
  let sampleErrors = 0;
  const threshold = Math.floor(sampleFraction * 2 ** 32);
  for (let i = 0; i < n; i++) {
    if (rng.u32() < threshold) {
      sample++;
      sampleErrors += alice[i]! ^ bob[i]!;
    } else {
      keepA[kept] = alice[i]!;
      keepB[kept] = bob[i]!;
      kept++;
    }
  }
  const eHat = sample > 0 ? sampleErrors / sample : 0.5;
  result.sampleBits = sample;
  result.qberEstimate = eHat;
  result.qberUpper = wilsonUpper(sampleErrors, sample, confidenceZ);
  const [qMu, qNu] = [result.stats.gain[0], result.stats.gain[1]];
  // Decoy and vacuum bits are not key: their bases and values are all announced.
  const eNu = raw.sifted[1] > 0 ? raw.errors[1] / raw.sifted[1] : 0.5;
  const y0 = result.stats.gain[2];
  const { mu, nu } = params;
  result.y0Estimate = y0;
  result.y1Lower = y1Lower(mu, nu, qMu, qNu, y0);
  result.e1Upper = result.y1Lower > 0 ? Math.min(0.5, e1Upper(nu, qNu, eNu, y0, result.y1Lower)) : 0.5;
  result.keyInputBits = kept;
  const t2 = performance.now();
  result.timings.estimate = t2 - t1;
  if (result.qberUpper > qberAbort) {
    result.aborted = 'qber';
    result.eavesdropping = true;
    return result;
  }
  if (!(result.y1Lower > 0) || result.e1Upper >= 0.5) {
    result.aborted = 'decoy';
    return result;
  }
  if (opts.estimateOnly) return result;

  // Error correction (Cascade) and verification.
  const a = keepA.subarray(0, kept);
  const b = keepB.subarray(0, kept);
  let trueErrors = 0;
  for (let i = 0; i < kept; i++) trueErrors += a[i]! ^ b[i]!;
  const { ecFrameBits = 65536, ecSchedule = 'original' } = opts;
  for (let start = 0; start < kept; start += ecFrameBits) {
    const end = Math.min(kept, start + ecFrameBits);
    const ec = cascade(a.subarray(start, end), b.subarray(start, end), {
      qber: Math.max(eHat, 1 / kept),
      seed: seed + 101 + start,
      schedule: ecSchedule,
    });
    result.leakEc += ec.leakedBits;
  }
  result.cascadeEfficiency =
    trueErrors > 0 ? result.leakEc / (kept * h2(trueErrors / kept)) : Number.POSITIVE_INFINITY;
  const packedA = packBits(a);
  const packedB = packBits(b);
  result.leakVerify = 64;
  const tag = (w: Uint32Array) =>
    createHash('sha256')
      .update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength))
      .digest()
      .subarray(0, 8);
  const t3 = performance.now();
  result.timings.cascade = t3 - t2;
  if (!tag(packedA).equals(tag(packedB))) {
    result.aborted = 'verification';
    return result;
  }

  // Privacy amplification: GLLP with decoys on the kept bits, minus every disclosed bit.
  const singleFraction = Math.min(1, (result.y1Lower * mu * Math.exp(-mu)) / qMu);
  const secret =
    kept * singleFraction * (1 - h2(result.e1Upper)) -
    result.leakEc -
    result.leakVerify -
    2 * Math.log2(1 / epsilonPa);
  const m = Math.floor(secret / 8) * 8;
  if (m <= 0) {
    result.aborted = 'key-length';
    return result;
  }
  // Sub-blocks of at most paBlockBits input bits, each hashed to its share of m.
  const out = new Uint8Array(m >>> 3);
  const blocks = Math.ceil(kept / paBlockBits);
  let written = 0;
  for (let blk = 0; blk < blocks; blk++) {
    const start = blk * paBlockBits;
    const len = Math.min(paBlockBits, kept - start);
    const share = blk === blocks - 1 ? m - written : Math.floor((m * len) / kept / 8) * 8;
    if (share <= 0) continue;
    const x = packBits(a.subarray(start, start + len));
    const seedWords = new Uint32Array(Math.ceil((len + share - 1) / 32));
    for (let i = 0; i < seedWords.length; i++) seedWords[i] = rng.u32();
    const y = toeplitzHash(seedWords, x, len, share);
    out.set(wordsToBytes(y, share), written >>> 3);
    written += share;
  }
  result.secretBits = m;
  result.key = out;
  result.timings.amplify = performance.now() - t3;
  a.fill(0);
  b.fill(0);
  alice.fill(0);
  bob.fill(0);
  return result;
}

/** Wilson score upper bound of a binomial proportion at z standard deviations. */
export function wilsonUpper(k: number, n: number, z: number): number {
  if (n === 0) return 1;
  const p = k / n;
  const z2 = z * z;
  return (p + z2 / (2 * n) + z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
}

export type { Rng };
