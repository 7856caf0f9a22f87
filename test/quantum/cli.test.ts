import { beforeAll, describe, expect, test } from 'bun:test';
import { runQkdCommand } from '../../src/quantum/cli.ts';
import { ensureQkdWasm } from './wasm-build.ts';

beforeAll(ensureQkdWasm);

async function run(argv: string[]) {
  const lines: string[] = [];
  const code = await runQkdCommand(argv, (l) => lines.push(l));
  return { code, text: lines.join('\n') };
}

describe('ssc qkd', () => {
  test('simulate prints the Monte Carlo beside the analytic model', async () => {
    const { code, text } = await run(['simulate', '--distance', '50', '--pulses', '2e8']);
    expect(code).toBe(0);
    for (const word of [
      'Q_μ (gain)',
      'E_μ (QBER)',
      'Q_ν (gain)',
      'E_ν (QBER)',
      'Y1 lower bound',
      'e1 upper bound',
      'Cascade',
      'secret key',
      'key produced',
    ])
      expect(text).toContain(word);
  });

  test('simulate --json with --eve 0.6 reports an abort and eavesdropping', async () => {
    const { code, text } = await run([
      'simulate',
      '--distance',
      '10',
      '--pulses',
      '2e7',
      '--eve',
      '0.6',
      '--json',
    ]);
    expect(code).toBe(0);
    const report = JSON.parse(text);
    expect(report.monteCarlo.eavesdropping).toBe(true);
    expect(report.monteCarlo.aborted).toBe('qber');
    expect(report.analytic.eMu).toBeGreaterThan(0.15);
    expect(Math.abs(report.monteCarlo.eMu - report.analytic.eMu)).toBeLessThan(
      4 * report.monteCarlo.eMuSigma + 1e-3,
    );
  });

  test('curve reproduces the GYS key-rate curve and maximum distances', async () => {
    const { code, text } = await run(['curve', '--json']);
    expect(code).toBe(0);
    const curve = JSON.parse(text);
    expect(curve.rows[0].distanceKm).toBe(0);
    expect(curve.rows.at(-1).distanceKm).toBe(150);
    expect(Math.round(curve.maxDistanceKm.infinite)).toBe(142);
    expect(Math.round(curve.maxDistanceKm.vacuumWeak)).toBe(141);
    expect(Math.round(curve.maxDistanceKm.noDecoy)).toBe(40);
    const plain = await run(['curve', '--step', '50']);
    expect(plain.text).toContain(
      'maximum distance: 142.2 km (infinite decoys), 141.0 km (vacuum+weak), 40.2 km (no decoys)',
    );
  });

  test('usage errors exit 2 with a message', async () => {
    expect((await run(['simulate', '--distance', 'far'])).code).toBe(2);
    expect((await run(['simulate', '--bogus'])).code).toBe(2);
    expect((await run(['teleport'])).code).toBe(2);
    expect((await run([])).code).toBe(2);
    expect((await run(['--help'])).code).toBe(0);
  });
});
