/**
 * The embedded durable store on `bun:sqlite`: WAL journal, prepared statements, and group
 * commit — appends and enqueues that arrive in the same event-loop turn (under load: within
 * `commitIntervalMs` of the previous commit) are written in one transaction
 * (`synchronous = FULL`, so a commit is on disk), then each caller's promise
 * resolves. An enqueue therefore resolves only once the message is durable, at a cost of one
 * fsync per batch rather than per message. Topic offsets are counted in memory, so
 * `appendLive` hands out an offset before the commit (the relay fans out at once); a start
 * after an unclean stop, or a failed commit, moves topics to a new epoch so no offset is reused.
 *
 * Tables: `topics` (number, epoch, last offset), `topic_segments` (history: one row per topic per
 * group commit holding that commit's publications of the topic, indexed by the topic's number and
 * last offset), `dm` (per-recipient queue, ids from one AUTOINCREMENT sequence, so increasing per
 * recipient), `dm_counts`, `cursors`, `kv` (namespaced, with expiry), `series` (time series).
 */
import { Database } from 'bun:sqlite';
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasync, mkdirSync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import { dirname } from 'node:path';
import {
  type AppendResult,
  type BackendHealth,
  type DirectMessage,
  type EnqueueResult,
  type HistoryLimits,
  type Publication,
  RelayError,
  type Store,
  type StreamPosition,
} from './types.ts';

export interface SqliteStoreOptions {
  /** Database file, or `:memory:` (tests). Its directory is created. */
  path: string;
  /**
   * WAL frames past which the store pauses its group commits for the checkpoint worker to copy
   * the WAL's tail, so that the WAL starts over (default 16,384 frames = 64 MiB; tests set less).
   */
  walRestartFrames?: number;
  /** `full` (default) fsyncs every group commit; `normal` survives a process crash but not power loss. */
  synchronous?: 'full' | 'normal';
  /**
   * Least time from the end of one group commit to the start of the next while writes keep
   * coming (ms, default 5). A write after a quiet spell commits at the end of its turn; under
   * load the wait gathers a few milliseconds of writes into one transaction, which writes each
   * touched page to the WAL once instead of once per turn, and one history segment per topic
   * instead of one per turn (with a row per publication, measured before segments: ~20 µs per
   * append at 45 per commit, ~8 µs at 256; a commit of 128 appends over 32 topics wrote ~75
   * pages). Since
   * publications are fanned out before their commit, the wait delays replies and direct
   * messages, not publications: 5 ms (was 2) cut the half-load p99 of the 1:1 bench from
   * ~30 to ~14 ms (less WAL written per second on two shared cores) for ~4 % of peak.
   */
  commitIntervalMs?: number;
  now?: () => number;
}

interface SegmentRow {
  first_offset: number;
  /** JSON, see {@link segmentText}. */
  entries: string;
}
/** One publication inside a history segment. */
type SegmentEntry = [offset: number, from: string, data: string, time: number];

/**
 * The stored text of a segment. Its offsets follow one another from the row's `first_offset`
 * (one topic's appends of one group commit), so they are not written; each sender is written
 * once; times are written as the difference to the first one:
 * `{"t":firstTime,"f":[from, …],"e":[fromIndex, time − firstTime, data, …]}`. For 128-byte
 * payloads from one sender that is ~180 bytes per publication against ~260 for a full
 * `[offset, from, data, time]` each (32 topics, 1,000 publications kept each, 235 per commit:
 * the file 12.8 → 10.0 MB). Segments whose offsets do not follow one another (none are written
 * so) and those of earlier versions are `[[offset, from, data, time], …]`; reads take both.
 */
export function segmentText(entries: readonly SegmentEntry[]): string {
  const first = entries[0]!;
  const t0 = first[3];
  const froms: string[] = [];
  const flat: (number | string)[] = new Array(entries.length * 3);
  for (let i = 0; i < entries.length; i++) {
    const [offset, from, data, time] = entries[i]!;
    if (offset !== first[0] + i) return JSON.stringify(entries);
    let index = froms.indexOf(from);
    if (index < 0) index = froms.push(from) - 1;
    flat[i * 3] = index;
    flat[i * 3 + 1] = time - t0;
    flat[i * 3 + 2] = data;
  }
  return JSON.stringify({ t: t0, f: froms, e: flat });
}

/** The entries of a stored segment (either form of {@link segmentText}). */
export function segmentEntries(text: string, firstOffset: number): SegmentEntry[] {
  const value = JSON.parse(text) as SegmentEntry[] | { t: number; f: string[]; e: (number | string)[] };
  if (Array.isArray(value)) return value;
  const { t, f, e } = value;
  const out: SegmentEntry[] = new Array(e.length / 3);
  for (let i = 0; i < out.length; i++) {
    out[i] = [firstOffset + i, f[e[i * 3] as number]!, e[i * 3 + 2] as string, t + (e[i * 3 + 1] as number)];
  }
  return out;
}

interface DmRow {
  id: number;
  recipient: string;
  from_id: string;
  data: string;
  time: number;
}

/**
 * Brings history written by earlier versions into `topic_segments`, once, in one transaction:
 * the `history` table (one row per publication) and the `segments` table (segments keyed by the
 * topic's name, which put the name in every index entry: a commit over 32 topics touched about
 * 60 pages where keying by the topic's number touches about 45). Topics get their number
 * (`topics.id`); a topic that has history but no `topics` row gets one, in a new epoch.
 */
function migrateHistory(db: Database) {
  const columns = db.query<{ name: string }, []>('PRAGMA table_info(topics)').all();
  if (!columns.some((c) => c.name === 'id')) db.exec('ALTER TABLE topics ADD COLUMN id INTEGER');
  const has = (table: string) => db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== null;
  const legacy = has('history');
  const named = has('segments');
  const unnumbered = db.query<{ topic: string }, []>('SELECT topic FROM topics WHERE id IS NULL ORDER BY topic');
  if (!legacy && !named && unnumbered.get() === null) return;
  db.transaction(() => {
    if (legacy) {
      db.exec(`INSERT OR IGNORE INTO topics (topic, epoch, last_offset)
        SELECT topic, lower(hex(randomblob(6))), max(offset) FROM history GROUP BY topic`);
    }
    if (named) {
      db.exec(`INSERT OR IGNORE INTO topics (topic, epoch, last_offset)
        SELECT topic, lower(hex(randomblob(6))), max(last_offset) FROM segments GROUP BY topic`);
    }
    let last = db.query<{ n: number }, []>('SELECT coalesce(max(id), 0) AS n FROM topics').get()!.n;
    const number = db.query('UPDATE topics SET id = ? WHERE topic = ?');
    for (const { topic } of unnumbered.all()) number.run(++last, topic);
    if (legacy) {
      db.exec(`INSERT INTO topic_segments (topic_id, first_offset, last_offset, last_time, entries)
        SELECT t.id, h.offset, h.offset, h.time, json_array(json_array(h.offset, h.from_id, h.data, h.time))
        FROM history h JOIN topics t ON t.topic = h.topic ORDER BY h.topic, h.offset`);
      db.exec('DROP TABLE history');
    }
    if (named) {
      db.exec(`INSERT INTO topic_segments (topic_id, first_offset, last_offset, last_time, entries)
        SELECT t.id, s.first_offset, s.last_offset, s.last_time, s.entries
        FROM segments s JOIN topics t ON t.topic = s.topic ORDER BY s.id`);
      db.exec('DROP TABLE segments');
    }
  }).immediate();
}

/** The store's own kv row: present while a process has the file open (see the unclean-start check). */
const STORE_NS = '_store';
/** WAL size (frames of 4 KiB pages: 64 MiB) past which the writer finishes a checkpoint itself. */
const WAL_RESTART_FRAMES = 16_384;

const OPEN_KEY = 'open';
/** Fewest trim statements (count or age, one topic each) allowed per group commit; see `flush`. */
const TRIMS_PER_COMMIT = 4;
/** Longest wait for the checkpoint worker to close its connection when the store closes. */
const WORKER_STOP_MS = 15_000;
/** Longest pause of group commits while the checkpoint worker copies the WAL's tail. */
const RESTART_PAUSE_MS = 100;

const fdatasyncAsync = promisify(fdatasync);

const newEpoch = () => randomBytes(6).toString('hex');

/** Stores open in this process, by file: two relays on one file (tests) share one store. */
const openStores = new Map<string, { store: Store; refs: number }>();

/**
 * Opens (creating when missing) the SQLite store. A file already open in this process is shared
 * (its topic counters live in memory, so one store per file writes it); each caller closes its
 * own handle, and the file is closed with the last one.
 *
 * @example
 * const store = createSqliteStore({ path: join(config.server.dataDir, 'relay.sqlite') });
 */
export function createSqliteStore(options: SqliteStoreOptions): Store {
  let entry = options.path === ':memory:' ? undefined : openStores.get(options.path);
  if (!entry) {
    entry = { store: openSqliteStore(options), refs: 0 };
    if (options.path !== ':memory:') openStores.set(options.path, entry);
  }
  const shared = entry;
  shared.refs++;
  let closed = false;
  return {
    ...shared.store,
    async health() {
      return closed ? { status: 'down', output: 'sqlite store closed' } : shared.store.health();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (--shared.refs > 0) return;
      if (openStores.get(options.path) === shared) openStores.delete(options.path);
      await shared.store.close();
    },
  };
}

function openSqliteStore(options: SqliteStoreOptions): Store {
  const { path, synchronous = 'full', now = Date.now, commitIntervalMs = 5, walRestartFrames = WAL_RESTART_FRAMES } = options;
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { create: true, strict: true });
  db.exec('PRAGMA journal_mode = WAL');
  // `full`: every group commit is on disk before its callers resolve. SQLite's own FULL would
  // fsync the WAL inside COMMIT, on the event loop (0.2 ms to over 10 ms here, under checkpoint
  // I/O); instead the connection runs NORMAL (same WAL, no sync in COMMIT; checkpoints still
  // sync) and the store fdatasyncs the WAL file on libuv's thread pool after each commit, resolving
  // that commit's callers when the sync returns (see `syncCommitted`). `:memory:` has no file.
  const asyncSync = synchronous === 'full' && path !== ':memory:';
  db.exec(`PRAGMA synchronous = ${synchronous === 'full' && !asyncSync ? 'FULL' : 'NORMAL'}`);
  db.exec('PRAGMA busy_timeout = 5000');
  // When the WAL starts over after a checkpoint, cut the file back to 64 MiB.
  db.exec('PRAGMA journal_size_limit = 67108864');
  // WAL checkpoints run in a worker (sqlite-checkpoint.ts), not inside a commit on the event loop.
  // If the worker cannot run, SQLite's own automatic checkpoint stays on.
  let checkpointer: Worker | undefined;
  if (path !== ':memory:') {
    try {
      const worker = new Worker(new URL('./sqlite-checkpoint.ts', import.meta.url).href);
      (worker as Worker & { unref?(): void }).unref?.();
      worker.onmessage = (event: MessageEvent) => {
        const msg = event.data as { type?: string; frames?: number };
        if (msg?.type === 'behind' && (msg.frames ?? 0) >= walRestartFrames) pauseForRestart(worker);
        else if (msg?.type === 'drained') resumeCommits();
      };
      worker.onerror = () => {
        checkpointer = undefined;
        if (!closed) db.exec('PRAGMA wal_autocheckpoint = 1000');
      };
      // Every 250 ms: at 25 ms the checkpoints' fsyncs contended with the commits' and stalled more.
      worker.postMessage({ type: 'start', path, intervalMs: 250 });
      db.exec('PRAGMA wal_autocheckpoint = 0');
      checkpointer = worker;
    } catch {
      checkpointer = undefined;
    }
  }
  db.exec(`
    CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, epoch TEXT NOT NULL, last_offset INTEGER NOT NULL, trimmed_at INTEGER NOT NULL DEFAULT 0, id INTEGER) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS topic_segments (id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, first_offset INTEGER NOT NULL, last_offset INTEGER NOT NULL, last_time INTEGER NOT NULL, entries TEXT NOT NULL);
    CREATE UNIQUE INDEX IF NOT EXISTS topic_segments_key ON topic_segments (topic_id, last_offset);
    CREATE TABLE IF NOT EXISTS dm (id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL, from_id TEXT NOT NULL, data TEXT NOT NULL, time INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS dm_recipient ON dm (recipient, id);
    CREATE TABLE IF NOT EXISTS dm_counts (recipient TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS cursors (identity TEXT NOT NULL, topic TEXT NOT NULL, epoch TEXT NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY (identity, topic)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS series (name TEXT NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (name, time)) WITHOUT ROWID;
  `);

  migrateHistory(db);

  const q = {
    topicGet: db.query<{ epoch: string; last_offset: number; trimmed_at: number; id: number }, [string]>(
      'SELECT epoch, last_offset, trimmed_at, id FROM topics WHERE topic = ?',
    ),
    topicInsert: db.query('INSERT OR IGNORE INTO topics (topic, epoch, last_offset, id) VALUES (?, ?, 0, ?)'),
    topicBump: db.query('UPDATE topics SET last_offset = ?, epoch = ? WHERE topic = ?'),
    topicTrimmed: db.query('UPDATE topics SET trimmed_at = ? WHERE topic = ?'),
    segmentInsert: db.query(
      'INSERT INTO topic_segments (topic_id, first_offset, last_offset, last_time, entries) VALUES (?, ?, ?, ?, ?)',
    ),
    // Whole segments only; reads drop the older entries of a segment that is partly past a bound.
    segmentTrimCount: db.query('DELETE FROM topic_segments WHERE topic_id = ? AND last_offset <= ?'),
    // From the oldest segment up to the first one still young enough: the index walk stops
    // there, instead of reading every segment of the topic (segment times grow with offsets; a
    // segment older than a younger one before it, after a clock step back, waits for the next
    // trim, and reads filter by age per entry).
    segmentTrimAge: db.query(
      `DELETE FROM topic_segments WHERE topic_id = ?1 AND last_offset < coalesce(
         (SELECT last_offset FROM topic_segments WHERE topic_id = ?1 AND last_time >= ?2 ORDER BY last_offset LIMIT 1),
         9007199254740991)`,
    ),
    segmentsSince: db.query<SegmentRow, [number, number, number]>(
      'SELECT first_offset, entries FROM topic_segments WHERE topic_id = ? AND last_offset > ? AND last_time >= ? ORDER BY last_offset',
    ),
    dmCount: db.query<{ n: number }, [string]>('SELECT n FROM dm_counts WHERE recipient = ?'),
    dmCountAdd: db.query(
      'INSERT INTO dm_counts (recipient, n) VALUES (?1, ?2) ON CONFLICT (recipient) DO UPDATE SET n = n + ?2',
    ),
    dmInsert: db.query<{ id: number }, [string, string, string, number]>(
      'INSERT INTO dm (recipient, from_id, data, time) VALUES (?, ?, ?, ?) RETURNING id',
    ),
    dmPending: db.query<DmRow, [string, number, number]>(
      'SELECT id, recipient, from_id, data, time FROM dm WHERE recipient = ? AND id > ? ORDER BY id LIMIT ?',
    ),
    dmDelete: db.query('DELETE FROM dm WHERE recipient = ? AND id = ?'),
    cursorGet: db.query<{ epoch: string; offset: number }, [string, string]>(
      'SELECT epoch, offset FROM cursors WHERE identity = ? AND topic = ?',
    ),
    cursorSet: db.query(
      'INSERT INTO cursors (identity, topic, epoch, offset) VALUES (?, ?, ?, ?) ON CONFLICT (identity, topic) DO UPDATE SET epoch = excluded.epoch, offset = excluded.offset',
    ),
    kvGet: db.query<{ value: string }, [string, string, number]>(
      'SELECT value FROM kv WHERE ns = ? AND key = ? AND (expires = 0 OR expires > ?)',
    ),
    kvSet: db.query(
      'INSERT INTO kv (ns, key, value, expires) VALUES (?, ?, ?, ?) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires = excluded.expires',
    ),
    kvDelete: db.query('DELETE FROM kv WHERE ns = ? AND key = ?'),
    kvList: db.query<{ key: string; value: string }, [string, number]>(
      'SELECT key, value FROM kv WHERE ns = ? AND (expires = 0 OR expires > ?) ORDER BY key',
    ),
    kvPrune: db.query('DELETE FROM kv WHERE expires > 0 AND expires <= ?'),
    seriesSet: db.query('INSERT OR REPLACE INTO series (name, time, value) VALUES (?, ?, ?)'),
    seriesTrim: db.query('DELETE FROM series WHERE name = ? AND time < ?'),
    seriesRange: db.query<{ time: number; value: number }, [string, number, number]>(
      'SELECT time, value FROM series WHERE name = ? AND time >= ? AND time <= ? ORDER BY time',
    ),
  };

  let lastTopicId = db.query<{ n: number }, []>('SELECT coalesce(max(id), 0) AS n FROM topics').get()!.n;
  function topicRow(topic: string) {
    let row = q.topicGet.get(topic);
    if (!row) {
      q.topicInsert.run(topic, newEpoch(), ++lastTopicId);
      row = q.topicGet.get(topic)!;
    }
    return row;
  }

  // A previous process that did not close this file (crash, SIGKILL, power loss) may have handed
  // out offsets that never reached the disk (publications are fanned out before their group
  // commit, see `appendLive`). Every topic then starts a new epoch, so no (epoch, offset) pair is
  // ever given to two different publications; resuming clients get `recovered: false`.
  db.transaction(() => {
    if (q.kvGet.get(STORE_NS, OPEN_KEY, 0)) db.exec("UPDATE topics SET epoch = lower(hex(randomblob(6)))");
    q.kvSet.run(STORE_NS, OPEN_KEY, String(now()), 0);
  }).immediate();

  /**
   * Each topic's epoch and offsets as this store hands them out. This connection is the only
   * writer of its file in this process (`createSqliteStore` shares one store per path), so the
   * row is read once and then advanced in memory: `last_offset` is the last offset assigned (it may
   * be ahead of the disk until the group commit).
   */
  interface TopicState {
    /** The topic's number in `topics.id`: history segments are keyed by it, not by the name. */
    id: number;
    epoch: string;
    last_offset: number;
    trimmed_at: number;
    /** The epoch must be written even if nothing is appended (it changed after a failed commit). */
    epochDirty: boolean;
    /** Segments up to this offset were deleted by the count trim in this process (0: none yet). */
    trimmed_to: number;
  }
  const topicStates = new Map<string, TopicState>();
  function topicState(topic: string): TopicState {
    let state = topicStates.get(topic);
    if (!state) {
      const row = topicRow(topic);
      state = { id: row.id, epoch: row.epoch, last_offset: row.last_offset, trimmed_at: row.trimmed_at, epochDirty: false, trimmed_to: 0 };
      topicStates.set(topic, state);
    }
    return state;
  }

  /**
   * Topics appended to in the open group commit: their new history segment (the publications of
   * this commit, in offset order: the last one holds the highest offset) and the bounds.
   */
  const appended = new Map<string, { state: TopicState; maxCount: number; maxAgeMs: number; entries: SegmentEntry[] }>();
  /** The queued job that the appends since the last commit share (see `appendLive`). */
  let appendJob: Promise<void> | undefined;

  // Group commit: writes queued until the next commit (the end of the turn, or `commitIntervalMs`
  // after the previous commit under load) share one transaction (one fsync).
  type Job = { run: () => unknown; resolve: (value: unknown) => void; reject: (error: unknown) => void };
  let queue: Job[] = [];
  let scheduled = false;
  let closed = false;
  let lastCommit = Number.NEGATIVE_INFINITY;
  let commitTimer: ReturnType<typeof setTimeout> | undefined;
  /** The last group commit that failed (disk full, read-only file system), until one succeeds. */
  let writeFailure: { at: number; message: string } | undefined;
  /**
   * The WAL only starts over (at its beginning, on file blocks already allocated) once a
   * checkpoint has copied every frame. The worker's passes never caught up while commits kept
   * coming (each pass fsyncs, and commits land meanwhile): the WAL grew past 1 GB in a 15 s
   * benchmark, every commit appending to new file blocks. So once the WAL holds
   * `walRestartFrames` frames, after a pass of the worker, group commits pause and the worker
   * copies the tail committed during its pass; with no commit landing meanwhile that pass
   * completes, and the next commit restarts the WAL. The event loop never waits for it (copying
   * the tail here took ~7 ms of the loop about once a second under full load): publications are
   * still fanned out, only replies that wait for a commit wait for the pass (a few ms; at most
   * RESTART_PAUSE_MS). Reads that need every handed-out offset on disk commit regardless.
   */
  let paused = false;
  let pauseTimer: ReturnType<typeof setTimeout> | undefined;
  function pauseForRestart(worker: Worker) {
    if (paused || closed) return;
    paused = true;
    worker.postMessage({ type: 'drain' });
    pauseTimer = setTimeout(resumeCommits, RESTART_PAUSE_MS);
  }
  function resumeCommits() {
    if (!paused) return;
    paused = false;
    clearTimeout(pauseTimer);
    pauseTimer = undefined;
    if (queue.length > 0 && !scheduled) schedule();
  }
  const flush = db.transaction((jobs: Job[]) => {
    const results = jobs.map((job) => {
      try {
        return { ok: true as const, value: job.run() };
      } catch (error) {
        // Per-job refusals (queue_full) are checked before any write, so the batch stays sound.
        if (error instanceof RelayError) return { ok: false as const, error };
        throw error;
      }
    });
    // Once per topic per commit, not per append: one history segment with the commit's
    // publications of the topic, its last offset, and the count trim.
    // Trims are bounded per commit: topics appended to at the same rate reach their trim step
    // in the same commit, and 32 topics trimming together held one commit (and the event loop)
    // for ~50 ms. The most overdue go first; the rest wait for a later commit (reads apply both
    // bounds exactly meanwhile). A quarter of the topics touched may trim in one commit, so when
    // every topic is due at every commit each is still trimmed every fourth commit.
    const due: { topic: string; state: TopicState; cut: number; newest: number; age: boolean; urgency: number }[] = [];
    for (const [topic, { state, maxCount, maxAgeMs, entries }] of appended) {
      const [high, , , newest] = entries[entries.length - 1]!;
      q.segmentInsert.run(state.id, entries[0]![0], high, newest, segmentText(entries));
      q.topicBump.run(high, state.epoch, topic);
      // Age trimming at most once a second per topic.
      if (newest - state.trimmed_at >= 1_000) {
        due.push({ topic, state, cut: newest - maxAgeMs, newest, age: true, urgency: (newest - state.trimmed_at) / 1_000 });
      }
      // The count trim deletes in steps of an eighth of the bound, so most commits leave the
      // old segments alone.
      const step = Math.max(1, maxCount >> 3);
      const excess = high - maxCount - state.trimmed_to;
      if (excess >= step) due.push({ topic, state, cut: high - maxCount, newest, age: false, urgency: excess / step });
    }
    const budget = Math.max(TRIMS_PER_COMMIT, Math.ceil(appended.size / 4));
    if (due.length > budget) due.sort((a, b) => b.urgency - a.urgency);
    for (let i = 0; i < due.length && i < budget; i++) {
      const { topic, state, cut, newest, age } = due[i]!;
      if (age) {
        q.segmentTrimAge.run(state.id, cut);
        q.topicTrimmed.run(newest, topic);
        state.trimmed_at = newest;
      } else {
        q.segmentTrimCount.run(state.id, cut);
        state.trimmed_to = cut;
      }
    }
    for (const [topic, state] of topicStates) {
      if (state.epochDirty && !appended.has(topic)) q.topicBump.run(state.last_offset, state.epoch, topic);
    }
    return results;
  });
  function runQueue(force = false) {
    scheduled = false;
    // Paused for a WAL restart (see `pauseForRestart`): `resumeCommits` schedules the commit.
    if (paused && !force) return;
    clearTimeout(commitTimer);
    commitTimer = undefined;
    const jobs = queue;
    queue = [];
    appendJob = undefined;
    if (jobs.length === 0) return;
    try {
      const results = flush(jobs);
      lastCommit = performance.now();
      writeFailure = undefined;
      for (const state of topicStates.values()) state.epochDirty = false;
      appended.clear();
      if (asyncSync) syncCommitted(jobs, results);
      else settle(jobs, results);
    } catch (error) {
      // The offsets of this batch were handed out (and fanned out) but are not on disk: a new
      // epoch for each topic concerned, written with the next commit that succeeds.
      for (const { state } of appended.values()) {
        state.epoch = newEpoch();
        state.epochDirty = true;
      }
      appended.clear();
      writeFailure = { at: now(), message: (error as Error).message };
      const wrapped = new RelayError('unavailable', `sqlite write failed: ${(error as Error).message}`, { cause: error });
      for (const job of jobs) job.reject(wrapped);
    }
  }
  function settle(jobs: Job[], results: ReturnType<typeof flush>) {
    for (let i = 0; i < jobs.length; i++) {
      const result = results[i]!;
      if (result.ok) jobs[i]!.resolve(result.value);
      else jobs[i]!.reject(result.error);
    }
  }

  /**
   * Committed batches wait here for an fdatasync of the WAL that started after their commit;
   * one sync runs at a time and covers every commit made before it started. Commits go on
   * meanwhile (the next group gathers while the disk syncs).
   */
  let walFd: number | undefined;
  let syncing: Promise<void> | undefined;
  let unsynced: { jobs: Job[]; results: ReturnType<typeof flush> }[] = [];
  function syncCommitted(jobs: Job[], results: ReturnType<typeof flush>) {
    unsynced.push({ jobs, results });
    if (!syncing) syncing = runSync();
  }
  async function runSync() {
    while (unsynced.length > 0) {
      const batches = unsynced;
      unsynced = [];
      try {
        walFd ??= openSync(`${path}-wal`, 'r');
        await fdatasyncAsync(walFd);
        for (const b of batches) settle(b.jobs, b.results);
      } catch (error) {
        // Committed but not known to be on disk: refused (a retried send may duplicate — at
        // least once); readiness turns false until a write probe succeeds.
        writeFailure = { at: now(), message: (error as Error).message };
        const wrapped = new RelayError('unavailable', `sqlite sync failed: ${(error as Error).message}`, { cause: error });
        for (const b of batches) for (const job of b.jobs) job.reject(wrapped);
      }
    }
    syncing = undefined;
  }

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    const wait = lastCommit + commitIntervalMs - performance.now();
    if (wait <= 0) setImmediate(runQueue);
    else commitTimer = setTimeout(runQueue, wait);
  }
  function write<T>(run: () => T): Promise<T> {
    if (closed) return Promise.reject(new RelayError('closed', 'store is closed'));
    return new Promise<T>((resolve, reject) => {
      queue.push({ run, resolve: resolve as (value: unknown) => void, reject });
      schedule();
    });
  }
  function guard<T>(fn: () => T): Promise<T> {
    if (closed) return Promise.reject(new RelayError('closed', 'store is closed'));
    try {
      return Promise.resolve(fn());
    } catch (error) {
      return Promise.reject(error instanceof RelayError ? error : new RelayError('unavailable', (error as Error).message, { cause: error }));
    }
  }

  /** Assigns the next offset of `topic` now and queues its row for the next group commit. */
  function appendLive(topic: string, entry: { from: string; data: string; time: number }, limits: HistoryLimits) {
    if (closed) throw new RelayError('closed', 'store is closed');
    const state = topicState(topic);
    const offset = ++state.last_offset;
    const publication: Publication = { topic, offset, epoch: state.epoch, from: entry.from, data: entry.data, time: entry.time };
    // The segment, the topic row and the trims are written once per topic per group commit (see
    // `flush`), in the same transaction; reads also bound history by count themselves.
    const pending = appended.get(topic);
    const row: SegmentEntry = [offset, entry.from, entry.data, entry.time];
    if (pending) {
      pending.maxCount = limits.maxCount;
      pending.maxAgeMs = limits.maxAgeMs;
      pending.entries.push(row);
    } else appended.set(topic, { state, maxCount: limits.maxCount, maxAgeMs: limits.maxAgeMs, entries: [row] });
    // Every append until the next commit shares one job (its rows are in `appended`): one
    // promise per group commit rather than per publication.
    appendJob ??= write(() => undefined) as Promise<void>;
    return { publication, committed: appendJob };
  }

  const store: Store = {
    backend: 'sqlite',
    append(topic, entry, limits: HistoryLimits) {
      try {
        const { publication, committed } = appendLive(topic, entry, limits);
        return committed.then((): AppendResult => publication);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    appendLive,
    readSince(topic, since, { limit, maxCount, maxAgeMs, now: at }) {
      return guard(() => {
        // Offsets handed out but not yet committed would be missing from the read: commit first.
        if (queue.length > 0) runQueue(true);
        const state = topicState(topic);
        const after = Math.max(since, state.last_offset - maxCount);
        const oldest = at - maxAgeMs;
        const publications: Publication[] = [];
        for (const row of q.segmentsSince.iterate(state.id, after, oldest)) {
          for (const [offset, from, data, time] of segmentEntries(row.entries, row.first_offset)) {
            if (offset <= after || time < oldest) continue;
            publications.push({ topic, offset, epoch: state.epoch, from, data, time });
            if (publications.length >= limit) break;
          }
          if (publications.length >= limit) break;
        }
        return { position: { epoch: state.epoch, offset: state.last_offset }, publications };
      });
    },
    position(topic) {
      return guard((): StreamPosition => {
        const state = topicState(topic);
        return { epoch: state.epoch, offset: state.last_offset };
      });
    },
    enqueue(to, entry, maxCount) {
      return write((): EnqueueResult => {
        const count = q.dmCount.get(to)?.n ?? 0;
        if (count >= maxCount) throw new RelayError('queue_full', `queue of ${to} holds ${count} pending messages`);
        const { id } = q.dmInsert.get(to, entry.from, entry.data, entry.time)!;
        q.dmCountAdd.run(to, 1);
        return { id, to, from: entry.from, data: entry.data, time: entry.time };
      });
    },
    pending(identity, afterId, limit) {
      return guard(() =>
        q.dmPending.all(identity, afterId, limit).map(
          (r): DirectMessage => ({ id: r.id, to: r.recipient, from: r.from_id, data: r.data, time: r.time }),
        ),
      );
    },
    ack(identity, ids) {
      // Not group-committed: losing an ack on power loss only means one more redelivery.
      return guard(() =>
        db.transaction(() => {
          let removed = 0;
          for (const id of ids) removed += q.dmDelete.run(identity, id).changes;
          if (removed) q.dmCountAdd.run(identity, -removed);
          return removed;
        })(),
      );
    },
    pendingCount(identity) {
      return guard(() => q.dmCount.get(identity)?.n ?? 0);
    },
    getCursor(identity, topic) {
      return guard(() => q.cursorGet.get(identity, topic) ?? undefined);
    },
    setCursor(identity, topic, position) {
      return guard(() => void q.cursorSet.run(identity, topic, position.epoch, position.offset));
    },
    kv: {
      get: (ns, key) => guard(() => q.kvGet.get(ns, key, now())?.value),
      set: (ns, key, value, ttlMs = 0) => guard(() => void q.kvSet.run(ns, key, value, ttlMs > 0 ? now() + ttlMs : 0)),
      delete: (ns, key) => guard(() => q.kvDelete.run(ns, key).changes > 0),
      list: (ns) =>
        guard(() => {
          q.kvPrune.run(now());
          return q.kvList.all(ns, now());
        }),
    },
    series: {
      append: (name, points, retainMs = 0) =>
        guard(() =>
          db.transaction(() => {
            for (const [time, value] of points) q.seriesSet.run(name, time, value);
            if (retainMs > 0) q.seriesTrim.run(name, now() - retainMs);
          })(),
        ),
      range: (name, from, to) => guard(() => q.seriesRange.all(name, from, to).map((r): [number, number] => [r.time, r.value])),
    },
    async health(): Promise<BackendHealth> {
      if (closed) return { status: 'down', output: 'sqlite store closed' };
      try {
        const started = performance.now();
        db.query('SELECT 1').get();
        // A read answers even when writes cannot: after a failed commit, probe with a write so
        // readiness turns false while the disk is full or read-only, and back once it is not.
        if (writeFailure) {
          const failingSince = writeFailure.at;
          try {
            db.transaction(() => q.kvSet.run('_health', 'write-probe', String(now()), 0))();
            writeFailure = undefined;
          } catch (error) {
            writeFailure = { at: failingSince, message: (error as Error).message };
            return {
              status: 'critical',
              output: `sqlite store at ${path} cannot write: ${writeFailure.message}`,
              details: { path, failingSince: new Date(writeFailure.at).toISOString(), queuedWrites: queue.length },
            };
          }
        }
        const mode = (db.query('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode;
        return {
          status: 'healthy',
          output: `sqlite store at ${path} (${mode})`,
          details: { path, journalMode: mode, queuedWrites: queue.length, probeMs: performance.now() - started },
        };
      } catch (error) {
        return { status: 'down', output: `sqlite store failed: ${(error as Error).message}` };
      }
    },
    async close() {
      if (closed) return;
      resumeCommits();
      runQueue(true);
      closed = true;
      await syncing;
      // A clean close: every offset handed out is on disk, so the next start keeps the epochs.
      if (!writeFailure) {
        try {
          q.kvDelete.run(STORE_NS, OPEN_KEY);
        } catch {
          // The next start treats the file as not closed cleanly: new epochs, nothing reused.
        }
      }
      const worker = checkpointer;
      checkpointer = undefined;
      if (worker) {
        await Promise.race([
          new Promise<void>((resolve) => {
            // Only `stopped` means its connection is closed: a `behind` already on its way must
            // not let the store close (and the worker be terminated) with that connection open,
            // which left the file locked for the next connection in this process. The wait is
            // long because a worker still starting up (its module loads under a busy CPU) may
            // open its connection late, and terminated before it takes `stop` that connection
            // would stay open.
            worker.onmessage = (event: MessageEvent) => {
              if ((event.data as { type?: string })?.type === 'stopped') resolve();
            };
            worker.postMessage({ type: 'stop' });
          }),
          new Promise((resolve) => setTimeout(resolve, WORKER_STOP_MS).unref?.()),
        ]);
        worker.terminate();
      }
      db.close();
      if (walFd !== undefined) closeSync(walFd);
    },
  };
  return store;
}
