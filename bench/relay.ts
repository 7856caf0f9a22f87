/**
 * End-to-end relay throughput and latency (issue 6): the real server (`ssc serve`, embedded
 * default; and two nodes on one redis-server) against a plain Bun WebSocket relay of the same
 * shape without encryption (`relay-plain-server.ts`), all driven by the same load generator
 * (`relay-load.ts`) in separate processes.
 *
 * Shapes: 1:1 (one publisher, one subscriber per topic), fan-out 10 and fan-out 100, 128-byte
 * payloads. For each: peak delivered messages/s (closed loop, pipelined publishes), then the
 * latency (p50/p99/p999, publish sent → publication opened) at half of that peak (open loop).
 * Then the RSS of idle connections. Server, Redis and load-generator CPU are reported (cores
 * busy, 1.0 = one core) so a run bound by the load generator shows as such.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { startRedis } from '../test/helpers/redis.ts';
import { spawnServer } from '../test/helpers/server.ts';
import type { LoadConfig, LoadGroup } from './relay-load.ts';
import type { BenchContext, BenchResult, BenchRow, Benchmark } from './types.ts';

const TICKS = 100; // USER_HZ on Linux
const IDLE_SETTLE_MS = 12_000;

/** utime + stime of a process (or, with `thread`, of its thread of that id), in seconds. */
function cpuSeconds(pid: number, thread?: number): number {
  try {
    const path = thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`;
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return Number.NaN;
  }
}
/** The whole machine's busy CPU time so far (every core, every process, kernel included), in seconds. */
function machineBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - cpu[3]! - cpu[4]!) / TICKS;
}
const CORES = availableParallelism();
function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
}

interface Node {
  url: string;
  fingerprint: string;
  pid: number;
}
interface Deployment {
  name: string;
  secure: boolean;
  /** The load generator batches each connection's commands of one turn into one frame (as the SDK does). */
  batch: boolean;
  nodes: Node[];
  /** Other processes whose CPU counts as server side (redis-server). */
  helpers: number[];
  stop(): Promise<void>;
}

const serverEnv = (extra: Record<string, string> = {}) => ({
  SSC_LOG__LEVEL: 'info',
  SSC_SECURITY__RATE_LIMIT__FRAMES_PER_CONNECTION: '1000000000',
  SSC_SECURITY__RATE_LIMIT__FRAMES_PER_IDENTITY: '1000000000',
  SSC_SECURITY__RATE_LIMIT__HANDSHAKES_PER_IP: '1000000',
  SSC_SECURITY__RATE_LIMIT__HTTP_PER_IP: '1000000',
  SSC_CHANNEL__MAX_CONNECTIONS: '20000',
  ...extra,
});

async function startSecureNode(env: Record<string, string> = {}): Promise<{ node: Node; stop: () => Promise<number> }> {
  // Development: BENCH_RELAY_PROFILE=<dir> writes each server's CPU profile (Markdown) there on exit.
  const profile = process.env.BENCH_RELAY_PROFILE;
  const runtimeArgs = profile ? ['--cpu-prof', '--cpu-prof-md', `--cpu-prof-dir=${profile}`] : [];
  const server = await spawnServer({ env: serverEnv(env), startTimeoutMs: 30_000, runtimeArgs });
  const fingerprint = String((await server.waitForLine((l) => l.msg === 'node identity loaded')).fingerprint);
  // Drop the captured log lines as they come (a long run would keep them all).
  const drop = setInterval(() => server.lines.splice(0), 1_000);
  return {
    node: { url: server.publicUrl.replace(/^http/, 'ws') + '/v1/ws', fingerprint, pid: server.proc.pid },
    stop: async () => {
      clearInterval(drop);
      return await server.stop();
    },
  };
}

async function embedded(): Promise<Deployment> {
  const { node, stop } = await startSecureNode();
  // Development: BENCH_RELAY_BATCH=0 has the load generator send one frame per command.
  return { name: 'secure embedded', secure: true, batch: process.env.BENCH_RELAY_BATCH !== '0', nodes: [node], helpers: [], stop: async () => void (await stop()) };
}

async function redisPair(): Promise<Deployment> {
  const redis = await startRedis();
  const env = { SSC_BROKER__TYPE: 'redis', SSC_BROKER__REDIS__URL: redis.url };
  const a = await startSecureNode(env);
  const b = await startSecureNode(env);
  return {
    name: 'secure 2 nodes + redis',
    secure: true,
    batch: true,
    nodes: [a.node, b.node],
    helpers: [redis.proc.pid],
    stop: async () => {
      await Promise.all([a.stop(), b.stop()]);
      await redis.stop();
    },
  };
}

/** The plain relay with one frame per command and event, as a hand-rolled relay frames. */
const plain = () => plainRelay(PLAIN, false);
/** The same plain relay, the load generator batching its commands as against the secure relay. */
const plainBatched = () => plainRelay(PLAIN_BATCHED, true);
const PLAIN = 'plain Bun relay';
const PLAIN_BATCHED = 'plain Bun relay, batched';

async function plainRelay(name: string, batch: boolean): Promise<Deployment> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, 'relay-plain-server.ts')], { stdout: 'pipe', stderr: 'inherit' });
  const reader = proc.stdout.getReader();
  const { value } = await reader.read();
  const line = JSON.parse(new TextDecoder().decode(value).split('\n')[0]!) as { port: number };
  reader.releaseLock();
  return {
    name,
    secure: false,
    batch,
    nodes: [{ url: `ws://127.0.0.1:${line.port}/`, fingerprint: '', pid: proc.pid }],
    helpers: [],
    stop: async () => {
      proc.kill();
      await proc.exited;
    },
  };
}

/** A load-generator process and its JSON lines. */
function spawnLoad(config: LoadConfig) {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, 'relay-load.ts'), JSON.stringify(config)], {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'inherit',
  }) as Subprocess<'pipe', 'pipe', 'inherit'>;
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of proc.stdout) {
      buffer += decoder.decode(chunk, { stream: true });
      let i = buffer.indexOf('\n');
      while (i >= 0) {
        lines.push(JSON.parse(buffer.slice(0, i)));
        buffer = buffer.slice(i + 1);
        i = buffer.indexOf('\n');
      }
      for (const wake of waiters.splice(0)) wake();
    }
    for (const wake of waiters.splice(0)) wake();
  })();
  async function waitFor(phase: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = lines.find((l) => l.phase === phase);
      if (found) return found;
      if (proc.exitCode !== null) throw new Error(`load generator exited (${proc.exitCode}) before "${phase}"`);
      if (Date.now() > deadline) throw new Error(`load generator: no "${phase}" within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }
  return {
    proc,
    waitFor,
    tell(line: string) {
      proc.stdin.write(`${line}\n`);
      proc.stdin.flush();
    },
    async stop() {
      if (proc.exitCode === null) proc.kill();
      await proc.exited;
    },
  };
}

interface Shape {
  name: string;
  fanout: number;
  groups: number;
  window: number;
}

interface LoadResult {
  deliveredPerSecond: number;
  publishedPerSecond: number;
  latencyMs: { p50: number; p99: number; p999: number };
  /** Publish sent → its reply (the worst generator's). */
  replyLatencyMs: { p50: number; p99: number };
  serverCpu: number;
  /** The busiest server node's main thread (its event loop), in cores. */
  serverLoopCpu: number;
  loadCpu: number;
  /** The whole machine's busy cores over the window (servers, generators, kernel, anything else). */
  machineCpu: number;
  errors: string[];
}

/** Runs one shape on one deployment with `loadgens` processes (groups split among them). */
async function runShape(
  deployment: Deployment,
  shape: Shape,
  options: { loadgens: number; warmupMs: number; durationMs: number; rate?: number },
): Promise<LoadResult> {
  const nodes = deployment.nodes.length;
  const groups: LoadGroup[] = Array.from({ length: shape.groups }, (_, g) => ({
    topic: `public:bench-${shape.fanout}-${g}-${Math.random().toString(36).slice(2, 8)}`,
    publisher: g % nodes,
    subscribers: Array.from({ length: shape.fanout }, (_, s) => (g + s + 1) % nodes),
  }));
  const count = Math.min(options.loadgens, groups.length);
  const procs = Array.from({ length: count }, (_, i) =>
    spawnLoad({
      secure: deployment.secure,
      urls: deployment.nodes.map((n) => n.url),
      fingerprints: deployment.nodes.map((n) => n.fingerprint),
      mode: 'relay',
      batch: deployment.batch,
      groups: groups.filter((_, g) => g % count === i),
      window: shape.window,
      rate: options.rate ? options.rate / count : undefined,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
      connectConcurrency: 32,
    }),
  );
  try {
    await Promise.all(procs.map((p) => p.waitFor('ready', 120_000)));
    for (const p of procs) p.tell('go');
    await Promise.all(procs.map((p) => p.waitFor('measure', 60_000)));
    const pids = [...deployment.nodes.map((n) => n.pid), ...deployment.helpers];
    const started = performance.now();
    const cpu0 = pids.map((pid) => cpuSeconds(pid));
    const nodePids = deployment.nodes.map((n) => n.pid);
    const loop0 = nodePids.map((pid) => cpuSeconds(pid, pid));
    const machine0 = machineBusySeconds();
    const done = await Promise.all(procs.map((p) => p.waitFor('done', options.durationMs + 60_000)));
    const seconds = (performance.now() - started) / 1000;
    const cpu1 = pids.map((pid) => cpuSeconds(pid));
    const loop1 = nodePids.map((pid) => cpuSeconds(pid, pid));
    const machineCpu = (machineBusySeconds() - machine0) / seconds;
    const serverCpu = cpu1.reduce((sum, c, i) => sum + (c - cpu0[i]!), 0) / seconds;
    const serverLoopCpu = Math.max(...loop1.map((c, i) => (c - loop0[i]!) / seconds));
    type Done = {
      deliveredPerSecond: number;
      publishedPerSecond: number;
      latencyMs: LoadResult['latencyMs'];
      replyLatencyMs: LoadResult['replyLatencyMs'];
      cpu: number;
      errors: string[];
    };
    const results = done as unknown as Done[];
    // Latency percentiles of several generators: the worst of each (conservative).
    return {
      deliveredPerSecond: results.reduce((s, r) => s + r.deliveredPerSecond, 0),
      publishedPerSecond: results.reduce((s, r) => s + r.publishedPerSecond, 0),
      latencyMs: {
        p50: Math.max(...results.map((r) => r.latencyMs.p50)),
        p99: Math.max(...results.map((r) => r.latencyMs.p99)),
        p999: Math.max(...results.map((r) => r.latencyMs.p999)),
      },
      replyLatencyMs: {
        p50: Math.max(...results.map((r) => r.replyLatencyMs.p50)),
        p99: Math.max(...results.map((r) => r.replyLatencyMs.p99)),
      },
      serverCpu,
      serverLoopCpu,
      loadCpu: results.reduce((s, r) => s + r.cpu, 0),
      machineCpu,
      errors: results.flatMap((r) => r.errors),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

/** RSS per idle connection: `count` connections held open after a warm-up of `warm`. */
async function idleRss(deployment: Deployment, count: number, warm: number): Promise<{ kib: number; connectSeconds: number }> {
  const pid = deployment.nodes[0]!.pid;
  const base = {
    secure: deployment.secure,
    urls: [deployment.nodes[0]!.url],
    fingerprints: [deployment.nodes[0]!.fingerprint],
    mode: 'idle' as const,
    groups: [],
    window: 0,
    warmupMs: 0,
    durationMs: 0,
    connectConcurrency: 64,
  };
  const warmup = spawnLoad({ ...base, idleCount: warm });
  const loaders: ReturnType<typeof spawnLoad>[] = [warmup];
  try {
    await warmup.waitFor('ready', 120_000);
    await Bun.sleep(1_500);
    const before = rssKiB(pid);
    const held = spawnLoad({ ...base, idleCount: count });
    loaders.push(held);
    const ready = await held.waitFor('ready', 300_000);
    // Idle means idle: give the runtime's own idle-time collection (JSC runs one a few seconds
    // after allocation stops) the time to drop the handshakes' garbage, as it would on a server.
    await Bun.sleep(IDLE_SETTLE_MS);
    const after = rssKiB(pid);
    return { kib: (after - before) / count, connectSeconds: Number(ready.connectSeconds) };
  } finally {
    for (const l of loaders) l.tell('stop');
    await Promise.all(loaders.map((l) => l.stop()));
  }
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits));

const bench: Benchmark = {
  name: 'relay',
  description: 'secure relay (embedded, 2 nodes + Redis) vs a plain Bun WebSocket relay: delivered msgs/s, latency at half load, RSS per idle connection',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const quick = ctx.quick;
    const loadgens = Number(process.env.BENCH_RELAY_LOADGENS ?? 1);
    const durationMs = quick ? 1_500 : 5_000;
    const warmupMs = quick ? 700 : 2_000;
    const idleCount = Number(process.env.BENCH_RELAY_IDLE || (quick ? 1_000 : 5_000));
    const only = process.env.BENCH_RELAY_ONLY?.split(',');
    // Unanswered publishes per publisher in the closed loop. The secure relay answers a publish
    // after its history commit and fsync (tens of ms under load), so 32 in flight per publisher
    // capped the fan-out runs below what the server could do (8 publishers × 32 / ~30 ms);
    // 128 keeps the server the bound. Same window for every relay. Development: BENCH_RELAY_WINDOW.
    const window = Number(process.env.BENCH_RELAY_WINDOW ?? 128);
    const shapes: Shape[] = [
      { name: '1:1', fanout: 1, groups: quick ? 16 : 32, window },
      { name: 'fan-out 10', fanout: 10, groups: quick ? 4 : 8, window },
      { name: 'fan-out 100', fanout: 100, groups: 2, window },
    ].filter((s) => !only || only.includes(s.name));
    let deployments: (() => Promise<Deployment>)[] = [plain, plainBatched, embedded];
    if (process.env.BENCH_RELAY_REDIS !== '0') deployments.push(redisPair);
    // Development: BENCH_RELAY_DEPLOY=plain,plain-batched,embedded,redis picks deployments (ratios need plain).
    const picked = process.env.BENCH_RELAY_DEPLOY?.split(',');
    const key = (d: () => Promise<Deployment>) =>
      d === plain ? 'plain' : d === plainBatched ? 'plain-batched' : d === embedded ? 'embedded' : 'redis';
    if (picked) deployments = deployments.filter((d) => picked.includes(key(d)));
    const skipIdle = process.env.BENCH_RELAY_IDLE === '0';

    const rows: BenchRow[] = [];
    const peak = new Map<string, LoadResult>();
    const half = new Map<string, LoadResult>();
    for (const start of deployments) {
      const deployment = await start();
      ctx.log(`${deployment.name}: ${deployment.nodes.map((n) => n.url).join(', ')}`);
      try {
        for (const shape of shapes) {
          // Development: BENCH_RELAY_FIXED_RATE=<publishes/s> replaces the closed loop by an open
          // loop at that rate (the "half" run then runs at half of what it reached).
          // BENCH_RELAY_HALF_RATE=<publishes/s> skips the first run and paces the "half" run at that rate.
          const fixed = Number(process.env.BENCH_RELAY_FIXED_RATE ?? 0);
          const halfRate = Number(process.env.BENCH_RELAY_HALF_RATE ?? 0);
          const top = halfRate > 0 ? undefined : await runShape(deployment, shape, { loadgens, warmupMs, durationMs, rate: fixed > 0 ? fixed : undefined });
          if (top) {
            ctx.log(
              `${deployment.name} ${shape.name} peak: ${Math.round(top.deliveredPerSecond)} delivered/s, server ${round(top.serverCpu)} cores (loop ${round(top.serverLoopCpu)}), load ${round(top.loadCpu)}, machine ${round(top.machineCpu)} of ${CORES}, reply p50/p99 ${round(top.replyLatencyMs.p50)}/${round(top.replyLatencyMs.p99)} ms${top.errors.length ? `, errors: ${top.errors.join('; ')}` : ''}`,
            );
            peak.set(`${deployment.name}/${shape.name}`, top);
          }
          const paced = await runShape(deployment, shape, { loadgens, warmupMs, durationMs, rate: top ? top.publishedPerSecond / 2 : halfRate });
          ctx.log(
            `${deployment.name} ${shape.name} half: ${Math.round(paced.deliveredPerSecond)} delivered/s, server ${round(paced.serverCpu)} cores (loop ${round(paced.serverLoopCpu)}), load ${round(paced.loadCpu)}, machine ${round(paced.machineCpu)} of ${CORES}, p50/p99 ${round(paced.latencyMs.p50)}/${round(paced.latencyMs.p99)} ms, reply p50/p99 ${round(paced.replyLatencyMs.p50)}/${round(paced.replyLatencyMs.p99)} ms`,
          );
          half.set(`${deployment.name}/${shape.name}`, paced);
        }
      } finally {
        await deployment.stop();
      }
    }

    const plainName = PLAIN;
    for (const shape of shapes) {
      const base = peak.get(`${plainName}/${shape.name}`);
      const baseBatched = peak.get(`${PLAIN_BATCHED}/${shape.name}`);
      for (const name of [plainName, PLAIN_BATCHED, 'secure embedded', 'secure 2 nodes + redis']) {
        const top = peak.get(`${name}/${shape.name}`);
        const paced = half.get(`${name}/${shape.name}`);
        if (!top || !paced) continue;
        rows.push({
          shape: shape.name,
          relay: name,
          'delivered/s': Math.round(top.deliveredPerSecond),
          'vs plain': base ? round(top.deliveredPerSecond / base.deliveredPerSecond) : Number.NaN,
          'vs plain batched': baseBatched ? round(top.deliveredPerSecond / baseBatched.deliveredPerSecond) : Number.NaN,
          'server CPU': round(top.serverCpu),
          'server loop CPU': round(top.serverLoopCpu),
          // Server efficiency, whatever bound the run: deliveries per second per busy server core.
          'delivered/server-core-s': Math.round(top.deliveredPerSecond / top.serverCpu),
          'loadgen CPU': round(top.loadCpu),
          'machine CPU': round(top.machineCpu),
          // What the whole box would deliver at this run's machine CPU per delivery, every core busy.
          'box ceiling/s': Math.round((top.deliveredPerSecond * CORES) / top.machineCpu),
          'p50 ms @½': round(paced.latencyMs.p50, 3),
          'p99 ms @½': round(paced.latencyMs.p99, 3),
          'server loop CPU @½': round(paced.serverLoopCpu),
          'machine CPU @½': round(paced.machineCpu),
          'p999 ms @½': round(paced.latencyMs.p999, 3),
          'p99 ms @peak': round(top.latencyMs.p99, 2),
        });
      }
    }

    // Idle connections.
    const rss: Record<string, number> = {};
    for (const start of skipIdle ? [] : [plain, embedded]) {
      const deployment = await start();
      try {
        const { kib, connectSeconds } = await idleRss(deployment, idleCount, quick ? 100 : 200);
        rss[deployment.name] = kib;
        ctx.log(`${deployment.name}: ${idleCount} idle connections in ${round(connectSeconds, 1)} s, ${round(kib)} KiB RSS each`);
        rows.push({ shape: `idle ×${idleCount}`, relay: deployment.name, 'KiB RSS/conn': round(kib, 1) });
      } finally {
        await deployment.stop();
      }
    }

    const get = (name: string, shape: string) => peak.get(`${name}/${shape}`);
    const ratio = (shape: string, name = 'secure embedded', baseline = plainName) => {
      const s = get(name, shape);
      const p = get(baseline, shape);
      return s && p ? round(s.deliveredPerSecond / p.deliveredPerSecond) : Number.NaN;
    };
    const oneToOne = get('secure embedded', '1:1');
    const fan10 = get('secure embedded', 'fan-out 10');
    const p99s = [...half.entries()].filter(([k]) => k.startsWith('secure')).map(([, r]) => r.latencyMs.p99);
    const redisRatios = shapes.map((s) => {
      const r = get('secure 2 nodes + redis', s.name);
      const e = get('secure embedded', s.name);
      return r && e ? r.deliveredPerSecond / e.deliveredPerSecond : Number.NaN;
    });
    const summary: Record<string, string | number | boolean> = {
      'secure/plain 1:1': ratio('1:1'),
      'secure/plain fan-out 10': ratio('fan-out 10'),
      'secure/plain fan-out 100': ratio('fan-out 100'),
      'secure/plain batched 1:1': ratio('1:1', 'secure embedded', PLAIN_BATCHED),
      'secure/plain batched fan-out 10': ratio('fan-out 10', 'secure embedded', PLAIN_BATCHED),
      'secure/plain batched fan-out 100': ratio('fan-out 100', 'secure embedded', PLAIN_BATCHED),
      'redis/embedded (min over shapes)': round(Math.min(...redisRatios)),
      'target 1:1 ≥ 100k msgs/s': oneToOne ? oneToOne.deliveredPerSecond >= 100_000 : false,
      'target 1:1 secure/plain ≥ 0.7': ratio('1:1') >= 0.7,
      'target fan-out 10 ≥ 400k deliveries/s': fan10 ? fan10.deliveredPerSecond >= 400_000 : false,
      'target fan-out 10 secure/plain ≥ 0.5': ratio('fan-out 10') >= 0.5,
      'target p99 < 10 ms at half load (secure, all shapes)': p99s.length > 0 && p99s.every((p) => p < 10),
      'target ≤ 8 KiB RSS per idle secure connection': (rss['secure embedded'] ?? Number.POSITIVE_INFINITY) <= 8,
      'target redis ≥ 0.5× embedded': redisRatios.every((r) => r >= 0.5),
      loadgens,
      'load average at end': (await Bun.file('/proc/loadavg').text()).split(' ').slice(0, 3).join(' '),
    };
    return {
      rows,
      summary,
      notes: [
        `delivered/s counts publications opened by subscribers (fan-out N: N deliveries per publish); peak = closed loop, each publisher keeps ${window} publishes unanswered`,
        '@½ = open loop at half of that deployment\'s peak publish rate; latency = publish sent → publication opened, one clock (publisher and subscribers share a load-generator process)',
        'CPU in cores (1.0 = one core busy) over the measured window; server CPU includes redis-server for the Redis set-up; this box has 2 cores shared by servers and load generators; a loadgen CPU near 1.0 per process means the run was bound by the load generator; server loop CPU = the main thread of the busiest node (event loop) alone, near 1.0 when the event loop binds',
        `machine CPU = busy cores of the whole box (${CORES} here: servers, load generators, kernel and anything else running) over the same window; box ceiling/s = delivered/s × ${CORES} ÷ machine CPU, what the box would deliver at that run's CPU per delivery with every core busy — a target above it cannot be met on this box without making the messages cheaper, whatever the scheduling`,
        'delivered/server-core-s = delivered/s ÷ server CPU: what one busy server core delivers (the secure server also spends time blocked in its SQLite commit fsync, which this does not count)',
        'plain baseline: Bun.serve WebSocket relay speaking the same JSON without encryption, store or validation; fan-out with one server.publish per message (uWS topic); one WebSocket message per command and per event',
        'plain batched: the same plain relay, the load generator batching each connection\'s commands of one turn into one message (a JSON array) as it does against the secure relay; the plain relay answers a batch with one reply message and one server.publish per topic',
        'secure: the load generator batches commands as the SDK does; the server sends each connection the events of one event-loop turn as one frame (a JSON array) when there are several',
        'secure: real `ssc serve`, hybrid XXhfs handshake per connection, every command sealed and every frame opened (WASM ChaCha20-Poly1305), history appended to SQLite (embedded) or Redis streams',
        `RSS per idle connection = (RSS after ${idleCount} more connections − RSS before) / ${idleCount}, ${IDLE_SETTLE_MS / 1000} s after the last handshake (no forced GC)`,
      ],
    };
  },
};

export default bench;
