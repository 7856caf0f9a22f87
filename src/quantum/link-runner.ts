/**
 * The block loop of one link, shared by the worker (`link-worker.ts`) and the inline mode:
 * run a block, emit its key and summary, keep real-time pace if asked, obey pause/stop.
 */
import { type AbortReason, type Engine, runBlock } from './pipeline.ts';
import type { SimParams } from './tables.ts';

export interface LinkRunConfig {
  params: SimParams;
  blockPulses: number;
  pulseRateHz: number;
  pace: 'realtime' | 'fast';
  seed: number;
  engine: Engine;
}

/** What each block reports to the manager (no secrets besides `key`). */
export interface BlockSummary {
  pulses: number;
  simulatedSeconds: number;
  secretBits: number;
  qberEstimate: number;
  qberUpper: number;
  signalGain: number;
  y1Lower: number;
  e1Upper: number;
  cascadeEfficiency: number;
  aborted: AbortReason | null;
  eavesdropping: boolean;
  wallMs: number;
}

export interface LinkRunner {
  pause(): void;
  resume(): void;
  /** Stops after the current block; resolves when the loop has ended. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts the loop; `emit` receives each block's key bytes (ownership passes) and summary. */
export function startLinkRunner(
  cfg: LinkRunConfig,
  emit: (key: Uint8Array, summary: BlockSummary) => void,
  onError: (error: Error) => void,
): LinkRunner {
  let paused = false;
  let stopped = false;
  let block = 0;
  const loop = async () => {
    let wallStart = performance.now();
    let simulated = 0;
    while (!stopped) {
      if (paused) {
        await sleep(50);
        wallStart = performance.now();
        simulated = 0;
        continue;
      }
      const started = performance.now();
      const r = runBlock(cfg.params, cfg.blockPulses, { seed: cfg.seed + block * 7919, engine: cfg.engine });
      block++;
      const simulatedSeconds = cfg.blockPulses / cfg.pulseRateHz;
      simulated += simulatedSeconds;
      emit(r.key, {
        pulses: cfg.blockPulses,
        simulatedSeconds,
        secretBits: r.secretBits,
        qberEstimate: r.qberEstimate,
        qberUpper: r.qberUpper,
        signalGain: r.stats.gain[0],
        y1Lower: r.y1Lower,
        e1Upper: r.e1Upper,
        cascadeEfficiency: r.cascadeEfficiency,
        aborted: r.aborted,
        eavesdropping: r.eavesdropping,
        wallMs: performance.now() - started,
      });
      // Real-time pace: never run ahead of the source's clock; always yield to messages.
      const ahead = cfg.pace === 'realtime' ? simulated * 1000 - (performance.now() - wallStart) : 0;
      await sleep(Math.max(0, ahead));
    }
  };
  const done = loop().catch((error: unknown) =>
    onError(error instanceof Error ? error : new Error(String(error))),
  );
  return {
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
    },
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}
