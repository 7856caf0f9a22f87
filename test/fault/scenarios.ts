/**
 * Fault scenarios against real processes on loopback, shared by the CI tests and `run.ts`.
 * Each returns counts; "lost" is the number of direct messages whose `send()` resolved (the
 * server stored them and acknowledged) that their recipient never received.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RedisServer, startRedis } from '../helpers/redis.ts';
import { spawnServer } from '../helpers/server.ts';
import {
  closeAll,
  createLedger,
  getJson,
  type Ledger,
  type Node,
  openClients,
  startNode,
  type TrackedClient,
  waitUntil,
} from '../load/lib.ts';

export type Log = (line: string) => void;

/** Senders send to random receivers in a loop until stopped; failures (not acknowledged) are counted by the ledger. */
function traffic(ledger: Ledger, senders: TrackedClient[], receivers: TrackedClient[], pauseMs = 20) {
  let running = true;
  const loops = senders.map(async (s) => {
    while (running) {
      const to = receivers[Math.floor(Math.random() * receivers.length)]!.client.identity;
      const ok = await ledger.send(s.client, to);
      await Bun.sleep(ok ? pauseMs : 100);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

const ready = async (node: Node) =>
  (await getJson(`${node.opsUrl}/ready`).catch(() => ({ status: 0, body: undefined }))).status === 200;

export interface RedisOutageResult {
  ackedBefore: number;
  rejectedDuringOutage: number;
  readyFalseSeen: boolean;
  readyReason: string;
  recoveredReady: boolean;
  ackedAfterRecovery: number;
  acked: number;
  lost: number;
  samePid: boolean;
}

/** Kill Redis (SIGKILL, AOF always) mid-traffic, keep it down, bring it back; the node is not restarted. */
export async function redisOutage(
  options: { senders?: number; outageMs?: number; log?: Log } = {},
): Promise<RedisOutageResult> {
  const { senders = 4, outageMs = 4_000, log = () => {} } = options;
  const redis = await startRedis({ appendOnly: true });
  let node: Node | undefined;
  const clients: TrackedClient[] = [];
  try {
    node = await startNode({
      env: {
        SSC_BROKER__TYPE: 'redis',
        SSC_BROKER__REDIS__URL: redis.url,
        SSC_BROKER__REDIS__COMMAND_TIMEOUT_MS: '500',
        SSC_OBSERVABILITY__HEALTH_INTERVAL_SECONDS: '1',
      },
    });
    const ledger = createLedger();
    const opened = await openClients([node.publicUrl], senders * 2, {
      connect: { serverFingerprint: node.fingerprint },
    });
    clients.push(...opened.clients);
    const receivers = clients.slice(senders);
    for (const r of receivers) ledger.receiveOn(r.client);
    const run = traffic(ledger, clients.slice(0, senders), receivers);
    await Bun.sleep(1_500);
    const ackedBefore = ledger.acked;
    const pid = node.pid;
    log(`redis: ${ackedBefore} acknowledged; SIGKILL redis`);
    await redis.stop('SIGKILL');
    const rejectedAtKill = ledger.rejected;
    let readyFalseSeen = false;
    let readyReason = '';
    const downUntil = Date.now() + outageMs;
    while (Date.now() < downUntil) {
      const probe = await getJson(`${node.opsUrl}/ready`);
      if (probe.status === 503) {
        readyFalseSeen = true;
        readyReason ||= (probe.body?.reasons ?? []).join('; ');
      }
      await Bun.sleep(250);
    }
    const rejectedDuringOutage = ledger.rejected - rejectedAtKill;
    log(
      `redis down ${outageMs} ms: ${rejectedDuringOutage} sends refused, /ready false: ${readyFalseSeen} (${readyReason})`,
    );
    await redis.restart();
    let recoveredReady = true;
    await waitUntil(() => ready(node!), 30_000, '/ready after Redis returned').catch(
      () => (recoveredReady = false),
    );
    const ackedAtRecovery = ledger.acked;
    await Bun.sleep(2_000);
    await run.stop();
    const ackedAfterRecovery = ledger.acked - ackedAtRecovery;
    const lost = await ledger.settle(30_000);
    log(
      `redis back: ready ${recoveredReady}, ${ackedAfterRecovery} acknowledged after; total ${ledger.acked}, lost ${lost}`,
    );
    return {
      ackedBefore,
      rejectedDuringOutage,
      readyFalseSeen,
      readyReason,
      recoveredReady,
      ackedAfterRecovery,
      acked: ledger.acked,
      lost,
      samePid: node.proc.exitCode === null && node.pid === pid,
    };
  } finally {
    closeAll(clients);
    await node?.stop('SIGKILL');
    await redis.stop('SIGKILL');
  }
}

export interface NodeLossResult {
  signal: 'SIGKILL' | 'SIGTERM';
  clients: number;
  /** Clients that were connected to the stopped node and are connected again (to the other). */
  moved: number;
  /** Close codes the clients of the stopped node saw. */
  closeCodes: Record<string, number>;
  exitCode: number;
  acked: number;
  rejected: number;
  lost: number;
  readyDuringDrain?: boolean;
}

/**
 * Two nodes on one Redis (AOF always); every client starts on node 1 with the list [n1, n2];
 * node 1 is killed (SIGKILL) or drained (SIGTERM) mid-traffic; clients must move to node 2 and
 * every acknowledged direct message must arrive.
 */
export async function nodeLoss(
  signal: 'SIGKILL' | 'SIGTERM',
  options: { senders?: number; log?: Log } = {},
): Promise<NodeLossResult> {
  const { senders = 6, log = () => {} } = options;
  const redis: RedisServer = await startRedis({ appendOnly: true });
  const nodes: Node[] = [];
  const clients: TrackedClient[] = [];
  try {
    const env = (id: string) => ({
      SSC_NODE_ID: id,
      SSC_BROKER__TYPE: 'redis',
      SSC_BROKER__REDIS__URL: redis.url,
      SSC_SERVER__SHUTDOWN_DEADLINE_MS: '5000',
      // Not ready for 300 ms before the listeners close, as behind a load balancer.
      SSC_SERVER__DRAIN_DELAY_MS: '300',
    });
    nodes.push(await startNode({ env: env('n1') }), await startNode({ env: env('n2') }));
    const [n1, n2] = nodes as [Node, Node];
    const ledger = createLedger();
    // No pinned fingerprint (two nodes, two identities): trust on first use per node address.
    const opened = await openClients([n1.publicUrl, n2.publicUrl], senders * 2, {});
    clients.push(...opened.clients);
    const receivers = clients.slice(senders);
    for (const r of receivers) ledger.receiveOn(r.client);
    const run = traffic(ledger, clients.slice(0, senders), receivers);
    await Bun.sleep(1_500);
    log(`${signal}: ${ledger.acked} acknowledged on n1; stopping n1`);
    let readyDuringDrain: boolean | undefined;
    n1.proc.kill(signal);
    if (signal === 'SIGTERM') {
      // The signal lands asynchronously: poll until the node answers not-ready (or is gone).
      readyDuringDrain = true;
      const until = Date.now() + 3_000;
      while (readyDuringDrain && Date.now() < until) {
        readyDuringDrain = await ready(n1).catch(() => false);
        if (readyDuringDrain) await Bun.sleep(20);
      }
    }
    const exitCode = await n1.proc.exited;
    await waitUntil(
      () => clients.every((c) => c.client.currentState === 'open' && c.reconnects >= 1),
      30_000,
      'every client reconnected to n2',
    ).catch((error) => log(String(error)));
    const moved = clients.filter((c) => c.client.currentState === 'open' && c.reconnects >= 1).length;
    await Bun.sleep(1_500);
    await run.stop();
    const lost = await ledger.settle(30_000);
    const closeCodes: Record<string, number> = {};
    for (const c of clients) for (const code of c.closes) closeCodes[code] = (closeCodes[code] ?? 0) + 1;
    log(
      `${signal}: exit ${exitCode}, ${moved}/${clients.length} moved, closes ${JSON.stringify(closeCodes)}, acked ${ledger.acked}, lost ${lost}`,
    );
    void n2;
    return {
      signal,
      clients: clients.length,
      moved,
      closeCodes,
      exitCode,
      acked: ledger.acked,
      rejected: ledger.rejected,
      lost,
      readyDuringDrain,
    };
  } finally {
    closeAll(clients);
    for (const n of nodes) await n.stop('SIGKILL');
    await redis.stop('SIGKILL');
  }
}

/** Whether this process may mount a small tmpfs (root with CAP_SYS_ADMIN); the disk scenarios need it. */
export function canMount(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'ssc-mnt-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface DiskFaultResult {
  mode: 'full';
  refusedWith: string;
  readyFalseSeen: boolean;
  readyReason: string;
  aliveDuringFault: boolean;
  recoveredReady: boolean;
  acked: number;
  lost: number;
}

/**
 * The data dir (SQLite store) on an 8 MiB tmpfs, filled (ENOSPC) while the node runs: sends are
 * refused with a code, /ready turns false, the process lives; after the space is freed it is
 * ready and delivers without a restart. (A read-only remount cannot be injected at run time:
 * Linux refuses it while SQLite holds the file open for writing; see `readOnlyStart`.)
 */
export async function diskFault(
  mode: 'full' = 'full',
  options: { log?: Log } = {},
): Promise<DiskFaultResult> {
  const { log = () => {} } = options;
  const mount = mkdtempSync(join(tmpdir(), 'ssc-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount]);
  let node: Node | undefined;
  const clients: TrackedClient[] = [];
  const filler = join(mount, 'filler');
  try {
    node = await startNode({
      dataDir: join(mount, 'data'),
      env: { SSC_OBSERVABILITY__HEALTH_INTERVAL_SECONDS: '1' },
    });
    const ledger = createLedger();
    const opened = await openClients([node.publicUrl], 2, {
      connect: { serverFingerprint: node.fingerprint },
    });
    clients.push(...opened.clients);
    const [sender, receiver] = clients as [TrackedClient, TrackedClient];
    ledger.receiveOn(receiver.client);
    for (let i = 0; i < 20; i++) await ledger.send(sender.client, receiver.client.identity);
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // dd stops with ENOSPC: that is the point
    }
    log(`disk ${mode}: fault injected`);
    let refusedWith = '';
    // A small payload may still fit in a page SQLite has; send until one is refused.
    for (let i = 0; i < 200 && !refusedWith; i++) {
      try {
        await sender.client.send(receiver.client.identity, `x${'y'.repeat(4_000)}|${Date.now()}`);
      } catch (error) {
        refusedWith = `${(error as { code?: string }).code ?? ''}: ${(error as Error).message}`;
      }
    }
    let readyFalseSeen = false;
    let readyReason = '';
    await waitUntil(
      async () => {
        const probe = await getJson(`${node!.opsUrl}/ready`);
        if (probe.status === 503) {
          readyFalseSeen = true;
          readyReason = (probe.body?.reasons ?? []).join('; ');
        }
        return readyFalseSeen;
      },
      10_000,
      '/ready false',
    ).catch(() => undefined);
    const aliveDuringFault =
      node.proc.exitCode === null && (await getJson(`${node.opsUrl}/live`)).status === 200;
    log(
      `disk ${mode}: refused "${refusedWith}", ready false ${readyFalseSeen} (${readyReason}), alive ${aliveDuringFault}`,
    );
    rmSync(filler, { force: true });
    let recoveredReady = true;
    await waitUntil(() => ready(node!), 15_000, '/ready after the disk recovered').catch(
      () => (recoveredReady = false),
    );
    for (let i = 0; i < 20; i++) await ledger.send(sender.client, receiver.client.identity);
    const lost = await ledger.settle(15_000);
    log(`disk ${mode}: recovered ${recoveredReady}, acked ${ledger.acked}, lost ${lost}`);
    return {
      mode,
      refusedWith,
      readyFalseSeen,
      readyReason,
      aliveDuringFault,
      recoveredReady,
      acked: ledger.acked,
      lost,
    };
  } finally {
    closeAll(clients);
    await node?.stop('SIGKILL');
    try {
      execFileSync('umount', ['-l', mount], { stdio: 'ignore' });
    } catch {
      // already unmounted
    }
    rmSync(mount, { recursive: true, force: true });
  }
}

/** Starting on a read-only data dir: a clear error and exit code, not a crash loop or a stack trace. */
export async function readOnlyStart(): Promise<{ exitCode: number | null; message: string }> {
  const mount = mkdtempSync(join(tmpdir(), 'ssc-ro-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,ro', 'tmpfs', mount]);
  try {
    const server = await spawnServer({ dataDir: join(mount, 'data'), startTimeoutMs: 15_000 }).catch(
      (error: Error) => error,
    );
    if (!(server instanceof Error)) {
      await server.stop('SIGKILL');
      return { exitCode: null, message: 'started' };
    }
    const exit = /server exited with (\d+)/.exec(server.message);
    return { exitCode: exit ? Number(exit[1]) : null, message: server.message };
  } finally {
    execFileSync('umount', ['-l', mount], { stdio: 'ignore' });
    rmSync(mount, { recursive: true, force: true });
  }
}

export interface WebhookStallResult {
  webhookRequests: number;
  /** Rules active while the webhook receiver had not answered a single request. */
  activeWhileStalled: string[];
  healthMs: number;
  ready: boolean;
}

/**
 * A webhook receiver that accepts the request and never answers: the alert engine keeps
 * evaluating (a second rule with a later `for` becomes active while the first notification
 * hangs), health stays fast and the node stays ready.
 */
export async function webhookStall(options: { log?: Log } = {}): Promise<WebhookStallResult> {
  const { log = () => {} } = options;
  let webhookRequests = 0;
  const stalled = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch() {
      webhookRequests++;
      return new Promise<Response>(() => {});
    },
  });
  const token = 'fault-suite-admin-token-0123456789';
  const rules = [
    {
      name: 'FaultAlwaysA',
      metric: 'cpu_percent',
      op: '>=',
      threshold: 0,
      forSeconds: 0,
      cooldownSeconds: 0,
      action: 'test',
    },
    {
      name: 'FaultLaterB',
      metric: 'cpu_percent',
      op: '>=',
      threshold: 0,
      forSeconds: 4,
      cooldownSeconds: 0,
      action: 'test',
    },
  ];
  const node = await startNode({
    env: {
      SSC_ALERTS__WEBHOOK_URL: `http://127.0.0.1:${stalled.port}/hook`,
      SSC_ALERTS__EVALUATE_INTERVAL_SECONDS: '1',
      SSC_OBSERVABILITY__HISTORY_INTERVAL_SECONDS: '1',
      SSC_ALERTS__RULES: JSON.stringify(rules),
      SSC_SECURITY__ADMIN_TOKEN: token,
    },
  });
  try {
    const alerts = async () => {
      const response = await fetch(`${node.opsUrl}/api/alerts`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const body = (await response.json()) as { active: Array<{ rule: string }> };
      return body.active.map((a) => a.rule);
    };
    await waitUntil(() => webhookRequests > 0, 20_000, 'the first webhook request');
    log(`webhook: first request received and left hanging`);
    let active: string[] = [];
    await waitUntil(
      async () => {
        active = await alerts();
        return active.includes('FaultLaterB');
      },
      20_000,
      'the later rule to fire while the webhook hangs',
    ).catch(() => undefined);
    const started = performance.now();
    await fetch(`${node.opsUrl}/health`);
    const healthMs = Math.round(performance.now() - started);
    const isReady = await ready(node);
    log(
      `webhook: ${webhookRequests} requests hanging, active ${active.join(', ')}, /health ${healthMs} ms, ready ${isReady}`,
    );
    return { webhookRequests, activeWhileStalled: active, healthMs, ready: isReady };
  } finally {
    await node.stop('SIGKILL');
    stalled.stop(true);
  }
}
