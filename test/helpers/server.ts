/**
 * Spawns a real server process (`bun src/cli.ts serve`) on loopback with free ports and
 * temporary data/log directories, and waits for its "listening" line.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { repoRoot } from './paths.ts';

export interface SpawnedServer {
  proc: Subprocess<'ignore', 'pipe', 'pipe'>;
  publicUrl: string;
  opsUrl: string;
  dataDir: string;
  logDir: string;
  /** Every JSON log line printed on stdout so far. */
  lines: Record<string, unknown>[];
  /** Waits for a log line matching the predicate. */
  waitForLine(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  args?: string[];
  /** Flags for the Bun runtime itself, before the script (e.g. `--cpu-prof`). */
  runtimeArgs?: string[];
  dataDir?: string;
  logDir?: string;
  startTimeoutMs?: number;
}

/** Starts `ssc serve` as a child process. */
export async function spawnServer(options: SpawnOptions = {}): Promise<SpawnedServer> {
  const base = mkdtempSync(join(tmpdir(), 'ssc-test-'));
  const dataDir = options.dataDir ?? join(base, 'data');
  const logDir = options.logDir ?? join(base, 'logs');
  const proc = Bun.spawn(
    [
      process.execPath,
      ...(options.runtimeArgs ?? []),
      join(repoRoot, 'src/cli.ts'),
      'serve',
      '--port',
      '0',
      '--metrics-port',
      '0',
      '--data-dir',
      dataDir,
      '--log-dir',
      logDir,
      ...(options.args ?? []),
    ],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        NODE_ENV: 'test',
        SSC_SERVER__HOST: '127.0.0.1',
        SSC_LOG__LEVEL: 'debug',
        SSC_LOG__PRETTY: 'false',
        ...options.env,
      },
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
    },
  );
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of proc.stdout) {
      buffer += decoder.decode(chunk, { stream: true });
      let index = buffer.indexOf('\n');
      while (index >= 0) {
        const text = buffer.slice(0, index);
        buffer = buffer.slice(index + 1);
        try {
          lines.push(JSON.parse(text));
        } catch {
          lines.push({ raw: text });
        }
        index = buffer.indexOf('\n');
      }
      for (const wake of waiters) wake();
    }
  })();
  (async () => {
    for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk);
  })();

  async function waitForLine(predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const found = lines.find(predicate);
      if (found) return found;
      if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for a log line; stderr: ${stderr}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          waiters.delete(wake);
          resolve();
        };
        waiters.add(wake);
        setTimeout(wake, 100);
      });
    }
  }

  const listening = await waitForLine((l) => l.msg === 'listening', options.startTimeoutMs ?? 20_000);
  const urls = listening.urls as { public: string; ops: string };
  return {
    proc,
    publicUrl: urls.public,
    opsUrl: urls.ops,
    dataDir,
    logDir,
    lines,
    waitForLine,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null) proc.kill(signal);
      return await proc.exited;
    },
  };
}
