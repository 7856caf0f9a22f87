/**
 * CI version of the fault suite (real redis-server and server processes on loopback). Every
 * scenario counts direct messages whose send() resolved and requires each to reach its
 * recipient. The disk scenarios mount a small tmpfs, which needs root (CI runs as root, as does
 * the README's test command); without it they fail with a message saying so.
 * Longer runs: `bun run test:fault`.
 */
import { describe, expect, test } from 'bun:test';
import { canMount, diskFault, nodeLoss, readOnlyStart, redisOutage, webhookStall } from './scenarios.ts';

const mountable = canMount();

describe('faults', () => {
  test('Redis killed mid-traffic and brought back: refused while down, /ready false, recovers without restart, nothing acknowledged lost', async () => {
    const r = await redisOutage({ senders: 3, outageMs: 3_000 });
    console.log(`redis outage: ${JSON.stringify(r)}`);
    expect(r.ackedBefore).toBeGreaterThan(0);
    expect(r.rejectedDuringOutage).toBeGreaterThan(0);
    expect(r.readyFalseSeen).toBe(true);
    expect(r.recoveredReady).toBe(true);
    expect(r.ackedAfterRecovery).toBeGreaterThan(0);
    expect(r.samePid).toBe(true);
    expect(r.lost).toBe(0);
  }, 90_000);

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    test(`${signal} of a node: clients move to the other node of their list, nothing acknowledged lost`, async () => {
      const r = await nodeLoss(signal, { senders: 4 });
      console.log(`node ${signal}: ${JSON.stringify(r)}`);
      expect(r.moved).toBe(r.clients);
      expect(r.acked).toBeGreaterThan(0);
      expect(r.lost).toBe(0);
      if (signal === 'SIGTERM') {
        // Graceful drain: every client told to go away with 1001, exit 0, not ready while draining.
        expect(r.closeCodes['1001']).toBe(r.clients);
        expect(r.exitCode).toBe(0);
        expect(r.readyDuringDrain).toBe(false);
      }
    }, 90_000);
  }

  test(
    'a full data dir: sends refused with a code, /ready false, no crash, recovers when space returns',
    async () => {
      if (!mountable) throw new Error('this fault test mounts a tmpfs: run the suite as root');
      const r = await diskFault('full');
      console.log(`disk full: ${JSON.stringify(r)}`);
      expect(r.refusedWith).toStartWith('unavailable:');
      expect(r.readyFalseSeen).toBe(true);
      expect(r.readyReason).toContain('relay-store');
      expect(r.aliveDuringFault).toBe(true);
      expect(r.recoveredReady).toBe(true);
      expect(r.lost).toBe(0);
    },
    60_000,
  );

  test(
    'a read-only data dir at start: one clear line and exit 2',
    async () => {
      if (!mountable) throw new Error('this fault test mounts a tmpfs: run the suite as root');
      const r = await readOnlyStart();
      expect(r.exitCode).toBe(2);
      expect(r.message).toContain('is not writable (EROFS)');
      expect(r.message).not.toContain('    at ');
    },
    30_000,
  );

  test('a stalled webhook receiver: alerts still evaluated, health fast, node ready', async () => {
    const r = await webhookStall();
    expect(r.webhookRequests).toBeGreaterThan(0);
    expect(r.activeWhileStalled).toContain('FaultLaterB');
    expect(r.ready).toBe(true);
  }, 60_000);
});
