import { beforeAll, describe, expect, test } from 'bun:test';
import { cascade } from '../../src/quantum/cascade.ts';
import { h2 } from '../../src/quantum/model.ts';
import { createRng } from '../../src/quantum/prng.ts';
import { toeplitzHash, toeplitzNaive } from '../../src/quantum/toeplitz.ts';
import { ensureQkdWasm } from './wasm-build.ts';

beforeAll(ensureQkdWasm);

function noisyPair(n: number, q: number, seed: number) {
  const rng = createRng(seed);
  const a = new Uint8Array(n);
  const b = new Uint8Array(n);
  let errors = 0;
  for (let i = 0; i < n; i++) {
    a[i] = rng.u32() & 1;
    const e = rng.float() < q ? 1 : 0;
    errors += e;
    b[i] = a[i]! ^ e;
  }
  return { a, b, errors };
}

describe('Cascade', () => {
  for (const schedule of ['original', 'modified'] as const) {
    test(`${schedule} schedule corrects every error at QBER 1–10 % and leaks f·n·H2(Q), f ≈ 1.1–1.2`, () => {
      const n = 2 ** 16;
      for (const q of [0.01, 0.02, 0.05, 0.08, 0.1]) {
        const efficiencies: number[] = [];
        for (let trial = 0; trial < 3; trial++) {
          const { a, b, errors } = noisyPair(n, q, 1000 * q + trial);
          const r = cascade(a, b, { qber: errors / n, seed: trial + 1, schedule });
          let residual = 0;
          for (let i = 0; i < n; i++) residual += a[i]! ^ b[i]!;
          expect(residual).toBe(0);
          expect(r.corrected).toBeGreaterThanOrEqual(errors); // flips can undo each other only in pairs
          efficiencies.push(r.leakedBits / (n * h2(errors / n)));
        }
        const f = efficiencies.reduce((s, x) => s + x, 0) / efficiencies.length;
        process.stdout.write(`  Cascade ${schedule}, n = ${n}, QBER ${q}: f = ${f.toFixed(3)} (3 strings)\n`);
        // Shannon's limit is f = 1; Cascade's known efficiency at these QBERs is 1.05–1.25.
        expect(f).toBeGreaterThan(1);
        expect(f).toBeLessThan(1.3);
      }
    });
  }

  test('identical strings leak only the block parities and change nothing', () => {
    const { a } = noisyPair(4096, 0, 9);
    const b = a.slice();
    const r = cascade(a, b, { qber: 0.02, seed: 1, schedule: 'original' });
    expect(r.corrected).toBe(0);
    expect([...b]).toEqual([...a]);
    expect(r.leakedBits).toBeGreaterThan(0);
  });
});

describe('Toeplitz privacy amplification', () => {
  const random = (bits: number, rng: ReturnType<typeof createRng>) => {
    const w = new Uint32Array(Math.ceil(bits / 32));
    for (let i = 0; i < w.length; i++) w[i] = rng.u32();
    if (bits & 31) w[w.length - 1]! &= (1 << (bits & 31)) - 1;
    return w;
  };

  test('the WASM word-level kernel equals the naive reference on small inputs (seed n + m − 1 bits)', () => {
    const rng = createRng(2024);
    const shapes: [number, number][] = [
      [1, 1],
      [7, 3],
      [32, 32],
      [63, 1],
      [64, 64],
      [65, 17],
      [100, 37],
      [129, 64],
      [200, 130],
      [311, 97],
      [512, 255],
    ];
    for (const [n, m] of shapes) {
      for (let trial = 0; trial < 3; trial++) {
        const seed = random(n + m - 1, rng);
        const x = random(n, rng);
        expect([...toeplitzHash(seed, x, n, m)]).toEqual([...toeplitzNaive(seed, x, n, m)]);
      }
    }
  });

  test('the hash is linear over GF(2) and refuses a short seed', () => {
    const rng = createRng(7);
    const n = 300;
    const m = 100;
    const seed = random(n + m - 1, rng);
    const x = random(n, rng);
    const y = random(n, rng);
    const xy = x.map((w, i) => w ^ y[i]!);
    const hx = toeplitzHash(seed, x, n, m);
    const hy = toeplitzHash(seed, y, n, m);
    expect([...toeplitzHash(seed, xy, n, m)]).toEqual([...hx.map((w, i) => w ^ hy[i]!)]);
    expect(() => toeplitzHash(seed.subarray(0, 2), x, n, m)).toThrow(RangeError);
  });
});
