/**
 * Load and soak scenarios against one real node (embedded broker + SQLite), shared by the CI
 * tests (`load.test.ts`, `soak.test.ts`: small counts) and the runner (`run.ts`: full counts).
 */
import {
  closeAll,
  createLedger,
  errorLines,
  getJson,
  median,
  openClients,
  percentile,
  rssKiB,
  startNode,
  type TrackedClient,
} from './lib.ts';

export interface LoadResult {
  connections: number;
  failedHandshakes: number;
  handshakeP50Ms: number;
  handshakeP99Ms: number;
  /** Acknowledged direct messages (each client sent `rounds`). */
  messages: number;
  messagesPerSecond: number;
  deliveryP50Ms: number;
  deliveryP99Ms: number;
  rssBaselineMiB: number;
  rssLoadedMiB: number;
  /** (RSS with every channel open − RSS before) / connections. */
  kibPerConnection: number;
  lost: number;
  rejected: number;
  clientErrors: number;
  serverErrors: number;
  ready: boolean;
}

const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

/**
 * Opens `connections` secure WebSocket channels on one node (hybrid XXhfs handshake each), then
 * every client sends `rounds` direct messages to its neighbour, all at once per round; counts
 * acknowledged vs received, delivery latency, and server RSS per open channel.
 */
export async function runLoad(options: {
  connections: number;
  rounds: number;
  concurrency?: number;
  log?: (line: string) => void;
}): Promise<LoadResult> {
  const { connections, rounds, concurrency = 64, log = () => {} } = options;
  const node = await startNode();
  const clients: TrackedClient[] = [];
  try {
    await Bun.sleep(500);
    const rssBaseline = rssKiB(node.pid);
    log(`node up (pid ${node.pid}, RSS ${mib(rssBaseline)} MiB); opening ${connections} channels`);
    const ledger = createLedger();
    const opened = await openClients([node.publicUrl], connections, {
      concurrency,
      connect: { serverFingerprint: node.fingerprint, reconnect: false },
      onClient: (c) => ledger.receiveOn(c.client),
    });
    clients.push(...opened.clients);
    await Bun.sleep(1_000);
    const rssLoaded = rssKiB(node.pid);
    log(`${opened.clients.length} open, ${opened.failures.length} failed; RSS ${mib(rssLoaded)} MiB`);
    const started = performance.now();
    for (let round = 0; round < rounds; round++) {
      await Promise.all(
        clients.map((c, i) => ledger.send(c.client, clients[(i + 1) % clients.length]!.client.identity)),
      );
    }
    const lost = await ledger.settle(60_000);
    const elapsed = (performance.now() - started) / 1000;
    log(`${ledger.acked} acknowledged, ${ledger.received} received in ${elapsed.toFixed(1)} s`);
    const ready = (await getJson(`${node.opsUrl}/ready`)).status === 200;
    return {
      connections: opened.clients.length,
      failedHandshakes: opened.failures.length,
      handshakeP50Ms: Math.round(median(opened.handshakeMs)),
      handshakeP99Ms: Math.round(percentile(opened.handshakeMs, 99)),
      messages: ledger.acked,
      messagesPerSecond: Math.round(ledger.received / elapsed),
      deliveryP50Ms: median(ledger.latencies),
      deliveryP99Ms: percentile(ledger.latencies, 99),
      rssBaselineMiB: mib(rssBaseline),
      rssLoadedMiB: mib(rssLoaded),
      kibPerConnection:
        Math.round(((rssLoaded - rssBaseline) / Math.max(1, opened.clients.length)) * 10) / 10,
      lost,
      rejected: ledger.rejected,
      clientErrors: clients.reduce((n, c) => n + c.errors.length, 0) + opened.failures.length,
      serverErrors: errorLines(node).length,
      ready,
    };
  } finally {
    closeAll(clients);
    await node.stop('SIGKILL');
  }
}

export interface SoakResult {
  seconds: number;
  clients: number;
  messages: number;
  publications: number;
  messagesPerSecond: number;
  deliveryP99Ms: number;
  lost: number;
  rejected: number;
  /** RSS samples (MiB), one per second. */
  rssMiB: number[];
  lagMs: number[];
  /** Median RSS of the last third minus the first third, after the warm-up fifth (MiB). */
  rssGrowthMiB: number;
  /** Allowed growth (MiB): max(24 MiB, 25 % of the post-warm-up level). */
  rssGrowthLimitMiB: number;
  lagP99Ms: number;
  lagMaxMs: number;
  clientErrors: number;
  serverErrors: number;
  bounded: boolean;
}

/**
 * Steady traffic on one node for `seconds`: `clients` clients, `rate` direct messages per second
 * (random pairs) plus a tenth as many topic publications to a topic everyone is subscribed to;
 * server RSS and event-loop lag (`/live`) sampled every second.
 */
export async function runSoak(options: {
  seconds: number;
  clients?: number;
  rate?: number;
  log?: (line: string) => void;
}): Promise<SoakResult> {
  const { seconds, clients: count = 40, rate = 200, log = () => {} } = options;
  const node = await startNode();
  const clients: TrackedClient[] = [];
  try {
    const ledger = createLedger();
    let publications = 0;
    const opened = await openClients([node.publicUrl], count, {
      connect: { serverFingerprint: node.fingerprint, reconnect: false },
      onClient: (c) => ledger.receiveOn(c.client),
    });
    clients.push(...opened.clients);
    for (const c of clients) {
      c.client.on('publication', () => publications++);
      await c.client.subscribe('public:soak');
    }
    const rss: number[] = [];
    const lag: number[] = [];
    const sampler = setInterval(async () => {
      try {
        rss.push(rssKiB(node.pid) / 1024);
        lag.push(Number((await getJson(`${node.opsUrl}/live`)).body?.eventLoopLagMs ?? 0));
      } catch {
        // a missed sample is not a failure
      }
    }, 1_000);
    const tickMs = 100;
    const perTick = rate / (1_000 / tickMs);
    const inFlight = new Set<Promise<unknown>>();
    const endAt = Date.now() + seconds * 1_000;
    let carry = 0;
    let tick = 0;
    while (Date.now() < endAt) {
      carry += perTick;
      while (carry >= 1) {
        carry--;
        const from = clients[Math.floor(Math.random() * clients.length)]!.client;
        const to = clients[Math.floor(Math.random() * clients.length)]!.client;
        const p = ledger.send(from, to.identity);
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      if (tick++ % 10 === 0) {
        const from = clients[tick % clients.length]!.client;
        for (let i = 0; i < Math.max(1, rate / 100); i++) {
          const p = from.publish('public:soak', `tick ${tick}`).catch(() => undefined);
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        }
      }
      await Bun.sleep(tickMs);
    }
    await Promise.all(inFlight);
    const lost = await ledger.settle(30_000);
    clearInterval(sampler);
    const warm = Math.floor(rss.length / 5);
    const steady = rss.slice(warm);
    const third = Math.max(1, Math.floor(steady.length / 3));
    const early = median(steady.slice(0, third));
    const late = median(steady.slice(-third));
    const growth = Math.round((late - early) * 10) / 10;
    const limit = Math.round(Math.max(24, early * 0.25) * 10) / 10;
    const steadyLag = lag.slice(warm);
    const result: SoakResult = {
      seconds,
      clients: clients.length,
      messages: ledger.acked,
      publications,
      messagesPerSecond: Math.round(ledger.acked / seconds),
      deliveryP99Ms: percentile(ledger.latencies, 99),
      lost,
      rejected: ledger.rejected,
      rssMiB: rss.map((v) => Math.round(v * 10) / 10),
      lagMs: lag,
      rssGrowthMiB: growth,
      rssGrowthLimitMiB: limit,
      lagP99Ms: percentile(steadyLag, 99),
      lagMaxMs: Math.max(0, ...steadyLag),
      clientErrors: clients.reduce((n, c) => n + c.errors.length, 0) + opened.failures.length,
      serverErrors: errorLines(node).length,
      bounded: growth <= limit,
    };
    log(
      `soak ${seconds} s: ${result.messages} DMs, RSS ${early.toFixed(1)} → ${late.toFixed(1)} MiB (limit +${limit}), lag p99 ${result.lagP99Ms} ms`,
    );
    return result;
  } finally {
    closeAll(clients);
    await node.stop('SIGKILL');
  }
}
