/**
 * Intercept-resend eavesdropper. Sifted signal QBER is binomial over n sifted clicks; we assert
 * |MC − expected| < 4σ with σ = sqrt(E(1 − E)/n) and print n and the interval.
 */
import { beforeAll, describe, expect, test } from 'bun:test';
import { qkdSchema } from '../../src/config/schema.ts';
import { createLinkManager, type LinkStats } from '../../src/quantum/link-manager.ts';
import { gys, qberWithEve } from '../../src/quantum/model.ts';
import { runBlock, runMonteCarlo } from '../../src/quantum/pipeline.ts';
import { ensureQkdWasm } from './wasm-build.ts';

beforeAll(ensureQkdWasm);

const clean = { distanceKm: 10, alphaDbPerKm: 0.21, etaBob: 0.045, eDet: 0, y0: 1e-9, mu: 0.48, nu: 0.05 };

function check(label: string, observed: number, expected: number, n: number) {
  const sigma = Math.sqrt((expected * (1 - expected)) / n);
  process.stdout.write(
    `  ${label}: n = ${n}, QBER ${observed.toFixed(5)}, 4σ interval [${(observed - 4 * sigma).toFixed(5)}, ${(observed + 4 * sigma).toFixed(5)}], expected ${expected.toFixed(5)}\n`,
  );
  expect(Math.abs(observed - expected)).toBeLessThan(4 * sigma);
}

describe('intercept-resend eavesdropper', () => {
  test('p = 1 gives QBER 25 % (no misalignment, negligible dark counts)', () => {
    const r = runMonteCarlo({ ...clean, eve: 1 }, 5e7, { seed: 31 });
    check('p = 1', r.qber[0], qberWithEve(0.48, clean, 1), r.sifted[0]);
    expect(qberWithEve(0.48, clean, 1)).toBeCloseTo(0.25, 6);
  });

  for (const p of [0.2, 0.5, 0.8]) {
    test(`p = ${p} gives QBER p/4 = ${p / 4}`, () => {
      const r = runMonteCarlo({ ...clean, eve: p }, 5e7, { seed: 40 + p * 10 });
      check(`p = ${p}`, r.qber[0], p / 4, r.sifted[0]);
    });
  }

  test('with GYS misalignment the QBER follows e_det + p·(1/4 − e_det/2)', () => {
    const params = { ...clean, eDet: gys.eDet, y0: gys.y0, eve: 0.3 };
    const r = runMonteCarlo(params, 5e7, { seed: 55 });
    check('GYS, p = 0.3', r.qber[0], qberWithEve(0.48, params, 0.3), r.sifted[0]);
  });

  test('above the 11 % threshold a block aborts, discards its key and flags eavesdropping', () => {
    const r = runBlock({ ...clean, eDet: gys.eDet, y0: gys.y0, eve: 1 }, 2e7, { seed: 3 });
    expect(r.aborted).toBe('qber');
    expect(r.eavesdropping).toBe(true);
    expect(r.secretBits).toBe(0);
    expect(r.qberUpper).toBeGreaterThan(0.11);
    const ok = runBlock({ ...clean, eDet: gys.eDet, y0: gys.y0, eve: 0 }, 2e7, { seed: 3 });
    expect(ok.aborted).toBeNull();
    expect(ok.eavesdropping).toBe(false);
  });

  test('the link manager raises the alert and keeps the pool empty under attack', async () => {
    const cfg = qkdSchema.parse({
      links: [
        { masterSae: 'A', slaveSae: 'B', distanceKm: 10, eve: 1, pace: 'fast', blockPulses: 5_000_000 },
      ],
    });
    const alerts: LinkStats[] = [];
    const warnings: string[] = [];
    const manager = createLinkManager(cfg, {
      mode: 'inline',
      seed: 5,
      onEavesdropping: (s) => alerts.push(s),
      logger: { info() {}, warn: (_o, msg) => warnings.push(msg ?? ''), error() {} },
    });
    manager.start();
    await manager.waitForBlocks(2);
    await manager.stop();
    const [stats] = manager.links();
    expect(stats!.eavesdroppingDetected).toBe(true);
    expect(stats!.abortedBlocks).toBe(stats!.blocks);
    expect(stats!.storedKeys).toBe(0);
    expect(stats!.qber).toBeGreaterThan(stats!.qberThreshold);
    expect(alerts.length).toBeGreaterThanOrEqual(2);
    expect(warnings.some((w) => w.includes('eavesdropping'))).toBe(true);
  });
});
