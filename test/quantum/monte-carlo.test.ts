/**
 * Monte Carlo convergence: every observable is a binomial proportion, so its standard error is
 * σ = sqrt(p(1 − p)/n) with n the pulses (gains) or sifted clicks (QBERs). We assert
 * |MC − analytic| < 4σ (a 99.994 % two-sided interval per check) and print n and the interval.
 */
import { beforeAll, describe, expect, test } from 'bun:test';
import { gys, predict } from '../../src/quantum/model.ts';
import { runMonteCarlo } from '../../src/quantum/pipeline.ts';
import { simulatePulsesTs } from '../../src/quantum/reference.ts';
import { buildTables } from '../../src/quantum/tables.ts';
import { ensureQkdWasm } from './wasm-build.ts';
import { createRng } from '../../src/quantum/prng.ts';
import { qkdWasm, simulateWasm } from '../../src/quantum/wasm.ts';
import { seedState256 } from '../../src/quantum/prng.ts';

beforeAll(ensureQkdWasm);

const z = 4;
const physics = (distanceKm: number) => ({
  distanceKm,
  alphaDbPerKm: gys.alphaDbPerKm,
  etaBob: gys.etaBob,
  eDet: gys.eDet,
  y0: gys.y0,
});

function within(name: string, observed: number, expected: number, n: number): void {
  const sigma = Math.sqrt((expected * (1 - expected)) / n);
  const lo = observed - z * sigma;
  const hi = observed + z * sigma;
  // Reported figures (sample size and interval) for the closing note.
  process.stdout.write(
    `  ${name}: n = ${n.toExponential(2)}, MC ${observed.toExponential(4)}, 4σ interval [${lo.toExponential(4)}, ${hi.toExponential(4)}], analytic ${expected.toExponential(4)}\n`,
  );
  expect(Math.abs(observed - expected)).toBeLessThan(z * sigma);
}

describe('Monte Carlo converges to the analytic model (GYS, μ = 0.48, ν = 0.05)', () => {
  // Pulses per distance: enough decoy clicks for E_ν (≥ 1e4 sifted) while the run stays < 1 s.
  const cases: [number, number][] = [
    [0, 2e8],
    [50, 2e9],
    [100, 2e10],
  ];
  for (const [distance, pulses] of cases) {
    test(`${distance} km, ${pulses.toExponential(0)} pulses (event-skipping WASM engine)`, () => {
      const p = physics(distance);
      const model = predict(p, 0.48, 0.05);
      const r = runMonteCarlo({ ...p, mu: 0.48, nu: 0.05 }, pulses, { seed: 1000 + distance });
      within(`${distance} km Q_μ`, r.gain[0], model.qMu, r.sent[0]);
      within(`${distance} km E_μ`, r.qber[0], model.eMu, r.sifted[0]);
      within(`${distance} km Q_ν`, r.gain[1], model.qNu, r.sent[1]);
      within(`${distance} km E_ν`, r.qber[1], model.eNu, r.sifted[1]);
      // Vacuum pulses click at the dark-count rate Y0; sifting keeps half the clicks.
      within(`${distance} km Y0`, r.gain[2], gys.y0, r.sent[2]);
      const clicks = r.clicks[0] + r.clicks[1] + r.clicks[2];
      within(
        `${distance} km sifted fraction`,
        (r.sifted[0] + r.sifted[1] + r.sifted[2]) / clicks,
        0.5,
        clicks,
      );
    });
  }

  test('per-pulse WASM engine converges too (0 km, 4e7 pulses, μ = 0.5: Q_μ ≈ 2.22e-2, E_μ ≈ 3.3 %)', () => {
    const p = physics(0);
    const model = predict(p, 0.5, 0.05);
    const r = runMonteCarlo({ ...p, mu: 0.5, nu: 0.05 }, 4e7, { seed: 77, engine: 'wasm-pulse' });
    within('0 km per-pulse Q_μ', r.gain[0], model.qMu, r.sent[0]);
    within('0 km per-pulse E_μ', r.qber[0], model.eMu, r.sifted[0]);
    within('0 km per-pulse Q_ν', r.gain[1], model.qNu, r.sent[1]);
    // Class counts are multinomial with p = (0.8, 0.1, 0.1).
    within('0 km per-pulse signal share', r.sent[0] / 4e7, 0.8, 4e7);
  });

  test('the TypeScript reference and the WASM per-pulse engine give bit-identical runs for one seed', () => {
    const t = buildTables({ ...physics(25), mu: 0.48, nu: 0.05, eve: 0.3 });
    const a = simulatePulsesTs(t, 3e6, 4242, 1e5);
    const b = simulateWasm(t, 3e6, 4242, 1e5, 'pulse', createRng(1).normal);
    expect(b.pulses).toEqual(a.pulses);
    expect(b.clicks).toEqual(a.clicks);
    expect(b.sifted).toEqual(a.sifted);
    expect(b.errors).toEqual(a.errors);
    expect(b.keyBits).toBe(a.keyBits);
    expect([...b.keyA]).toEqual([...a.keyA.subarray(0, b.keyA.length)]);
    expect([...b.keyB]).toEqual([...a.keyB.subarray(0, b.keyB.length)]);
  });

  test('the WASM generator is xoshiro256** (checked against a BigInt reference)', () => {
    const st = seedState256(123);
    const mask = (1n << 64n) - 1n;
    const word = (i: number) => (BigInt(st[2 * i + 1]!) << 32n) | BigInt(st[2 * i]!);
    let [a, b, c, d] = [word(0), word(1), word(2), word(3)];
    const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (64n - k))) & mask;
    const w = qkdWasm();
    w.setState(st[0]!, st[1]!, st[2]!, st[3]!, st[4]!, st[5]!, st[6]!, st[7]!);
    for (let i = 0; i < 1000; i++) {
      const result = (rotl((b * 5n) & mask, 7n) * 9n) & mask;
      const t = (b << 17n) & mask;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl(d, 45n);
      expect(w.nextLo() >>> 0).toBe(Number(result & 0xffffffffn));
    }
  });

  test('one seed reproduces a skip-mode run exactly; another seed differs', () => {
    const params = { ...physics(50), mu: 0.48, nu: 0.05 };
    const a = runMonteCarlo(params, 1e8, { seed: 9 });
    const b = runMonteCarlo(params, 1e8, { seed: 9 });
    const c = runMonteCarlo(params, 1e8, { seed: 10 });
    expect(b.clicks).toEqual(a.clicks);
    expect(b.sent).toEqual(a.sent);
    expect(c.clicks).not.toEqual(a.clicks);
  });
});
