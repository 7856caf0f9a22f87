import { describe, expect, test } from 'bun:test';
import { adaptiveProportionCutoff, repetitionCutoff, runEntropyTests } from '../../src/security/entropy.ts';

describe('entropy health tests (SP 800-90B §4.4)', () => {
  test('cutoffs follow the formulas', () => {
    // §4.4.1: C = 1 + ceil(-log2(alpha) / H); the standard's example H = 2, alpha = 2^-20 gives 11.
    expect(repetitionCutoff(2, 20)).toBe(11);
    expect(repetitionCutoff(8, 40)).toBe(6);
    // §4.4.2: C = 1 + CRITBINOM(W, 2^-H, 1 - alpha). Check the defining property directly:
    // P[X > C - 1] <= alpha and P[X > C - 2] > alpha for X ~ Binomial(512, 2^-H).
    const upperTail = (n: number, p: number, k: number) => {
      let sum = 0;
      let logChoose = 0;
      for (let j = 0; j <= n; j++) {
        if (j > 0) logChoose += Math.log(n - j + 1) - Math.log(j);
        if (j > k) sum += Math.exp(logChoose + j * Math.log(p) + (n - j) * Math.log1p(-p));
      }
      return sum;
    };
    for (const h of [1, 2, 4, 7, 8]) {
      const c = adaptiveProportionCutoff(h, 20, 512);
      expect(upperTail(512, 2 ** -h, c - 1)).toBeLessThanOrEqual(2 ** -20);
      expect(upperTail(512, 2 ** -h, c - 2)).toBeGreaterThan(2 ** -20);
    }
    // SP 800-90B Table 2 (W = 512, alpha = 2^-20).
    expect([0.5, 1, 2, 4, 8].map((h) => adaptiveProportionCutoff(h, 20, 512))).toEqual([410, 311, 177, 62, 13]);
    // Lower entropy means a higher cutoff.
    expect(adaptiveProportionCutoff(1, 20, 512)).toBeGreaterThan(adaptiveProportionCutoff(8, 20, 512));
  });

  test('the system CSPRNG passes', () => {
    const result = runEntropyTests({ samples: 1 << 20 });
    expect(result.ok).toBe(true);
    expect(result.repetitionCount.longestRun).toBeLessThan(result.repetitionCount.cutoff);
  });

  test('a stuck source fails the repetition count test', () => {
    let calls = 0;
    const stuckAfter = (bytes: Uint8Array) => {
      crypto.getRandomValues(bytes);
      // The source gets stuck on one value for a stretch in the second call.
      if (calls++ === 1) bytes.fill(0x5a, 1000, 1100);
      return bytes;
    };
    const result = runEntropyTests({ samples: 1 << 18, source: stuckAfter });
    expect(result.ok).toBe(false);
    expect(result.repetitionCount.ok).toBe(false);
    expect(result.repetitionCount.longestRun).toBeGreaterThanOrEqual(100);
  });

  test('a biased source that never repeats back-to-back fails the adaptive proportion test', () => {
    const biased = (bytes: Uint8Array) => {
      crypto.getRandomValues(bytes);
      // Every other byte is 0x00: no long runs, but one value takes half of every window.
      for (let i = 0; i < bytes.length; i += 2) bytes[i] = 0;
      for (let i = 1; i < bytes.length; i += 2) if (bytes[i] === 0) bytes[i] = 1;
      return bytes;
    };
    const result = runEntropyTests({ samples: 1 << 16, source: biased });
    expect(result.repetitionCount.ok).toBe(true);
    expect(result.adaptiveProportion.ok).toBe(false);
    expect(result.ok).toBe(false);
  });
});
