/**
 * Full fault runs (`bun run test:fault`), loopback only, bounded: each scenario once with more
 * traffic and a longer outage than CI. Prints each result; exit 1 when anything acknowledged
 * was lost or a scenario's expectation failed.
 *
 *   bun run test:fault [--outage-ms 10000] [--senders 10]
 */
import { parseArgs } from 'node:util';
import { canMount, diskFault, nodeLoss, readOnlyStart, redisOutage, webhookStall } from './scenarios.ts';

const { values } = parseArgs({
  options: { 'outage-ms': { type: 'string', default: '10000' }, senders: { type: 'string', default: '10' } },
});
const senders = Math.min(Number(values.senders), 200);
const log = (line: string) => console.log(`[fault] ${line}`);
const failures: string[] = [];
const check = (name: string, ok: boolean) => {
  if (!ok) failures.push(name);
};

const redis = await redisOutage({ senders, outageMs: Math.min(Number(values['outage-ms']), 120_000), log });
console.log(redis);
check(
  'redis outage',
  redis.lost === 0 &&
    redis.readyFalseSeen &&
    redis.recoveredReady &&
    redis.samePid &&
    redis.ackedAfterRecovery > 0,
);
for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  const r = await nodeLoss(signal, { senders, log });
  console.log(r);
  check(
    `node ${signal}`,
    r.lost === 0 &&
      r.moved === r.clients &&
      (signal === 'SIGKILL' || (r.exitCode === 0 && r.closeCodes['1001'] === r.clients)),
  );
}
if (canMount()) {
  const disk = await diskFault('full', { log });
  console.log(disk);
  check('disk full', disk.lost === 0 && disk.readyFalseSeen && disk.aliveDuringFault && disk.recoveredReady);
  const ro = await readOnlyStart();
  console.log(ro);
  check('read-only start', ro.exitCode === 2);
} else log('disk scenarios skipped: mounting a tmpfs needs root (CAP_SYS_ADMIN)');
const hook = await webhookStall({ log });
console.log(hook);
check('stalled webhook', hook.activeWhileStalled.includes('FaultLaterB') && hook.ready);

if (failures.length) {
  console.error(`FAILED: ${failures.join(', ')}`);
  process.exit(1);
}
log('every scenario passed; no acknowledged message lost');
process.exit(0);
