import { beforeAll, describe, expect, test } from 'bun:test';
import { qkdSchema } from '../../src/config/schema.ts';
import { createLinkManager } from '../../src/quantum/link-manager.ts';
import { runBlock } from '../../src/quantum/pipeline.ts';
import { ensureQkdWasm } from './wasm-build.ts';

beforeAll(ensureQkdWasm);

describe('link pipeline and manager', () => {
  test('a 50 km block yields a key: QBER near 3.4 %, decoy bounds set, Cascade f reported, length a multiple of 8', () => {
    const r = runBlock(
      { distanceKm: 50, alphaDbPerKm: 0.21, etaBob: 0.045, eDet: 0.033, y0: 1.7e-6, mu: 0.48, nu: 0.05 },
      2e8,
      { seed: 12 },
    );
    expect(r.aborted).toBeNull();
    expect(r.secretBits).toBeGreaterThan(0);
    expect(r.secretBits % 8).toBe(0);
    expect(r.key.length * 8).toBe(r.secretBits);
    expect(r.qberUpper).toBeGreaterThan(r.qberEstimate);
    expect(r.qberUpper).toBeLessThan(0.11);
    expect(r.y1Lower).toBeGreaterThan(0);
    expect(r.e1Upper).toBeLessThan(0.5);
    expect(r.cascadeEfficiency).toBeGreaterThan(1);
    expect(r.cascadeEfficiency).toBeLessThan(1.3);
    // Privacy amplification removes at least everything disclosed.
    expect(r.secretBits).toBeLessThan(r.keyInputBits - r.leakEc - r.leakVerify);
  });

  test('no clicks (fibre far too long for the block) aborts without a key', () => {
    const r = runBlock(
      { distanceKm: 400, alphaDbPerKm: 0.21, etaBob: 0.045, eDet: 0.033, y0: 1.7e-9, mu: 0.48, nu: 0.05 },
      1e6,
      { seed: 1 },
    );
    expect(r.aborted).toBe('no-clicks');
    expect(r.key.length).toBe(0);
  });

  test('links run in Bun Workers, fill their pools without blocking the event loop, and stop', async () => {
    const cfg = qkdSchema.parse({
      enabled: true,
      links: [
        {
          masterSae: 'A',
          slaveSae: 'B',
          distanceKm: 25,
          pace: 'fast',
          blockPulses: 20_000_000,
          maxKeys: 100,
        },
        {
          masterSae: 'A',
          slaveSae: 'C',
          distanceKm: 50,
          pace: 'fast',
          blockPulses: 50_000_000,
          maxKeys: 1000,
        },
      ],
    });
    const manager = createLinkManager(cfg, { seed: 3 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    manager.start();
    await manager.waitForBlocks(2);
    clearInterval(timer);
    const stats = manager.links();
    await manager.stop();
    expect(ticks).toBeGreaterThan(0); // the main thread kept running timers meanwhile
    for (const s of stats) {
      expect(s.blocks).toBeGreaterThanOrEqual(2);
      expect(s.secretBits).toBeGreaterThan(0);
      expect(s.keyRateBps).toBeGreaterThan(0);
      expect(s.qber).toBeGreaterThan(0.02);
      expect(s.qber).toBeLessThan(s.qberThreshold);
      expect(s.eavesdroppingDetected).toBe(false);
      expect(s.poolFill).toBeGreaterThan(0);
      expect(s.poolFill).toBeLessThanOrEqual(1);
      expect(s.lastError).toBeNull();
    }
    // The small pool (100 keys of 256 bits) fills and its link pauses.
    const b = stats.find((s) => s.slaveSae === 'B')!;
    expect(b.storedKeys).toBeLessThanOrEqual(100);
    // Keys from the pools reach the channel layer through the manager.
    const [k] = manager.pools.takeKeys('A', 'C', 1, 256)!;
    expect(manager.getKeyForChannel(k!.keyId, 'C')).toEqual(k!.key);
    expect(manager.getKeyForChannel(k!.keyId, 'C')).toBeNull();
  });

  test('real-time pace: a link does not run ahead of its source clock', async () => {
    const cfg = qkdSchema.parse({
      links: [
        {
          masterSae: 'A',
          slaveSae: 'B',
          distanceKm: 25,
          pace: 'realtime',
          pulseRateHz: 1e9,
          blockPulses: 10_000_000,
        },
      ],
    });
    const manager = createLinkManager(cfg, { mode: 'inline', seed: 4 });
    const started = performance.now();
    manager.start();
    await manager.waitForBlocks(5);
    const wall = (performance.now() - started) / 1000;
    await manager.stop();
    const [s] = manager.links();
    // Five 10 ms blocks take at least ~40 ms of wall time (the 5th may end before its wait).
    expect(wall).toBeGreaterThanOrEqual(s!.simulatedSeconds - 0.011);
  });
});
