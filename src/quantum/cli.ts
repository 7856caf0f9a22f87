/**
 * `ssc qkd …` handlers: `simulate` runs one link block through the whole protocol and prints
 * it beside the analytic model; `curve` prints the key rate against distance (GYS parameters).
 * Output goes through `out`, never the console.
 */
import { parseArgs } from 'node:util';
import { gys, type LinkPhysics, maxDistance, optimalMu, predict, qberWithEve } from './model.ts';
import { type Engine, runBlock } from './pipeline.ts';

const usage = `Usage:
  ssc qkd simulate [--distance KM] [--pulses N] [--eve P] [--mu M] [--nu V] [--seed S]
                   [--engine wasm-skip|wasm-pulse|ts-pulse] [--json]
      one block of N pulses (default 1e9) over KM km of fibre (default 50), GYS parameters
      (α 0.21 dB/km, η_Bob 4.5 %, e_det 3.3 %, Y0 1.7e-6), μ 0.48, ν 0.05; Eve intercepts a
      fraction P of the pulses (default 0)
  ssc qkd curve [--from KM] [--to KM] [--step KM] [--json]
      secure key rate (bits per pulse, μ optimised) against distance, and maximum distances`;

const num = (name: string, value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${value}"`);
  return n;
};

class UsageError extends Error {}

/**
 * Runs `ssc qkd <argv…>`; returns the exit code (0 ok, 2 usage error).
 * @example await runQkdCommand(['simulate', '--distance', '50', '--json'], console.log)
 */
export async function runQkdCommand(argv: string[], out: (line: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'simulate') return simulate(rest, out);
    if (sub === 'curve') return curve(rest, out);
    if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
      out(usage);
      return sub === undefined ? 2 : 0;
    }
    throw new UsageError(`unknown qkd command "${sub}"`);
  } catch (error) {
    if (error instanceof UsageError || (error instanceof TypeError && 'code' in error)) {
      out(`ssc qkd: ${error.message}`);
      out(usage);
      return 2;
    }
    throw error;
  }
}

function simulate(argv: string[], out: (line: string) => void): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      distance: { type: 'string' },
      pulses: { type: 'string' },
      eve: { type: 'string' },
      mu: { type: 'string' },
      nu: { type: 'string' },
      seed: { type: 'string' },
      engine: { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
  });
  const distanceKm = num('distance', values.distance, 50);
  const pulses = Math.round(num('pulses', values.pulses, 1e9));
  const eve = num('eve', values.eve, 0);
  const mu = num('mu', values.mu, 0.48);
  const nu = num('nu', values.nu, 0.05);
  const seed = Math.round(num('seed', values.seed, 1));
  const engine = (values.engine ?? 'wasm-skip') as Engine;
  if (!['wasm-skip', 'wasm-pulse', 'ts-pulse'].includes(engine))
    throw new UsageError(`--engine must be wasm-skip, wasm-pulse or ts-pulse`);
  if (distanceKm < 0 || distanceKm > 500) throw new UsageError('--distance must be within 0..500 km');
  if (pulses < 1e4 || pulses > 1e13) throw new UsageError('--pulses must be within 1e4..1e13');
  if (eve < 0 || eve > 1) throw new UsageError('--eve must be within 0..1');
  if (!(nu > 0 && nu < mu)) throw new UsageError('need 0 < --nu < --mu');
  const physics: LinkPhysics = { ...gys, distanceKm };
  const started = performance.now();
  const r = runBlock({ ...physics, mu, nu, eve }, pulses, { seed, engine });
  const wall = (performance.now() - started) / 1000;
  const model = predict(physics, mu, nu);
  const s = r.stats;
  const sigmaGain = (c: number) => Math.sqrt((s.gain[c]! * (1 - s.gain[c]!)) / Math.max(1, s.sent[c]!));
  const sigmaQber = (c: number) => Math.sqrt((s.qber[c]! * (1 - s.qber[c]!)) / Math.max(1, s.sifted[c]!));
  const report = {
    distanceKm,
    pulses,
    eve,
    mu,
    nu,
    engine,
    seed,
    monteCarlo: {
      qMu: s.gain[0],
      qMuSigma: sigmaGain(0),
      eMu: s.qber[0],
      eMuSigma: sigmaQber(0),
      qNu: s.gain[1],
      qNuSigma: sigmaGain(1),
      eNu: s.qber[1],
      eNuSigma: sigmaQber(1),
      y0: r.y0Estimate,
      siftedFraction:
        (s.sifted[0] + s.sifted[1] + s.sifted[2]) / Math.max(1, s.clicks[0] + s.clicks[1] + s.clicks[2]),
      qberSample: r.qberEstimate,
      qberUpper: r.qberUpper,
      y1Lower: r.y1Lower,
      e1Upper: r.e1Upper,
      cascadeEfficiency: r.cascadeEfficiency,
      leakEc: r.leakEc,
      secretBits: r.secretBits,
      secretBitsPerPulse: r.secretBits / pulses,
      aborted: r.aborted,
      eavesdropping: r.eavesdropping,
    },
    analytic: {
      qMu: model.qMu,
      eMu: qberWithEve(mu, physics, eve),
      qNu: model.qNu,
      eNu: qberWithEve(nu, physics, eve),
      y1: model.y1,
      e1: model.e1,
      y1Lower: model.y1Lower,
      e1Upper: model.e1Upper,
      rateVacuumWeak: model.rateVacuumWeak,
      rateInfinite: model.rateInfinite,
    },
    wallSeconds: wall,
    simulatedSecondsAt1GHz: pulses / 1e9,
  };
  if (values.json) {
    out(JSON.stringify(report, null, 2));
    return 0;
  }
  const e = (x: number) => x.toExponential(4);
  const pct = (x: number) => `${(100 * x).toFixed(3)} %`;
  out(
    `QKD link simulation: ${distanceKm} km, ${pulses.toExponential(2)} pulses, μ ${mu}, ν ${nu}, Eve ${eve}, engine ${engine}, seed ${seed}`,
  );
  out('quantity        Monte Carlo (±1σ)              analytic');
  out(`Q_μ (gain)      ${e(s.gain[0])} ± ${sigmaGain(0).toExponential(1)}      ${e(model.qMu)}`);
  out(`E_μ (QBER)      ${pct(s.qber[0])} ± ${pct(sigmaQber(0))}     ${pct(qberWithEve(mu, physics, eve))}`);
  out(`Q_ν (gain)      ${e(s.gain[1])} ± ${sigmaGain(1).toExponential(1)}      ${e(model.qNu)}`);
  out(`E_ν (QBER)      ${pct(s.qber[1])} ± ${pct(sigmaQber(1))}     ${pct(qberWithEve(nu, physics, eve))}`);
  out(`Y1 lower bound  ${e(r.y1Lower)}                    ${e(model.y1Lower)} (true Y1 ${e(model.y1)})`);
  out(
    `e1 upper bound  ${pct(r.e1Upper)}                     ${pct(model.e1Upper)} (true e1 ${pct(model.e1)})`,
  );
  out(`sampled QBER    ${pct(r.qberEstimate)} (upper bound ${pct(r.qberUpper)}, abort above 11 %)`);
  out(`Cascade         leaked ${r.leakEc} bits, efficiency f = ${r.cascadeEfficiency.toFixed(3)}`);
  out(
    `secret key      ${r.secretBits} bits = ${e(r.secretBits / pulses)} per pulse (model, vacuum+weak, f 1.22, all pulses signal: ${e(model.rateVacuumWeak)})`,
  );
  out(
    `outcome         ${r.aborted ? `aborted (${r.aborted})` : 'key produced'}${r.eavesdropping ? ' — EAVESDROPPING DETECTED' : ''}`,
  );
  out(
    `time            ${wall.toFixed(3)} s wall for ${(pulses / 1e9).toFixed(3)} s of a 1 GHz source (${(pulses / 1e9 / wall).toFixed(2)}× real time)`,
  );
  return 0;
}

function curve(argv: string[], out: (line: string) => void): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      step: { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
  });
  const from = num('from', values.from, 0);
  const to = num('to', values.to, 150);
  const step = num('step', values.step, 10);
  if (!(step > 0) || to < from) throw new UsageError('need --step > 0 and --to ≥ --from');
  const base = { alphaDbPerKm: gys.alphaDbPerKm, etaBob: gys.etaBob, eDet: gys.eDet, y0: gys.y0 };
  const rows: {
    distanceKm: number;
    muInfinite: number;
    rateInfinite: number;
    muVacuumWeak: number;
    rateVacuumWeak: number;
    muNoDecoy: number;
    rateNoDecoy: number;
  }[] = [];
  for (let d = from; d <= to + 1e-9; d += step) {
    const p = { ...base, distanceKm: d };
    const inf = optimalMu(p, 'infinite');
    const vw = optimalMu(p, 'vacuum+weak', 0.05);
    const none = optimalMu(p, 'none');
    rows.push({
      distanceKm: d,
      muInfinite: inf.mu,
      rateInfinite: inf.rate,
      muVacuumWeak: vw.mu,
      rateVacuumWeak: vw.rate,
      muNoDecoy: none.mu,
      rateNoDecoy: none.rate,
    });
  }
  const max = {
    infinite: maxDistance(base, 'infinite'),
    vacuumWeak: maxDistance(base, 'vacuum+weak', 0.05),
    noDecoy: maxDistance(base, 'none'),
  };
  if (values.json) {
    out(JSON.stringify({ parameters: { ...gys, nu: 0.05 }, rows, maxDistanceKm: max }, null, 2));
    return 0;
  }
  out(
    'Secure key rate, bits per pulse, μ optimised (GYS: α 0.21 dB/km, η_Bob 4.5 %, e_det 3.3 %, Y0 1.7e-6, f 1.22, q 1/2)',
  );
  out('km      infinite decoys (μ)        vacuum+weak ν=0.05 (μ)     no decoys (μ)');
  const cell = (rate: number, mu: number) =>
    (rate > 0 ? `${rate.toExponential(3)} (${mu.toFixed(3)})` : '0').padEnd(27);
  for (const r of rows)
    out(
      `${String(r.distanceKm).padEnd(8)}${cell(r.rateInfinite, r.muInfinite)}${cell(r.rateVacuumWeak, r.muVacuumWeak)}${cell(r.rateNoDecoy, r.muNoDecoy)}`,
    );
  out(
    `maximum distance: ${max.infinite.toFixed(1)} km (infinite decoys), ${max.vacuumWeak.toFixed(1)} km (vacuum+weak), ${max.noDecoy.toFixed(1)} km (no decoys)`,
  );
  return 0;
}
