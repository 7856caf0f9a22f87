/**
 * Starts a real `redis-server` on a free loopback port for one test file, and stops it.
 * Tests that kill or restart Redis use their own instance, never the shared one on 6379.
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';

/** A free TCP port on 127.0.0.1 (bind to 0, read, close). */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  proc: Subprocess;
  /** SIGKILL (a crash) or SIGTERM; resolves when the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and directory (AOF kept when enabled). */
  restart(): Promise<void>;
}

export async function startRedis(options: { appendOnly?: boolean; port?: number } = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'ssc-redis-'));
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir,
    '--appendonly', options.appendOnly ? 'yes' : 'no', '--appendfsync', 'always', '--logfile', join(dir, 'redis.log'),
  ];
  const launch = async () => {
    const proc = Bun.spawn(['redis-server', ...args], { stdout: 'ignore', stderr: 'pipe' });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const ping = Bun.spawnSync(['redis-cli', '-p', String(port), 'ping']);
      if (ping.stdout.toString().trim() === 'PONG') return proc;
      if (proc.exitCode !== null) throw new Error(`redis-server exited: ${await new Response(proc.stderr).text()}`);
      await Bun.sleep(50);
    }
    proc.kill('SIGKILL');
    throw new Error('redis-server did not answer PING within 10 s');
  };
  const handle: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    proc: await launch(),
    async stop(signal = 'SIGTERM') {
      if (handle.proc.exitCode === null) handle.proc.kill(signal);
      await handle.proc.exited;
    },
    async restart() {
      await handle.stop();
      handle.proc = await launch();
    },
  };
  return handle;
}
