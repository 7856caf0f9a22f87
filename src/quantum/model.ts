/**
 * The analytic decoy-state BB84 model (QKD-MODEL.md): Lo–Ma–Chen, PRL 94, 230504 (2005) and
 * Ma–Qi–Zhao–Lo, PRA 72, 012326 (2005). Every function is pure; units are in the field docs.
 */

/** Physical parameters of one link. Units are stated per field. */
export interface LinkPhysics {
  /** Fibre length, km. */
  distanceKm: number;
  /** Fibre attenuation, dB/km (GYS: 0.21). */
  alphaDbPerKm: number;
  /** Bob's detection efficiency including optics, 0..1 (GYS: 0.045). */
  etaBob: number;
  /** Misalignment error probability, 0..0.5 (GYS: 0.033). */
  eDet: number;
  /** Dark-count (background) yield per pulse, 0..1 (GYS: 1.7e-6). */
  y0: number;
}

/** Protocol parameters for key-rate formulas. */
export interface RateOptions {
  /** Error-correction inefficiency f ≥ 1 (GYS: 1.22). */
  f?: number;
  /** Sifting factor q (BB84: 1/2). */
  q?: number;
}

/** The GYS experiment's parameters (Gobby–Yuan–Shields 2004, as used by Ma et al. 2005). */
export const gys: Readonly<LinkPhysics & { f: number; q: number }> = Object.freeze({
  distanceKm: 0,
  alphaDbPerKm: 0.21,
  etaBob: 0.045,
  eDet: 0.033,
  y0: 1.7e-6,
  f: 1.22,
  q: 0.5,
});

/** Error rate of a random bit (background counts). */
export const e0 = 0.5;

/** QBER above which BB84 (Shor–Preskill, single photons) yields no key: 1 − 2·H2(Q) = 0. */
export const qberThreshold = 0.11;

/** Binary entropy H2(x) in bits; 0 at x ∈ {0, 1}, and 1 for x ≥ 1/2 by convention of the bound. */
export function h2(x: number): number {
  if (x <= 0) return 0;
  if (x >= 0.5) return 1;
  return -x * Math.log2(x) - (1 - x) * Math.log2(1 - x);
}

/** Overall transmittance η = 10^(−αL/10)·η_Bob. */
export function transmittance(p: LinkPhysics): number {
  return 10 ** ((-p.alphaDbPerKm * p.distanceKm) / 10) * p.etaBob;
}

/** i-photon yield Y_i = Y0 + η_i − Y0·η_i with η_i = 1 − (1 − η)^i. */
export function yieldOf(i: number, p: LinkPhysics): number {
  const etaI = 1 - (1 - transmittance(p)) ** i;
  return p.y0 + etaI - p.y0 * etaI;
}

/** i-photon error rate e_i = (e0·Y0 + e_det·η_i) / Y_i. */
export function errorOf(i: number, p: LinkPhysics): number {
  const etaI = 1 - (1 - transmittance(p)) ** i;
  return (e0 * p.y0 + p.eDet * etaI) / yieldOf(i, p);
}

/** Gain Q = Y0 + 1 − e^(−ημ) of intensity `mu` (detections per pulse, before sifting). */
export function gain(mu: number, p: LinkPhysics): number {
  return p.y0 + 1 - Math.exp(-transmittance(p) * mu);
}

/** QBER E of intensity `mu`: E·Q = e0·Y0 + e_det·(1 − e^(−ημ)). */
export function qber(mu: number, p: LinkPhysics): number {
  return (e0 * p.y0 + p.eDet * (1 - Math.exp(-transmittance(p) * mu))) / gain(mu, p);
}

/** Vacuum + weak decoy lower bound on Y1 (Ma et al. 2005, eq. 34) from gains. */
export function y1Lower(mu: number, nu: number, qMu: number, qNu: number, y0: number): number {
  return (
    (mu / (mu * nu - nu * nu)) *
    (qNu * Math.exp(nu) - (qMu * Math.exp(mu) * nu * nu) / (mu * mu) - ((mu * mu - nu * nu) / (mu * mu)) * y0)
  );
}

/** Vacuum + weak decoy upper bound on e1 (Ma et al. 2005, eq. 37). */
export function e1Upper(nu: number, qNu: number, eNu: number, y0: number, y1L: number): number {
  return (eNu * qNu * Math.exp(nu) - e0 * y0) / (y1L * nu);
}

/** How the single-photon part of the key is bounded. */
export type DecoyMode = 'infinite' | 'vacuum+weak' | 'none';

/** Key rate in secure bits per pulse (GLLP with decoys), clamped at 0. */
export function keyRate(
  mu: number,
  p: LinkPhysics,
  mode: DecoyMode = 'infinite',
  nu = 0.05,
  opts: RateOptions = {},
): number {
  const { f = gys.f, q = gys.q } = opts;
  const qMu = gain(mu, p);
  const eMu = qber(mu, p);
  const ec = qMu * f * h2(eMu);
  let rate: number;
  if (mode === 'infinite') {
    const q1 = yieldOf(1, p) * mu * Math.exp(-mu);
    rate = q * (-ec + q1 * (1 - h2(errorOf(1, p))));
  } else if (mode === 'vacuum+weak') {
    const qNu = gain(nu, p);
    const y1L = y1Lower(mu, nu, qMu, qNu, p.y0);
    if (!(y1L > 0)) return 0;
    const e1U = e1Upper(nu, qNu, qber(nu, p), p.y0, y1L);
    const q1L = y1L * mu * Math.exp(-mu);
    rate = q * (-ec + q1L * (1 - h2(e1U)));
  } else {
    // GLLP without decoys: assume every multi-photon pulse is detected (Δ = P_multi / Q_μ).
    const delta = (1 - Math.exp(-mu) - mu * Math.exp(-mu)) / qMu;
    if (delta >= 1) return 0;
    rate = q * (-ec + qMu * (1 - delta) * (1 - h2(eMu / (1 - delta))));
  }
  return Math.max(rate, 0);
}

/** The μ in (0, muMax] that maximises the key rate, by grid search refined by golden section. */
export function optimalMu(
  p: LinkPhysics,
  mode: DecoyMode = 'infinite',
  nu = 0.05,
  opts: RateOptions = {},
): { mu: number; rate: number } {
  const lo = mode === 'vacuum+weak' ? nu * 1.05 : 1e-4;
  const hi = 1.5;
  let best = lo;
  let bestRate = -1;
  const steps = 300;
  for (let i = 0; i <= steps; i++) {
    // Log-spaced grid: the no-decoy optimum sits near μ ≈ η, far below 0.1 at long distances.
    const mu = lo * (hi / lo) ** (i / steps);
    const r = keyRate(mu, p, mode, nu, opts);
    if (r > bestRate) {
      bestRate = r;
      best = mu;
    }
  }
  let a = Math.max(lo, best / (hi / lo) ** (1 / steps));
  let b = Math.min(hi, best * (hi / lo) ** (1 / steps));
  const g = (Math.sqrt(5) - 1) / 2;
  for (let i = 0; i < 60; i++) {
    const c = b - g * (b - a);
    const d = a + g * (b - a);
    if (keyRate(c, p, mode, nu, opts) >= keyRate(d, p, mode, nu, opts)) b = d;
    else a = c;
  }
  const mu = (a + b) / 2;
  const rate = keyRate(mu, p, mode, nu, opts);
  return rate >= bestRate ? { mu, rate } : { mu: best, rate: bestRate };
}

/** Largest distance (km) with a positive key rate at optimal μ, found by bisection. */
export function maxDistance(
  base: Omit<LinkPhysics, 'distanceKm'>,
  mode: DecoyMode = 'infinite',
  nu = 0.05,
  opts: RateOptions = {},
): number {
  let lo = 0;
  let hi = 400;
  if (optimalMu({ ...base, distanceKm: lo }, mode, nu, opts).rate <= 0) return 0;
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (optimalMu({ ...base, distanceKm: mid }, mode, nu, opts).rate > 0) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Expected per-intensity observables of a run, for comparing a Monte Carlo against the model. */
export interface AnalyticPrediction {
  transmittance: number;
  qMu: number;
  eMu: number;
  qNu: number;
  eNu: number;
  y1: number;
  e1: number;
  y1Lower: number;
  e1Upper: number;
  /** Secure bits per pulse, vacuum + weak decoy bound. */
  rateVacuumWeak: number;
  /** Secure bits per pulse, infinite decoys. */
  rateInfinite: number;
}

/** The model's prediction for a link at intensities μ and ν. */
export function predict(p: LinkPhysics, mu: number, nu: number, opts: RateOptions = {}): AnalyticPrediction {
  const qMu = gain(mu, p);
  const qNu = gain(nu, p);
  const eNu = qber(nu, p);
  const y1L = y1Lower(mu, nu, qMu, qNu, p.y0);
  return {
    transmittance: transmittance(p),
    qMu,
    eMu: qber(mu, p),
    qNu,
    eNu,
    y1: yieldOf(1, p),
    e1: errorOf(1, p),
    y1Lower: y1L,
    e1Upper: e1Upper(nu, qNu, eNu, p.y0, y1L),
    rateVacuumWeak: keyRate(mu, p, 'vacuum+weak', nu, opts),
    rateInfinite: keyRate(mu, p, 'infinite', nu, opts),
  };
}

/**
 * QBER of sifted signal detections under an intercept-resend attack on a fraction `eve` of the
 * pulses (Eve measures in a random basis and resends her result with the same photon number):
 * a photon click errs with e_det + eve·(1/4 − e_det/2); a dark count errs with 1/2.
 */
export function qberWithEve(mu: number, p: LinkPhysics, eve: number): number {
  const signal = 1 - Math.exp(-transmittance(p) * mu);
  const ePhoton = p.eDet + eve * (0.25 - p.eDet / 2);
  return (e0 * p.y0 + ePhoton * signal) / gain(mu, p);
}
