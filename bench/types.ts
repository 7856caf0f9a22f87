/** The shape every benchmark module in `bench/` exports as its default. */
export interface BenchContext {
  /** A short run (CI smoke): fewer iterations, same code paths. */
  quick: boolean;
  /** Progress output; the harness prints the final table itself. */
  log(line: string): void;
}

/** One row of a benchmark's result table. Column names are the keys. */
export type BenchRow = Record<string, string | number>;

export interface BenchResult {
  /** Rows printed as a table, in order. */
  rows: BenchRow[];
  /** Headline figures (ratios, targets met) for the JSON file and the README. */
  summary: Record<string, string | number | boolean>;
  /** Free notes, e.g. what the baseline is. */
  notes?: string[];
}

export interface Benchmark {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<BenchResult>;
}
