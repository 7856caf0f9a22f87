/**
 * Shared pieces of the load, soak and fault suites: real server processes on loopback with
 * limits raised for one load generator, secure clients (the SDK with Bun's native crypto), a
 * ledger that counts acknowledged direct messages until their recipients have them, RSS of a
 * process, and percentiles. Nothing here times a test; the figures are reported, not asserted
 * against wall-clock targets.
 */
import { readFileSync } from 'node:fs';
import { connect, type ConnectOptions, type SecureClient } from '../../src/client/index.ts';
import { createCrypto } from '../../src/crypto/index.ts';
import { type SpawnedServer, type SpawnOptions, spawnServer } from '../helpers/server.ts';

export const clientCrypto = await createCrypto({
  aead: 'auto',
  kem: 'auto',
  signer: 'auto',
  dh: 'auto',
  wasmSimd: true,
});

/** Limits of one node raised so that one load generator on 127.0.0.1 is not rate-limited or banned. */
export const loadEnv: Record<string, string> = {
  SSC_CHANNEL__MAX_CONNECTIONS: '20000',
  SSC_SECURITY__RATE_LIMIT__HANDSHAKES_PER_IP: '1000000',
  SSC_SECURITY__RATE_LIMIT__HTTP_PER_IP: '1000000',
  SSC_SECURITY__RATE_LIMIT__FRAMES_PER_CONNECTION: '1000000',
  SSC_SECURITY__RATE_LIMIT__FRAMES_PER_IDENTITY: '1000000',
  SSC_SECURITY__BANS__THRESHOLD: '1000000',
  SSC_LOG__LEVEL: 'info',
};

export interface Node extends SpawnedServer {
  fingerprint: string;
  pid: number;
}

/** Starts a node with the load limits (plus `env`). */
export async function startNode(options: SpawnOptions = {}): Promise<Node> {
  const server = await spawnServer({ ...options, env: { ...loadEnv, ...options.env } });
  const fingerprint = String((await server.waitForLine((l) => l.msg === 'node identity loaded')).fingerprint);
  return Object.assign(server, { fingerprint, pid: server.proc.pid });
}

/** Resident set size of a process, KiB (Linux /proc). */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

export const percentile = (values: number[], p: number): number => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

export const median = (values: number[]) => percentile(values, 50);

export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(25);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: probe bodies are read loosely
export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: await response.json().catch(() => undefined) };
}

/** A client with the counters the suites read. */
export interface TrackedClient {
  client: SecureClient;
  /** Close codes seen (1001 on a drain, 1006 on a killed node). */
  closes: number[];
  errors: Error[];
  /** Successful (re)connections after the first. */
  reconnects: number;
}

/**
 * Opens `count` secure clients against `urls` (a list: reconnect cycles through it), at most
 * `concurrency` handshakes at a time. Failures are collected, not thrown.
 */
export async function openClients(
  urls: string[],
  count: number,
  options: {
    concurrency?: number;
    connect?: ConnectOptions;
    onClient?: (c: TrackedClient, index: number) => void;
  } = {},
): Promise<{ clients: TrackedClient[]; failures: Error[]; handshakeMs: number[] }> {
  const { concurrency = 64 } = options;
  const clients: TrackedClient[] = [];
  const failures: Error[] = [];
  const handshakeMs: number[] = [];
  let next = 0;
  async function worker() {
    while (next < count) {
      const index = next++;
      const started = performance.now();
      try {
        const client = await connect(urls, {
          crypto: clientCrypto,
          reconnect: { minDelayMs: 50, maxDelayMs: 1_000 },
          ...options.connect,
        });
        handshakeMs.push(performance.now() - started);
        const tracked: TrackedClient = { client, closes: [], errors: [], reconnects: 0 };
        client.on('close', (info) => tracked.closes.push(info.code));
        client.on('error', (error) => tracked.errors.push(error));
        client.on('state', (state) => {
          if (state === 'open') tracked.reconnects++;
        });
        options.onClient?.(tracked, index);
        clients[index] = tracked;
      } catch (error) {
        failures.push(error as Error);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { clients: clients.filter(Boolean), failures, handshakeMs };
}

/**
 * Counts direct messages: every `send()` that resolved is "acknowledged" and must reach its
 * recipient eventually; a send that rejected was never acknowledged (it may still arrive).
 */
export function createLedger() {
  const acked = new Map<string, number>();
  const received = new Set<string>();
  const latencies: number[] = [];
  let rejected = 0;
  let duplicates = 0;
  let seq = 0;
  return {
    /** Makes a recipient count what it gets (payload `<tag>|<sentAt>`). */
    receiveOn(client: SecureClient) {
      client.on('message', (m) => {
        const text = m.text();
        const tag = text.slice(0, text.indexOf('|'));
        if (received.has(tag)) duplicates++;
        else {
          received.add(tag);
          latencies.push(Date.now() - Number(text.slice(text.indexOf('|') + 1)));
        }
      });
    },
    /** Sends one tracked direct message; resolves true when acknowledged. */
    async send(from: SecureClient, to: string): Promise<boolean> {
      const tag = `${from.identity.slice(0, 12)}:${seq++}`;
      const sentAt = Date.now();
      try {
        await from.send(to, `${tag}|${sentAt}`);
        acked.set(tag, sentAt);
        return true;
      } catch {
        rejected++;
        return false;
      }
    },
    get acked() {
      return acked.size;
    },
    get rejected() {
      return rejected;
    },
    get duplicates() {
      return duplicates;
    },
    latencies,
    /** Acknowledged messages not (yet) received. */
    missing(): string[] {
      return [...acked.keys()].filter((tag) => !received.has(tag));
    },
    get received() {
      return received.size;
    },
    /** Waits until every acknowledged message arrived (or the timeout); returns how many are lost. */
    async settle(timeoutMs: number): Promise<number> {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (this.missing().length === 0) return 0;
        await Bun.sleep(50);
      }
      return this.missing().length;
    },
  };
}
export type Ledger = ReturnType<typeof createLedger>;

/** Closes clients without reconnecting. */
export function closeAll(clients: TrackedClient[]) {
  for (const c of clients) {
    try {
      c.client.close();
    } catch {
      // already closed
    }
  }
}

/** Error-level lines (pino level ≥ 50) a node printed. */
export const errorLines = (node: SpawnedServer) =>
  node.lines.filter((l) => typeof l.level === 'number' && (l.level as number) >= 50);
