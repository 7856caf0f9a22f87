import { describe, expect, test } from 'bun:test';
import {
  gain,
  gys,
  h2,
  keyRate,
  maxDistance,
  optimalMu,
  predict,
  qber,
  qberWithEve,
} from '../../src/quantum/model.ts';

const base = { alphaDbPerKm: gys.alphaDbPerKm, etaBob: gys.etaBob, eDet: gys.eDet, y0: gys.y0 };

describe('analytic decoy-state BB84 model (QKD-MODEL.md, GYS parameters)', () => {
  test('maximum distances: ≈142 km infinite decoys, ≈141 km vacuum+weak (ν = 0.05), ≈40 km without decoys (± 1 km)', () => {
    expect(Math.abs(maxDistance(base, 'infinite') - 142)).toBeLessThanOrEqual(1);
    expect(Math.abs(maxDistance(base, 'vacuum+weak', 0.05) - 141)).toBeLessThanOrEqual(1);
    expect(Math.abs(maxDistance(base, 'none') - 40)).toBeLessThanOrEqual(1);
  });

  test('at L = 0 and μ = 0.5: Q_μ ≈ 2.22e-2 and E_μ ≈ 3.3 %', () => {
    const p = { ...base, distanceKm: 0 };
    // 2.22e-2 to three significant figures: within one unit of the last digit.
    expect(Math.abs(gain(0.5, p) - 2.22e-2)).toBeLessThan(1e-4);
    expect(qber(0.5, p)).toBeCloseTo(0.033, 3);
  });

  test('Shor–Preskill single-photon rate 1 − 2·H2(Q) crosses zero at Q ≈ 11.0 %', () => {
    let lo = 0.01;
    let hi = 0.2;
    for (let i = 0; i < 60; i++) {
      const mid = (lo + hi) / 2;
      if (1 - 2 * h2(mid) > 0) lo = mid;
      else hi = mid;
    }
    expect(lo).toBeCloseTo(0.11, 3);
  });

  test('decoy bounds are bounds: Y1^L ≤ Y1 and e1^U ≥ e1; rates order infinite ≥ vacuum+weak ≥ none', () => {
    for (const d of [0, 50, 100]) {
      const p = { ...base, distanceKm: d };
      const pr = predict(p, 0.48, 0.05);
      expect(pr.y1Lower).toBeLessThanOrEqual(pr.y1);
      expect(pr.y1Lower).toBeGreaterThan(0.95 * pr.y1);
      expect(pr.e1Upper).toBeGreaterThanOrEqual(pr.e1);
      expect(pr.rateInfinite).toBeGreaterThanOrEqual(pr.rateVacuumWeak);
      expect(pr.rateVacuumWeak).toBeGreaterThanOrEqual(keyRate(0.48, p, 'none'));
    }
  });

  test('optimal μ with decoys is ≈ 0.48 at 50 km (Ma et al. report ≈ 0.5 for GYS)', () => {
    expect(optimalMu({ ...base, distanceKm: 50 }).mu).toBeCloseTo(0.48, 1);
  });

  test('intercept-resend: QBER p/4 with no misalignment or dark counts', () => {
    const p = { ...base, eDet: 0, y0: 0, distanceKm: 10 };
    expect(qberWithEve(0.5, p, 1)).toBeCloseTo(0.25, 10);
    expect(qberWithEve(0.5, p, 0.4)).toBeCloseTo(0.1, 10);
  });
});
