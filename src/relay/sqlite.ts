/**
 * The embedded durable store on `bun:sqlite`: WAL journal, prepared statements, and group
 * commit — appends and enqueues that arrive in the same event-loop turn (under load: within
 * `commitIntervalMs` of the previous commit) are written in one transaction
 * (`synchronous = FULL`, so a commit is on disk), then each caller's promise
 * resolves. An enqueue therefore resolves only once the message is durable, at a cost of one
 * fsync per batch rather than per message.
 *
 * Tables: `topics` (epoch, last offset), `history` (topic, offset), `dm` (per-recipient queue,
 * ids from one AUTOINCREMENT sequence, so increasing per recipient), `dm_counts`, `cursors`,
 * `kv` (namespaced, with expiry), `series` (time series).
 */
import { Database } from 'bun:sqlite';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
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
  /** `full` (default) fsyncs every group commit; `normal` survives a process crash but not power loss. */
  synchronous?: 'full' | 'normal';
  /**
   * Least time from the end of one group commit to the start of the next while writes keep
   * coming (ms, default 2). A write after a quiet spell commits at the end of its turn; under
   * load the wait gathers a few milliseconds of writes into one transaction, which writes each
   * touched page to the WAL once instead of once per turn (measured: ~20 µs per append at 45
   * per commit, ~8 µs at 256).
   */
  commitIntervalMs?: number;
  now?: () => number;
}

interface HistoryRow {
  offset: number;
  from_id: string;
  data: string;
  time: number;
}
interface DmRow {
  id: number;
  recipient: string;
  from_id: string;
  data: string;
  time: number;
}

const newEpoch = () => randomBytes(6).toString('hex');

/**
 * Opens (creating when missing) the SQLite store.
 *
 * @example
 * const store = createSqliteStore({ path: join(config.server.dataDir, 'relay.sqlite') });
 */
export function createSqliteStore(options: SqliteStoreOptions): Store {
  const { path, synchronous = 'full', now = Date.now, commitIntervalMs = 2 } = options;
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { create: true, strict: true });
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`PRAGMA synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  db.exec('PRAGMA busy_timeout = 5000');
  // WAL checkpoints run in a worker (sqlite-checkpoint.ts), not inside a commit on the event loop.
  // If the worker cannot run, SQLite's own automatic checkpoint stays on.
  let checkpointer: Worker | undefined;
  if (path !== ':memory:') {
    try {
      const worker = new Worker(new URL('./sqlite-checkpoint.ts', import.meta.url).href);
      (worker as Worker & { unref?(): void }).unref?.();
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
    CREATE TABLE IF NOT EXISTS topics (topic TEXT PRIMARY KEY, epoch TEXT NOT NULL, last_offset INTEGER NOT NULL, trimmed_at INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS history (topic TEXT NOT NULL, offset INTEGER NOT NULL, from_id TEXT NOT NULL, data TEXT NOT NULL, time INTEGER NOT NULL, PRIMARY KEY (topic, offset)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS dm (id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL, from_id TEXT NOT NULL, data TEXT NOT NULL, time INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS dm_recipient ON dm (recipient, id);
    CREATE TABLE IF NOT EXISTS dm_counts (recipient TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS cursors (identity TEXT NOT NULL, topic TEXT NOT NULL, epoch TEXT NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY (identity, topic)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS series (name TEXT NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (name, time)) WITHOUT ROWID;
  `);

  const q = {
    topicGet: db.query<{ epoch: string; last_offset: number; trimmed_at: number }, [string]>(
      'SELECT epoch, last_offset, trimmed_at FROM topics WHERE topic = ?',
    ),
    topicInsert: db.query('INSERT OR IGNORE INTO topics (topic, epoch, last_offset) VALUES (?, ?, 0)'),
    topicBump: db.query('UPDATE topics SET last_offset = ? WHERE topic = ?'),
    topicTrimmed: db.query('UPDATE topics SET trimmed_at = ? WHERE topic = ?'),
    historyInsert: db.query('INSERT INTO history (topic, offset, from_id, data, time) VALUES (?, ?, ?, ?, ?)'),
    historyTrimCount: db.query('DELETE FROM history WHERE topic = ? AND offset <= ?'),
    historyTrimAge: db.query('DELETE FROM history WHERE topic = ? AND time < ?'),
    historySince: db.query<HistoryRow, [string, number, number, number]>(
      'SELECT offset, from_id, data, time FROM history WHERE topic = ? AND offset > ? AND time >= ? ORDER BY offset LIMIT ?',
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

  function topicRow(topic: string) {
    let row = q.topicGet.get(topic);
    if (!row) {
      q.topicInsert.run(topic, newEpoch());
      row = q.topicGet.get(topic)!;
    }
    return row;
  }

  /**
   * Topics appended to in the open group commit: the row is read once per commit (other
   * connections may write the file too — tests run two nodes on one file), advanced in memory by
   * each append, and written back with the count trim once at the end of the commit.
   */
  const appended = new Map<string, { row: { epoch: string; last_offset: number; trimmed_at: number }; maxCount: number }>();

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
    // Once per topic per commit, not per append: its last offset and the count trim.
    for (const [topic, { row, maxCount }] of appended) {
      q.topicBump.run(row.last_offset, topic);
      if (row.last_offset > maxCount) q.historyTrimCount.run(topic, row.last_offset - maxCount);
    }
    appended.clear();
    return results;
  });
  function runQueue() {
    scheduled = false;
    clearTimeout(commitTimer);
    commitTimer = undefined;
    const jobs = queue;
    queue = [];
    if (jobs.length === 0) return;
    try {
      const results = flush(jobs);
      lastCommit = performance.now();
      writeFailure = undefined;
      for (let i = 0; i < jobs.length; i++) {
        const result = results[i];
        if (result.ok) jobs[i].resolve(result.value);
        else jobs[i].reject(result.error);
      }
    } catch (error) {
      appended.clear();
      writeFailure = { at: now(), message: (error as Error).message };
      const wrapped = new RelayError('unavailable', `sqlite write failed: ${(error as Error).message}`, { cause: error });
      for (const job of jobs) job.reject(wrapped);
    }
  }
  function write<T>(run: () => T): Promise<T> {
    if (closed) return Promise.reject(new RelayError('closed', 'store is closed'));
    return new Promise<T>((resolve, reject) => {
      queue.push({ run, resolve: resolve as (value: unknown) => void, reject });
      if (!scheduled) {
        scheduled = true;
        const wait = lastCommit + commitIntervalMs - performance.now();
        if (wait <= 0) setImmediate(runQueue);
        else commitTimer = setTimeout(runQueue, wait);
      }
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

  const store: Store = {
    backend: 'sqlite',
    append(topic, entry, limits: HistoryLimits) {
      return write((): AppendResult => {
        let pending = appended.get(topic);
        if (!pending) appended.set(topic, (pending = { row: topicRow(topic), maxCount: limits.maxCount }));
        const row = pending.row;
        const offset = row.last_offset + 1;
        q.historyInsert.run(topic, offset, entry.from, entry.data, entry.time);
        // The row and the count trim are written at the end of the group commit (see `flush`),
        // in the same transaction; reads also bound history by count themselves.
        row.last_offset = offset;
        pending.maxCount = limits.maxCount;
        // Age trimming scans the topic, so at most once a second per topic; reads filter by age anyway.
        if (entry.time - row.trimmed_at >= 1_000) {
          q.historyTrimAge.run(topic, entry.time - limits.maxAgeMs);
          q.topicTrimmed.run(entry.time, topic);
          row.trimmed_at = entry.time;
        }
        return { topic, offset, epoch: row.epoch, from: entry.from, data: entry.data, time: entry.time };
      });
    },
    readSince(topic, since, { limit, maxCount, maxAgeMs, now: at }) {
      return guard(() => {
        const row = topicRow(topic);
        const rows = q.historySince.all(topic, Math.max(since, row.last_offset - maxCount), at - maxAgeMs, limit);
        const publications: Publication[] = rows.map((r) => ({
          topic,
          offset: r.offset,
          epoch: row.epoch,
          from: r.from_id,
          data: r.data,
          time: r.time,
        }));
        return { position: { epoch: row.epoch, offset: row.last_offset }, publications };
      });
    },
    position(topic) {
      return guard((): StreamPosition => {
        const row = topicRow(topic);
        return { epoch: row.epoch, offset: row.last_offset };
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
      runQueue();
      closed = true;
      const worker = checkpointer;
      checkpointer = undefined;
      if (worker) {
        await Promise.race([
          new Promise<void>((resolve) => {
            worker.onmessage = () => resolve();
            worker.postMessage({ type: 'stop' });
          }),
          new Promise((resolve) => setTimeout(resolve, 1_000)),
        ]);
        worker.terminate();
      }
      db.close();
    },
  };
  return store;
}
