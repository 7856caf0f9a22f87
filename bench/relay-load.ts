/**
 * Load generator for `bench/relay.ts`, run as its own Bun process (one or more), so the
 * server's CPU and the generator's CPU are separate and a client-bound run is visible.
 *
 * It speaks the real protocol: on the secure relay every connection completes the hybrid
 * handshake (`createInitiator`, XXhfs, the server fingerprint pinned) over a raw WebSocket,
 * then seals every command and opens every frame it receives (AEAD verified, replay window)
 * with the same `Session` the SDK uses — the frames of one event-loop turn in one batch AEAD
 * call (`openMany`, same checks as `Session.open`); on the plain relay it sends the same JSON
 * unsealed.
 * The SDK's per-request promise bookkeeping is skipped: publishers pipeline up to `window`
 * unanswered publishes each (closed loop), or are paced to a fixed total rate (open loop).
 *
 * Payloads are 128 bytes: 12 ASCII digits of the send time in microseconds (this process's
 * clock; every group's publisher and subscribers live in one process) and filler. Latency is
 * publish-sent → publication-opened at a subscriber.
 *
 * Protocol with the parent: the config comes as JSON in argv[2]; JSON lines on stdout
 * (`ready`, `measure`, `done` with the figures); `go` on stdin starts the run.
 */
import { BatchScratch, createInitiator, openMany, type Session } from '../src/channel/index.ts';
import { createCrypto } from '../src/crypto/index.ts';

export interface LoadGroup {
  topic: string;
  /** Node index (into `urls`) of the publisher's connection. */
  publisher: number;
  /** Node index of each subscriber connection. */
  subscribers: number[];
}

export interface LoadConfig {
  secure: boolean;
  /** WebSocket URL per node. */
  urls: string[];
  /** Server ML-DSA fingerprint per node (secure only). */
  fingerprints: string[];
  mode: 'relay' | 'idle';
  groups: LoadGroup[];
  /** Closed loop: unanswered publishes per publisher. */
  window: number;
  /** Open loop: total publishes per second from this process (overrides `window`). */
  rate?: number;
  warmupMs: number;
  durationMs: number;
  /** Idle mode: connections to open (spread over the nodes) and hold until stdin closes. */
  idleCount?: number;
  /** Handshakes in flight at once. */
  connectConcurrency: number;
  /**
   * Batch the commands a connection sends in one event-loop turn into one frame (a JSON array,
   * docs/RELAY.md "Batches"), as the SDK does. Off: one frame per command.
   */
  batch?: boolean;
}

const RELAY_FRAME = 0x10;
const PAYLOAD_BYTES = 128;
const encoder = new TextEncoder();
const t0 = performance.now();
const micros = () => Math.round((performance.now() - t0) * 1000);

// ---- latency histogram: log buckets of 1 % from 1 µs ------------------------------------------
const LOG_STEP = Math.log(1.01);
const BUCKETS = 2400; // up to ~2.3e10 µs
const histogram = new Float64Array(BUCKETS);
/** Publish sent → its reply received (the publisher's view: replies follow the history commit). */
const replyHistogram = new Float64Array(BUCKETS);
let measuring = false;
function record(us: number, into = histogram) {
  if (!measuring) return;
  const b = us < 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(us) / LOG_STEP));
  into[b]!++;
}
function percentile(p: number, of = histogram): number {
  let total = 0;
  for (let i = 0; i < BUCKETS; i++) total += of[i]!;
  if (total === 0) return Number.NaN;
  const target = total * p;
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += of[i]!;
    if (seen >= target) return Math.exp((i + 0.5) * LOG_STEP);
  }
  return Number.NaN;
}

// ---- payload: base64(12 digits) ‖ base64(116 filler bytes) == base64 of the 128 bytes -------------
const filler = Buffer.alloc(PAYLOAD_BYTES - 12, 0x61).toString('base64');
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_INDEX[B64.charCodeAt(i)] = i;
function stampData(): string {
  return Buffer.from(String(micros()).padStart(12, '0')).toString('base64') + filler;
}
const DATA_KEY = Buffer.from('"data":"');
/** Reads the send time back from the UTF-8 JSON of a publication (16 base64 chars → 12 digits). */
function sentAt(json: Buffer, from: number): number {
  const at = json.indexOf(DATA_KEY, from);
  if (at < 0) return -1;
  let value = 0;
  let p = at + DATA_KEY.length;
  for (let group = 0; group < 4; group++, p += 4) {
    const n =
      (B64_INDEX[json[p]!]! << 18) | (B64_INDEX[json[p + 1]!]! << 12) | (B64_INDEX[json[p + 2]!]! << 6) | B64_INDEX[json[p + 3]!]!;
    value = value * 1000 + ((n >> 16) - 48) * 100 + (((n >> 8) & 0xff) - 48) * 10 + ((n & 0xff) - 48);
  }
  return value;
}

// ---- connections -------------------------------------------------------------------------------
interface Conn {
  ws: WebSocket;
  session: Session | null;
  /** Called per event: `at` is the index of the event's `{` in `json` (a batch holds several). */
  onPayload(json: Buffer, at: number): void;
  /** Commands of this turn, when batching. */
  out: string[];
}

const config = JSON.parse(process.argv[2]!) as LoadConfig;
const crypto = config.secure ? await createCrypto({ aead: 'auto', kem: 'auto', signer: 'auto', dh: 'auto', wasmSimd: true }) : undefined;
const errors: string[] = [];
const error = (text: string) => {
  if (errors.length < 20) errors.push(text);
};

function sendNow(conn: Conn, json: string) {
  const bytes = encoder.encode(json);
  conn.ws.send((conn.session ? conn.session.seal(RELAY_FRAME, bytes) : bytes) as Uint8Array<ArrayBuffer>);
}

// Batching: commands queued per connection, sent as one frame per connection when the turn ends.
let dirty: Conn[] = [];
let flushScheduled = false;
function flushOut() {
  flushScheduled = false;
  const conns = dirty;
  dirty = [];
  for (const conn of conns) {
    const commands = conn.out;
    conn.out = [];
    // As the SDK does: a batch stays well below what one frame carries (64 KiB by default).
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < commands.length; i++) {
      bytes += commands[i]!.length + 1;
      if (bytes > MAX_BATCH_BYTES || i - start + 1 === MAX_BATCH_COMMANDS || i === commands.length - 1) {
        const part = commands.slice(start, i + 1);
        sendNow(conn, part.length === 1 ? part[0]! : `[${part.join(',')}]`);
        start = i + 1;
        bytes = 0;
      }
    }
  }
}
const MAX_BATCH_BYTES = 32_768;
const MAX_BATCH_COMMANDS = 1_024;
function send(conn: Conn, json: string) {
  if (!config.batch) {
    sendNow(conn, json);
    return;
  }
  if (conn.out.length === 0) dirty.push(conn);
  conn.out.push(json);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushOut);
  }
}

const EVENT_START = Buffer.from('{"type":"');
/** Calls `fn` for each event of a payload: one JSON object, or a batch (a JSON array of them). */
function forEachEvent(json: Buffer, fn: (json: Buffer, at: number) => void) {
  if (json[0] !== 0x5b) {
    fn(json, 0);
    return;
  }
  // The relay writes `type` first in every event, and `{"type":"` cannot occur inside a JSON string.
  for (let at = json.indexOf(EVENT_START, 1); at >= 0; at = json.indexOf(EVENT_START, at + EVENT_START.length)) fn(json, at);
}

async function open(node: number, onPayload: (json: Buffer, at: number) => void): Promise<Conn> {
  const url = config.urls[node]!;
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const conn: Conn = { ws, session: null, onPayload, out: [] };
  await new Promise<void>((resolve, reject) => {
    const driver = config.secure ? createInitiator({ crypto: crypto!, serverFingerprint: config.fingerprints[node] }) : undefined;
    let done = false;
    const finish = (e?: Error) => {
      if (done) return;
      done = true;
      if (e) reject(e);
      else resolve();
    };
    let chain = Promise.resolve();
    ws.onopen = () => {
      if (!driver) {
        finish();
        return;
      }
      chain = chain.then(async () => ws.send((await driver.writeMessage()) as Uint8Array<ArrayBuffer>)).catch((e) => finish(e));
    };
    ws.onmessage = (event) => {
      const bytes = new Uint8Array(event.data as ArrayBuffer);
      if (!driver || conn.session) {
        deliver(conn, bytes);
        return;
      }
      chain = chain
        .then(async () => {
          await driver.readMessage(bytes);
          if (!driver.isComplete && driver.isMyTurn) ws.send((await driver.writeMessage()) as Uint8Array<ArrayBuffer>);
          if (driver.isComplete) {
            conn.session = driver.session();
            finish();
          }
        })
        .catch((e) => finish(e));
    };
    ws.onerror = () => finish(new Error(`WebSocket error on ${url}`));
    ws.onclose = (event) => {
      finish(new Error(`closed during connect: ${event.code} ${event.reason}`));
      if (!stopping) error(`connection closed: ${event.code} ${event.reason}`);
    };
  });
  return conn;
}

// Frames received in one event-loop turn are opened together, in arrival order, with one batch
// AEAD call (`openMany`: the same header, replay-window and tag checks as `Session.open`).
let inbox: { conn: Conn; session: Session; frame: Uint8Array }[] = [];
let inboxScheduled = false;
// The plaintexts are views of it, read before the next turn's batch (as the server's inbox).
const openScratch = new BatchScratch();
function openInbox() {
  inboxScheduled = false;
  const batch = inbox;
  inbox = [];
  const opened = openMany(crypto!.chachaPoly, batch, openScratch);
  for (let i = 0; i < batch.length; i++) {
    const result = opened[i]!;
    if (result instanceof Error) {
      error(`open failed: ${result.message}`);
      continue;
    }
    if (result.type !== RELAY_FRAME) continue;
    const { plaintext } = result;
    const conn = batch[i]!.conn;
    forEachEvent(Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength), conn.onPayload);
  }
  if (flushScheduled) flushOut();
}

function deliver(conn: Conn, bytes: Uint8Array) {
  if (conn.session) {
    inbox.push({ conn, session: conn.session, frame: bytes });
    if (!inboxScheduled) {
      inboxScheduled = true;
      setImmediate(openInbox);
    }
    return;
  }
  forEachEvent(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), conn.onPayload);
}

/** Runs async tasks with at most `limit` in flight. */
async function pool<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

/** One request/reply outside the hot path (subscribe). */
function request(conn: Conn, command: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const previous = conn.onPayload;
    conn.onPayload = (json) => {
      const event = JSON.parse(json.toString());
      if (Array.isArray(event)) throw new Error('a batch answered a lone subscribe');
      if (event.type !== 'reply') return;
      conn.onPayload = previous;
      resolve(event);
    };
    sendNow(conn, JSON.stringify({ id: 0, ...command }));
  });
}

let stopping = false;
const out = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
const stdinLines = (async function* () {
  let buffer = '';
  for await (const chunk of Bun.stdin.stream()) {
    buffer += new TextDecoder().decode(chunk);
    let i = buffer.indexOf('\n');
    while (i >= 0) {
      yield buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      i = buffer.indexOf('\n');
    }
  }
})();

const connectStarted = performance.now();

if (config.mode === 'idle') {
  const count = config.idleCount ?? 0;
  await pool(count, config.connectConcurrency, (i) => open(i % config.urls.length, () => undefined));
  out({ phase: 'ready', connections: count, connectSeconds: (performance.now() - connectStarted) / 1000, errors });
  // Hold until the parent says stop (or closes stdin).
  for await (const line of stdinLines) if (line === 'stop') break;
  stopping = true;
  process.exit(0);
}

// ---- relay mode ------------------------------------------------------------------------------------
let delivered = 0;
let published = 0;
let replies = 0;
interface Publisher {
  conn: Conn;
  topic: string;
  outstanding: number;
  id: number;
  /** Send times (µs) of the unanswered publishes, oldest first (replies come in command order). */
  sentAt: number[];
}
const publishers: Publisher[] = [];

const onPublication = (json: Buffer, at: number) => {
  // `{"type":"publication"…` vs `{"type":"reply"…` (the relay writes `type` first).
  if (json[at + 9] !== 0x70) return;
  delivered++;
  const sent = sentAt(json, at);
  if (sent >= 0) record(micros() - sent);
};

function publish(p: Publisher) {
  p.outstanding++;
  published++;
  p.sentAt.push(micros());
  send(p.conn, `{"id":${p.id++},"cmd":"publish","topic":"${p.topic}","data":"${stampData()}"}`);
}

const closedLoop = !config.rate;
const onReply = (p: Publisher) => (json: Buffer, at: number) => {
  if (json[at + 9] !== 0x72) return;
  replies++;
  p.outstanding--;
  const sent = p.sentAt.shift();
  if (sent !== undefined) record(micros() - sent, replyHistogram);
  if (closedLoop && !stopping) publish(p);
};

// Subscribers first (subscribed before anything is published), then publishers.
const subscriberSpecs = config.groups.flatMap((g) => g.subscribers.map((node) => ({ node, topic: g.topic })));
await pool(subscriberSpecs.length, config.connectConcurrency, async (i) => {
  const spec = subscriberSpecs[i]!;
  const conn = await open(spec.node, onPublication);
  const reply = await request(conn, { cmd: 'subscribe', topic: spec.topic });
  if (!reply.ok) throw new Error(`subscribe refused: ${JSON.stringify(reply)}`);
  conn.onPayload = onPublication;
  return conn;
});
await pool(config.groups.length, config.connectConcurrency, async (i) => {
  const g = config.groups[i]!;
  const p: Publisher = { conn: undefined as unknown as Conn, topic: g.topic, outstanding: 0, id: 1, sentAt: [] };
  p.conn = await open(g.publisher, () => undefined);
  p.conn.onPayload = onReply(p);
  publishers[i] = p;
});
out({ phase: 'ready', connections: subscriberSpecs.length + publishers.length, connectSeconds: (performance.now() - connectStarted) / 1000 });
for await (const line of stdinLines) if (line === 'go') break;

let pacer: ReturnType<typeof setInterval> | undefined;
if (closedLoop) {
  for (const p of publishers) for (let i = 0; i < config.window; i++) publish(p);
} else {
  // Open loop: every millisecond, send what is due since the start, round-robin over publishers.
  const start = performance.now();
  let sent = 0;
  let next = 0;
  const perMs = config.rate! / 1000;
  pacer = setInterval(() => {
    const due = Math.floor((performance.now() - start) * perMs) - sent;
    for (let i = 0; i < due; i++) {
      const p = publishers[next++ % publishers.length]!;
      // A publisher with 10,000 unanswered publishes is stuck: do not pile on (the run shows it).
      if (p.outstanding < 10_000) publish(p);
      sent++;
    }
    if (flushScheduled) flushOut();
  }, 1);
}

await Bun.sleep(config.warmupMs);
const cpuStart = process.cpuUsage();
const at = { delivered, published, replies, time: performance.now() };
measuring = true;
out({ phase: 'measure' });
await Bun.sleep(config.durationMs);
measuring = false;
const seconds = (performance.now() - at.time) / 1000;
const cpu = process.cpuUsage(cpuStart);
const result = {
  phase: 'done',
  seconds,
  delivered: delivered - at.delivered,
  published: published - at.published,
  replies: replies - at.replies,
  deliveredPerSecond: (delivered - at.delivered) / seconds,
  publishedPerSecond: (published - at.published) / seconds,
  latencyMs: { p50: percentile(0.5) / 1000, p99: percentile(0.99) / 1000, p999: percentile(0.999) / 1000 },
  replyLatencyMs: { p50: percentile(0.5, replyHistogram) / 1000, p99: percentile(0.99, replyHistogram) / 1000 },
  cpu: (cpu.user + cpu.system) / 1e6 / seconds,
  errors,
};
stopping = true;
if (pacer) clearInterval(pacer);
out(result);
process.exit(0);
