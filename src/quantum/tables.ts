/**
 * Probability tables of the per-pulse Monte Carlo, computed once per parameter set and shared
 * by the WASM engine (copied into its linear memory) and the TypeScript reference.
 */
import { type LinkPhysics, transmittance } from './model.ts';

/** Everything one Monte Carlo run needs. Units as in `LinkPhysics`. */
export interface SimParams extends LinkPhysics {
  /** Signal intensity, mean photons per pulse. */
  mu: number;
  /** Weak decoy intensity, mean photons per pulse. */
  nu: number;
  /** Probability a pulse is a signal pulse (default 0.8). */
  pMu?: number;
  /** Probability a pulse is a decoy pulse (default 0.1); the rest are vacuum pulses. */
  pNu?: number;
  /** Fraction of pulses an intercept-resend eavesdropper measures, 0..1. */
  eve?: number;
}

/** Largest photon number tabulated; the Poisson tail beyond it is lumped into it (< 1e-9). */
export const maxPhotons = 10;

/** Classes of pulses. */
export const classes = ['signal', 'decoy', 'vacuum'] as const;

export interface SimTables {
  /** Number of (class, photon number) entries. */
  k: number;
  /** Per-pulse table: cdf | det | sig | cls | nph (k u32 each) | guide (256 u32). */
  pulse: Uint32Array;
  /** Skip table (posterior given a click): cdf | det | sig | cls | nph, kSkip u32 each. */
  skip: Uint32Array;
  /** Entries that can click (k minus those with zero click probability). */
  kSkip: number;
  /** Mixture probability that a pulse clicks. */
  pClick: number;
  /** P(class | no click), for sampling pulse counts in skip mode. */
  noClickClass: [number, number, number];
  /** Class probabilities. */
  classProb: [number, number, number];
  eDetThreshold: number;
  eveThreshold: number;
}

const two32 = 2 ** 32;
/** Entries of the guide table (indexed by the top 8 bits of the uniform). */
export const guideSize = 256;
const toU32 = (p: number) => Math.min(0xffffffff, Math.max(0, Math.round(p * two32)));

/** Builds the tables for one parameter set. */
export function buildTables(p: SimParams): SimTables {
  const pMu = p.pMu ?? 0.8;
  const pNu = p.pNu ?? 0.1;
  const pVac = 1 - pMu - pNu;
  if (pVac < -1e-12) throw new RangeError('pMu + pNu must not exceed 1');
  const eta = transmittance(p);
  const intensities = [p.mu, p.nu, 0];
  const probs: [number, number, number] = [pMu, pNu, Math.max(0, pVac)];
  type Entry = { cls: number; n: number; prob: number; det: number; sig: number };
  const entries: Entry[] = [];
  for (let c = 0; c < 3; c++) {
    const lambda = intensities[c]!;
    let poisson = Math.exp(-lambda);
    let rest = 1;
    for (let n = 0; n <= maxPhotons; n++) {
      const pn = n === maxPhotons ? rest : poisson;
      rest -= poisson;
      poisson *= lambda / (n + 1);
      const prob = probs[c]! * pn;
      if (!(prob > 0)) continue;
      const etaN = 1 - (1 - eta) ** n;
      entries.push({ cls: c, n, prob, det: 1 - (1 - p.y0) * (1 - etaN), sig: etaN });
    }
  }
  const pClick = entries.reduce((s, e) => s + e.prob * e.det, 0);
  const noClick: [number, number, number] = [0, 0, 0];
  for (const e of entries) noClick[e.cls]! += (e.prob * (1 - e.det)) / (1 - pClick);

  const pack = (list: Entry[], weight: (e: Entry) => number, sig: (e: Entry) => number) => {
    const k = list.length;
    const t = new Uint32Array(5 * k + guideSize);
    const total = list.reduce((s, e) => s + weight(e), 0);
    let cum = 0;
    list.forEach((e, i) => {
      cum += weight(e) / total;
      t[i] = i === k - 1 ? 0xffffffff : toU32(cum);
      t[k + i] = toU32(e.det);
      t[2 * k + i] = toU32(sig(e));
      t[3 * k + i] = e.cls;
      t[4 * k + i] = e.n;
    });
    // Guide table (Chen–Asau indexed search): guide[j] is the first entry whose cdf exceeds
    // j·2^24, so the search from there gives the same entry as a full linear search in ~1 step.
    for (let j = 0, e = 0; j < guideSize; j++) {
      const floor = j * 2 ** 24;
      while (e < k - 1 && t[e]! <= floor) e++;
      t[5 * k + j] = e;
    }
    return t;
  };
  // Most probable entries first: the linear search then stops after two or three compares.
  const byPulse = [...entries].sort((a, b) => b.prob - a.prob);
  const byClick = [...entries].filter((e) => e.det > 0).sort((a, b) => b.prob * b.det - a.prob * a.det);
  const pulse = pack(
    byPulse,
    (e) => e.prob,
    (e) => e.sig,
  );
  const skip = pack(
    byClick,
    (e) => e.prob * e.det,
    (e) => e.sig / e.det,
  );
  if (byClick.length === 0) throw new RangeError('nothing can click: y0 and η are both zero');
  return {
    k: entries.length,
    pulse,
    skip,
    kSkip: byClick.length,
    pClick,
    noClickClass: noClick,
    classProb: probs,
    eDetThreshold: toU32(p.eDet),
    eveThreshold: toU32(p.eve ?? 0),
  };
}
