/**
 * Bun Worker running one link's block loop off the event loop. Messages in: start, pause,
 * resume, stop. Messages out: block (key bytes transferred), error, stopped.
 */
import { type LinkRunConfig, type LinkRunner, startLinkRunner } from './link-runner.ts';

declare const self: Worker;

let runner: LinkRunner | null = null;

self.onmessage = async (event: MessageEvent) => {
  const msg = event.data as { type: 'start'; config: LinkRunConfig } | { type: 'pause' | 'resume' | 'stop' };
  if (msg.type === 'start' && !runner) {
    runner = startLinkRunner(
      msg.config,
      (key, summary) => self.postMessage({ type: 'block', key, summary }, [key.buffer as ArrayBuffer]),
      (error) => self.postMessage({ type: 'error', message: error.message }),
    );
  } else if (msg.type === 'pause') runner?.pause();
  else if (msg.type === 'resume') runner?.resume();
  else if (msg.type === 'stop') {
    await runner?.stop();
    runner = null;
    self.postMessage({ type: 'stopped' });
  }
};
