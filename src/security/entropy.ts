/**
 * Health tests on the output of the system CSPRNG, after NIST SP 800-90B §4.4: the
 * Repetition Count Test (a stuck source) and the Adaptive Proportion Test (a source that
 * favours one value). Samples are bytes; the cutoffs follow from the assessed min-entropy per
 * sample `H` and a false-positive probability `alpha` (§4.4.1, §4.4.2). A failure marks the
 * security component `down` and new handshakes are refused until a later run passes.
 */

export interface EntropyTestOptions {
  /** Bytes to test. */
  samples?: number;
  /** Assessed min-entropy per 8-bit sample, bits (a CSPRNG claims 8; we assess conservatively). */
  minEntropy?: number;
  /** False-positive probability per test, as a power of two exponent (alpha = 2^-alphaExp). */
  alphaExp?: number;
  /** APT window size W (512 for non-binary samples, §4.4.2). */
  window?: number;
  /** The source under test (default: `crypto.getRandomValues`). */
  source?: (bytes: Uint8Array) => Uint8Array;
}

export interface EntropyTestResult {
  ok: boolean;
  samples: number;
  repetitionCount: { cutoff: number; longestRun: number; ok: boolean };
  adaptiveProportion: { cutoff: number; window: number; highestCount: number; ok: boolean };
  at: string;
}

/** RCT cutoff C = 1 + ⌈alphaExp / H⌉ (§4.4.1). */
export function repetitionCutoff(minEntropy: number, alphaExp: number): number {
  return 1 + Math.ceil(alphaExp / minEntropy);
}

/**
 * APT cutoff (§4.4.2): C = 1 + CRITBINOM(W, 2^−H, 1 − alpha), i.e. one more than the smallest
 * k with P[X ≤ k] ≥ 1 − alpha for X ~ Binomial(W, 2^−H); computed exactly in log space.
 */
export function adaptiveProportionCutoff(minEntropy: number, alphaExp: number, window: number): number {
  return 1 + critBinom(window, 2 ** -minEntropy, alphaExp);
}

/** Smallest k with P[X > k] ≤ 2^−alphaExp for X ~ Binomial(n, p). */
export function critBinom(n: number, p: number, alphaExp: number): number {
  const alpha = 2 ** -alphaExp;
  const pmf: number[] = [];
  let logChoose = 0;
  for (let k = 0; k <= n; k++) {
    if (k > 0) logChoose += Math.log(n - k + 1) - Math.log(k);
    pmf.push(Math.exp(logChoose + k * Math.log(p) + (n - k) * Math.log1p(-p)));
  }
  let upper = 0; // P[X > k]
  for (let k = n; k >= 0; k--) {
    if (upper > alpha) return k + 1;
    upper += pmf[k]!;
  }
  return 0;
}

/** Runs both tests on fresh output of the source. */
export function runEntropyTests(options: EntropyTestOptions = {}): EntropyTestResult {
  const { samples = 65_536, minEntropy = 7, alphaExp = 40, window = 512 } = options;
  const source = options.source ?? ((bytes: Uint8Array) => crypto.getRandomValues(bytes));
  const data = new Uint8Array(samples);
  // getRandomValues fills at most 65,536 bytes per call.
  for (let offset = 0; offset < samples; offset += 65_536) {
    const chunk = data.subarray(offset, Math.min(samples, offset + 65_536));
    chunk.set(source(new Uint8Array(chunk.length)));
  }
  const rctCutoff = repetitionCutoff(minEntropy, alphaExp);
  let run = 1;
  let longestRun = 1;
  for (let i = 1; i < data.length; i++) {
    run = data[i] === data[i - 1] ? run + 1 : 1;
    if (run > longestRun) longestRun = run;
  }
  const aptCutoff = adaptiveProportionCutoff(minEntropy, alphaExp, window);
  let highestCount = 0;
  for (let start = 0; start + window <= data.length; start += window) {
    const first = data[start];
    let count = 1;
    for (let i = start + 1; i < start + window; i++) if (data[i] === first) count++;
    if (count > highestCount) highestCount = count;
  }
  const rctOk = longestRun < rctCutoff;
  const aptOk = highestCount < aptCutoff;
  return {
    ok: rctOk && aptOk,
    samples,
    repetitionCount: { cutoff: rctCutoff, longestRun, ok: rctOk },
    adaptiveProportion: { cutoff: aptCutoff, window, highestCount, ok: aptOk },
    at: new Date().toISOString(),
  };
}
