/**
 * The benchmark harness: `bun run bench [name…] [--quick]`.
 *
 * Each benchmark in `bench/<name>.ts` warms up, runs its baseline in the same process or
 * script, and returns rows with ratios; the harness prints the table and writes
 * `bench/results/<name>.json` with the machine's description. Machines here are shared and
 * noisy, so only ratios measured in one run are meaningful.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { cpus, totalmem, type as osType, release } from 'node:os';
import { join } from 'node:path';
import type { BenchResult, BenchRow, Benchmark } from './types.ts';

const known = ['aead', 'handshake', 'relay', 'qkd'];

/** Renders rows as an aligned text table (also valid Markdown). */
export function formatTable(rows: BenchRow[]): string {
  if (rows.length === 0) return '(no rows)';
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (value: unknown) => (typeof value === 'number' ? formatNumber(value) : String(value ?? ''));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => `| ${values.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n');
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toPrecision(3);
}

/** What the figures were measured on. */
export function machineDescription() {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${osType()} ${release()}`,
    runtime: `Bun ${Bun.version}`,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const names = args.filter((a) => !a.startsWith('--'));
  const selected = names.length > 0 ? names : known.filter((n) => existsSync(join(import.meta.dir, `${n}.ts`)));
  const machine = machineDescription();
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.runtime}`);
  mkdirSync(join(import.meta.dir, 'results'), { recursive: true });
  let failed = false;
  for (const name of selected) {
    const path = join(import.meta.dir, `${name}.ts`);
    if (!existsSync(path)) {
      console.error(`unknown benchmark: ${name} (have: ${known.join(', ')})`);
      failed = true;
      continue;
    }
    const bench = (await import(path)).default as Benchmark;
    console.log(`\n## ${bench.name}: ${bench.description}${quick ? ' (quick)' : ''}`);
    const started = Date.now();
    let result: BenchResult;
    try {
      result = await bench.run({ quick, log: (line) => console.log(`  ${line}`) });
    } catch (error) {
      console.error(`benchmark ${name} failed:`, error);
      failed = true;
      continue;
    }
    console.log(formatTable(result.rows));
    for (const [key, value] of Object.entries(result.summary)) console.log(`${key}: ${value}`);
    for (const note of result.notes ?? []) console.log(`note: ${note}`);
    const file = join(import.meta.dir, 'results', `${name}.json`);
    await Bun.write(
      file,
      JSON.stringify({ name, machine, quick, at: new Date().toISOString(), seconds: (Date.now() - started) / 1000, ...result }, null, 2),
    );
  }
  if (failed) process.exit(1);
}

if (import.meta.main) await main();
