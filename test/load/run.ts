/**
 * Full load and soak runs (`bun run test:load`), loopback only, bounded in count and time:
 *
 *   bun run test:load [--connections 5000] [--rounds 5] [--soak-seconds 300] [--skip-soak] [--report]
 *
 * `--report` writes the figures as a markdown table to docs/RELIABILITY.md (between the
 * `<!-- load-report -->` markers), for the README's Reliability section. Exit 1 when anything
 * was lost, a handshake failed, errors were logged or memory grew without bound.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../helpers/paths.ts';
import { runLoad, runSoak } from './scenarios.ts';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
    'soak-seconds': { type: 'string', default: '300' },
    'soak-clients': { type: 'string', default: '100' },
    'soak-rate': { type: 'string', default: '500' },
    'skip-soak': { type: 'boolean', default: false },
    report: { type: 'boolean', default: false },
  },
});
const connections = Math.min(Number(values.connections), 15_000);
const soakSeconds = Math.min(Number(values['soak-seconds']), 3_600);
const log = (line: string) => console.log(`[load] ${line}`);

const load = await runLoad({
  connections,
  rounds: Number(values.rounds),
  concurrency: Number(values.concurrency),
  log,
});
console.log(load);
const soak = values['skip-soak']
  ? undefined
  : await runSoak({
      seconds: soakSeconds,
      clients: Number(values['soak-clients']),
      rate: Number(values['soak-rate']),
      log,
    });
if (soak) {
  const { rssMiB, lagMs, ...summary } = soak;
  console.log(summary, `\nRSS MiB: ${rssMiB.join(' ')}\nlag ms: ${lagMs.join(' ')}`);
}

const failures: string[] = [];
if (load.failedHandshakes) failures.push(`${load.failedHandshakes} handshakes failed`);
if (load.lost) failures.push(`load: ${load.lost} acknowledged messages lost`);
if (load.clientErrors || load.serverErrors)
  failures.push(`load: ${load.clientErrors} client / ${load.serverErrors} server errors`);
if (soak?.lost) failures.push(`soak: ${soak.lost} acknowledged messages lost`);
if (soak && !soak.bounded)
  failures.push(`soak: RSS grew ${soak.rssGrowthMiB} MiB (limit ${soak.rssGrowthLimitMiB})`);
if (soak && (soak.clientErrors || soak.serverErrors))
  failures.push(`soak: ${soak.clientErrors} client / ${soak.serverErrors} server errors`);

if (values.report) {
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Bun ${Bun.version}, load generator on the same host (loopback)`;
  const rows = [
    '| run | connections | msgs/s | p99 delivery | server RSS | per connection | lost |',
    '|---|---:|---:|---:|---:|---:|---:|',
    `| load: ${load.connections} channels, ${values.rounds} DM rounds | ${load.connections} | ${load.messagesPerSecond} | ${load.deliveryP99Ms} ms | ${load.rssLoadedMiB} MiB | ${load.kibPerConnection} KiB | ${load.lost} |`,
  ];
  if (soak) {
    rows.push(
      `| soak: ${soak.seconds} s steady | ${soak.clients} | ${soak.messagesPerSecond} | ${soak.deliveryP99Ms} ms | ${Math.min(...soak.rssMiB)}–${Math.max(...soak.rssMiB)} MiB (growth ${soak.rssGrowthMiB}) | – | ${soak.lost} |`,
    );
  }
  const table = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}. Handshakes: hybrid XXhfs (X25519 + ML-KEM-768, ML-DSA-65 server signature), p50 ${load.handshakeP50Ms} ms / p99 ${load.handshakeP99Ms} ms at ${values.concurrency} concurrent. msgs/s counts acknowledged direct messages received (stored in SQLite with fsync before the sender's ack).${soak ? ` Soak event-loop lag p99 ${soak.lagP99Ms} ms, max ${soak.lagMaxMs} ms.` : ''}`,
    '',
    ...rows,
  ].join('\n');
  const file = join(repoRoot, 'docs/RELIABILITY.md');
  const text = readFileSync(file, 'utf8');
  const start = '<!-- load-report -->';
  const end = '<!-- /load-report -->';
  const updated = text.includes(start)
    ? `${text.slice(0, text.indexOf(start) + start.length)}\n${table}\n${text.slice(text.indexOf(end))}`
    : `${text}\n${start}\n${table}\n${end}\n`;
  writeFileSync(file, updated);
  log(`report written to ${file}`);
}

if (failures.length) {
  console.error(`FAILED: ${failures.join('; ')}`);
  process.exit(1);
}
log('passed');
process.exit(0);
