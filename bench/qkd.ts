/**
 * QKD link simulator benchmark: simulated pulses per second and secret key bits per second at
 * 0, 25, 50 and 100 km (GYS parameters, μ 0.48, ν 0.05), in one run:
 * - `ts-pulse`: the plain TypeScript per-pulse Monte Carlo (baseline);
 * - `wasm-pulse`: the same per-pulse algorithm and random stream in WASM (bit-identical output);
 * - `wasm-skip`: WASM with geometric event skipping (same distribution, not pulse by pulse);
 * - `pipeline`: wasm-skip plus all post-processing (estimation, Cascade, verification,
 *   Toeplitz) for one second of a 1 GHz source.
 * Targets: wasm-pulse ≥ 4× ts-pulse; pipeline ≥ 1 simulated second per wall second at 50 km.
 */
import { runBlock, runMonteCarlo } from '../src/quantum/pipeline.ts';
import { buildTables } from '../src/quantum/tables.ts';
import type { BenchRow, Benchmark } from './types.ts';

const physics = (distanceKm: number) => ({
  distanceKm,
  alphaDbPerKm: 0.21,
  etaBob: 0.045,
  eDet: 0.033,
  y0: 1.7e-6,
  mu: 0.48,
  nu: 0.05,
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median pulses per second over `reps` runs of `pulses` pulses. */
function rate(
  engine: 'ts-pulse' | 'wasm-pulse' | 'wasm-skip',
  distanceKm: number,
  pulses: number,
  reps: number,
): number {
  const params = physics(distanceKm);
  const tables = buildTables(params);
  const rates: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    runMonteCarlo(params, pulses, { seed: 100 + r, engine, tables });
    rates.push(pulses / ((performance.now() - t0) / 1000));
  }
  return median(rates);
}

const bench: Benchmark = {
  name: 'qkd',
  description:
    'decoy-state BB84 Monte Carlo: TS per-pulse vs WASM per-pulse vs WASM event-skipping, and the full pipeline vs real time (1 GHz)',
  async run(ctx) {
    const reps = ctx.quick ? 3 : 5;
    const perPulse = ctx.quick ? 2e6 : 2e7;
    const pipelinePulses = ctx.quick ? 1e8 : 1e9;
    // Warm-up: JSC needs several long calls before the TS loop reaches its top tier (FTL);
    // the WASM module tiers up (BBQ → OMG) likewise.
    for (const engine of ['ts-pulse', 'wasm-pulse', 'wasm-skip'] as const)
      rate(engine, 50, engine === 'wasm-skip' ? 1e8 : perPulse, 5);
    const rows: BenchRow[] = [];
    const summary: Record<string, string | number | boolean> = {};
    for (const d of [0, 25, 50, 100]) {
      ctx.log(`${d} km …`);
      const ts = rate('ts-pulse', d, perPulse, reps);
      const wasmPulse = rate('wasm-pulse', d, perPulse, reps);
      // Enough pulses for ≥ ~1e5 clicks so the per-click cost dominates, as in real blocks.
      const skipPulses = (ctx.quick ? 1e8 : 1e9) * (d >= 100 ? 10 : 1);
      const wasmSkip = rate('wasm-skip', d, skipPulses, reps);
      const t0 = performance.now();
      const block = runBlock(physics(d), pipelinePulses, { seed: 7 });
      const wall = (performance.now() - t0) / 1000;
      const simulatedSeconds = pipelinePulses / 1e9;
      rows.push({
        km: d,
        'ts-pulse Mpulse/s': ts / 1e6,
        'wasm-pulse Mpulse/s': wasmPulse / 1e6,
        'wasm-pulse ÷ ts': wasmPulse / ts,
        'wasm-skip Mpulse/s': wasmSkip / 1e6,
        'wasm-skip ÷ ts': wasmSkip / ts,
        'pipeline sim-s per wall-s (1 GHz)': simulatedSeconds / wall,
        'secret bits per sim-s': block.secretBits / simulatedSeconds,
        'secret bits per wall-s': block.secretBits / wall,
        'pipeline ms: sim/est/cascade/PA': `${block.timings.simulate.toFixed(0)}/${block.timings.estimate.toFixed(0)}/${block.timings.cascade.toFixed(0)}/${block.timings.amplify.toFixed(0)}`,
        outcome: block.aborted ?? 'key',
      });
      if (d === 50) {
        summary['wasm-pulse ÷ ts-pulse at 50 km'] = Number((wasmPulse / ts).toFixed(2));
        summary['wasm-skip ÷ ts-pulse at 50 km'] = Number((wasmSkip / ts).toFixed(1));
        summary['target wasm ≥ 4× ts per-pulse met (per-pulse WASM)'] = wasmPulse / ts >= 4;
        summary['target wasm ≥ 4× ts met (event-skipping WASM)'] = wasmSkip / ts >= 4;
        summary['pipeline simulated seconds per wall second at 50 km, 1 GHz'] = Number(
          (simulatedSeconds / wall).toFixed(2),
        );
        summary['target real time at 50 km met'] = simulatedSeconds / wall >= 1;
      }
    }
    const ratios = rows.map((r) => r['wasm-pulse ÷ ts'] as number);
    summary['wasm-pulse ÷ ts-pulse, min over distances'] = Number(Math.min(...ratios).toFixed(2));
    return {
      rows,
      summary,
      notes: [
        'ts-pulse and wasm-pulse run the same algorithm on the same xoshiro256** stream (one 64-bit draw per pulse) and give bit-identical results (tested); TS emulates the 64-bit generator with int32 halves, which is most of the gap.',
        'with a 32-bit generator (xoshiro128**, two draws per pulse: the first version) the same comparison gave only ~1.5–2× — JSC compiles such int32 loops almost as well as WASM.',
        'wasm-skip samples the geometric gaps between clicks: same distribution, not per pulse; its ratio is algorithmic, not a like-for-like engine comparison.',
        `pipeline = one block of ${pipelinePulses.toExponential(0)} pulses (${(pipelinePulses / 1e9).toFixed(1)} s of a 1 GHz source) through wasm-skip, sampling, decoy bounds, Cascade (TS), SHA-256 verification, Toeplitz (WASM); single thread.`,
        'per-pulse rates: median of runs; the machine is shared (2 cores, 4 engineers) so absolute figures are noisy, ratios less so.',
      ],
    };
  },
};

export default bench;
